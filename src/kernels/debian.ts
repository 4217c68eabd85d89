// Debian's packaged kernels: which ones apt can fetch, and the cache of the ones fetched.
//
// A kernel is fetched with `apt-get download` (never installed: the host's /boot and
// /lib/modules stay untouched), unpacked with `dpkg-deb -x` into a scratch folder, and reduced
// to what a guest boots from: the uncompressed vmlinux, the few modules it loads (unpacked, in
// load order) and kernel.json. The scratch folder and the .deb are then removed; the cache
// keeps ~60–70 MB per kernel. Only the generic `-amd64-unsigned` flavour is used: the cloud
// flavour has no 9p (CONFIG_NET_9P unset), and the signed package holds the same kernel.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pidAlive } from '../host/pid';
import { TwlabError } from '../lab/api/errors';
import { decompress, GUEST_MODULES, loadOrder, moduleKey, moduleName, readModinfo, vmlinuxFromBzImage } from './image';

/** A kernel as apt offers it. */
export interface DebianKernel {
  /** `uname -r` of the kernel, e.g. "6.1.0-57-amd64" */
  release: string;
  /** "6.1", "6.12" */
  series: string;
  package: string;
  /** the package version, e.g. "6.1.192-3" */
  version?: string;
}

/** A kernel ready to boot: what kernel.json in its cache folder says, and where it is. */
export interface CachedKernel extends DebianKernel {
  dir: string;
  vmlinux: string;
  /** module file names under modules/, in load order */
  modules: string[];
  fetchedAt: string;
  /** how long fetching and preparing it took, in ms */
  fetchMs: number;
  /** size of the .deb, bytes */
  debBytes: number;
}

const PACKAGE = /^linux-image-(\d+\.\d+[.0-9]*(?:-\d+)?(?:\+deb\d+(?:u\d+)?)?-amd64)-unsigned$/;

export function cacheDir(): string {
  if (process.env.TWLAB_KERNEL_CACHE) return path.resolve(process.env.TWLAB_KERNEL_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'twlab', 'kernels');
}

/** "6.12.117+deb12-amd64" → "6.12" */
export function seriesOf(release: string): string {
  return /^(\d+\.\d+)/.exec(release)?.[1] ?? release;
}

