// `twlab run --predict`: the questions asked before the labs run (on a terminal, or from a file
// of answers a class hands in), and each prediction shown beside what the kernel did.
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { TwlabError } from '../api/errors';
import { readAnswersFile, type ClassAnswers } from './classroom';
import type { Predictions, QuestionResult } from '../api/questions';
import type { LabDefinition, LabResult } from '../api/types';

/**
 * Reads a file of answers: one student's (`{ "<lab>": { "<question>": "<choice text or number>" } }`)
 * or a class's (JSON of named students, or CSV; src/lab/report/classroom.ts). Every name and choice is checked.
 */
export function readPredictions(file: string, labs: readonly LabDefinition[]): { one: Predictions } | { class: ClassAnswers } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'a directory, not a file of answers' : err.message;
    throw new TwlabError('BAD_USAGE', `--predict ${file}: ${why}`);
  }
  return readAnswersFile(file, text, labs);
}

/**
 * Asks each lab's questions on the terminal: arrow keys move, a number picks, Enter confirms (or
 * skips, with nothing picked); Ctrl-C stops. Prompts go to `output` (stderr), so stdout stays clean.
 */
export async function askOnTerminal(
  labs: readonly LabDefinition[],
  input: NodeJS.ReadStream,
  output: NodeJS.WriteStream,
): Promise<Predictions> {
  const out: Predictions = {};
  readline.emitKeypressEvents(input);
  const wasRaw = input.isRaw;
  input.setRawMode(true);
  input.resume();
  const w = (s: string): boolean => output.write(s);
  const paint =
    output.isTTY && !process.env.NO_COLOR
      ? (code: string, s: string): string => `\x1b[${code}m${s}\x1b[0m`
      : (_code: string, s: string): string => s;
  try {
    w('\nPredict first: what will the kernel do? (↑/↓ or a number to choose, Enter to confirm; Enter with nothing chosen skips)\n');
    for (const def of labs) {
      const qs = def.questions ?? [];
      out[def.id] = {};
      if (qs.length === 0) continue;
      w(`\n${paint('1', `Lab ${def.id} — ${def.title}`)}\n`);
      for (const q of qs) {
        w(`  ${paint('1', q.text)}\n`);
        out[def.id]![q.id] = await choose(q.choices, input, w, paint);
      }
    }
  } finally {
    input.setRawMode(wasRaw);
    input.pause();
  }
  return out;
}

function choose(
  choices: readonly string[],
  input: NodeJS.ReadStream,
  w: (s: string) => boolean,
  paint: (code: string, s: string) => string,
): Promise<string | null> {
  let at = -1;
  const draw = (first: boolean): void => {
    if (!first) w(`\x1b[${choices.length}A`);
    for (const [i, c] of choices.entries()) w(`\r\x1b[K    ${i === at ? paint('1;36', `› ${i + 1}) ${c}`) : `  ${i + 1}) ${c}`}\n`);
  };
  draw(true);
  return new Promise((resolve, reject) => {
    const onKey = (str: string | undefined, key: { name?: string; ctrl?: boolean } | undefined): void => {
      if (key?.ctrl && key.name === 'c') {
        input.off('keypress', onKey);
        reject(new TwlabError('INTERRUPTED', 'stopped while asking; nothing was run'));
        return;
      }
      if (key?.name === 'up') at = at <= 0 ? choices.length - 1 : at - 1;
      else if (key?.name === 'down') at = at < 0 || at === choices.length - 1 ? 0 : at + 1;
      else if (str && /^[1-9]$/.test(str) && Number(str) <= choices.length) at = Number(str) - 1;
      else if (key?.name === 'return' || key?.name === 'enter') {
        input.off('keypress', onKey);
        w(`    ${at >= 0 ? paint('36', `→ ${choices[at]}`) : paint('2', '→ (skipped)')}\n`);
        resolve(at >= 0 ? choices[at]! : null);
        return;
      } else return;
      draw(false);
    };
    input.on('keypress', onKey);
  });
}

const framesText = (q: QuestionResult): string =>
  q.frames
    .filter((f) => f.numbers.length)
    .map(
      (f) =>
        `${f.pcap} ${f.numbers
          .slice(0, 8)
          .map((n) => `#${n}`)
          .join(', ')}${f.numbers.length > 8 ? ` … (${f.numbers.length} frames)` : ''}`,
    )
    .join('; ');

/** Each prediction beside what the kernel did, why, and where the capture shows it. */
export function formatPredictions(r: LabResult): string[] {
  if (!r.questions?.length) return [];
  const lines = [`Your predictions, lab ${r.lab}:`];
  for (const q of r.questions) {
    lines.push(`  ${q.id}. ${q.text}`);
    const mark = q.answer === null ? '(not scored)' : q.prediction == null ? '(skipped)' : q.correct ? '✓' : '✗';
    lines.push(`     you: ${q.prediction ?? '—'}   the kernel: ${q.answer ?? '—'}   ${mark}`);
    lines.push(`     why: ${q.answer === null ? `not scored: ${q.notScored}. ${q.why}` : q.why}`);
    const f = framesText(q);
    if (f) lines.push(`     see: ${f}`);
  }
  const s = r.predictionScore;
  if (s) lines.push(`  score: ${s.correct}/${s.scored} right${s.asked > s.scored ? ` (${s.asked - s.scored} not scored or skipped)` : ''}`);
  return lines;
}
