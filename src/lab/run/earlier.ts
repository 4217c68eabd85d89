// Evidence a second run does not overwrite silently: when a lab's folder is replaced, the previous
// run's folder is kept under <out>/earlier/<its start time>/NN-slug/ (the five newest runs of each
// lab), and the run says where it went. Only names and moves; the replace itself (an atomic swap,
// after which the old folder is handed here) is src/lab/run/evidence.ts's.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** How many earlier runs of one lab are kept. */
export const KEEP_EARLIER = 5;

export const EARLIER_DIR = 'earlier';

export interface Kept {
  /** where the previous run's evidence now is */
  dir: string;
  /** when that run started (its result.json), or null if unreadable */
  startedAt: string | null;
  /** folders of still older runs removed to keep KEEP_EARLIER */
  removed: string[];
}

/** A folder name for a start time: 2026-12-03T17-40-12Z (no colons: they trouble other systems). */
export function stampOf(startedAt: string | null, fallback: Date): string {
  const d = startedAt && !Number.isNaN(Date.parse(startedAt)) ? new Date(startedAt) : fallback;
  return d
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
}

/**
 * Moves `old` (the previous evidence of lab folder `name`, already out of the way) to
 * `<outDir>/earlier/<stamp>/<name>`, and trims that lab's earlier runs to the newest KEEP_EARLIER.
 */
export function keepEarlier(old: string, outDir: string, name: string): Kept {
  let startedAt: string | null = null;
  try {
    startedAt = (JSON.parse(fs.readFileSync(path.join(old, 'result.json'), 'utf8')) as { startedAt?: string }).startedAt ?? null;
  } catch {
    // evidence without a readable result: named by when it was last changed
  }
  const root = path.join(outDir, EARLIER_DIR);
  const base = stampOf(startedAt, fs.statSync(old).mtime);
  let stamp = base;
  for (let i = 2; fs.existsSync(path.join(root, stamp, name)); i++) stamp = `${base}-${i}`;
  const dir = path.join(root, stamp, name);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.renameSync(old, dir);
  // the oldest runs of this lab beyond KEEP_EARLIER go (stamps sort by time)
  const runs = fs
    .readdirSync(root)
    .filter((s) => fs.existsSync(path.join(root, s, name)))
    .sort();
  const removed: string[] = [];
  for (const s of runs.slice(0, Math.max(0, runs.length - KEEP_EARLIER))) {
    const gone = path.join(root, s, name);
    fs.rmSync(gone, { recursive: true, force: true });
    removed.push(gone);
    if (fs.readdirSync(path.join(root, s)).length === 0) fs.rmdirSync(path.join(root, s));
  }
  return { dir, startedAt, removed };
}
