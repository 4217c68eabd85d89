// `twlab run … --kernel 6.1,6.12,host`: the same labs on several kernels at once. The host's
// labs run as always (evidence in <out>/NN-slug); each other kernel boots in its own guest
// (evidence in <out>/<uname -r>/NN-slug, with the guest's console.log and kernel.json beside).
// Everything is resolved and fetched before anything starts, so a bad name or a failed fetch
// stops the run with one line and no evidence touched.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LabMessage } from '../lab/api/context';
import { TwlabError } from '../lab/api/errors';
import type { ParamValue } from '../lab/api/params';
import { which, type Isolation } from '../lab/run/preflight';
import { LabRunner, type LabOutcome } from '../lab/run/runner';
import type { LabDefinition } from '../lab/api/types';
import { availableKernels, cachedKernels, ensureKernel, resolveKernel, type CachedKernel, type KernelSpec } from './debian';
import { chooseAccel, GuestRunner, guestInitPath, KERNEL_INFO, QEMU, type Accel, type KernelRunInfo } from './guest';
import { checkNetbsdSource, ensureNetbsd } from './netbsd';
import { netbsdTarget, prepareFreebsd, type StackTarget } from './stacks';
import { checkFreebsdSource } from './freebsd';

/**
 * One column of the side-by-side: the host, a guest kernel, or another OS's TCP/IP stack run by
 * the host's labs through its helper (`release` is then its evidence folder, netbsd-7.99.34,
 * freebsd-13.0).
 */
export type KernelTarget =
  | { kind: 'host'; release: string }
  | { kind: 'guest'; release: string; kernel: CachedKernel; accel: Accel; accelWhy: string }
  | { kind: 'stack'; release: string; stack: StackTarget };

/** What a guest needs on the host: qemu and our guest init. */
export function guestChecks(): void {
  if (!which(QEMU))
    throw new TwlabError(
      'MISSING_TOOL',
      `${QEMU} not found on PATH; fix: apt-get install qemu-system-x86 (needed for --kernel; see \`twlab doctor\`)`,
    );
  if (!fs.existsSync(guestInitPath()))
    throw new TwlabError(
      'ADDON_MISSING',
      `the guest init is not built (${guestInitPath()} missing); fix: npm install (or npm run build) in the twlab folder`,
    );
}

/** What fetching a kernel needs. */
function fetchChecks(): void {
  for (const [tool, pkg] of [
    ['apt-get', 'apt'],
    ['dpkg-deb', 'dpkg'],
    ['xz', 'xz-utils'],
    ['zstd', 'zstd'],
  ] as const) {
    if (!which(tool))
      throw new TwlabError(
        'MISSING_TOOL',
        `${tool} not found on PATH; fix: apt-get install ${pkg} (needed to fetch a Debian kernel for --kernel)`,
      );
  }
}

/**
 * Resolves each named kernel, fetching the ones not cached yet (and building NetBSD's or
 * FreeBSD's stack on first use). `beforeFetch` runs once the names are known good and qemu is there, before
 * anything is downloaded, built or written.
 */
export async function prepareKernels(
  specs: KernelSpec[],
  log: (s: string) => void,
  beforeFetch: () => void = () => undefined,
): Promise<KernelTarget[]> {
  const guests = specs.filter((s): s is Extract<KernelSpec, { kind: 'series' | 'exact' }> => s.kind === 'series' || s.kind === 'exact');
  const targets: KernelTarget[] = [];
  let picked: ReturnType<typeof resolveKernel>[] = [];
  if (guests.length) {
    guestChecks();
    const cached = cachedKernels();
    const available = availableKernels();
    picked = guests.map((s) => resolveKernel(s, available, cached));
    if (picked.some((k) => !('dir' in k))) fetchChecks();
  }
  if (specs.some((s) => s.kind === 'netbsd')) checkNetbsdSource();
  if (specs.some((s) => s.kind === 'freebsd')) checkFreebsdSource();
  beforeFetch();
  for (const spec of specs) {
    if (spec.kind === 'host') {
      targets.push({ kind: 'host', release: os.release() });
      continue;
    }
    if (spec.kind === 'netbsd' || spec.kind === 'freebsd') {
      const stack = spec.kind === 'netbsd' ? netbsdTarget(await ensureNetbsd(log)) : await prepareFreebsd(log);
      targets.push({ kind: 'stack', release: stack.folder, stack });
      continue;
    }
    const k = ensureKernel(picked[guests.indexOf(spec)]!, log);
    if (targets.some((t) => t.release === k.release)) continue;
    const { accel, why } = chooseAccel(k);
    targets.push({ kind: 'guest', release: k.release, kernel: k, accel, accelWhy: why });
  }
  return targets;
}

export interface MatrixOptions {
  targets: KernelTarget[];
  labs: LabDefinition[];
  params: Map<string, Record<string, ParamValue>>;
  outDir: string;
  isolation: Isolation | null;
  /** labs at once, per kernel */
  concurrency?: number;
  onMessage?: (target: KernelTarget, m: LabMessage) => void;
  log?: (s: string) => void;
}

export interface KernelColumnRun {
  target: KernelTarget;
  /** <out> for the host, <out>/<release> for a guest */
  outDir: string;
  outcomes: LabOutcome[];
  info: KernelRunInfo;
}

