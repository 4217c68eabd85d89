// FreeBSD's TCP/IP stack as a system under test: F-Stack (FreeBSD 13.0's network code built as a
// library over DPDK), built on first use and cached, and our helper (native/stack-helper/fstack.c)
// linked against it.
//
// The project holds no F-Stack or DPDK source and no binary of theirs: only this recipe, the
// two small patches it applies (native/fstack-patches/) and our own helper. The source comes
// from $TWLAB_FREEBSD_SRC (an unpacked tree or a .tar.xz/.tar.gz archive of it; CI uses
// ../shared/freebsd/f-stack-5cb586b.tar.xz) or, without it, from F-Stack's public repository at
// the pinned commit (GitHub's archive of it, ~85 MB). The build: DPDK 23.11 (bundled with F-Stack)
// with only what F-Stack needs (its libraries, the PCI and virtual buses, the ring mempool, the
// null, ring, tap and bonding drivers), static; then F-Stack's lib/ with FF_LOOPBACK_SUPPORT (two
// FreeBSD sockets talk over 127.0.0.1 with no device) and without KNI. The cache keeps DPDK's
// static libraries and headers, libfstack.a with its API headers and F-Stack's FreeBSD compat
// headers (tools/compat, to read FreeBSD's structures), the licences, and stack.json (~25 MB).
//
// Everything is built in a scratch folder beside the cache entry and renamed into place only when
// complete: a source that is missing, is not F-Stack at the pinned commit, or fails to build
// leaves nothing behind but a one-line error.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StackHelper } from '../host/backend/stack-helper';
import { pidAlive } from '../host/pid';
import { which, type Check } from '../lab/run/preflight';
import { TwlabError } from '../lab/api/errors';

export const FSTACK = {
  commit: '5cb586b56f407005c3e3dd09017746e0e68799dd',
  version: '1.25',
  repository: 'https://github.com/F-Stack/f-stack',
  /** GitHub's archive of the pinned commit; ~85 MB (.tar.gz), 351 MB and 26,394 files unpacked */
  archiveUrl: 'https://github.com/F-Stack/f-stack/archive/5cb586b56f407005c3e3dd09017746e0e68799dd.tar.gz',
} as const;

/** What stack.json in a cache entry says. */
export interface FreebsdStack {
  dir: string;
  commit: string;
  fstackVersion: string;
  /** __FreeBSD_version of F-Stack's FreeBSD tree, e.g. 1300139 */
  freebsdVersion: number;
  /** "13.0" */
  freebsdRelease: string;
  /** "FreeBSD 13.0 network stack (F-Stack 1.25)": how results name this stack */
  label: string;
  dpdkVersion: string;
  /** where the source came from: a folder, an archive or the URL */
  source: string;
  builtAt: string;
  /** ms spent on each part of the build */
  buildMs: { source: number; dpdk: number; fstack: number; total: number };
  /** bytes the entry holds */
  bytes: number;
}

export function freebsdCacheDir(): string {
  if (process.env.TWLAB_FREEBSD_CACHE) return path.resolve(process.env.TWLAB_FREEBSD_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'twlab', 'freebsd');
}

/** The twlab folder, where native/ lives: three levels above dist/src/kernels, two above src/kernels (tests). */
function packageRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir))
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
  return path.resolve(__dirname, '..', '..', '..');
}

export function releaseOf(freebsdVersion: number): string {
  return `${Math.floor(freebsdVersion / 100000)}.${Math.floor(freebsdVersion / 1000) % 100}`;
}

export function stackLabel(s: Pick<FreebsdStack, 'freebsdRelease' | 'fstackVersion'>): string {
  return `FreeBSD ${s.freebsdRelease} network stack (F-Stack ${s.fstackVersion})`;
}

/** The built stack, if the cache has it. */
export function cachedStack(): FreebsdStack | undefined {
  const dir = path.join(freebsdCacheDir(), FSTACK.commit);
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'stack.json'), 'utf8')) as Omit<FreebsdStack, 'dir'>;
    if (!fs.existsSync(path.join(dir, 'fstack', 'lib', 'libfstack.a'))) return undefined;
    return { ...meta, dir };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------- tools

