// NetBSD's TCP/IP stack as a system under test: its kernel built as a rump kernel (NetBSD's own
// sys/kern, sys/net, sys/netinet code as libraries in a Linux process), and twlab's helper
// (native/stack-helper/) linked against it. Built on first use, from the pinned sources, into a
// cache that only ever holds finished builds:
//
//   ~/.cache/twlab/netbsd/<src-netbsd rev>-<buildrump.sh rev>/
//       lib/*.a  include/rump/*.h  include/nbgen.h  licences/  netbsd.json
//       helper-<hash of our helper sources>/twlab-netbsd-helper
//
// The sources: TWLAB_NETBSD_SRC names a folder with the two pinned archives (CI and tests use
// ../shared/netbsd/), or unpacked trees; otherwise they are fetched from the public repositories
// at the pinned revisions (github.com/rumpkernel/buildrump.sh and rumpkernel/src-netbsd).
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { StackHelper } from '../host/backend/stack-helper';
import { packageRoot } from '../host/native';
import { pidAlive } from '../host/pid';
import { TwlabError } from '../lab/api/errors';
import { which } from '../lab/run/preflight';

/** The pinned revisions (../shared/netbsd/NOTES.md): NetBSD-current "7.99.34" of 2016-08-02. */
export const NETBSD_PIN = {
  buildrump: { repo: 'rumpkernel/buildrump.sh', rev: '6cccd46', archive: 'buildrump.sh-6cccd46.tar.xz' },
  src: {
    repo: 'rumpkernel/src-netbsd',
    branch: 'buildrump-src',
    rev: '82f3a6905f6a3a65ceb3a21046de62437f61e7dd',
    archive: 'src-netbsd-82f3a690.tar.xz',
  },
} as const;

export const NETBSD_HELPER = 'twlab-netbsd-helper';

/** What netbsd.json in a cache entry says. */
export interface NetbsdBuild {
  /** "7.99.34", as the booted kernel says (kern.osrelease) */
  release: string;
  /** kern.version's first line */
  version: string;
  srcRev: string;
  buildrumpRev: string;
  /** where the sources came from: a folder, or the public repositories */
  source: string;
  builtAt: string;
  buildMs: number;
  jobs: number;
}

export interface NetbsdStack extends NetbsdBuild {
  dir: string;
  helper: string;
  /** "NetBSD 7.99.34 (src-netbsd 82f3a69)" */
  label: string;
}

/** The folder name of a NetBSD column's evidence: <out>/netbsd-7.99.34/NN-slug. */
export function netbsdFolder(release: string): string {
  return `netbsd-${release}`;
}

export function netbsdLabel(b: Pick<NetbsdBuild, 'release' | 'srcRev'>): string {
  return `NetBSD ${b.release} (src-netbsd ${b.srcRev.slice(0, 7)})`;
}

export function netbsdCacheRoot(): string {
  if (process.env.TWLAB_NETBSD_CACHE) return path.resolve(process.env.TWLAB_NETBSD_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'twlab', 'netbsd');
}

const entryName = `${NETBSD_PIN.src.rev.slice(0, 8)}-${NETBSD_PIN.buildrump.rev}`;

function helperSources(): string {
  return path.join(packageRoot(), 'native', 'stack-helper');
}

const HELPER_FILES = ['protocol.c', 'netbsd.c', 'shim.h'];

function helperHash(cacheDir: string): string {
  const h = crypto.createHash('sha256');
  for (const f of HELPER_FILES) h.update(fs.readFileSync(path.join(helperSources(), f)));
  h.update(fs.readFileSync(path.join(cacheDir, 'include', 'nbgen.h')));
  return h.digest('hex').slice(0, 12);
}

/** The finished build in the cache, if there is one (a helper may still have to be linked). */
export function cachedNetbsd(): (NetbsdBuild & { dir: string; bytes: number }) | null {
  const dir = path.join(netbsdCacheRoot(), entryName);
  try {
    const b = JSON.parse(fs.readFileSync(path.join(dir, 'netbsd.json'), 'utf8')) as NetbsdBuild;
    return { ...b, dir, bytes: sizeOf(dir) };
  } catch {
    return null;
  }
}

function sizeOf(p: string): number {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((n, f) => n + sizeOf(path.join(p, f)), 0);
}

