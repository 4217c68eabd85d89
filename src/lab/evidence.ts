// A lab's evidence folder, replaced so that a kill at any instant leaves its old evidence or its
// new — never neither. A run writes into `.NN-slug.partial-PID` beside the folder and, once the lab
// has finished, swaps the two with renameat2(RENAME_EXCHANGE): one step, nothing in between. Where
// the filesystem cannot exchange (9p in a guest, NFS), the old folder is renamed aside to
// `.NN-slug.old-PID` first; if the process dies between that and the next rename, the next run
// finds the final folder missing and puts the old one back.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../host/native';

/** `.NN-slug.partial-PID` (a run's evidence being written) and `.NN-slug.old-PID` (old evidence renamed aside) */
const STAGING = /^\.(\d{2}-[a-z0-9-]+)\.(partial|old)-(\d+)$/;

export function stagingName(final: string, kind: 'partial' | 'old', pid = process.pid): string {
  return path.join(path.dirname(final), `.${path.basename(final)}.${kind}-${pid}`);
}

/** errnos of a filesystem (or kernel) that cannot exchange two names: fall back */
const NO_EXCHANGE = new Set(['EINVAL', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP', 'EXDEV']);

/** Swaps two paths in one step; false when this filesystem cannot. */
function exchange(a: string, b: string): boolean {
  let r: { ret: number; errno: string | null };
  try {
    r = native().renameExchange(a, b);
  } catch {
    return false; // no addon (it is needed by every lab, so not here in practice)
  }
  if (r.ret === 0) return true;
  if (NO_EXCHANGE.has(r.errno ?? '')) return false;
  throw Object.assign(new Error(`cannot put ${path.basename(a)} in place of ${b}: ${r.errno}`), { code: r.errno });
}

/**
 * Puts the finished folder `staging` in place of `final`. Returns whether there was old evidence
 * it replaced. Throws (with the errno as `code`) when neither could be done; `final` is then as it was.
 */
export function replaceFolder(staging: string, final: string): { replaced: boolean } {
  if (!fs.existsSync(final)) {
    fs.renameSync(staging, final); // rename(2) is atomic
    return { replaced: false };
  }
  if (exchange(staging, final)) {
    // `staging` now holds the old evidence; a kill from here on leaves only a stale folder to remove
    fs.rmSync(staging, { recursive: true, force: true });
    return { replaced: true };
  }
  const old = stagingName(final, 'old');
  fs.renameSync(final, old);
  fs.renameSync(staging, final);
  fs.rmSync(old, { recursive: true, force: true });
  return { replaced: true };
}

/**
 * Clears what runs that died left in `outDir` (those whose pid `isDead`): a `.partial` folder is
 * removed; an `.old` folder is put back where its final folder is missing (a kill between the two
 * renames of the fallback), else removed. Returns the folders put back.
 */
export function recoverStaging(outDir: string, isDead: (pid: number) => boolean): string[] {
  const restored: string[] = [];
  if (!fs.existsSync(outDir)) return restored;
  const names = fs.readdirSync(outDir);
  // the old folders first: a partial one of the same run must not be mistaken for evidence
  for (const name of [...names].sort((a, b) => Number(b.includes('.old-')) - Number(a.includes('.old-')))) {
    const m = STAGING.exec(name);
    if (!m || !isDead(Number(m[3]))) continue;
    const final = path.join(outDir, m[1]!);
    if (m[2] === 'old' && !fs.existsSync(final)) {
      fs.renameSync(path.join(outDir, name), final);
      restored.push(final);
    } else fs.rmSync(path.join(outDir, name), { recursive: true, force: true });
  }
  return restored;
}
