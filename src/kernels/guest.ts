// Runs labs inside a guest kernel: boots a cached Debian kernel under qemu with our initramfs
// (native/guest-init.c and the package's own modules), the host's root read-only over 9p and
// the kernel's evidence folder read-write, and lets the guest run the same LabRunner as the
// host (src/kernels/guest-main.ts). qemu runs in its own process group under the same death signal
// as a lab process, the initramfs is an unlinked file handed over as fd 3, and a staging folder
// the guest left is removed: nothing stays behind, whatever way the run ends.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { LabMessage } from '../lab/api/context';
import { TwlabError } from '../lab/api/errors';
import type { ParamValue } from '../lab/api/params';
import { which } from '../lab/run/preflight';
import { recoverStaging } from '../lab/run/evidence';
import { GRACE_MS, killGroup, type LabOutcome } from '../lab/run/runner';
import { labDirName, type LabDefinition, type LabResult } from '../lab/api/types';
import { cacheDir, type CachedKernel } from './debian';
import { cpioNewc, type CpioEntry } from './image';
import { CONSOLE_MARK, JOB_FILE, OUTCOMES_FILE, type GuestJob, type GuestMessage, type GuestOutcome } from './guest-main';

export const QEMU = 'qemu-system-x86_64';
/** a guest that has not started its main process by then is taken for dead (TCG on a busy machine boots in ~5 s) */
export const BOOT_TIMEOUT_MS = 180_000;
export const GUEST_MEMORY_MB = 3072;

export function guestInitPath(): string {
  // dist/src/kernels → build/Release (node-gyp builds it beside the addon)
  return path.resolve(__dirname, '..', '..', '..', 'build', 'Release', 'twlab-guest-init');
}

/** kernel.json in a kernel's evidence folder: which kernel it was and how its guest ran. */
export interface KernelRunInfo {
  release: string;
  package: string | null;
  version: string | null;
  /** how it ran: in a guest (kvm, tcg), on the host, or another OS's stack in a helper process (stack) */
  accel: 'kvm' | 'tcg' | 'host' | 'stack';
  bootMs: number | null;
  wallMs: number;
}

export const KERNEL_INFO = 'kernel.json';

/** Builds the initramfs: our init, the modules and the order to load them in. */
export function buildInitramfs(k: CachedKernel, init = fs.readFileSync(guestInitPath())): Buffer {
  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'dev' },
    { kind: 'char', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'dir', path: 'proc' },
    { kind: 'dir', path: 'sys' },
    { kind: 'dir', path: 'host' },
    { kind: 'dir', path: 'modules' },
    { kind: 'file', path: 'init', mode: 0o755, data: init },
    { kind: 'file', path: 'modules.load', data: Buffer.from(k.modules.join('\n') + '\n') },
    ...k.modules.map((m): CpioEntry => ({ kind: 'file', path: `modules/${m}`, data: fs.readFileSync(path.join(k.dir, 'modules', m)) })),
  ];
  return cpioNewc(entries);
}

