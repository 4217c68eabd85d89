// The README's "found here" column is generated from a run's results (npm run readme:table), never
// written by hand: the generator's cells, their reading back, and the README naming exactly the
// claims each lab judges. (That the verdict words match a fresh run is checked in labs.test.ts,
// which runs the labs.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { foundHereCell, parseFoundHereCell, readmeCells, updateReadme } from '../src/lab/report/foundhere';
import { labClaims, type LabDefinition, type LabResult } from '../src/lab/api/types';
import { DIST, ROOT } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const allLabs = (): LabDefinition[] =>
  (require(path.join(DIST, 'src', 'lab', 'run', 'registry.js')) as { allLabs(): LabDefinition[] }).allLabs();

type Claim = LabResult['claims'][number];
const c = (id: string, verdict: Claim['verdict'], trials?: [number, number]): Claim => ({
  id,
  text: '',
  source: '',
  scope: '',
  verdict,
  evidence: '',
  preconditions: [],
  ...(trials ? { trials: { agree: trials[0], valid: trials[1], excluded: 0 } } : {}),
});

describe('the "found here" cell', () => {
  it('groups claims by verdict, each with k/n', () => {
    expect(foundHereCell({ claims: [c('C13', 'holds', [3, 3]), c('C14', 'holds', [3, 3]), c('T8', 'holds', [3, 3])] })).toBe(
      'C13, C14, T8 hold (3/3 each)',
    );
    expect(foundHereCell({ claims: [c('C1', 'holds'), c('C2', 'differs by OS'), c('C5', 'holds'), c('C3', 'differs by OS')] })).toBe(
      'C1, C5 hold; C2, C3 differ by OS',
    );
    expect(foundHereCell({ claims: [c('T11', 'holds', [10, 10]), c('C19', 'differs by OS', [0, 10])] })).toBe(
      'T11 holds (10/10); C19 differs by OS (0/10)',
    );
    expect(foundHereCell({ claims: [c('T1', 'holds', [10, 10]), c('T2', 'holds', [4, 4])] })).toBe('T1 (10/10), T2 (4/4) hold');
    expect(foundHereCell({ claims: [c('T3', 'does not hold', [0, 5]), c('C6', 'not tested')] })).toBe(
      'T3 does not hold (0/5); C6 not tested',
    );
  });
  it('reads back to each claim and its verdict', () => {
    for (const claims of [
      [c('C13', 'holds', [3, 3]), c('C14', 'holds', [3, 3])],
      [c('T1', 'holds', [10, 10]), c('T2', 'mixed', [4, 5]), c('C4', 'differs by OS', [0, 3])],
      [c('C6', 'does not hold'), c('C9', 'not tested')],
    ]) {
      expect(parseFoundHereCell(foundHereCell({ claims }))).toEqual(Object.fromEntries(claims.map((x) => [x.id, x.verdict])));
    }
    expect(() => parseFoundHereCell('T11 holds (10/10): killed unless tcp_rfc1337=1')).toThrow(/not a "found here" entry/);
  });
  it('rewrites only the last cell of each lab row, and the kernel named above the table', () => {
    const readme = [
      "On this machine's kernel (Linux 6.18) the labs find",
      '| id | slug | what it shows | parameters (defaults) | found here |',
      '| --- | --- | --- | --- | --- |',
      '| 13 | `x` | an RST \\| or not | `rst=in-window\\|out-of-window` | T11 holds (10/10): hand-written |',
      '| 14 | `y` | probes | `burst=50` | T12 holds |',
    ].join('\n');
    const out = updateReadme(readme, [
      { lab: '13', kernel: '6.1.0-57-amd64', claims: [c('T11', 'holds', [10, 10]), c('C19', 'differs by OS', [0, 10])] } as LabResult,
    ]);
    expect(out.split('\n')[3]).toBe(
      '| 13 | `x` | an RST \\| or not | `rst=in-window\\|out-of-window` | T11 holds (10/10); C19 differs by OS (0/10) |',
    );
    expect(out.split('\n')[4]).toBe('| 14 | `y` | probes | `burst=50` | T12 holds |'); // not in the run: left as it was
    expect(out.split('\n')[0]).toBe("On this machine's kernel (Linux 6.1.0-57-amd64) the labs find");
  });
});

describe("README.md's table of labs", () => {
  const cells = readmeCells(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  it('has a row for every lab, whose "found here" cell was generated and names exactly the claims the lab judges', () => {
    const labs = allLabs().filter((l) => /^(0[1-9]|1[0-7])$/.test(l.id));
    expect([...cells.keys()]).toEqual(labs.map((l) => l.id));
    for (const l of labs) {
      const cell = cells.get(l.id)!;
      expect(Object.keys(parseFoundHereCell(cell)).sort(), `lab ${l.id}: ${cell} (regenerate: npm run readme:table)`).toEqual(
        labClaims(l)
          .map((x) => x.id)
          .sort(),
      );
    }
  });
});