/** What building needs on this machine; a missing tool is one line with its fix. */
export function buildChecks(): void {
  for (const [tool, pkg] of [
    ['cc', 'gcc'],
    ['make', 'make'],
    ['xz', 'xz-utils'],
    ['tar', 'tar'],
    ['sh', 'dash'],
  ] as const) {
    if (!which(tool))
      throw new TwlabError(
        'MISSING_TOOL',
        `${tool} not found on PATH; fix: apt-get install ${pkg} (needed to build NetBSD's stack for --kernel netbsd)`,
      );
  }
}

/**
 * Before anything is written: a stack that is not built yet must have a source to be built
 * from (one line naming what is missing), and the tools to build it.
 */
export function checkNetbsdSource(): void {
  if (cachedNetbsd()) return;
  buildChecks();
  const named = process.env.TWLAB_NETBSD_SRC;
  if (!named) {
    if (!which('curl'))
      throw new TwlabError(
        'MISSING_TOOL',
        "curl not found on PATH; fix: apt-get install curl (to fetch NetBSD's sources), or set TWLAB_NETBSD_SRC to a folder holding them",
      );
    return;
  }
  const dir = path.resolve(named);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    throw new TwlabError(
      'KERNEL_FETCH',
      `TWLAB_NETBSD_SRC=${named}: no such folder (it should hold ${NETBSD_PIN.buildrump.archive} and ${NETBSD_PIN.src.archive}, or the unpacked buildrump.sh/ and src-netbsd/ trees)`,
    );
  if (fs.existsSync(path.join(dir, 'buildrump.sh', 'buildrump.sh')) && fs.existsSync(path.join(dir, 'src-netbsd', 'sys'))) return;
  const missing = [NETBSD_PIN.buildrump.archive, NETBSD_PIN.src.archive].filter((a) => !fs.existsSync(path.join(dir, a)));
  if (missing.length)
    throw new TwlabError(
      'KERNEL_FETCH',
      `TWLAB_NETBSD_SRC=${named}: ${missing.join(' and ')} not found there (the pinned NetBSD sources; see the README)`,
    );
}

interface Sources {
  buildrump: string;
  src: string;
  /** for netbsd.json */
  from: string;
}

