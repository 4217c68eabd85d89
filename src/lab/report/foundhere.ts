// README.md's table of labs, generated, never written by hand: `npm run readme:table` (before a
// release) writes each lab's row from its definition (id, slug, `showsInDetail` or `shows`, the
// parameters with their defaults; a new lab's row is added) and the "found here" cell from the
// run's results (captures/NN-slug/result.json), with the kernel it names. A cell lists each claim
// with its verdict and its k/n: "C13, C14, T8 hold (3/3 each)".
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatParamValue, type ParamSpec } from '../api/params';
import type { LabDefinition, LabResult, Verdict } from '../api/types';
import { allLabs } from '../run/registry';

const PLURAL: Record<Verdict, string> = {
  holds: 'hold',
  'does not hold': 'do not hold',
  'differs by OS': 'differ by OS',
  mixed: 'mixed',
  'not tested': 'not tested',
};
const SINGULAR_OF = new Map<string, Verdict>([
  ...(Object.entries(PLURAL) as Array<[Verdict, string]>).map(([v, p]): [string, Verdict] => [p, v]),
  ...(Object.keys(PLURAL) as Verdict[]).map((v): [string, Verdict] => [v, v]),
]);

const tally = (c: LabResult['claims'][number]): string | null => (c.trials ? `${c.trials.agree}/${c.trials.valid}` : null);

/** One lab's cell: its claims grouped by verdict (in the order the lab judged them), each with k/n. */
export function foundHereCell(r: Pick<LabResult, 'claims'>): string {
  const groups = new Map<Verdict, LabResult['claims']>();
  for (const c of r.claims) groups.set(c.verdict, [...(groups.get(c.verdict) ?? []), c]);
  return [...groups]
    .map(([verdict, cs]) => {
      const word = cs.length === 1 ? verdict : PLURAL[verdict];
      const tallies = cs.map(tally);
      if (tallies.every((t) => t === tallies[0])) {
        const t = tallies[0];
        return `${cs.map((c) => c.id).join(', ')} ${word}${t ? ` (${t}${cs.length > 1 ? ' each' : ''})` : ''}`;
      }
      return `${cs.map((c) => `${c.id}${tally(c) ? ` (${tally(c)})` : ''}`).join(', ')} ${word}`;
    })
    .join('; ');
}

/** A cell read back: each claim id with its verdict. */
export function parseFoundHereCell(cell: string): Record<string, Verdict> {
  const out: Record<string, Verdict> = {};
  for (const part of cell.split('; ')) {
    const m = /^(.+?) (holds|hold|does not hold|do not hold|differs by OS|differ by OS|mixed|not tested)(?: \(\d+\/\d+(?: each)?\))?$/.exec(
      part.trim(),
    );
    if (!m) throw new Error(`not a "found here" entry: ${JSON.stringify(part)}`);
    for (const id of m[1]!.split(', ')) out[id.replace(/ \(\d+\/\d+\)$/, '')] = SINGULAR_OF.get(m[2]!)!;
  }
  return out;
}

const ROW = /^\| (\d{2}) \| .* \| ([^|]*) \|$/;

/** The "found here" cell of each lab's row in README.md's table of labs. */
export function readmeCells(readme: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readme.split('\n')) {
    const m = ROW.exec(line);
    if (m) out.set(m[1]!, m[2]!.trim());
  }
  return out;
}

/** A table cell's text: a pipe would end the cell. */
const cellText = (text: string): string => text.replace(/\|/g, '\\|');

/**
 * A parameter as the table shows it: `name=default`, named alternatives after the default
 * (`wait=full|none`; a sysctl's numeric values are the kernel's to document), "(sysctl)" when it sets one.
 */
export function paramCell(p: ParamSpec): string {
  const alternatives = p.kind === 'enum' && !p.choices.every((c) => /^\d+$/.test(c)) ? p.choices.filter((c) => c !== p.default) : [];
  const value = [formatParamValue(p.kind === 'list' ? [...p.default] : p.default), ...alternatives].join('|');
  return `\`${cellText(`${p.name}=${value}`)}\`${p.sysctl ? ' (sysctl)' : ''}`;
}

