// Everything a lab needs beyond its run is declared on the lab: its step in the course, its row in
// README.md's table of labs, what the reports compare of it. The core renders what labs declare
// and never branches on a lab's id; a lab that forgets its course entry is named, not dropped.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labRow, readmeCells, updateReadme } from '../src/lab/report/foundhere';
import type { LabDefinition, LabResult } from '../src/lab/api/types';
import { DIST, ROOT, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

// eslint-disable-next-line @typescript-eslint/no-require-imports
const allLabs = (): LabDefinition[] =>
  (require(path.join(DIST, 'src', 'lab', 'run', 'registry.js')) as { allLabs(): LabDefinition[] }).allLabs();

describe('what a lab declares', () => {
  it('every lab of twlab declares its course entry, each at its own place in the order', () => {
    const labs = allLabs();
    for (const l of labs) {
      expect(l.course, `lab ${l.id} declares no \`course\` (src/lab/api/definition.ts: CourseEntry)`).toBeDefined();
      expect(l.course!.teaches.length, `lab ${l.id}: course.teaches`).toBeGreaterThan(20);
      expect(l.course!.look.length, `lab ${l.id}: course.look`).toBeGreaterThan(10);
    }
    const orders = labs.map((l) => l.course!.order);
    expect(new Set(orders).size).toBe(orders.length);
  });

  it("README.md's table of labs is each lab's row as its definition writes it (npm run readme:table)", () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const cells = readmeCells(readme);
    const rows = readme.split('\n').filter((l) => /^\| \d{2} \| /.test(l));
    expect(rows).toEqual(allLabs().map((l) => labRow(l, cells.get(l.id) ?? '')));
  });

  it("a lab without a row gets one from its definition, in id order, its 'found here' from the run", () => {
    const readme = ['| id | slug | what it shows | parameters (defaults) | found here |', '| --- | --- | --- | --- | --- |'];
    const row = (id: string): string => `| ${id} | \`x\` | old text | \`n=1\` | T1 holds |`;
    const def = {
      id: '42',
      slug: 'second-bind',
      shows: 'a second bind() | its errno',
      params: [
        { name: 'trials', kind: 'int', default: 3, help: '' },
        { name: 'order', kind: 'enum', default: 'a-first', choices: ['a-first', 'b-first'], help: '' },
        { name: 'rfc1337', kind: 'enum', default: '0', choices: ['0', '1'], sysctl: 'net.ipv4.tcp_rfc1337', help: '' },
      ],
    } as const;
    const x1 = { lab: '42', kernel: 'k', claims: [{ id: 'X1', verdict: 'holds', trials: { agree: 2, valid: 2, excluded: 0 } }] };
    const out = updateReadme(
      [...readme, row('41'), row('43'), ''].join('\n'),
      [x1 as unknown as LabResult],
      [def as unknown as LabDefinition],
    ).split('\n');
    expect(out.slice(2, 5)).toEqual([
      row('41'),
      '| 42 | `second-bind` | a second bind() \\| its errno | `trials=3` `order=a-first\\|b-first` `rfc1337=0` (sysctl) | X1 holds (2/2) |',
      row('43'),
    ]);
  });

  it('`twlab course` names a lab that declares no course entry, after the course', () => {
    const dir = tmpDir('no-course');
    const lab = `const { defineLab } = require(${JSON.stringify(path.join(DIST, 'src', 'lab'))});
module.exports = { default: defineLab({ id: '43', slug: 'no-course', title: 'No course', shows: 'nothing', question: '?',
  params: [], claims: [], async run() {} }) };\n`;
    fs.writeFileSync(path.join(dir, '43-no-course.js'), lab);
    const r = runCli(['course'], { env: { TWLAB_LABS_DIR: dir } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Not in the course \(their definitions declare no `course`\): 43 no-course$/m);
    expect(r.stdout).not.toMatch(/^\s*\d+\. 43 /m);
  });
});
