// A newcomer's lab: the README's "Writing your own lab" example, as printed there, type-checked
// against the lab API, compiled into a temporary folder of its own and found there through
// TWLAB_LABS_DIR: listed, run in its namespace, its result.json and report written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { DIST, ROOT, assertBuilt, privileged, removeTmpDirs, runCli, tmpDir } from './helpers';
import type { LabResult } from '../src/lab';

afterAll(removeTmpDirs);

/** The first TypeScript block under the README's "Writing your own lab". */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Writing your own lab'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README: no ```ts block under "Writing your own lab"');
  return m[1]!;
}

/** Type errors of the example as if saved in labs/ (its import resolved to src/lab), with the project's options. */
function typeErrors(source: string, dir: string): string[] {
  const file = path.join(dir, '42-second-bind.ts');
  fs.writeFileSync(file, source.replace("'../src/lab'", JSON.stringify(path.join(ROOT, 'src', 'lab'))));
  const cfg = ts.getParsedCommandLineOfConfigFile(
    path.join(ROOT, 'tsconfig.json'),
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
  );
  const program = ts.createProgram([file], { ...cfg!.options, rootDir: undefined, noEmit: true });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === file || !d.file)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

describe('a lab of your own (README example)', () => {
  const run = privileged();
  const source = readmeExample();
  const work = tmpDir('own-lab');
  const labs = path.join(work, 'labs');
  fs.mkdirSync(labs);

  it('has no casts and type-checks against the lab API', () => {
    expect(source).toMatch(/export default defineLab\(/);
    const code = source.replace(/\/\/.*$/gm, ''); // comments may say "as"
    expect(code).not.toMatch(/ as (?!const\b)/);
    expect(typeErrors(source, work)).toEqual([]);
    // the check can fail: the same lab reading a parameter by a wrong type does not compile
    expect(typeErrors(source.replace("ctx.int('trials') }", 'ctx.int(7) }'), work).join('\n')).toMatch(
      /not assignable to parameter of type 'string'/,
    );
  }, 120_000);

  it.runIf(run)(
    'is found in TWLAB_LABS_DIR, listed, run and reported',
    () => {
      assertBuilt();
      // compiled as `npm run build` would, its import pointed at the checkout's compiled API
      const js = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      }).outputText;
      fs.writeFileSync(
        path.join(labs, '42-second-bind.js'),
        js
          .replace('"../src/lab"', JSON.stringify(path.join(DIST, 'src', 'lab')))
          .replace("'../src/lab'", JSON.stringify(path.join(DIST, 'src', 'lab'))),
      );
      const env = { TWLAB_LABS_DIR: labs };

      const list = runCli(['list'], { env });
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toMatch(/^42\s+second-bind\s+A second bind\(\) of the same port$/m);
      expect(list.stdout).toMatch(/^01\s+bind-matrix/m); // twlab's own labs beside it

      const out = path.join(work, 'captures');
      const r = runCli(['run', '42', '--set', 'trials=2', '--out', out], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/X1 HOLDS: A second plain bind\(\) of a bound port fails with EADDRINUSE\./);
      const dir = path.join(out, '42-second-bind');
      const result = JSON.parse(fs.readFileSync(path.join(dir, 'result.json'), 'utf8')) as LabResult;
      expect(result.lab).toBe('42');
      expect(result.params).toEqual({ trials: 2 });
      expect(result.variants.map((v) => v.name)).toEqual(['main']);
      expect(result.variants[0]!.observations.tries).toEqual([
        { first: 'OK', second: 'EADDRINUSE' },
        { first: 'OK', second: 'EADDRINUSE' },
      ]);
      expect(result.claims.map((c) => [c.id, c.verdict, c.evidence])).toEqual([
        ['X1', 'holds', '2/2 trials agree: second bind() → EADDRINUSE'],
      ]);
      for (const f of ['main.pcap', 'timeline.json', 'report.html']) expect(fs.existsSync(path.join(dir, f)), f).toBe(true);
      expect(fs.readFileSync(path.join(dir, 'report.html'), 'utf8')).toContain('A second bind() of the same port');
      expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).toContain('42-second-bind/report.html');
    },
    180_000,
  );
});