/** An unlinked file holding `data`: open as long as the returned fd is, gone with it. */
function anonymousFile(data: Buffer): number {
  const file = path.join(os.tmpdir(), `twlab-initrd-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  const fd = fs.openSync(file, 'w+', 0o600);
  fs.unlinkSync(file);
  fs.writeSync(fd, data);
  return fd;
}

function kernelWord(name: string, value: string): string {
  if (/["\s]/.test(value))
    throw new TwlabError(
      'BAD_USAGE',
      `${name} ${JSON.stringify(value)} holds a space or a quote, which a kernel command line cannot carry; run from (and write evidence to) a path without them`,
    );
  return `${name}=${value}`;
}

export type Accel = 'kvm' | 'tcg';

/** qemu's arguments for one guest (fd 3 is the initramfs). */
export function qemuArgs(o: { accel: Accel; vmlinux: string; outDir: string; memoryMb?: number }): string[] {
  const append = [
    'console=ttyS0',
    'panic=-1',
    'loglevel=4',
    ...(o.accel === 'tcg' ? ['random.trust_cpu=on'] : []),
    kernelWord('twlab_out', o.outDir),
    kernelWord('twlab_cwd', process.cwd()),
    kernelWord('twlab_node', process.execPath),
    kernelWord('twlab_main', path.join(__dirname, 'guest-main.js')),
  ].join(' ');
  if (append.length > 2000)
    throw new TwlabError('BAD_USAGE', `the guest's kernel command line would be ${append.length} bytes (at most 2048): use shorter paths`);
  return [
    ...(o.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max']),
    '-machine',
    'q35',
    '-smp',
    '1',
    '-m',
    String(o.memoryMb ?? GUEST_MEMORY_MB),
    '-nodefaults',
    '-no-reboot',
    '-display',
    'none',
    '-nic',
    'none',
    '-serial',
    'stdio',
    '-kernel',
    o.vmlinux,
    '-initrd',
    '/proc/self/fd/3',
    '-append',
    append,
    '-fsdev',
    'local,id=root,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device',
    'virtio-9p-pci,fsdev=root,mount_tag=twlabroot',
    '-fsdev',
    `local,id=out,path=${o.outDir},security_model=none`,
    '-device',
    'virtio-9p-pci,fsdev=out,mount_tag=twlabout',
  ];
}

/**
 * Whether KVM really runs a guest here (on some hosts /dev/kvm exists but a guest dies at its
 * first instruction, or hangs). Decided by booting `k` under KVM with an init that has nothing
 * to do but power off; remembered per host boot and qemu binary (whichever guest kernel probed).
 * TWLAB_ACCEL=tcg|kvm overrides.
 */
export function chooseAccel(k: CachedKernel): { accel: Accel; why: string } {
  const forced = process.env.TWLAB_ACCEL;
  if (forced === 'tcg' || forced === 'kvm') return { accel: forced, why: `TWLAB_ACCEL=${forced}` };
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { accel: 'tcg', why: '/dev/kvm is missing or not read/writable: TCG (emulation, 10–30× slower)' };
  }
  const qemu = which(QEMU) ?? QEMU;
  const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const memo = path.join(cacheDir(), 'kvm-probe.json');
  const key = `${bootId} ${qemu} ${fs.statSync(qemu).mtimeMs}`;
  try {
    const m = JSON.parse(fs.readFileSync(memo, 'utf8')) as { key: string; works: boolean; detail: string };
    if (m.key === key) return m.works ? { accel: 'kvm', why: m.detail } : { accel: 'tcg', why: m.detail };
  } catch {
    // not probed yet
  }
  const fd = anonymousFile(
    cpioNewc([
      { kind: 'dir', path: 'dev' },
      { kind: 'char', path: 'dev/console', major: 5, minor: 1 },
      { kind: 'file', path: 'init', mode: 0o755, data: fs.readFileSync(guestInitPath()) },
      { kind: 'file', path: 'modules.load', data: Buffer.alloc(0) },
    ]),
  );
  const t0 = performance.now();
  const r = spawnSync(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      qemu,
      '-accel',
      'kvm',
      '-cpu',
      'host',
      '-machine',
      'q35',
      '-smp',
      '1',
      '-m',
      '256',
      '-nodefaults',
      '-no-reboot',
      '-display',
      'none',
      '-nic',
      'none',
      '-serial',
      'stdio',
      '-kernel',
      k.vmlinux,
      '-initrd',
      '/proc/self/fd/3',
      '-append',
      'console=ttyS0 panic=-1 loglevel=4',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe', fd],
      encoding: 'utf8',
      timeout: 20_000,
      killSignal: 'SIGKILL',
    },
  );
  fs.closeSync(fd);
  const works = r.status === 0 && r.stdout.includes('twlab-init:');
  const detail = works
    ? `KVM boots a guest (probe: ${Math.round(performance.now() - t0)} ms)`
    : `KVM does not run a guest here (${r.error ? 'no answer in 20 s' : ((r.stderr || r.stdout).split('\n').find((l) => /error|fail/i.test(l)) ?? `exit ${r.status}`).trim()}): TCG (emulation, 10–30× slower)`;
  fs.mkdirSync(path.dirname(memo), { recursive: true });
  fs.writeFileSync(memo, JSON.stringify({ key, works, detail }) + '\n');
  return works ? { accel: 'kvm', why: detail } : { accel: 'tcg', why: detail };
}

export interface GuestRunOptions {
  kernel: CachedKernel;
  accel: Accel;
  labs: LabDefinition[];
  params: Map<string, Record<string, ParamValue>>;
  /** this kernel's evidence folder (captures/<release>) */
  outDir: string;
  concurrency?: number;
  onMessage?: (m: LabMessage) => void;
  /** the guest has booted and its main process started */
  onReady?: (kernel: string, bootMs: number) => void;
}

function removeGuestLeftovers(outDir: string): void {
  // staging folders of a guest that died: their pids were the guest's, never alive here (old
  // evidence a kill left renamed aside is put back)
  recoverStaging(outDir, () => true);
  for (const name of fs.readdirSync(outDir))
    if (name === JOB_FILE || name === OUTCOMES_FILE) fs.rmSync(path.join(outDir, name), { recursive: true, force: true });
}

export class GuestRunner {
  #qemu: ChildProcess | null = null;
  #interrupted: NodeJS.Signals | null = null;
  #killTimer: NodeJS.Timeout | null = null;

  get interrupted(): NodeJS.Signals | null {
    return this.#interrupted;
  }

  interrupt(signal: NodeJS.Signals): void {
    this.#interrupted ??= signal;
    this.#kill('SIGTERM');
    this.#killTimer ??= setTimeout(() => this.#kill('SIGKILL'), GRACE_MS);
  }

