// A lab's evidence folder, replaced so that a kill at any instant leaves its old evidence or its
// new — never neither — and the old evidence is then kept under earlier/ (src/lab/run/earlier.ts), not
// deleted. A run writes into `.NN-slug.partial-PID` beside the folder and, once the lab has
// finished, renames it `.NN-slug.swap-PID-INO` (INO: the old folder's inode) and swaps the two
// with renameat2(RENAME_EXCHANGE): one step, nothing in between. After the swap the old evidence
// is at the swap name, and is moved to earlier/<its start time>/NN-slug/. A run that dies before
// that leaves the swap folder; the next run tells which evidence it holds by its inode (the old
// folder's: kept under earlier/; the new one never put in place: removed). Where the filesystem
// cannot exchange (9p in a guest, NFS), the old folder is renamed aside to `.NN-slug.old-PID`
// first; if the process dies between that and the next rename, the next run finds the final
// folder missing and puts the old one back (else keeps it under earlier/).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../../host/native';
import { keepEarlier, type Kept } from './earlier';

/**
 * `.NN-slug.partial-PID` (a run's evidence being written), `.NN-slug.swap-PID-INO` (a finished
 * run's folder about to be swapped with the old folder of inode INO — or, after the swap, that old
 * folder) and `.NN-slug.old-PID` (old evidence renamed aside)
 */
const STAGING = /^\.(\d{2}-[a-z0-9-]+)\.(partial|old|swap)-(\d+)(?:-(\d+))?$/;

export function stagingName(final: string, kind: 'partial' | 'old', pid = process.pid): string {
  return path.join(path.dirname(final), `.${path.basename(final)}.${kind}-${pid}`);
}

function swapName(final: string, oldIno: bigint, pid = process.pid): string {
  return path.join(path.dirname(final), `.${path.basename(final)}.swap-${pid}-${oldIno}`);
}

const inode = (p: string): bigint => fs.statSync(p, { bigint: true }).ino;

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

/** What became of a lab's old evidence when its folder was replaced. */
export interface Replaced {
  /** there was old evidence in the folder, and the new has taken its place */
  replaced: boolean;
  /** where the old evidence was kept (earlier/<start time>/NN-slug), when it was */
  earlier: Kept | null;
  /** why the old evidence could not be kept under earlier/ (it was removed), when it could not */
  notKept?: string;
}

/**
 * Puts the finished folder `staging` in place of `final`, keeping the old evidence under earlier/.
 * Throws (with the errno as `code`) when the new evidence could not be put in place; `final` is then
 * as it was and the new evidence is removed.
 */
export function replaceFolder(staging: string, final: string): Replaced {
  if (!fs.existsSync(final)) {
    fs.renameSync(staging, final); // rename(2) is atomic
    return { replaced: false, earlier: null };
  }
  const swap = swapName(final, inode(final));
  fs.renameSync(staging, swap);
  let old: string;
  try {
    if (exchange(swap, final)) {
      old = swap; // the swap name now holds the old evidence; a kill from here on leaves it for the next run to keep
    } else {
      old = stagingName(final, 'old');
      fs.renameSync(final, old);
      try {
        fs.renameSync(swap, final);
      } catch (e) {
        fs.renameSync(old, final); // the old evidence back in its place
        throw e;
      }
    }
  } catch (e) {
    fs.rmSync(swap, { recursive: true, force: true });
    throw e;
  }
  return { replaced: true, ...keepOld(old, final) };
}

/** Moves old evidence (out of `final`'s way at `old`) under earlier/; where it cannot (a full disk), removes it and says why. */
function keepOld(old: string, final: string): { earlier: Kept | null; notKept?: string } {
  try {
    return { earlier: keepEarlier(old, path.dirname(final), path.basename(final)) };
  } catch (e) {
    if (!fs.existsSync(old)) return { earlier: null }; // moved; only trimming older runs failed
    fs.rmSync(old, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    return { earlier: null, notKept: code === 'ENOSPC' ? 'no space left on device' : (code ?? (e as Error).message) };
  }
}

/** What a run's clean-up did with the folders of runs that died. */
export interface Recovered {
  /** final folders put back from where a kill had left them renamed aside */
  restored: string[];
  /** old evidence a kill had left beside its final folder (at `left`), now kept under earlier/ */
  kept: Array<{ final: string; left: string; earlier: Kept | null; notKept?: string }>;
}

/**
 * Clears what runs that died left in `outDir` (those whose pid `isDead`): a `.partial` folder is
 * removed; an `.old` folder is put back where its final folder is missing (a kill between the two
 * renames of the fallback), else kept under earlier/; a `.swap` folder is kept under earlier/ when
 * it is the old folder the swap took out (its inode says so), else (the swap never happened) removed.
 */
export function recoverStaging(outDir: string, isDead: (pid: number) => boolean): Recovered {
  const done: Recovered = { restored: [], kept: [] };
  if (!fs.existsSync(outDir)) return done;
  const names = fs.readdirSync(outDir);
  // the old folders first: a partial one of the same run must not be mistaken for evidence
  for (const name of [...names].sort((a, b) => Number(b.includes('.old-')) - Number(a.includes('.old-')))) {
    const m = STAGING.exec(name);
    if (!m || !isDead(Number(m[3]))) continue;
    const left = path.join(outDir, name);
    const final = path.join(outDir, m[1]!);
    const old = m[2] === 'old' || (m[2] === 'swap' && m[4] !== undefined && inode(left) === BigInt(m[4]));
    if (!old) fs.rmSync(left, { recursive: true, force: true });
    else if (!fs.existsSync(final)) {
      fs.renameSync(left, final);
      done.restored.push(final);
    } else done.kept.push({ final, left, ...keepOld(left, final) });
  }
  return done;
}
