// What `--kernel` needs, for `twlab doctor` (warnings: the host's own labs run without any of
// it) and `twlab kernels` (what is cached, what apt can fetch).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { which, type Check } from '../lab/run/preflight';
import { availableKernels, cacheDir, cachedKernels, compareReleases, type CachedKernel, type DebianKernel } from './debian';
import { chooseAccel, guestInitPath, QEMU } from './guest';
import { freebsdCheck, freebsdListing, type FreebsdListing } from './freebsd';
import { cachedNetbsd, netbsdCacheRoot, netbsdLabel, NETBSD_PIN } from './netbsd';

function sizeOf(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? sizeOf(p) : fs.statSync(p).size;
  }
  return n;
}

export interface KernelListing {
  cacheDir: string;
  /** NetBSD's stack (--kernel netbsd): built or not, from where */
  netbsd: {
    cacheDir: string;
    built: { label: string; dir: string; bytes: number; source: string; builtAt: string; buildMs: number } | null;
    pinned: string;
    sourceEnv: string | null;
  };
  /** FreeBSD's stack (--kernel freebsd, F-Stack): built or not, from where */
  freebsd: FreebsdListing;
  cached: Array<CachedKernel & { bytes: number }>;
  /** per series, newest first */
  available: Record<string, DebianKernel[]>;
}

export function kernelListing(): KernelListing {
  const available: Record<string, DebianKernel[]> = {};
  for (const k of availableKernels().reverse()) (available[k.series] ??= []).push(k);
  const series = Object.keys(available).sort((a, b) => compareReleases(a, b));
  const nb = cachedNetbsd();
  return {
    netbsd: {
      cacheDir: netbsdCacheRoot(),
      built: nb
        ? { label: netbsdLabel(nb), dir: nb.dir, bytes: nb.bytes, source: nb.source, builtAt: nb.builtAt, buildMs: nb.buildMs }
        : null,
      pinned: `${NETBSD_PIN.src.repo}@${NETBSD_PIN.src.rev.slice(0, 8)} + ${NETBSD_PIN.buildrump.repo}@${NETBSD_PIN.buildrump.rev}`,
      sourceEnv: process.env.TWLAB_NETBSD_SRC ?? null,
    },
    freebsd: freebsdListing(),
    cacheDir: cacheDir(),
    cached: cachedKernels().map((k) => ({ ...k, bytes: sizeOf(k.dir) })),
    available: Object.fromEntries(series.map((s) => [s, available[s]!])),
  };
}

export function kernelChecks(): Check[] {
  const out: Check[] = [];
  const qemu = which(QEMU);
  out.push({
    name: `${QEMU} (for --kernel)`,
    ok: !!qemu,
    detail: qemu ?? 'not found on PATH',
    fix: 'apt-get install qemu-system-x86',
    warning: true,
  });
  const init = guestInitPath();
  out.push({
    name: 'guest init built (for --kernel)',
    ok: fs.existsSync(init),
    detail: fs.existsSync(init) ? init : `${init} missing`,
    fix: 'npm install (or npm run build) in the twlab folder',
    warning: true,
  });
  const listing = kernelListing();
  const series = Object.entries(listing.available).map(([s, ks]) => `${s} (newest ${ks[0]!.release})`);
  out.push({
    name: 'Debian kernels apt can fetch (for --kernel)',
    ok: series.length > 0,
    detail: series.length ? series.join(', ') : 'apt knows no linux-image-*-amd64-unsigned package',
    fix: "apt-get update (the kernels come from Debian's archive; twlab fetches them with apt-get download, never installs them)",
    warning: true,
  });
  out.push({
    name: 'kernel cache',
    ok: true,
    detail: listing.cached.length
      ? `${listing.cacheDir}: ${listing.cached.map((k) => `${k.release} (${(k.bytes / 1e6).toFixed(0)} MB)`).join(', ')}`
      : `${listing.cacheDir}: empty (the first --kernel run fetches each kernel, ~70–110 MB from Debian's archive)`,
    warning: true,
  });
  out.push(netbsdCheck(listing));
  out.push(freebsdCheck(listing.freebsd));
  const probeWith = listing.cached[listing.cached.length - 1];
  if (qemu && probeWith && fs.existsSync(init)) {
    const { accel, why } = chooseAccel(probeWith);
    out.push({
      name: 'KVM (for --kernel)',
      ok: accel === 'kvm',
      detail: why,
      fix: 'guests run under TCG: labs stay correct (timers run on the guest clock), busy steps are 10–30× slower',
      warning: true,
    });
  } else {
    const kvm = fs.existsSync('/dev/kvm');
    out.push({
      name: 'KVM (for --kernel)',
      ok: false,
      detail: kvm
        ? '/dev/kvm present; whether it runs a guest is probed once a kernel is cached'
        : '/dev/kvm missing: guests will run under TCG',
      fix: 'guests run under TCG: labs stay correct, busy steps are 10–30× slower',
      warning: true,
    });
  }
  return out;
}

/** NetBSD's stack for --kernel netbsd: built (which, from where) or what the first run will build from. */
export function netbsdCheck(listing: KernelListing = kernelListing()): Check {
  const nb = listing.netbsd;
  if (nb.built) {
    return {
      name: 'NetBSD stack (for --kernel netbsd)',
      ok: true,
      detail: `${nb.built.label} built in ${(nb.built.buildMs / 60000).toFixed(1)} min from ${nb.built.source}: ${nb.built.dir} (${(nb.built.bytes / 1e6).toFixed(0)} MB)`,
      warning: true,
    };
  }
  const tools = ['cc', 'make', 'xz', 'tar'].filter((t) => !which(t));
  const from = nb.sourceEnv
    ? `TWLAB_NETBSD_SRC=${nb.sourceEnv}`
    : `github.com (${nb.pinned}; set TWLAB_NETBSD_SRC to a folder with the two archives to build offline)`;
  return {
    name: 'NetBSD stack (for --kernel netbsd)',
    ok: false,
    detail: `not built yet: the first --kernel netbsd run builds it into ${nb.cacheDir} from ${from} (a few minutes on 2 cores)${tools.length ? `; missing: ${tools.join(', ')}` : ''}`,
    fix: tools.length
      ? 'apt-get install gcc make xz-utils tar'
      : 'nothing to do: it is built on first use (or now, with `twlab run 01 --kernel netbsd`)',
    warning: true,
  };
}
