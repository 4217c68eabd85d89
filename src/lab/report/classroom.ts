// A class's predictions: one file (JSON or CSV) of many named students, scored against the one
// run that answers the questions, and shown as a table per question — how many chose each answer,
// who, and what the kernel did — on the terminal and in the report.
//
//   JSON  {"students": {"ana": {"05": {"q1": "RST", "q2": 2}}, "ben": {...}}}
//         (or the names at the top level: {"ana": {"05": {...}}, "ben": {...}})
//   CSV   student,05.q1,05.q2,03.q1          one row per student; a cell is a choice's text or
//         ana,RST,no,EADDRINUSE              number, empty when skipped ("05 q1" and "05:q1"
//         ben,FIN,2,OK                       work as headers too)
import { TwlabError } from '../api/errors';
import { choiceOf, type Predictions } from '../api/questions';
import { resolveLabIds } from '../run/registry';
import type { LabDefinition, LabResult } from '../api/types';

/** Student name → that student's predictions (lab → question → answer). */
export type ClassAnswers = Map<string, Predictions>;

const fail = (file: string, message: string): never => {
  throw new TwlabError('BAD_USAGE', `--predict ${file}: ${message}`);
};

/** One cell of RFC 4180 CSV rows (quotes, doubled quotes, commas and newlines inside quotes). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"' && cell === '') quoted = true;
    else if (ch === ',' || ch === ';' || ch === '\t') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      if (row.some((c) => c.trim() !== '')) rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  row.push(cell);
  if (row.some((c) => c.trim() !== '')) rows.push(row);
  return rows.map((r) => r.map((c) => c.trim()));
}

/** The lab a key names, if any (`05`, `5`, `linger-zero`). */
function labOf(key: string): LabDefinition | null {
  try {
    return resolveLabIds([key])[0] ?? null;
  } catch {
    return null;
  }
}

/** Checks one student's answers against the labs of the run: every lab, question and choice must exist. */
function checkAnswers(file: string, who: string, raw: unknown, labs: readonly LabDefinition[]): Predictions {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail(file, `${who}expected an object like {"03": {"q1": "EADDRINUSE"}}`);
  const out: Predictions = {};
  for (const [labKey, answers] of Object.entries(raw as Record<string, unknown>)) {
    const def = labOf(labKey);
    if (!def) fail(file, `${who}unknown lab ${JSON.stringify(labKey)}`);
    if (!labs.includes(def!)) fail(file, `${who}lab ${def!.id} is not in this run (add it to the ids)`);
    if (!answers || typeof answers !== 'object' || Array.isArray(answers))
      fail(file, `${who}lab ${def!.id}: expected an object of question → answer`);
    const mine: Record<string, string | null> = {};
    for (const [qid, value] of Object.entries(answers as Record<string, unknown>)) {
      const q = (def!.questions ?? []).find((x) => x.id === qid);
      if (!q) {
        const has = (def!.questions ?? []).map((x) => x.id).join(', ') || 'none';
        fail(file, `${who}lab ${def!.id} has no question ${JSON.stringify(qid)} (it has ${has})`);
      }
      if (value === null || value === '') {
        mine[qid] = null;
        continue;
      }
      if (typeof value !== 'string' && typeof value !== 'number')
        fail(file, `${who}lab ${def!.id} ${qid}: an answer is a choice's text or number`);
      const c = choiceOf(q!, value as string | number);
      if (c === null)
        fail(
          file,
          `${who}lab ${def!.id} ${qid}: ${JSON.stringify(value)} is none of ${q!.choices.map((x, i) => `${i + 1}) ${x}`).join(', ')}`,
        );
      mine[qid] = c;
    }
    out[def!.id] = mine;
  }
  for (const l of labs) out[l.id] ??= {};
  return out;
}

const answerCount = (p: Predictions): number =>
  Object.values(p).reduce((n, qs) => n + Object.values(qs).filter((v) => v !== null).length, 0);

/**
 * Reads a file of answers: one student's (`{"03": {"q1": …}}`, as before) or a class's (JSON with
 * named students, or CSV). Every name is checked; a file with no answer at all is an error.
 */