/** Orders kernel releases by every number in them: 6.1.0-9 < 6.1.0-57 < 6.12.117+deb12. */
export function compareReleases(a: string, b: string): number {
  const na = a.match(/\d+/g)?.map(Number) ?? [];
  const nb = b.match(/\d+/g)?.map(Number) ?? [];
  for (let i = 0; i < Math.max(na.length, nb.length); i++) {
    const d = (na[i] ?? -1) - (nb[i] ?? -1);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** The generic amd64 kernels apt knows about (from its package lists; asks no server). */
export function availableKernels(): DebianKernel[] {
  const r = spawnSync('apt-cache', ['pkgnames', 'linux-image-'], { encoding: 'utf8' });
  if (r.error) return [];
  const out: DebianKernel[] = [];
  for (const name of r.stdout.split('\n')) {
    const m = PACKAGE.exec(name.trim());
    if (m) out.push({ release: m[1]!, series: seriesOf(m[1]!), package: name.trim() });
  }
  return out.sort((a, b) => compareReleases(a.release, b.release));
}

export function cachedKernels(): CachedKernel[] {
  const dir = cacheDir();
  if (!fs.existsSync(dir)) return [];
  const out: CachedKernel[] = [];
  for (const name of fs.readdirSync(dir)) {
    try {
      const k = JSON.parse(fs.readFileSync(path.join(dir, name, 'kernel.json'), 'utf8')) as Omit<CachedKernel, 'dir' | 'vmlinux'>;
      out.push({ ...k, dir: path.join(dir, name), vmlinux: path.join(dir, name, 'vmlinux') });
    } catch {
      // a half-made folder (a fetch that was killed): not a kernel
    }
  }
  return out.sort((a, b) => compareReleases(a.release, b.release));
}

/** A kernel named on the command line: `host`, a series (`6.1`), or an exact release (`6.1.0-57`, `6.12.117`, `6.1.0-57-amd64`). */
export type KernelSpec =
  | { kind: 'host' }
  | { kind: 'series'; series: string }
  | { kind: 'exact'; release: string }
  | { kind: 'netbsd' }
  | { kind: 'freebsd' };

/** `all`: Debian's two series, the host, NetBSD's stack (src/kernels/netbsd.ts) and FreeBSD's (freebsd.ts) */
export const ALL_KERNELS = ['6.1', '6.12', 'host', 'netbsd', 'freebsd'] as const;

const SPEC_WORD = /^\d+\.\d+(?:\.\d+(?:-\d+)?(?:\+deb\d+(?:u\d+)?)?(?:-amd64)?)?$/;

/** Parses `--kernel 6.1,6.12,host` (or `all`); one-line error for a word that names no kernel. */
export function parseKernelList(text: string): KernelSpec[] {
  const words = text
    .split(',')
    .map((w) => w.trim())
    .filter(Boolean);
  if (!words.length) throw new TwlabError('UNKNOWN_KERNEL', '--kernel takes a list such as 6.1,6.12,host, or all');
  const specs: KernelSpec[] = [];
  const key = (s: KernelSpec): string => (s.kind === 'series' ? s.series : s.kind === 'exact' ? s.release : s.kind);
  for (const w of words.flatMap((x) => (x === 'all' ? [...ALL_KERNELS] : [x]))) {
    let spec: KernelSpec;
    if (w === 'host') spec = { kind: 'host' };
    else if (w === 'netbsd') spec = { kind: 'netbsd' };
    else if (w === 'freebsd') spec = { kind: 'freebsd' };
    else if (!SPEC_WORD.test(w)) {
      throw new TwlabError(
        'UNKNOWN_KERNEL',
        `unknown kernel "${w}"; name host, a Debian series (6.1, 6.12), an exact release (6.1.0-57, 6.12.117), netbsd or freebsd (those OSes' TCP/IP stacks), or all — \`twlab kernels\` lists them`,
      );
    } else if (/^\d+\.\d+$/.test(w)) spec = { kind: 'series', series: w };
    else spec = { kind: 'exact', release: w };
    if (!specs.some((s) => key(s) === key(spec))) specs.push(spec);
  }
  return specs;
}

/** The newest kernel of a series, or the exact one named; cached ones count even when apt no longer lists them. */
export function resolveKernel(
  spec: Extract<KernelSpec, { kind: 'series' | 'exact' }>,
  available: DebianKernel[],
  cached: CachedKernel[],
): DebianKernel {
  const matches = (k: DebianKernel): boolean =>
    spec.kind === 'series'
      ? k.series === spec.series
      : k.release === spec.release || k.release.startsWith(spec.release + '-') || k.release.startsWith(spec.release + '+');
  const fromApt = available.filter(matches);
  const fromCache = cached.filter(matches);
  const all = [...fromApt, ...fromCache].sort((a, b) => compareReleases(a.release, b.release));
  const pick = all[all.length - 1];
  if (!pick) {
    const name = spec.kind === 'series' ? spec.series : spec.release;
    const series = [...new Set(available.map((k) => k.series))];
    throw new TwlabError(
      'UNKNOWN_KERNEL',
      available.length
        ? `unknown kernel "${name}": apt offers no linux-image-${name}…-amd64-unsigned (series it has: ${series.join(', ')}); \`twlab kernels\` lists them`
        : `unknown kernel "${name}": apt knows no linux-image-*-amd64-unsigned packages at all; fix: run \`apt-get update\` (the kernels come from Debian's archive)`,
    );
  }
  return fromCache.find((k) => k.release === pick.release) ?? pick;
}

function run(cmd: string, args: string[], cwd: string, what: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.error) throw new TwlabError('MISSING_TOOL', `cannot run ${cmd} to ${what}: ${r.error.message}`);
  if (r.status !== 0)
    throw new TwlabError('KERNEL_FETCH', `${what} failed: ${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** Returns the kernel from the cache, fetching and preparing it first when it is not there. */
export function ensureKernel(k: DebianKernel, log: (s: string) => void = () => undefined): CachedKernel {
  const existing = cachedKernels().find((c) => c.release === k.release);
  if (existing) return existing;
  const root = cacheDir();
  fs.mkdirSync(root, { recursive: true });
  // scratch folders of fetches that were killed (their pid is gone) are removed
  for (const name of fs.readdirSync(root)) {
    const m = /^\.fetch-.*-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
    if (m && !pidAlive(Number(m[1]))) fs.rmSync(path.join(root, name), { recursive: true, force: true });
  }
  const scratch = fs.mkdtempSync(path.join(root, `.fetch-${k.release}-${process.pid}-`));
  const t0 = performance.now();
  try {
    log(`fetching ${k.package} with apt-get download`);
    // as root apt drops to its _apt user, which cannot write here: fetch as the caller instead
    run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', k.package], scratch, `apt-get download ${k.package}`);
    const deb = fs.readdirSync(scratch).find((f) => f.endsWith('.deb'));
    if (!deb) throw new TwlabError('KERNEL_FETCH', `apt-get download ${k.package} left no .deb in ${scratch}`);
    const version = decodeURIComponent(deb.split('_')[1] ?? '');
    const debBytes = fs.statSync(path.join(scratch, deb)).size;
    log(`unpacking ${deb} (${(debBytes / 1e6).toFixed(0)} MB) with dpkg-deb -x`);
    const tree = path.join(scratch, 'tree');
    run('dpkg-deb', ['-x', deb, tree], scratch, `dpkg-deb -x ${deb}`);
    const ready = path.join(scratch, 'ready');
    fs.mkdirSync(path.join(ready, 'modules'), { recursive: true });
    const bz = path.join(tree, 'boot', `vmlinuz-${k.release}`);
    if (!fs.existsSync(bz)) throw new TwlabError('KERNEL_FETCH', `${deb} has no boot/vmlinuz-${k.release}`);
    fs.writeFileSync(path.join(ready, 'vmlinux'), vmlinuxFromBzImage(fs.readFileSync(bz), `vmlinuz-${k.release}`));
    // the modules: found by name, dependencies read from each one's .modinfo
    const modRoot = path.join(tree, 'lib', 'modules', k.release);
    const files = new Map<string, string>();
    for (const f of walk(path.join(modRoot, 'kernel'))) if (/\.ko(\.(xz|zst|gz))?$/.test(f)) files.set(moduleName(f), f);
    const builtinFile = path.join(modRoot, 'modules.builtin');
    const builtin = new Set(
      fs.existsSync(builtinFile) ? fs.readFileSync(builtinFile, 'utf8').split('\n').filter(Boolean).map(moduleName) : [],
    );
    const unpacked = new Map<string, Buffer>();
    const data = (name: string): Buffer => {
      let b = unpacked.get(name);
      if (!b) unpacked.set(name, (b = decompress(fs.readFileSync(files.get(name)!), path.basename(files.get(name)!))));
      return b;
    };
    const order = loadOrder(GUEST_MODULES, {
      files,
      builtin,
      depends: (name) => (readModinfo(data(name)).get('depends')?.[0] ?? '').split(',').filter(Boolean).map(moduleKey),
    });
    for (const name of order) {
      const magic = readModinfo(data(name)).get('vermagic')?.[0] ?? '';
      if (!magic.startsWith(k.release + ' ')) throw new TwlabError('KERNEL_FETCH', `module ${name} is for "${magic}", not ${k.release}`);
      fs.writeFileSync(path.join(ready, 'modules', `${name}.ko`), data(name));
    }
    const meta: Omit<CachedKernel, 'dir' | 'vmlinux'> = {
      release: k.release,
      series: k.series,
      package: k.package,
      version,
      modules: order.map((n) => `${n}.ko`),
      fetchedAt: new Date().toISOString(),
      fetchMs: Math.round(performance.now() - t0),
      debBytes,
    };
    fs.writeFileSync(path.join(ready, 'kernel.json'), JSON.stringify(meta, null, 2) + '\n');
    const final = path.join(root, k.release);
    fs.rmSync(final, { recursive: true, force: true });
    fs.renameSync(ready, final);
    log(`${k.release} ready in ${(meta.fetchMs / 1000).toFixed(1)} s (modules: ${order.join(', ')})`);
    return { ...meta, dir: final, vmlinux: path.join(final, 'vmlinux') };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