/** What building the stack needs on this machine: [what, found?, Debian package]. */
export function buildTools(): Array<{ what: string; ok: boolean; pkg: string }> {
  const has = (tool: string): boolean => !!which(tool);
  // DPDK's build scripts need elftools in python3 on PATH or, failing that, in meson's own python
  const meson = which('meson');
  const mesonPython = meson ? /^#!\s*(\S+)/.exec(fs.readFileSync(meson, 'latin1').slice(0, 200))?.[1] : undefined;
  const elftools = [...new Set(['python3', mesonPython ?? 'python3'])].some(
    (py) => spawnSync(py, ['-c', 'import elftools'], { stdio: 'ignore' }).status === 0,
  );
  return [
    { what: 'cc', ok: has('cc'), pkg: 'gcc' },
    { what: 'make', ok: has('make'), pkg: 'make' },
    { what: 'meson', ok: has('meson'), pkg: 'meson' },
    { what: 'ninja', ok: has('ninja'), pkg: 'ninja-build' },
    { what: 'pkg-config', ok: has('pkg-config'), pkg: 'pkg-config' },
    { what: 'python3 with elftools', ok: elftools, pkg: 'python3-pyelftools' },
    { what: 'numa.h', ok: fs.existsSync('/usr/include/numa.h'), pkg: 'libnuma-dev' },
    { what: 'libcrypto', ok: fs.existsSync('/usr/include/openssl/rand.h'), pkg: 'libssl-dev' },
    { what: 'patch', ok: has('patch'), pkg: 'patch' },
    { what: 'tar', ok: has('tar'), pkg: 'tar' },
    { what: 'xz', ok: has('xz'), pkg: 'xz-utils' },
  ];
}

function requireTools(): void {
  const missing = buildTools().filter((t) => !t.ok);
  if (missing.length) {
    throw new TwlabError(
      'MISSING_TOOL',
      `building FreeBSD's stack (F-Stack) needs ${missing.map((t) => t.what).join(', ')}; fix: apt-get install ${[...new Set(missing.map((t) => t.pkg))].join(' ')}`,
    );
  }
}

// ---------------------------------------------------------------------------- running commands

interface Step {
  log: (line: string) => void;
  /** where the full output of every command goes (in the scratch folder) */
  logFile: string;
  /** where that log is kept when the build fails (the error names it) */
  keptLog: string;
}