/** A lab's row in the table of labs, from its definition, with its "found here" cell. */
export function labRow(def: Pick<LabDefinition, 'id' | 'slug' | 'shows' | 'showsInDetail' | 'params'>, foundHere: string): string {
  const shows = cellText(def.showsInDetail ?? def.shows);
  return `| ${def.id} | \`${def.slug}\` | ${shows} | ${def.params.map(paramCell).join(' ')} | ${foundHere} |`;
}

/**
 * README.md with each lab's "found here" cell (and the kernel named above the table) taken from
 * `results`; given the labs' definitions, each row's other cells are written from them too, and a
 * lab without a row gets one (its "found here" cell empty until a run fills it).
 */
export function updateReadme(readme: string, results: readonly LabResult[], labs?: readonly LabDefinition[]): string {
  const byLab = new Map(results.map((r) => [r.lab, r]));
  const kernels = [...new Set(results.map((r) => r.kernel))];
  const defs = new Map((labs ?? []).map((l) => [l.id, l]));
  const seen = new Set<string>();
  let lines = readme.split('\n').map((line) => {
    const m = ROW.exec(line);
    if (!m) return line;
    seen.add(m[1]!);
    const r = byLab.get(m[1]!);
    const def = defs.get(m[1]!);
    const foundHere = r ? foundHereCell(r) : m[2]!.trim();
    if (def) return labRow(def, foundHere);
    if (!r) return line;
    return line.slice(0, line.length - m[2]!.length - 2) + `${foundHere} |`;
  });
  const missing = [...defs.values()].filter((d) => !seen.has(d.id));
  if (missing.length) {
    const last = lines.reduce((at, l, i) => (ROW.test(l) ? i : at), -1);
    const rows = missing.map((d) => labRow(d, byLab.has(d.id) ? foundHereCell(byLab.get(d.id)!) : ''));
    if (last >= 0) {
      lines = [...lines.slice(0, last + 1), ...rows, ...lines.slice(last + 1)];
      lines = sortRows(lines);
    }
  }
  let text = lines.join('\n');
  if (kernels.length === 1) text = text.replace(/(On this\s+machine's kernel) \(Linux [^)]*\)/, `$1 (Linux ${kernels[0]})`);
  return text;
}

/** The table's lab rows in id order (a new lab's row was added after the last). */
function sortRows(lines: string[]): string[] {
  const at = lines.map((l, i) => (ROW.test(l) ? i : -1)).filter((i) => i >= 0);
  const sorted = at.map((i) => lines[i]!).sort((a, b) => ROW.exec(a)![1]!.localeCompare(ROW.exec(b)![1]!));
  const out = [...lines];
  at.forEach((i, k) => {
    out[i] = sorted[k]!;
  });
  return out;
}

/** Every lab's result.json under `dir` (the host's: NN-slug folders directly in it). */
export function readResults(dir: string): LabResult[] {
  return fs
    .readdirSync(dir)
    .filter((d) => /^\d{2}-/.test(d) && fs.existsSync(path.join(dir, d, 'result.json')))
    .sort()
    .map((d) => JSON.parse(fs.readFileSync(path.join(dir, d, 'result.json'), 'utf8')) as LabResult);
}

// npm run readme:table [-- <evidence dir>]: after `twlab run all`, before a release
if (require.main === module) {
  const root = path.resolve(__dirname, '..', '..', '..', '..'); // dist/src/lab/report → the package
  const dir = path.resolve(process.argv[2] ?? path.join(root, 'captures'));
  const results = fs.existsSync(dir) ? readResults(dir) : [];
  const file = path.join(root, 'README.md');
  const before = fs.readFileSync(file, 'utf8');
  const after = updateReadme(before, results, allLabs());
  const missing = [...readmeCells(after).keys()].filter((id) => !results.some((r) => r.lab === id));
  fs.writeFileSync(file, after);
  const from = results.length ? `"found here" from ${results.length} results in ${dir} (${results[0]!.kernel})` : 'no results';
  process.stdout.write(`README.md: each lab's row from its definition, ${from}${before === after ? ', unchanged' : ''}\n`);
  if (!results.length) process.stdout.write(`no results under ${dir}: run \`npx twlab run all\` first for the "found here" cells\n`);
  else if (missing.length) process.stdout.write(`"found here" not in this run, left as it was: lab ${missing.join(', ')}\n`);
}
