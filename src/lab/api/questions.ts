// Predict, then observe: each lab asks a few questions before it runs, and its own measurements
// answer them. A lab declares the questions (text and choices); the answer key is never written
// into a lab — the lab's run derives each answer from what it measured (ctx.answer), with the
// frames that show it, and a question whose precondition failed is not scored.
import type { Precondition } from './verdict';

export interface QuestionSpec {
  /** stable within the lab: "q1" */
  id: string;
  /** the question as a student reads it, before the run */
  text: string;
  choices: readonly string[];
}

/** What a run measured for a question. */
export interface Answer {
  /** the choice the kernel's behaviour gives (may be none of the choices, when it surprised everyone) */
  answer: string;
  /** one line: why, from the measurement */
  why: string;
  /** frames that show it: a capture of the lab and frame numbers in it (as Wireshark numbers them) */
  frames?: Array<{ pcap: string; numbers: number[] }>;
  /** what must have happened for the answer to mean anything */
  requires?: readonly Precondition[];
}

export interface QuestionResult extends QuestionSpec {
  /** null when a precondition failed: the question is not scored */
  answer: string | null;
  why: string;
  frames: Array<{ pcap: string; numbers: number[] }>;
  /** the precondition that failed, when the answer is null */
  notScored?: string;
  /** the student's prediction (null: skipped), when the run was asked to --predict */
  prediction?: string | null;
  correct?: boolean;
}

export interface PredictionScore {
  /** predictions that matched the kernel */
  correct: number;
  /** predictions that could be scored (made, and the question answered) */
  scored: number;
  /** questions asked */
  asked: number;
}

/** Predictions for a run: lab id → question id → the chosen text (or its 1-based number). */
export type Predictions = Record<string, Record<string, string | number | null>>;

/** "measured on 1 connections" → "1 connection": a lab writes its counts one way for any number. */
export const singular = (text: string): string =>
  text.replace(/\b1 (connection|trial|segment|frame|probe|close|restart|listener|cell|socket)s\b/g, '1 $1');

export function resolveAnswer(q: QuestionSpec, a: Answer): QuestionResult {
  const failed = (a.requires ?? []).find((p) => !p.met);
  const why = singular(a.why);
  if (failed)
    return { ...q, choices: [...q.choices], answer: null, why, frames: a.frames ?? [], notScored: `${failed.what} — ${failed.measured}` };
  return { ...q, choices: [...q.choices], answer: a.answer, why, frames: a.frames ?? [] };
}

/** A prediction as the chosen text: a choice's text, or its 1-based number. */
export function choiceOf(q: QuestionSpec, p: string | number | null | undefined): string | null {
  if (p === null || p === undefined || p === '') return null;
  if (typeof p === 'number' || /^\d+$/.test(String(p))) {
    const i = Number(p) - 1;
    return q.choices[i] ?? null;
  }
  return q.choices.find((c) => c.toLowerCase() === String(p).trim().toLowerCase()) ?? null;
}

/** Scores predictions against a run's answers; returns the questions with prediction and verdict, and the score. */
export function score(
  questions: QuestionResult[],
  predictions: Record<string, string | number | null> | undefined,
): { questions: QuestionResult[]; score: PredictionScore } {
  let correct = 0;
  let scored = 0;
  const out = questions.map((q) => {
    const prediction = choiceOf(q, predictions?.[q.id]);
    if (prediction === null || q.answer === null) return { ...q, prediction };
    scored++;
    const ok = prediction === q.answer;
    if (ok) correct++;
    return { ...q, prediction, correct: ok };
  });
  return { questions: out, score: { correct, scored, asked: questions.length } };
}

/** How a class fared on one lab (result.json `class`). */
export interface ClassResult {
  students: Array<{ name: string; correct: number; scored: number; answered: number }>;
  questions: Array<{
    id: string;
    text: string;
    /** the kernel's answer (null: not scored — a precondition failed) */
    answer: string | null;
    /** each choice with the students who chose it (in the order the lab lists them, then any other) */
    choices: Array<{ choice: string; students: string[] }>;
    skipped: string[];
    right: number;
    scored: number;
  }>;
}

/** Scores every student on one lab's answered questions. */
export function scoreClass(
  questions: readonly QuestionResult[],
  students: ReadonlyArray<[string, Record<string, string | number | null>]>,
): ClassResult {
  const result: ClassResult = { students: [], questions: [] };
  for (const q of questions) {
    const byChoice = new Map<string, string[]>(q.choices.map((c) => [c, []]));
    const skipped: string[] = [];
    let right = 0;
    let scored = 0;
    for (const [name, answers] of students) {
      const p = choiceOf(q, answers[q.id]);
      if (p === null) {
        skipped.push(name);
        continue;
      }
      byChoice.get(p)!.push(name);
      if (q.answer !== null) {
        scored++;
        if (p === q.answer) right++;
      }
    }
    result.questions.push({
      id: q.id,
      text: q.text,
      answer: q.answer,
      choices: [...byChoice].map(([choice, who]) => ({ choice, students: who })),
      skipped,
      right,
      scored,
    });
  }
  for (const [name, answers] of students) {
    let correct = 0;
    let scored = 0;
    let answered = 0;
    for (const q of questions) {
      const p = choiceOf(q, answers[q.id]);
      if (p === null) continue;
      answered++;
      if (q.answer === null) continue;
      scored++;
      if (p === q.answer) correct++;
    }
    result.students.push({ name, correct, scored, answered });
  }
  return result;
}