/** Unpacks (or finds) the two trees into `work`; one line for a missing or broken source. */
function sources(work: string, log: (s: string) => void): Sources {
  const named = process.env.TWLAB_NETBSD_SRC;
  if (named) {
    const dir = path.resolve(named);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
      throw new TwlabError(
        'KERNEL_FETCH',
        `TWLAB_NETBSD_SRC=${named}: no such folder (it should hold ${NETBSD_PIN.buildrump.archive} and ${NETBSD_PIN.src.archive}, or the unpacked buildrump.sh/ and src-netbsd/ trees)`,
      );
    const trees = { buildrump: path.join(dir, 'buildrump.sh'), src: path.join(dir, 'src-netbsd') };
    if (fs.existsSync(path.join(trees.buildrump, 'buildrump.sh')) && fs.existsSync(path.join(trees.src, 'sys', 'netinet', 'tcp_input.c'))) {
      return { ...trees, from: dir };
    }
    const archives = [NETBSD_PIN.buildrump.archive, NETBSD_PIN.src.archive].map((a) => path.join(dir, a));
    const missing = archives.filter((a) => !fs.existsSync(a));
    if (missing.length)
      throw new TwlabError(
        'KERNEL_FETCH',
        `TWLAB_NETBSD_SRC=${named}: ${missing.map((m) => path.basename(m)).join(' and ')} not found there (the pinned NetBSD sources; see ../shared/netbsd/ or the README)`,
      );
    for (const a of archives) {
      log(`unpacking ${path.basename(a)}`);
      const r = spawnSync('tar', ['-xJf', a, '-C', work], { encoding: 'utf8' });
      if (r.status !== 0)
        throw new TwlabError(
          'KERNEL_FETCH',
          `${a} cannot be unpacked: ${(r.stderr || r.error?.message || `tar exit ${r.status}`).trim().split('\n').pop()}`,
        );
    }
    const unpacked = { buildrump: path.join(work, 'buildrump.sh'), src: path.join(work, 'src-netbsd') };
    if (
      !fs.existsSync(path.join(unpacked.buildrump, 'buildrump.sh')) ||
      !fs.existsSync(path.join(unpacked.src, 'sys', 'netinet', 'tcp_input.c'))
    ) {
      throw new TwlabError(
        'KERNEL_FETCH',
        `the archives in ${dir} do not hold buildrump.sh/buildrump.sh and src-netbsd/sys/netinet: not the pinned NetBSD sources`,
      );
    }
    return { ...unpacked, from: dir };
  }
  // the public repositories at the pinned revisions (GitHub's archive of a commit)
  if (!which('curl'))
    throw new TwlabError(
      'MISSING_TOOL',
      "curl not found on PATH; fix: apt-get install curl (to fetch NetBSD's sources), or set TWLAB_NETBSD_SRC to a folder holding them",
    );
  const out: Record<'buildrump' | 'src', string> = { buildrump: '', src: '' };
  for (const [key, pin] of [
    ['buildrump', NETBSD_PIN.buildrump],
    ['src', NETBSD_PIN.src],
  ] as const) {
    const url = `https://codeload.github.com/${pin.repo}/tar.gz/${pin.rev}`;
    log(`fetching ${url}`);
    const file = path.join(work, `${key}.tar.gz`);
    const r = spawnSync('curl', ['-fsSL', '--retry', '2', '-o', file, url], { encoding: 'utf8' });
    if (r.status !== 0)
      throw new TwlabError(
        'KERNEL_FETCH',
        `cannot fetch ${url}: ${(r.stderr || `curl exit ${r.status}`).trim().split('\n').pop()}; set TWLAB_NETBSD_SRC to a folder holding ${NETBSD_PIN.buildrump.archive} and ${NETBSD_PIN.src.archive} instead`,
      );
    const dest = path.join(work, key === 'buildrump' ? 'buildrump.sh' : 'src-netbsd');
    fs.mkdirSync(dest);
    const x = spawnSync('tar', ['-xzf', file, '-C', dest, '--strip-components=1'], { encoding: 'utf8' });
    if (x.status !== 0)
      throw new TwlabError('KERNEL_FETCH', `${url} is not a readable archive: ${(x.stderr || '').trim().split('\n').pop()}`);
    fs.rmSync(file);
    out[key] = dest;
  }
  return {
    ...out,
    from: `github.com/${NETBSD_PIN.src.repo}@${NETBSD_PIN.src.rev.slice(0, 8)}, github.com/${NETBSD_PIN.buildrump.repo}@${NETBSD_PIN.buildrump.rev}`,
  };
}