/**
 * Labs at once inside a guest, unless -j says otherwise. A guest has one emulated CPU: with all
 * fifteen labs at once there, helper processes did not start within their 10 s and timing-bound
 * steps (lab 14's challenge ACKs, lab 08's FIN_WAIT2 timeout) gave mixed verdicts that four at a
 * time did not.
 */
export const GUEST_LABS_AT_ONCE = 4;

/** guests booted at once: one TCG guest keeps a core busy */
export function guestSlots(): number {
  return Math.max(1, os.cpus().length);
}

export class MatrixRunner {
  #host = new LabRunner();
  #guests = new Set<GuestRunner>();
  #stacks = new Set<LabRunner>();
  #interrupted: NodeJS.Signals | null = null;

  get interrupted(): NodeJS.Signals | null {
    return this.#interrupted;
  }

  interrupt(signal: NodeJS.Signals): void {
    this.#interrupted ??= signal;
    this.#host.interrupt(signal);
    for (const g of this.#guests) g.interrupt(signal);
    for (const r of this.#stacks) r.interrupt(signal);
  }

  async run(o: MatrixOptions): Promise<KernelColumnRun[]> {
    const guests = o.targets.filter((t) => t.kind === 'guest');
    const queue = [...guests];
    const results = new Map<KernelTarget, KernelColumnRun>();
    const runGuest = async (t: Extract<KernelTarget, { kind: 'guest' }>): Promise<void> => {
      const outDir = path.join(o.outDir, t.release);
      const g = new GuestRunner();
      this.#guests.add(g);
      if (this.#interrupted) g.interrupt(this.#interrupted);
      o.log?.(`${t.release}: booting under qemu (${t.accel === 'kvm' ? 'KVM' : 'TCG'})`);
      const { outcomes, info } = await g.run({
        kernel: t.kernel,
        accel: t.accel,
        labs: o.labs,
        params: o.params,
        outDir,
        concurrency: o.concurrency ?? GUEST_LABS_AT_ONCE,
        onMessage: (m) => o.onMessage?.(t, m),
        onReady: (k, ms) => o.log?.(`${k}: guest up in ${(ms / 1000).toFixed(1)} s, running ${o.labs.map((l) => l.id).join(' ')}`),
      });
      this.#guests.delete(g);
      results.set(t, { target: t, outDir, outcomes, info });
    };
    const guestWorker = async (): Promise<void> => {
      for (let t = queue.shift(); t; t = queue.shift()) await runGuest(t as Extract<KernelTarget, { kind: 'guest' }>);
    };
    // another OS's stack: the host's labs, each with its own helper booting that stack
    const runStack = async (t: Extract<KernelTarget, { kind: 'stack' }>): Promise<void> => {
      if (!o.isolation) throw new TwlabError('NO_PRIVILEGE', 'cannot create a private network namespace; run `twlab doctor`');
      const outDir = path.join(o.outDir, t.release);
      const runner = new LabRunner();
      this.#stacks.add(runner);
      if (this.#interrupted) runner.interrupt(this.#interrupted);
      const t0 = performance.now();
      const outcomes = await runner.run({
        labs: o.labs,
        params: o.params,
        outDir,
        isolation: o.isolation,
        concurrency: o.concurrency,
        stack: { os: t.stack.os, helper: t.stack.helper, env: t.stack.env, label: t.stack.label.replace(t.stack.release, '{release}') },
        onMessage: (m) => o.onMessage?.(t, m),
      });
      this.#stacks.delete(runner);
      const info: KernelRunInfo = {
        release: t.stack.label,
        package: t.stack.package,
        version: t.stack.version,
        accel: 'stack',
        bootMs: null,
        wallMs: Math.round(performance.now() - t0),
      };
      fs.writeFileSync(path.join(outDir, KERNEL_INFO), JSON.stringify(info, null, 2) + '\n');
      results.set(t, { target: t, outDir, outcomes, info });
    };
    const host = o.targets.find((t) => t.kind === 'host');
    const runHost = async (): Promise<void> => {
      if (!host) return;
      if (!o.isolation) throw new TwlabError('NO_PRIVILEGE', 'cannot create a private network namespace; run `twlab doctor`');
      const t0 = performance.now();
      const outcomes = await this.#host.run({
        labs: o.labs,
        params: o.params,
        outDir: o.outDir,
        isolation: o.isolation,
        concurrency: o.concurrency,
        onMessage: (m) => o.onMessage?.(host, m),
      });
      results.set(host, {
        target: host,
        outDir: o.outDir,
        outcomes,
        info: {
          release: host.release,
          package: null,
          version: null,
          accel: 'host',
          bootMs: null,
          wallMs: Math.round(performance.now() - t0),
        },
      });
    };
    const stacks = o.targets.filter((t): t is Extract<KernelTarget, { kind: 'stack' }> => t.kind === 'stack');
    await Promise.all([runHost(), ...stacks.map(runStack), ...Array.from({ length: Math.min(guestSlots(), guests.length) }, guestWorker)]);
    return o.targets.map((t) => results.get(t)!);
  }
}

/** kernel.json of a guest column's folder, if it has one. */
export function readKernelInfo(dir: string): KernelRunInfo | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, KERNEL_INFO), 'utf8')) as KernelRunInfo;
  } catch {
    return null;
  }
}