/** Runs a command, its output appended to the build log; a failure is one line naming the log. */
function run(step: Step, what: string, cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.appendFileSync(step.logFile, `\n$ ${cmd} ${args.join(' ')}   (in ${opts.cwd})\n`);
    const out = fs.openSync(step.logFile, 'a');
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    child.on('error', (e) => reject(new TwlabError('STACK_BUILD', `${what}: cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const tail =
        fs
          .readFileSync(step.logFile, 'utf8')
          .trim()
          .split('\n')
          .filter((l) => l.trim())
          .slice(-1)[0] ?? '';
      reject(
        new TwlabError(
          'STACK_BUILD',
          `${what} failed (${signal ?? `exit ${code}`}): ${tail.trim().slice(0, 200)} — full log: ${step.keptLog}`,
        ),
      );
    });
  });
}

// ---------------------------------------------------------------------------- the source

/** The commit a git archive was made from: its pax global header's "comment=<sha>". */
function archiveCommit(file: string): string | undefined {
  const decompress = /\.(tar\.)?xz$|\.txz$/.test(file) ? 'xz -dc' : /\.(tar\.)?gz$|\.tgz$/.test(file) ? 'gzip -dc' : 'cat';
  const r = spawnSync('sh', ['-c', `${decompress} < "$1" | head -c 4096`, 'sh', file], { maxBuffer: 1 << 16 });
  return /comment=([0-9a-f]{40})/.exec(r.stdout?.toString('latin1') ?? '')?.[1];
}

/** Parts of FreeBSD's tree F-Stack's lib/ never compiles (device drivers, ZFS, device trees: 178 of its 351 MB) */
const UNUSED = ['freebsd/contrib/dev', 'freebsd/contrib/device-tree', 'freebsd/contrib/openzfs', 'freebsd/contrib/octeon-sdk'];

const LOOKS_LIKE_FSTACK = [
  'VERSION',
  'lib/ff_api.h',
  'lib/ff_config.c',
  'dpdk/meson.build',
  'freebsd/netinet/tcp_timewait.c',
  'tools/compat/compat.h',
];

async function download(step: Step, into: string): Promise<string> {
  const file = path.join(into, `f-stack-${FSTACK.commit.slice(0, 7)}.tar.gz`);
  step.log(`downloading F-Stack ${FSTACK.version} (commit ${FSTACK.commit.slice(0, 7)}) from ${FSTACK.archiveUrl} (~85 MB)`);
  let res: Response;
  try {
    res = await fetch(FSTACK.archiveUrl);
  } catch (e) {
    throw new TwlabError(
      'STACK_BUILD',
      `cannot download F-Stack from ${FSTACK.archiveUrl}: ${(e as Error).message}; fix: set TWLAB_FREEBSD_SRC to a copy of F-Stack at commit ${FSTACK.commit} (a folder or a .tar.xz/.tar.gz)`,
    );
  }
  if (!res.ok || !res.body)
    throw new TwlabError(
      'STACK_BUILD',
      `downloading ${FSTACK.archiveUrl} failed: HTTP ${res.status}; fix: set TWLAB_FREEBSD_SRC to a copy of F-Stack at commit ${FSTACK.commit}`,
    );
  const out = fs.createWriteStream(file);
  let got = 0;
  let shown = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    got += chunk.length;
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
    if (got - shown > 10e6) {
      shown = got;
      step.log(`downloaded ${(got / 1e6).toFixed(0)} MB`);
    }
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return file;
}

/** Puts F-Stack's source in `src` (a fresh folder), from wherever it comes; returns where that was. */
async function fetchSource(step: Step, scratch: string, src: string): Promise<string> {
  const named = process.env.TWLAB_FREEBSD_SRC;
  let archive: string;
  let source: string;
  if (named) {
    const p = path.resolve(named);
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      throw new TwlabError(
        'STACK_BUILD',
        `TWLAB_FREEBSD_SRC=${named}: no such file or folder; fix: point it at F-Stack's source (a folder or a .tar.xz/.tar.gz of commit ${FSTACK.commit.slice(0, 7)}), or unset it to download from ${FSTACK.repository}`,
      );
    }
    if (st.isDirectory()) {
      const missing = LOOKS_LIKE_FSTACK.filter((f) => !fs.existsSync(path.join(p, f)));
      if (missing.length)
        throw new TwlabError('STACK_BUILD', `TWLAB_FREEBSD_SRC=${named} is not F-Stack's source (no ${missing.join(', ')})`);
      const git = spawnSync('git', ['-C', p, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
      if (git.status === 0 && git.stdout.trim() !== FSTACK.commit) {
        throw new TwlabError(
          'STACK_BUILD',
          `TWLAB_FREEBSD_SRC=${named} is F-Stack at commit ${git.stdout.trim().slice(0, 12)}; twlab is pinned to ${FSTACK.commit.slice(0, 12)} (git checkout ${FSTACK.commit})`,
        );
      }
      step.log(`copying F-Stack's source from ${p}`);
      fs.cpSync(p, src, { recursive: true, filter: (f) => path.basename(f) !== '.git' && !UNUSED.some((u) => f === path.join(p, u)) });
      return p;
    }
    archive = p;
    source = p;
  } else {
    archive = await download(step, scratch);
    source = FSTACK.archiveUrl;
  }
  const commit = archiveCommit(archive);
  if (commit && commit !== FSTACK.commit) {
    throw new TwlabError(
      'STACK_BUILD',
      `${archive} is F-Stack at commit ${commit.slice(0, 12)}; twlab is pinned to ${FSTACK.commit.slice(0, 12)}`,
    );
  }
  step.log(`unpacking ${path.basename(archive)}`);
  fs.mkdirSync(src);
  await run(
    step,
    `unpacking ${archive}`,
    'tar',
    ['-xf', archive, '-C', src, '--strip-components=1', ...UNUSED.map((d) => `--exclude=${d}`)],
    { cwd: scratch },
  );
  const missing = LOOKS_LIKE_FSTACK.filter((f) => !fs.existsSync(path.join(src, f)));
  if (missing.length) throw new TwlabError('STACK_BUILD', `${archive} is not F-Stack's source (no ${missing.join(', ')})`);
  return source;
}

// ---------------------------------------------------------------------------- the build

/** DPDK, as little as F-Stack needs: its libraries pull in their own dependencies. */
const DPDK_MESON_OPTIONS = [
  '-Ddefault_library=static',
  // the build machine's CPU is not the baseline: corei7 (SSE4.2) is what DPDK's x86 code requires
  '-Dplatform=generic',
  '-Dtests=false',
  '-Ddisable_apps=*',
  '-Dexamples=',
  '-Denable_kmods=false',
  '-Denable_docs=false',
  // net/bonding needs sched and ip_frag, net/tap needs gso
  '-Denable_libs=gso,sched,ip_frag',
  // F-Stack's headers name the bonding driver; twlab runs on null (no device) and tap
  '-Denable_drivers=bus/pci,bus/vdev,mempool/ring,net/tap,net/ring,net/null,net/bonding',
];

function sizeOf(p: string): number {
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((n, e) => n + sizeOf(path.join(p, e)), 0);
}

async function build(step: Step, scratch: string): Promise<Omit<FreebsdStack, 'dir'>> {
  const t0 = performance.now();
  const src = path.join(scratch, 'src');
  const source = await fetchSource(step, scratch, src);
  const version = fs.readFileSync(path.join(src, 'VERSION'), 'utf8').trim();
  if (version !== FSTACK.version)
    throw new TwlabError(
      'STACK_BUILD',
      `${source} is F-Stack ${version}; twlab is pinned to F-Stack ${FSTACK.version} (commit ${FSTACK.commit.slice(0, 12)})`,
    );
  const param = fs.readFileSync(path.join(src, 'freebsd', 'sys', 'param.h'), 'utf8');
  const freebsdVersion = Number(/#define\s+__FreeBSD_version\s+(\d+)/.exec(param)?.[1]);
  if (!freebsdVersion) throw new TwlabError('STACK_BUILD', `${source}: freebsd/sys/param.h names no __FreeBSD_version`);
  const dpdkVersion = fs.readFileSync(path.join(src, 'dpdk', 'VERSION'), 'utf8').trim();
  for (const patch of fs
    .readdirSync(path.join(packageRoot(), 'native', 'fstack-patches'))
    .filter((f) => f.endsWith('.patch'))
    .sort()) {
    await run(
      step,
      `applying ${patch}`,
      'patch',
      ['-p1', '--forward', '--batch', '-i', path.join(packageRoot(), 'native', 'fstack-patches', patch)],
      { cwd: src },
    );
  }
  const tSource = performance.now();

  const ready = path.join(scratch, 'ready');
  const dpdk = path.join(ready, 'dpdk');
  const jobs = String(Math.max(1, os.availableParallelism()));
  step.log(`building DPDK ${dpdkVersion} (a minimal static build; ~1–2 min)`);
  await run(
    step,
    'configuring DPDK (meson)',
    'meson',
    ['setup', path.join(scratch, 'dpdk-build'), `--prefix=${dpdk}`, '--libdir=lib', ...DPDK_MESON_OPTIONS],
    { cwd: path.join(src, 'dpdk') },
  );
  await run(step, 'building DPDK (ninja)', 'ninja', ['-C', path.join(scratch, 'dpdk-build'), '-j', jobs, 'install'], { cwd: src });
  // DPDK installs shared libraries beside the static ones; the helper links the static ones
  for (const f of fs.readdirSync(path.join(dpdk, 'lib'))) if (/\.so(\.|$)/.test(f)) fs.rmSync(path.join(dpdk, 'lib', f));
  fs.rmSync(path.join(dpdk, 'lib', 'dpdk'), { recursive: true, force: true });
  fs.rmSync(path.join(dpdk, 'bin'), { recursive: true, force: true });
  fs.rmSync(path.join(dpdk, 'share'), { recursive: true, force: true });
  const tDpdk = performance.now();

  step.log(`building F-Stack ${version}'s libfstack.a (FreeBSD ${releaseOf(freebsdVersion)}'s network code; ~1–3 min)`);
  const env = { ...process.env, PKG_CONFIG_PATH: path.join(dpdk, 'lib', 'pkgconfig') };
  await run(step, "building F-Stack's lib (make)", 'make', ['-C', path.join(src, 'lib'), '-j', jobs, 'FF_LOOPBACK_SUPPORT=1', 'FF_KNI='], {
    cwd: src,
    env,
  });
  const fstack = path.join(ready, 'fstack');
  fs.mkdirSync(path.join(fstack, 'lib'), { recursive: true });
  fs.mkdirSync(path.join(fstack, 'include'), { recursive: true });
  fs.copyFileSync(path.join(src, 'lib', 'libfstack.a'), path.join(fstack, 'lib', 'libfstack.a'));
  for (const h of ['ff_api.h', 'ff_event.h', 'ff_errno.h']) fs.copyFileSync(path.join(src, 'lib', h), path.join(fstack, 'include', h));
  fs.mkdirSync(path.join(fstack, 'compat'));
  fs.copyFileSync(path.join(src, 'tools', 'compat', 'compat.h'), path.join(fstack, 'compat', 'compat.h'));
  fs.cpSync(path.join(src, 'tools', 'compat', 'include'), path.join(fstack, 'compat', 'include'), { recursive: true });
  const licences = path.join(ready, 'licenses');
  fs.mkdirSync(licences);
  fs.copyFileSync(path.join(src, 'LICENSE'), path.join(licences, 'F-Stack-LICENSE'));
  if (fs.existsSync(path.join(src, 'freebsd', 'COPYRIGHT')))
    fs.copyFileSync(path.join(src, 'freebsd', 'COPYRIGHT'), path.join(licences, 'FreeBSD-COPYRIGHT'));
  fs.cpSync(path.join(src, 'dpdk', 'license'), path.join(licences, 'dpdk'), { recursive: true });
  const tFstack = performance.now();

  const meta: Omit<FreebsdStack, 'dir'> = {
    commit: FSTACK.commit,
    fstackVersion: version,
    freebsdVersion,
    freebsdRelease: releaseOf(freebsdVersion),
    label: stackLabel({ freebsdRelease: releaseOf(freebsdVersion), fstackVersion: version }),
    dpdkVersion,
    source,
    builtAt: new Date().toISOString(),
    buildMs: {
      source: Math.round(tSource - t0),
      dpdk: Math.round(tDpdk - tSource),
      fstack: Math.round(tFstack - tDpdk),
      total: Math.round(tFstack - t0),
    },
    bytes: 0,
  };
  meta.bytes = sizeOf(ready);
  fs.writeFileSync(path.join(ready, 'stack.json'), JSON.stringify(meta, null, 2) + '\n');
  return meta;
}

// ---------------------------------------------------------------------------- the cache

/** Waits while another twlab process builds the same commit (its lock names its pid). */
async function lock(root: string, log: (s: string) => void): Promise<() => void> {
  const file = path.join(root, `.lock-${FSTACK.commit}`);
  let told = false;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = Number(fs.readFileSync(file, 'utf8').trim());
    if (!holder || !pidAlive(holder)) {
      fs.rmSync(file, { force: true }); // a build that was killed
      continue;
    }
    if (!told) log(`another twlab (pid ${holder}) is building FreeBSD's stack; waiting for it`);
    told = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Before anything is written: a stack that will have to be built can be (tools, a named source that exists). */
export function checkFreebsdSource(): void {
  if (cachedStack()) return;
  requireTools();
  const named = process.env.TWLAB_FREEBSD_SRC;
  if (named && !fs.existsSync(path.resolve(named))) {
    throw new TwlabError(
      'STACK_BUILD',
      `TWLAB_FREEBSD_SRC=${named}: no such file or folder; fix: point it at F-Stack's source (a folder or a .tar.xz/.tar.gz of commit ${FSTACK.commit.slice(0, 7)}), or unset it to download from ${FSTACK.repository}`,
    );
  }
}

/** The stack from the cache, built first when it is not there. */
export async function ensureStack(log: (s: string) => void = () => undefined): Promise<FreebsdStack> {
  const have = cachedStack();
  if (have) return have;
  const root = freebsdCacheDir();
  fs.mkdirSync(root, { recursive: true });
  const release = await lock(root, log);
  try {
    const done = cachedStack(); // built by the process we waited for
    if (done) return done;
    requireTools();
    // scratch folders of builds that were killed (their pid is gone) are removed
    for (const name of fs.readdirSync(root)) {
      const m = /^\.build-.*-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
      if (m && !pidAlive(Number(m[1]))) fs.rmSync(path.join(root, name), { recursive: true, force: true });
    }
    const scratch = fs.mkdtempSync(path.join(root, `.build-${FSTACK.commit.slice(0, 12)}-${process.pid}-`));
    const step: Step = {
      log,
      logFile: path.join(scratch, 'build.log'),
      keptLog: path.join(root, `build-${FSTACK.commit.slice(0, 12)}.log`),
    };
    fs.writeFileSync(step.logFile, `twlab: building F-Stack ${FSTACK.version} (${FSTACK.commit}) ${new Date().toISOString()}\n`);
    try {
      const meta = await build(step, scratch);
      // boot it once: a stack that does not start is not cached
      const ready = path.join(scratch, 'ready');
      const booted = bootOnce(await buildHelper({ ...meta, dir: ready }, step));
      if (booted.release !== meta.freebsdRelease)
        throw new TwlabError(
          'STACK_BUILD',
          `the stack built from ${meta.source} booted as FreeBSD ${booted.release}, not ${meta.freebsdRelease}`,
        );
      const final = path.join(root, FSTACK.commit);
      fs.rmSync(final, { recursive: true, force: true });
      fs.renameSync(ready, final);
      fs.rmSync(step.keptLog, { force: true });
      log(
        `${meta.label} built in ${(meta.buildMs.total / 1000).toFixed(0)} s (DPDK ${(meta.buildMs.dpdk / 1000).toFixed(0)} s, F-Stack ${(meta.buildMs.fstack / 1000).toFixed(0)} s); cached in ${final} (${(meta.bytes / 1e6).toFixed(0)} MB)`,
      );
      return { ...meta, dir: final };
    } catch (e) {
      if (e instanceof TwlabError && e.message.includes(step.keptLog)) fs.copyFileSync(step.logFile, step.keptLog);
      throw e;
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  } finally {
    release();
  }
}

// ---------------------------------------------------------------------------- the helper

const HELPER_SOURCES = ['protocol.c', 'shim.h', 'fstack.c', 'fstack-bsd.c', 'fstack-bsd.h'];

function helperDir(): string {
  return path.join(packageRoot(), 'native', 'stack-helper');
}

function helperId(): string {
  const hash = createHash('sha256');
  for (const f of HELPER_SOURCES) hash.update(f).update(fs.readFileSync(path.join(helperDir(), f)));
  return hash.digest('hex').slice(0, 12);
}

/** The helper linked against the cached stack, (re)built when its sources changed (~5 s). */
export async function ensureHelper(stack: FreebsdStack, log: (s: string) => void = () => undefined): Promise<string> {
  const bin = path.join(stack.dir, `helper-${helperId()}`, FREEBSD_HELPER);
  if (fs.existsSync(bin)) return bin;
  const scratch = fs.mkdtempSync(path.join(stack.dir, `.log-${process.pid}-`));
  const step: Step = { log, logFile: path.join(scratch, 'build.log'), keptLog: path.join(stack.dir, 'helper-build.log') };
  fs.writeFileSync(step.logFile, '');
  try {
    const built = await buildHelper(stack, step);
    fs.rmSync(step.keptLog, { force: true });
    return built;
  } catch (e) {
    if (e instanceof TwlabError && e.message.includes(step.keptLog)) fs.copyFileSync(step.logFile, step.keptLog);
    throw e;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

export const FREEBSD_HELPER = 'twlab-fstack-helper';

/** Compiles and links the helper into <stack>/helper-<hash of its sources>/, atomically. */
async function buildHelper(stack: FreebsdStack, step: Step): Promise<string> {
  const srcDir = helperDir();
  const dir = path.join(stack.dir, `helper-${helperId()}`);
  const bin = path.join(dir, FREEBSD_HELPER);
  const scratch = fs.mkdtempSync(path.join(stack.dir, `.helper-${process.pid}-`));
  try {
    step.log('building the FreeBSD helper (native/stack-helper/fstack.c)');
    const fst = path.join(stack.dir, 'fstack');
    const common = ['-O2', '-g', '-Wall', '-Wextra', '-I', srcDir];
    const defs = [
      `-DFSTACK_VERSION="${stack.fstackVersion}"`,
      `-DFSTACK_COMMIT="${stack.commit.slice(0, 12)}"`,
      `-DFREEBSD_VERSION=${stack.freebsdVersion}`,
    ];
    // fstack-bsd.c sees FreeBSD's structures through F-Stack's compat headers, as its tools do
    const bsd = [
      '-D__BSD_VISIBLE',
      '-DFSTACK',
      '-DINET',
      '-DINET6',
      '-include',
      path.join(fst, 'compat', 'compat.h'),
      '-I',
      path.join(fst, 'compat', 'include'),
      '-I',
      path.join(fst, 'compat'),
    ];
    const obj = (n: string): string => path.join(scratch, `${n}.o`);
    await run(step, 'compiling protocol.c', 'cc', [...common, '-c', '-o', obj('protocol'), path.join(srcDir, 'protocol.c')], {
      cwd: scratch,
    });
    await run(
      step,
      'compiling fstack.c',
      'cc',
      [...common, ...defs, '-I', path.join(fst, 'include'), '-c', '-o', obj('fstack'), path.join(srcDir, 'fstack.c')],
      { cwd: scratch },
    );
    await run(step, 'compiling fstack-bsd.c', 'cc', [...common, ...bsd, '-c', '-o', obj('fstack-bsd'), path.join(srcDir, 'fstack-bsd.c')], {
      cwd: scratch,
    });
    fs.mkdirSync(path.join(scratch, 'out'));
    await run(
      step,
      'linking the FreeBSD helper',
      'cc',
      [
        '-o',
        path.join(scratch, 'out', FREEBSD_HELPER),
        obj('protocol'),
        obj('fstack'),
        obj('fstack-bsd'),
        // every object of libfstack.a and of DPDK's libraries: their drivers and FreeBSD's
        // subsystems register themselves from constructors nothing else references
        '-Wl,--whole-archive',
        path.join(fst, 'lib', 'libfstack.a'),
        ...dpdkStaticLibs(path.join(stack.dir, 'dpdk', 'lib')),
        '-Wl,--no-whole-archive',
        '-lrt',
        '-lm',
        '-ldl',
        '-lcrypto',
        '-pthread',
        '-lnuma',
      ],
      { cwd: scratch },
    );
    // helpers built from older sources go; a running one keeps its (deleted) file
    for (const old of fs.readdirSync(stack.dir))
      if (/^helper-[0-9a-f]{12}$/.test(old)) fs.rmSync(path.join(stack.dir, old), { recursive: true, force: true });
    try {
      fs.renameSync(path.join(scratch, 'out'), dir);
    } catch (e) {
      if (!fs.existsSync(bin)) throw e; // another twlab built the same helper at the same time
    }
    return bin;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Starts the helper once and reads its ready line: what FreeBSD it says it is. */
function bootOnce(helper: string): { release: string; version: string } {
  let h: StackHelper;
  try {
    h = StackHelper.start(helper);
  } catch (e) {
    throw new TwlabError('STACK_BUILD', `the FreeBSD stack was built but does not start: ${(e as Error).message}`);
  }
  try {
    return { release: h.ready.release ?? '?', version: h.ready.version ?? '?' };
  } finally {
    h.close();
  }
}

/** DPDK's static libraries in link order, as its libdpdk.pc lists them. */
function dpdkStaticLibs(libdir: string): string[] {
  const pc = fs.readFileSync(path.join(libdir, 'pkgconfig', 'libdpdk.pc'), 'utf8');
  const names = [...pc.matchAll(/-l:(librte_[a-z0-9_]+\.a)/g)].map((m) => m[1]!);
  if (!names.length)
    throw new TwlabError(
      'STACK_BUILD',
      `${libdir}/pkgconfig/libdpdk.pc lists no static library: the cached DPDK is broken; delete ${path.dirname(libdir)} and run again`,
    );
  return names.map((n) => path.join(libdir, n));
}

// ---------------------------------------------------------------------------- doctor, kernels

export interface FreebsdListing {
  cacheDir: string;
  built: FreebsdStack | null;
  /** "F-Stack/f-stack@5cb586b (F-Stack 1.25)" */
  pinned: string;
  sourceEnv: string | null;
  /** Debian packages the first build still needs */
  missing: string[];
}

export function freebsdListing(): FreebsdListing {
  return {
    cacheDir: freebsdCacheDir(),
    built: cachedStack() ?? null,
    pinned: `F-Stack/f-stack@${FSTACK.commit.slice(0, 7)} (F-Stack ${FSTACK.version})`,
    sourceEnv: process.env.TWLAB_FREEBSD_SRC ?? null,
    missing: [
      ...new Set(
        buildTools()
          .filter((t) => !t.ok)
          .map((t) => t.pkg),
      ),
    ],
  };
}

/** FreeBSD's stack for --kernel freebsd: built (which, from where), or what the first run needs. */
export function freebsdCheck(l: FreebsdListing = freebsdListing()): Check {
  const name = 'FreeBSD stack (for --kernel freebsd)';
  if (l.built) {
    return {
      name,
      ok: true,
      detail: `${l.built.label} built in ${(l.built.buildMs.total / 60000).toFixed(1)} min from ${l.built.source}: ${l.built.dir} (${(l.built.bytes / 1e6).toFixed(0)} MB)`,
      warning: true,
    };
  }
  const from = l.sourceEnv
    ? `TWLAB_FREEBSD_SRC=${l.sourceEnv}`
    : `GitHub's archive of ${l.pinned} (~85 MB; set TWLAB_FREEBSD_SRC to a copy to build offline)`;
  return {
    name,
    ok: false,
    detail: `not built yet: the first --kernel freebsd run builds F-Stack and a minimal DPDK into ${l.cacheDir} from ${from} (~6 min of CPU: 3–4 min on 2 idle cores)${l.missing.length ? `; missing: ${l.missing.join(', ')}` : ''}`,
    fix: l.missing.length
      ? `apt-get install ${l.missing.join(' ')}`
      : 'nothing to do: it is built on first use (or now, with `twlab kernels --build freebsd`)',
    warning: true,
  };
}