export function readAnswersFile(
  file: string,
  text: string,
  labs: readonly LabDefinition[],
): { one: Predictions } | { class: ClassAnswers } {
  const csv = /\.csv$/i.test(file) || (!/^\s*[[{]/.test(text) && text.includes(','));
  if (csv) return { class: readCsv(file, text, labs) };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return fail(file, `not JSON (${(e as Error).message}); a class's answers can also be CSV (student,05.q1,05.q2, one row per student)`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    return fail(file, 'expected an object like {"03": {"q1": "EADDRINUSE"}}, or {"students": {"ana": {"03": {"q1": …}}}}');
  const top = raw as Record<string, unknown>;
  const keys = Object.keys(top);
  if (keys.length === 0) return fail(file, 'the file holds no answers ({}): give each question\'s answer, e.g. {"05": {"q1": "RST"}}');
  // a class: {"students": {...}}, or names at the top level (keys that are no lab)
  const named = 'students' in top ? top.students : keys.every((k) => !labOf(k)) ? top : null;
  if (named === null) {
    const one = checkAnswers(file, '', raw, labs);
    if (answerCount(one) === 0) fail(file, 'the file names no answer (every one empty)');
    return { one };
  }
  if (!named || typeof named !== 'object' || Array.isArray(named) || Object.keys(named).length === 0)
    return fail(file, '"students" must name each student: {"students": {"ana": {"05": {"q1": "RST"}}}}');
  const klass: ClassAnswers = new Map();
  for (const [name, answers] of Object.entries(named as Record<string, unknown>)) {
    if (!name.trim()) fail(file, 'a student without a name');
    klass.set(name.trim(), checkAnswers(file, `student ${JSON.stringify(name)}: `, answers, labs));
  }
  if ([...klass.values()].every((p) => answerCount(p) === 0)) fail(file, 'no student gave any answer');
  return { class: klass };
}

function readCsv(file: string, text: string, labs: readonly LabDefinition[]): ClassAnswers {
  const rows = parseCsv(text);
  if (rows.length < 2) fail(file, 'a CSV of answers needs a header (student,05.q1,05.q2,…) and a row per student');
  const [head, ...body] = rows;
  const columns = head!.slice(1).map((h, i) => {
    const m = /^\s*([a-z0-9-]+)\s*[.:/ ]\s*(q\d+)\s*$/i.exec(h);
    if (!m) fail(file, `column ${i + 2} "${h}": name it by lab and question, like 05.q1`);
    return { lab: m![1]!, q: m![2]!.toLowerCase() };
  });
  const klass: ClassAnswers = new Map();
  body.forEach((row, r) => {
    const name = row[0] ?? '';
    if (!name) fail(file, `row ${r + 2}: no student name in the first column`);
    if (klass.has(name)) fail(file, `row ${r + 2}: student ${JSON.stringify(name)} appears twice`);
    const raw: Record<string, Record<string, string | null>> = {};
    columns.forEach((c, i) => {
      raw[c.lab] ??= {};
      raw[c.lab]![c.q] = row[i + 1] ? row[i + 1]! : null;
    });
    klass.set(name, checkAnswers(file, `student ${JSON.stringify(name)}: `, raw, labs));
  });
  if ([...klass.values()].every((p) => answerCount(p) === 0)) fail(file, 'no student gave any answer');
  return klass;
}

const listNames = (names: readonly string[], max = 6): string =>
  names.length > max ? `${names.slice(0, max).join(', ')}, … (${names.length})` : names.join(', ');

/** The class table of one lab, for the terminal: per question, each choice with its count, a bar and who chose it. */
export function formatClass(r: LabResult, colour = false): string[] {
  const c = r.class;
  if (!c) return [];
  const paint = (code: string, s: string): string => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const n = c.students.length;
  const barW = Math.min(n, 20);
  const bar = (k: number): string => '█'.repeat(Math.round((k / Math.max(1, n)) * barW)).padEnd(barW);
  const lines = [`Class predictions, lab ${r.lab} (${n} student${n === 1 ? '' : 's'}):`];
  for (const q of c.questions) {
    lines.push(`  ${q.id}. ${q.text}`);
    lines.push(`     the kernel: ${q.answer === null ? 'not scored (a precondition failed; see the report)' : paint('1', q.answer)}`);
    const w = Math.max(...q.choices.map((x) => x.choice.length), 7);
    for (const x of q.choices) {
      const count = `${x.choice.padEnd(w)} ${String(x.students.length).padStart(3)}  ${bar(x.students.length)}`;
      const row = `     ${count}  ${x.choice === q.answer ? '✓ ' : ''}${listNames(x.students)}`.trimEnd();
      lines.push(x.choice === q.answer ? paint('32', row) : row);
    }
    if (q.skipped.length)
      lines.push(`     ${'skipped'.padEnd(w)} ${String(q.skipped.length).padStart(3)}  ${bar(0)}  ${listNames(q.skipped)}`);
    if (q.answer !== null) lines.push(`     right: ${q.right}/${q.scored}`);
  }
  lines.push(`  scores: ${c.students.map((s) => `${s.name} ${s.correct}/${s.scored}`).join(', ')}`);
  return lines;
}