  #kill(signal: NodeJS.Signals): void {
    const q = this.#qemu;
    if (q && q.exitCode === null && q.signalCode === null) killGroup(q, signal);
  }

  async run(o: GuestRunOptions): Promise<{ outcomes: LabOutcome[]; info: KernelRunInfo }> {
    const t0 = performance.now();
    fs.mkdirSync(o.outDir, { recursive: true });
    removeGuestLeftovers(o.outDir);
    const consoleLog = path.join(o.outDir, 'console.log');
    const shown = path.relative(process.cwd(), consoleLog) || consoleLog;
    const job: GuestJob = {
      labs: o.labs.map((d) => d.id),
      params: Object.fromEntries(o.labs.map((d) => [d.id, o.params.get(d.id) ?? {}])),
      concurrency: o.concurrency,
      env: Object.fromEntries(['TWLAB_LABS_DIR', 'NO_COLOR'].filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!])),
    };
    fs.writeFileSync(path.join(o.outDir, JOB_FILE), JSON.stringify(job) + '\n');
    const qemu = which(QEMU);
    if (!qemu)
      throw new TwlabError('MISSING_TOOL', `${QEMU} not found on PATH; fix: apt-get install qemu-system-x86 (needed for --kernel)`);
    const fd = anonymousFile(buildInitramfs(o.kernel));
    const log = fs.createWriteStream(consoleLog);
    const child = spawn(
      'setpriv',
      ['--pdeathsig', 'KILL', '--', qemu, ...qemuArgs({ accel: o.accel, vmlinux: o.kernel.vmlinux, outDir: o.outDir })],
      {
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe', fd],
      },
    );
    fs.closeSync(fd);
    this.#qemu = child;
    if (this.#interrupted) this.interrupt(this.#interrupted);
    let bootMs: number | null = null;
    let fatal: string | null = null;
    let lastInit = '';
    child.stderr!.on('data', (d: Buffer) => log.write(d));
    readline.createInterface({ input: child.stdout! }).on('line', (raw) => {
      const line = raw.replace(/\r$/, '');
      log.write(line + '\n');
      const at = line.indexOf(CONSOLE_MARK);
      if (at < 0) {
        if (line.startsWith('twlab-init:')) lastInit = line;
        return;
      }
      let m: GuestMessage;
      try {
        m = JSON.parse(line.slice(at + CONSOLE_MARK.length)) as GuestMessage;
      } catch {
        return; // a line cut by a kernel message: only progress travels this way
      }
      if (m.type === 'ready') {
        bootMs = Math.round(performance.now() - t0);
        o.onReady?.(m.kernel, bootMs);
      } else if (m.type === 'fatal') fatal = m.message.split('\n')[0]!;
      else o.onMessage?.(m);
    });
    const bootTimer = setTimeout(() => {
      if (bootMs === null) {
        fatal = `the guest did not start its main process within ${BOOT_TIMEOUT_MS / 1000} s`;
        this.#kill('SIGKILL');
      }
    }, BOOT_TIMEOUT_MS);
    const exit = await new Promise<string>((resolve) => {
      child.on('error', (e) => resolve(`cannot start ${QEMU}: ${e.message}`));
      child.on('close', (code, signal) => resolve(signal ? `killed by ${signal}` : `exit ${code}`));
    });
    clearTimeout(bootTimer);
    if (this.#killTimer) clearTimeout(this.#killTimer);
    await new Promise<void>((resolve) => log.end(resolve));
    this.#kill('SIGKILL'); // anything left in qemu's group
    const info: KernelRunInfo = {
      release: o.kernel.release,
      package: o.kernel.package,
      version: o.kernel.version ?? null,
      accel: o.accel,
      bootMs,
      wallMs: Math.round(performance.now() - t0),
    };
    let reported: GuestOutcome[] = [];
    try {
      reported = JSON.parse(fs.readFileSync(path.join(o.outDir, OUTCOMES_FILE), 'utf8')) as GuestOutcome[];
    } catch {
      // the guest ended before its labs did: said below, per lab
    }
    removeGuestLeftovers(o.outDir);
    fs.writeFileSync(path.join(o.outDir, KERNEL_INFO), JSON.stringify(info, null, 2) + '\n');
    const why = this.#interrupted
      ? `interrupted by ${this.#interrupted}`
      : `guest ${o.kernel.release} ended before its labs finished (${fatal ?? (lastInit || 'qemu ' + exit)}); console log: ${shown}`;
    const outcomes = o.labs.map((def): LabOutcome => {
      const r = reported.find((x) => x.lab === def.id);
      if (r?.dir) {
        const dir = path.join(o.outDir, r.dir);
        try {
          const result = JSON.parse(fs.readFileSync(path.join(dir, 'result.json'), 'utf8')) as LabResult;
          return { def, result, dir, error: null };
        } catch (e) {
          return {
            def,
            result: null,
            dir: null,
            error: {
              code: 'LAB_FAILED',
              message: `guest ${o.kernel.release}: ${labDirName(def)}/result.json unreadable: ${(e as Error).message}`,
            },
          };
        }
      }
      if (r?.error)
        return {
          def,
          result: null,
          dir: null,
          error: { code: r.error.code, message: `${r.error.message.split('\n')[0]} (kernel ${o.kernel.release}; console log: ${shown})` },
        };
      return { def, result: null, dir: null, error: { code: this.#interrupted ? 'INTERRUPTED' : 'GUEST_FAILED', message: why } };
    });
    return { outcomes, info };
  }
}
