// The README's "found here" column, generated from a run's results, never written by hand:
// `npm run readme:table` (before a release) reads captures/NN-slug/result.json of every lab and
// rewrites the last cell of each lab's row in README.md's table of labs, and the kernel it names.
// A cell lists each claim with its verdict and its k/n: "C13, C14, T8 hold (3/3 each)".
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LabResult, Verdict } from '../api/types';

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

/** README.md with each lab's "found here" cell (and the kernel named above the table) taken from `results`. */
export function updateReadme(readme: string, results: readonly LabResult[]): string {
  const byLab = new Map(results.map((r) => [r.lab, r]));
  const kernels = [...new Set(results.map((r) => r.kernel))];
  const lines = readme.split('\n').map((line) => {
    const m = ROW.exec(line);
    const r = m ? byLab.get(m[1]!) : undefined;
    if (!m || !r) return line;
    return line.slice(0, line.length - m[2]!.length - 2) + `${foundHereCell(r)} |`;
  });
  let text = lines.join('\n');
  if (kernels.length === 1) text = text.replace(/(On this\s+machine's kernel) \(Linux [^)]*\)/, `$1 (Linux ${kernels[0]})`);
  return text;
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
  const results = readResults(dir);
  if (!results.length) {
    process.stderr.write(`twlab: no results under ${dir}: run \`npx twlab run all\` first\n`);
    process.exit(1);
  }
  const file = path.join(root, 'README.md');
  const before = fs.readFileSync(file, 'utf8');
  const after = updateReadme(before, results);
  const missing = [...readmeCells(before).keys()].filter((id) => !results.some((r) => r.lab === id));
  fs.writeFileSync(file, after);
  process.stdout.write(
    `README.md: "found here" from ${results.length} results in ${dir} (${results[0]!.kernel})${before === after ? ', unchanged' : ''}\n`,
  );
  if (missing.length) process.stdout.write(`not in this run, left as they were: lab ${missing.join(', ')}\n`);
}
