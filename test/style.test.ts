// The tree as Biome leaves it: `biome check` passes (format and lint), and no line is longer than
// the formatter's lineWidth — Biome cannot split a string literal or a long comment, so it does not
// enforce the width itself (issue 19: "no line in labs/ or src/ exceeds the configured width").
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '..');
const BIOME = path.join(ROOT, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');

/** formatter.lineWidth from biome.json: the one place the width is written. */
function lineWidth(): number {
  const config = JSON.parse(fs.readFileSync(path.join(ROOT, 'biome.json'), 'utf8')) as { formatter?: { lineWidth?: number } };
  const width = config.formatter?.lineWidth;
  if (typeof width !== 'number') throw new Error('biome.json sets no formatter.lineWidth');
  return width;
}

/** Every .ts file under `rel` (a folder or one file), relative to the repository root. */
function tsFiles(rel: string): string[] {
  const abs = path.join(ROOT, rel);
  if (!fs.statSync(abs).isDirectory()) return [rel];
  return fs
    .readdirSync(abs, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? tsFiles(path.join(rel, e.name)) : e.name.endsWith('.ts') ? [path.join(rel, e.name)] : []));
}

/** "file:line (N characters)" for each line of `files` longer than `width` (characters, as an editor counts them). */
function longLines(files: string[], width: number): string[] {
  return files.flatMap((f) =>
    fs
      .readFileSync(path.join(ROOT, f), 'utf8')
      .split('\n')
      .flatMap((line, i) => {
        const n = [...line].length;
        return n > width ? [`${f}:${i + 1} (${n} characters)`] : [];
      }),
  );
}

describe('style', () => {
  it('biome check passes on the whole tree (formatting and lint)', () => {
    const r = spawnSync(process.execPath, [BIOME, 'check', '.'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(r.status, `biome check failed:\n${r.stdout}${r.stderr}`).toBe(0);
  });

  // issue 19: no line in the sources or the labs is wider than the formatter's width
  const CLEAN = ['src', 'labs', 'bench'];

  it(`no line is longer than biome.json's formatter.lineWidth in ${CLEAN.join(', ')}`, () => {
    const width = lineWidth();
    const files = CLEAN.flatMap(tsFiles);
    expect(files.length).toBeGreaterThan(50);
    const offenders = longLines(files, width);
    expect(offenders, `lines longer than ${width} characters:\n${offenders.join('\n')}`).toEqual([]);
  });
});