/** Runs the build recipe, passing its `@step` lines to `log`; the last lines of its output name a failure. */
function runRecipe(args: string[], log: (s: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', [path.join(helperSources(), 'build-netbsd.sh'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const keep = (line: string): void => {
      tail.push(line);
      if (tail.length > 12) tail.shift();
    };
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('@step ')) log(line.slice(6).replace(/^(\S+) /, 'building $1: '));
      else keep(line);
    });
    readline.createInterface({ input: child.stderr! }).on('line', keep);
    child.on('error', (e) => reject(new TwlabError('KERNEL_FETCH', `cannot run the NetBSD build: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new TwlabError(
            'KERNEL_FETCH',
            `building NetBSD's stack failed (${signal ?? `exit ${code}`}): ${
              tail
                .filter((l) => /error|Error|failed|\*\*\*/.test(l))
                .slice(-2)
                .join(' | ') || tail.slice(-2).join(' | ')
            }`,
          ),
        );
    });
  });
}

/** Links our helper against a cached build (a second or two); returns its path. */
export function linkHelper(dir: string): string {
  const hash = helperHash(dir);
  const folder = path.join(dir, `helper-${hash}`);
  const binary = path.join(folder, NETBSD_HELPER);
  if (fs.existsSync(binary)) return binary;
  const tmp = fs.mkdtempSync(path.join(dir, `.helper-${process.pid}-`));
  try {
    const src = helperSources();
    const libs = ['rumpnet_virtif', 'rumpnet_config', 'rumpnet_netinet6', 'rumpnet_netinet', 'rumpnet_net', 'rumpnet', 'rump', 'rumpuser'];
    const r = spawnSync(
      'cc',
      [
        '-O2',
        '-Wall',
        '-I',
        path.join(dir, 'include'),
        '-o',
        path.join(tmp, NETBSD_HELPER),
        path.join(src, 'protocol.c'),
        path.join(src, 'netbsd.c'),
        '-static',
        '-L',
        path.join(dir, 'lib'),
        '-Wl,--whole-archive',
        ...libs.map((l) => `-l${l}`),
        '-Wl,--no-whole-archive',
        '-lpthread',
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) {
      const msg = (r.stderr || r.error?.message || '')
        .split('\n')
        .filter((l) => /error/.test(l))
        .slice(0, 2)
        .join(' | ');
      throw new TwlabError(
        'KERNEL_FETCH',
        `linking the NetBSD helper failed: ${msg || `cc exit ${r.status}`}; fix: apt-get install gcc libc6-dev`,
      );
    }
    fs.rmSync(folder, { recursive: true, force: true });
    fs.renameSync(tmp, folder);
    fs.chmodSync(folder, 0o755);
    // helpers linked from older sources go (a lab still running one keeps its open file)
    for (const f of fs.readdirSync(dir))
      if (/^helper-[0-9a-f]+$/.test(f) && f !== path.basename(folder)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
    return binary;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The NetBSD stack, built first if the cache has none: the rump kernel components (a few
 * minutes on 2 cores), then the helper. Nothing half-built ever lands in the cache: the build
 * runs in a scratch folder beside it and is renamed into place only when it booted a kernel.
 */
export async function ensureNetbsd(log: (s: string) => void = () => undefined): Promise<NetbsdStack> {
  let built = cachedNetbsd();
  if (!built) {
    buildChecks();
    const root = netbsdCacheRoot();
    fs.mkdirSync(root, { recursive: true });
    const unlock = await buildLock(root, log);
    try {
      built = cachedNetbsd() ?? (await build(root, log));
    } finally {
      unlock();
    }
  }
  const helper = linkHelper(built.dir);
  return { ...built, helper, label: netbsdLabel(built) };
}

/** One build at a time (two twlab runs, or CI's early build and a test): the second waits for the first. */
async function buildLock(root: string, log: (s: string) => void): Promise<() => void> {
  const lock = path.join(root, '.lock');
  let said = false;
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = Number(fs.readFileSync(lock, 'utf8').trim() || '0');
    if (!owner || !pidAlive(owner)) {
      fs.rmSync(lock, { force: true }); // left by a build that was killed
      continue;
    }
    if (!said) log(`waiting for another twlab (pid ${owner}) building NetBSD's stack`);
    said = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function build(root: string, log: (s: string) => void): Promise<NetbsdBuild & { dir: string; bytes: number }> {
  {
    for (const name of fs.readdirSync(root)) {
      const m = /^\.build-(\d+)-/.exec(name);
      if (m && !pidAlive(Number(m[1]))) fs.rmSync(path.join(root, name), { recursive: true, force: true });
    }
    const scratch = fs.mkdtempSync(path.join(root, `.build-${process.pid}-`));
    const t0 = performance.now();
    try {
      const src = sources(scratch, log);
      const ready = path.join(scratch, 'ready');
      const jobs = Math.max(1, os.cpus().length);
      log(
        `building NetBSD's TCP/IP stack (rump kernel, ${NETBSD_PIN.src.repo} ${NETBSD_PIN.src.rev.slice(0, 7)}) with ${jobs} jobs: a few minutes, once`,
      );
      await runRecipe([src.buildrump, src.src, path.join(scratch, 'work'), ready, String(jobs)], log);
      // boot it once: the release comes from the kernel itself
      const helper = linkHelper(ready);
      const h = StackHelper.start(helper);
      const info: NetbsdBuild = {
        release: h.ready.release ?? 'unknown',
        version: h.ready.version ?? '',
        srcRev: NETBSD_PIN.src.rev,
        buildrumpRev: NETBSD_PIN.buildrump.rev,
        source: src.from,
        builtAt: new Date().toISOString(),
        buildMs: Math.round(performance.now() - t0),
        jobs,
      };
      h.close();
      fs.writeFileSync(path.join(ready, 'netbsd.json'), JSON.stringify(info, null, 2) + '\n');
      const final = path.join(root, entryName);
      fs.rmSync(final, { recursive: true, force: true });
      fs.renameSync(ready, final);
      log(`NetBSD ${info.release} built in ${(info.buildMs / 60000).toFixed(1)} min`);
      return cachedNetbsd()!;
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  }
}
