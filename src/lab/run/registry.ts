// Finds the labs: every `labs/NN-slug` module — a file, or a folder with an index (compiled to
// dist/labs when built). A user's own lab dropped into labs/ is found the same way.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TwlabError } from '../api/errors';
import type { LabDefinition } from '../api/types';

const LAB_FILE = /^(\d{2})-[a-z0-9-]+\.(js|ts)$/;
/** a lab with its own judge or printer: `NN-slug/index.ts` beside them */
const LAB_FOLDER = /^(\d{2})-[a-z0-9-]+$/;

const isLabFolder = (dir: string, f: string): boolean =>
  LAB_FOLDER.test(f) && ['index.js', 'index.ts'].some((i) => fs.existsSync(path.join(dir, f, i)));

/** A lab file beside a folder of the same name is a stale build of a lab that became a folder: the folder wins. */
const isLab = (dir: string, f: string): boolean =>
  (LAB_FILE.test(f) && !f.endsWith('.d.ts') && !isLabFolder(dir, f.replace(/\.(js|ts)$/, ''))) || isLabFolder(dir, f);

export function labsDir(): string {
  // dist/src/lab/run → dist/labs (compiled); src/lab/run → labs (sources, under vitest)
  return path.resolve(__dirname, '..', '..', '..', 'labs');
}

/** twlab's own labs, then any folders in TWLAB_LABS_DIR (colon-separated) holding compiled labs of your own. */
export function labDirs(): string[] {
  const extra = (process.env.TWLAB_LABS_DIR ?? '')
    .split(':')
    .filter(Boolean)
    .map((d) => path.resolve(d));
  return [labsDir(), ...extra];
}

let cache: LabDefinition[] | null = null;

export function allLabs(): LabDefinition[] {
  if (cache) return cache;
  const files: Array<[string, string]> = [];
  for (const dir of labDirs()) {
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir)) if (isLab(dir, f)) files.push([dir, f]);
  }
  files.sort((a, b) => a[1].localeCompare(b[1]));
  const labs: LabDefinition[] = [];
  for (const [dir, f] of files) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(isLabFolder(dir, f) ? path.join(dir, f, 'index') : path.join(dir, f)) as {
      default?: LabDefinition;
      lab?: LabDefinition;
    };
    const def = mod.default ?? mod.lab;
    if (!def || typeof def.run !== 'function') continue;
    if (labs.some((l) => l.id === def.id)) throw new Error(`two labs share id ${def.id} (${f})`);
    labs.push(def);
  }
  cache = labs;
  return labs;
}

/** Resolves `01`, `1`, `bind-matrix` or `01-bind-matrix` (and `all`) to labs, in id order. */
export function resolveLabIds(ids: readonly string[]): LabDefinition[] {
  const labs = allLabs();
  if (ids.length === 0) throw new TwlabError('UNKNOWN_LAB', 'name at least one lab (or `all`); `twlab list` shows them');
  const chosen: LabDefinition[] = [];
  // every id is checked, also beside `all`: a typo must not pass unnoticed
  for (const raw of ids) {
    const want = raw.trim().toLowerCase();
    if (want === 'all') {
      for (const l of labs) if (!chosen.includes(l)) chosen.push(l);
      continue;
    }
    const def = labs.find((l) => l.id === want || l.id === want.padStart(2, '0') || l.slug === want || `${l.id}-${l.slug}` === want);
    if (!def) {
      throw new TwlabError(
        'UNKNOWN_LAB',
        `unknown lab ${JSON.stringify(raw)}; known: ${labs.map((l) => `${l.id} ${l.slug}`).join(', ')} (see \`twlab list\`)`,
      );
    }
    if (!chosen.includes(def)) chosen.push(def);
  }
  return chosen.sort((a, b) => a.id.localeCompare(b.id));
}
