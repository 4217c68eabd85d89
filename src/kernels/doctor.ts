// What `--kernel` needs, for `twlab doctor` (warnings: the host's own labs run without any of
// it) and `twlab kernels` (what is cached, what apt can fetch).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { which, type Check } from '../lab/preflight';
import { availableKernels, cacheDir, cachedKernels, compareReleases, type CachedKernel, type DebianKernel } from './debian';
import { chooseAccel, guestInitPath, QEMU } from './guest';

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
  cached: Array<CachedKernel & { bytes: number }>;
  /** per series, newest first */
  available: Record<string, DebianKernel[]>;
}

export function kernelListing(): KernelListing {
  const available: Record<string, DebianKernel[]> = {};
  for (const k of availableKernels().reverse()) (available[k.series] ??= []).push(k);
  const series = Object.keys(available).sort((a, b) => compareReleases(a, b));
  return {
    cacheDir: cacheDir(),
    cached: cachedKernels().map((k) => ({ ...k, bytes: sizeOf(k.dir) })),
    available: Object.fromEntries(series.map((s) => [s, available[s]!])),
  };
}

export function kernelChecks(): Check[] {
  const out: Check[] = [];
  const qemu = which(QEMU);
  out.push({ name: `${QEMU} (for --kernel)`, ok: !!qemu, detail: qemu ?? 'not found on PATH', fix: 'apt-get install qemu-system-x86', warning: true });
  const init = guestInitPath();
  out.push({ name: 'guest init built (for --kernel)', ok: fs.existsSync(init), detail: fs.existsSync(init) ? init : `${init} missing`, fix: 'npm install (or npm run build) in the twlab folder', warning: true });
  const listing = kernelListing();
  const series = Object.entries(listing.available).map(([s, ks]) => `${s} (newest ${ks[0]!.release})`);
  out.push({
    name: 'Debian kernels apt can fetch (for --kernel)',
    ok: series.length > 0,
    detail: series.length ? series.join(', ') : 'apt knows no linux-image-*-amd64-unsigned package',
    fix: 'apt-get update (the kernels come from Debian\'s archive; twlab fetches them with apt-get download, never installs them)',
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
  const probeWith = listing.cached[listing.cached.length - 1];
  if (qemu && probeWith && fs.existsSync(init)) {
    const { accel, why } = chooseAccel(probeWith);
    out.push({ name: 'KVM (for --kernel)', ok: accel === 'kvm', detail: why, fix: 'guests run under TCG: labs stay correct (timers run on the guest clock), busy steps are 10–30× slower', warning: true });
  } else {
    const kvm = fs.existsSync('/dev/kvm');
    out.push({ name: 'KVM (for --kernel)', ok: false, detail: kvm ? '/dev/kvm present; whether it runs a guest is probed once a kernel is cached' : '/dev/kvm missing: guests will run under TCG', fix: 'guests run under TCG: labs stay correct, busy steps are 10–30× slower', warning: true });
  }
  return out;
}
