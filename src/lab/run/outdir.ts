// Where evidence goes (`--out`), checked before any lab starts: an existing directory, or one we
// can create, on a real filesystem, writable. Each missing level is created on its own — a
// recursive mkdir under /proc never returns in Node 20 — and a probe file proves writing works.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TwlabError } from '../api/errors';

/** statfs(2) magic numbers of kernel pseudo-filesystems: nothing a lab writes belongs there. */
const PSEUDO_FS: Record<number, string> = {
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
  0x1cd1: 'devpts',
  0x64626720: 'debugfs',
  0x74726163: 'tracefs',
  0x73636673: 'securityfs',
  0x27e0eb: 'cgroup',
  0x63677270: 'cgroup2',
  0xcafe4a11: 'bpf',
  0x6165676c: 'pstore',
  0x62656570: 'configfs',
  0xde5e81e4: 'efivarfs',
  0xf97cff8c: 'selinuxfs',
  0x65735543: 'fusectl',
  0x19800202: 'mqueue',
  0x6e736673: 'nsfs',
  0x42494e4d: 'binfmt_misc',
};

const fail = (message: string): never => {
  throw new TwlabError('BAD_USAGE', message);
};

/** Makes sure `dir` exists and takes files; returns its absolute path, or throws one line. */
export function prepareOutDir(dir: string): string {
  const { abs, existing, missing } = checkOutDir(dir);
  let made = existing;
  for (const part of missing) {
    made = path.join(made, part);
    try {
      fs.mkdirSync(made);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      fail(
        `--out ${dir}: cannot create ${made} (${code === 'EACCES' ? 'permission denied' : code === 'EROFS' ? 'read-only filesystem' : (code ?? (e as Error).message)})`,
      );
    }
  }
  const probe = path.join(abs, `.twlab-write-test-${process.pid}`);
  try {
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fs.rmSync(probe, { force: true });
    fail(
      `--out ${dir}: cannot write into ${abs} (${code === 'EACCES' ? 'permission denied' : code === 'EROFS' ? 'read-only filesystem' : code === 'ENOSPC' ? 'no space left on device' : (code ?? (e as Error).message)})`,
    );
  }
  return abs;
}

/**
 * Checks `dir` as --out without making anything: not empty, every existing level a directory,
 * not on a kernel pseudo-filesystem, the deepest existing level writable. Returns that level and
 * the levels still to make; throws one line otherwise.
 */
export function checkOutDir(dir: string): { abs: string; existing: string; missing: string[] } {
  if (dir.trim() === '') fail('--out takes a directory, not an empty string (use --out . for this one)');
  const abs = path.resolve(dir);
  // the deepest level that exists, and what is missing below it
  let existing = abs;
  const missing: string[] = [];
  for (;;) {
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(existing);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') fail(`--out ${dir}: ${firstFile(abs)} is a file, not a directory`);
      if (code === 'EACCES') fail(`--out ${dir}: no permission to look into ${path.dirname(existing)}`);
      if (code !== 'ENOENT') fail(`--out ${dir}: ${(e as Error).message}`);
    }
    if (st) {
      if (!st.isDirectory()) fail(`--out ${dir}: ${existing} is a file, not a directory`);
      break;
    }
    missing.unshift(path.basename(existing));
    const up = path.dirname(existing);
    if (up === existing) fail(`--out ${dir}: no part of the path exists`);
    existing = up;
  }
  try {
    const kind = PSEUDO_FS[Number(fs.statfsSync(existing).type)];
    if (kind)
      fail(
        `--out ${dir}: ${existing} is on ${kind}, a kernel pseudo-filesystem; choose a directory on a real disk (e.g. --out ./captures)`,
      );
  } catch (e) {
    if (e instanceof TwlabError) throw e;
  }
  try {
    fs.accessSync(existing, fs.constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fail(
      `--out ${dir}: cannot write into ${existing} (${code === 'EACCES' ? 'permission denied' : code === 'EROFS' ? 'read-only filesystem' : (code ?? (e as Error).message)})`,
    );
  }
  return { abs, existing, missing };
}

/** The first component of `p` that exists and is not a directory (for the error message). */
function firstFile(p: string): string {
  const parts = p.split(path.sep).filter(Boolean);
  let cur: string = path.sep;
  for (const part of parts) {
    cur = path.join(cur, part);
    try {
      if (!fs.statSync(cur).isDirectory()) return cur;
    } catch {
      return cur;
    }
  }
  return p;
}
