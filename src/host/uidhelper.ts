// Starts uid-helper-main under another uid (setpriv --reuid), in this same network namespace,
// with the same death signal as every lab helper. The package tree may not be readable by that
// uid, so the compiled host/wire code and the addon are copied to a private temporary folder.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { IpFamily } from '../wire/address';
import type { ProcessHandle, Proto, RemoteBind } from './backend/types';
import { addonPath } from './native';
import { pidAlive } from './pid';
import type { SyscallResult } from './native';

export const NOBODY_UID = 65534;

/** Temporary copies are named after the lab process, so the runner can remove them if it is killed. */
export const UID_HELPER_DIR_PREFIX = 'twlab-uid-';

/** Removes helper copies left by `pid` (when given) or by any process that no longer exists. */
export function removeHelperCopies(pid?: number): void {
  for (const name of fs.readdirSync(os.tmpdir())) {
    const m = new RegExp(`^${UID_HELPER_DIR_PREFIX}(\\d+)-`).exec(name);
    if (!m) continue;
    const owner = Number(m[1]);
    if (owner === pid || !pidAlive(owner)) fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
  }
}

export class UidHelperError extends Error {
  readonly code = 'UID_HELPER';
}

export type { RemoteBind } from './backend/types';

export class UidHelper implements ProcessHandle {
  readonly uid: number;
  #child: ChildProcess;
  #dir: string;
  #pending: Array<(reply: Record<string, unknown>) => void> = [];
  #exited = false;

  private constructor(uid: number, child: ChildProcess, dir: string) {
    this.uid = uid;
    this.#child = child;
    this.#dir = dir;
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const next = this.#pending.shift();
      let reply: Record<string, unknown>;
      try {
        reply = JSON.parse(line) as Record<string, unknown>;
      } catch {
        reply = { ok: false, error: `helper said: ${line}` };
      }
      next?.(reply);
    });
    child.on('exit', () => {
      this.#exited = true;
      for (const p of this.#pending.splice(0)) p({ ok: false, error: 'helper exited' });
    });
  }

  /** A helper process under `uid` (default: nobody); with the current uid, no setpriv --reuid. */
  static async start(uid = NOBODY_UID): Promise<UidHelper> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${UID_HELPER_DIR_PREFIX}${process.pid}-`));
    fs.chmodSync(dir, 0o755);
    const distSrc = path.resolve(__dirname, '..'); // dist/src
    for (const sub of ['host', 'wire']) fs.cpSync(path.join(distSrc, sub), path.join(dir, 'src', sub), { recursive: true });
    fs.copyFileSync(addonPath(), path.join(dir, 'twlab.node'));
    for (const p of walk(dir)) fs.chmodSync(p, fs.statSync(p).isDirectory() ? 0o755 : 0o644);
    const same = uid === process.geteuid?.();
    const child = spawn(
      'setpriv',
      [
        ...(same ? [] : ['--reuid', String(uid), '--regid', String(uid), '--clear-groups']),
        '--pdeathsig',
        'KILL',
        '--',
        process.execPath,
        path.join(dir, 'src', 'host', 'uid-helper-main.js'),
      ],
      { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TWLAB_ADDON: path.join(dir, 'twlab.node') }, cwd: dir },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const helper = new UidHelper(uid, child, dir);
    // a bound on a helper that hangs, not a measurement: a second Node starting inside an emulated
    // guest on a busy machine took more than 10 s, and more than 60 s at a load of 20–40
    const ready = await helper.#next(120_000);
    if (!ready.ok || ready.uid !== uid) {
      helper.stop();
      throw new UidHelperError(
        `cannot start a process as uid ${uid}: ${(ready.error as string) ?? stderr.trim().split('\n').pop() ?? 'no reply'}`,
      );
    }
    return helper;
  }

  #next(timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, error: 'helper did not answer' }), timeoutMs);
      this.#pending.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  async #call(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.#exited) throw new UidHelperError('uid helper has exited');
    const reply = this.#next();
    this.#child.stdin!.write(JSON.stringify(req) + '\n');
    const r = await reply;
    if (!r.ok) throw new UidHelperError(`uid helper: ${r.error as string}`);
    return r;
  }

  /** socket + options + bind(2) as the other uid; the socket stays open until close(id). */
  async bind(req: RemoteBind): Promise<{ id: number; bind: SyscallResult }> {
    const r = await this.#call({ op: 'bind', ...req });
    return { id: r.id as number, bind: r.bind as SyscallResult };
  }

  async listen(id: number): Promise<SyscallResult> {
    return (await this.#call({ op: 'listen', id })).listen as SyscallResult;
  }

  async close(id: number): Promise<SyscallResult> {
    return (await this.#call({ op: 'close', id })).close as SyscallResult;
  }

  async socket(family: IpFamily, proto: Proto): Promise<number> {
    return (await this.#call({ op: 'socket', family, proto })).id as number;
  }

  async setLinger(id: number, onoff: boolean, seconds: number): Promise<SyscallResult> {
    return (await this.#call({ op: 'linger', id, onoff, seconds })).result as SyscallResult;
  }

  /** getsockopt(SO_LINGER) in the helper's own process: what the socket really has */
  async getLinger(id: number): Promise<SyscallResult & { value: { onoff: boolean; seconds: number } | null }> {
    const r = await this.#call({ op: 'getlinger', id });
    return { ...(r.result as SyscallResult), value: r.value as { onoff: boolean; seconds: number } | null };
  }

  async connect(id: number, address: string, port: number): Promise<SyscallResult> {
    return (await this.#call({ op: 'connect', id, address, port })).result as SyscallResult;
  }

  /** send(2) with MSG_DONTWAIT of `bytes` zero bytes */
  async send(id: number, bytes: number): Promise<SyscallResult> {
    return (await this.#call({ op: 'send', id, bytes })).result as SyscallResult;
  }

  async localAddress(id: number): Promise<{ address: string; port: number } | null> {
    return (await this.#call({ op: 'local', id })).address as { address: string; port: number } | null;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Kills the process outright (SIGKILL): its sockets are closed by the kernel as it exits. Resolves with the signal it died of (null if it had exited already). */
  kill(): Promise<NodeJS.Signals | null> {
    if (this.#exited) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#child.once('exit', (_code, signal) => resolve(signal));
      this.#child.kill('SIGKILL');
    });
  }

  stop(): void {
    if (!this.#exited) this.#child.kill('SIGKILL');
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}

function* walk(dir: string): Generator<string> {
  yield dir;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}
