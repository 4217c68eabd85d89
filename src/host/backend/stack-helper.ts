// The client side of native/stack-helper/PROTOCOL.md: starts a helper that boots another OS's
// TCP/IP stack, and talks to it. Calls that cannot block are a request and a reply read
// synchronously (microseconds, like a system call); calls that can block are answered `pending`
// and complete on the event pipe, read on readiness: the event loop never waits on the stack.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { native } from '../native';

export type Args = Record<string, string | number | boolean | undefined>;

export interface Done {
  ret: number;
  errno: string | null;
  elapsedMs: number;
  kv: Record<string, string>;
  data: Buffer;
}

export type Reply =
  | { kind: 'ok'; ret: number; errno: string | null; kv: Record<string, string>; data: Buffer }
  | { kind: 'missing'; what: string };

export class StackHelperError extends Error {
  readonly code = 'STACK_HELPER';
}

const PLAIN = /[A-Za-z0-9._:,/+\-[\]]/;

/** PROTOCOL.md "Lines": every byte outside the plain set as %XX */
export function encodeValue(v: string): string {
  let out = '';
  for (const b of Buffer.from(v, 'utf8')) {
    const c = String.fromCharCode(b);
    out += b < 0x80 && PLAIN.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeValue(v: string): string {
  return Buffer.from(
    v.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
}

/** `key=value` tokens of a line (after its first `skip` words) */
export function parseKv(words: string[]): Record<string, string> {
  const kv: Record<string, string> = {};
  for (const w of words) {
    const i = w.indexOf('=');
    if (i > 0) kv[w.slice(0, i)] = decodeValue(w.slice(i + 1));
  }
  return kv;
}

export class StackHelper {
  readonly ready: Record<string, string>;
  #child: ChildProcess;
  #reqFd: number;
  #replyFd: number;
  #events: net.Socket;
  #buf: Buffer = Buffer.alloc(0);
  #evBuf: Buffer = Buffer.alloc(0);
  #next = 1;
  #pending = new Map<number, (d: Done) => void>();
  #stderr = '';
  #exited: string | null = null;

  private constructor(child: ChildProcess, reqFd: number, replyFd: number, events: net.Socket) {
    this.#child = child;
    this.#reqFd = reqFd;
    this.#replyFd = replyFd;
    this.#events = events;
    child.stderr!.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-8192);
    });
    child.on('exit', (code, signal) => {
      this.#exited = signal ?? `exit ${code}`;
      for (const [tag, resolve] of this.#pending)
        resolve({ ret: -1, errno: 'EHELPERDIED', elapsedMs: 0, kv: { tag: String(tag) }, data: Buffer.alloc(0) });
      this.#pending.clear();
      this.#events.unref();
    });
    events.on('data', (d: Buffer) => this.#onEvents(d));
    events.on('error', () => undefined);
    events.unref();
    const first = this.#readLine();
    if (first === null) throw new StackHelperError(`the stack helper exited before it was ready${this.#why()}`);
    const words = first.split(' ');
    if (words[0] !== '*' || words[1] !== 'ready') {
      const kv = parseKv(words.slice(2));
      throw new StackHelperError(`the stack did not boot: ${kv.msg ?? first}`);
    }
    this.ready = parseKv(words.slice(2));
  }

  /** Starts `binary` and waits (synchronously, a few ms) for its ready line. */
  static start(binary: string, env: Record<string, string> = {}): StackHelper {
    const req = native().pipe();
    const rep = native().pipe();
    const ev = native().pipe();
    if (req.ret < 0 || rep.ret < 0 || ev.ret < 0) throw new StackHelperError(`pipe() failed: ${req.errno ?? rep.errno ?? ev.errno}`);
    let child: ChildProcess;
    try {
      child = spawn(binary, [], { stdio: [req.readFd, rep.writeFd, 'pipe', ev.writeFd], env: { ...process.env, ...env } });
    } finally {
      for (const fd of [req.readFd, rep.writeFd, ev.writeFd]) fs.closeSync(fd);
    }
    const events = new net.Socket({ fd: ev.readFd, readable: true, writable: false });
    try {
      return new StackHelper(child, req.writeFd, rep.readFd, events);
    } catch (e) {
      child.kill('SIGKILL');
      fs.closeSync(req.writeFd);
      fs.closeSync(rep.readFd);
      events.destroy();
      throw e;
    }
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  #why(): string {
    const last = this.#stderr.trim().split('\n').filter(Boolean).slice(-2).join(' | ');
    return last ? ` (${last})` : '';
  }

  /** one reply line, read synchronously; null at end of file */
  #readLine(): string | null {
    for (;;) {
      const nl = this.#buf.indexOf(10);
      if (nl >= 0) {
        const line = this.#buf.subarray(0, nl).toString('latin1');
        this.#buf = this.#buf.subarray(nl + 1);
        return line;
      }
      if (!this.#fill()) return null;
    }
  }

  #fill(): boolean {
    const chunk = Buffer.allocUnsafe(65536);
    let n: number;
    for (;;) {
      try {
        n = fs.readSync(this.#replyFd, chunk, 0, chunk.length, null);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN' || (e as NodeJS.ErrnoException).code === 'EINTR') continue;
        throw e;
      }
    }
    if (n === 0) return false;
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk.subarray(0, n)]) : chunk.subarray(0, n);
    return true;
  }

  #readBytes(n: number): Buffer {
    while (this.#buf.length < n) if (!this.#fill()) throw new StackHelperError(`the stack helper died mid-reply${this.#why()}`);
    const out = Buffer.from(this.#buf.subarray(0, n));
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  #write(tag: number, op: string, args: Args, data?: Uint8Array): void {
    if (this.#exited) throw new StackHelperError(`the stack helper has exited (${this.#exited})${this.#why()}`);
    let line = `${tag} ${op}`;
    for (const [k, v] of Object.entries(args))
      if (v !== undefined) line += ` ${k}=${encodeValue(typeof v === 'boolean' ? (v ? '1' : '0') : String(v))}`;
    if (data) line += ` data=${data.length}`;
    const head = Buffer.from(line + '\n', 'latin1');
    const all = data ? Buffer.concat([head, data]) : head;
    for (let off = 0; off < all.length; ) off += fs.writeSync(this.#reqFd, all, off, all.length - off);
  }

  /** A call answered at once (PROTOCOL.md `ok` / `missing`); `pending` is not allowed here. */
  call(op: string, args: Args = {}, data?: Uint8Array): Reply {
    const r = this.#roundTrip(op, args, data);
    if (r === 'pending') throw new StackHelperError(`${op} went pending where a synchronous answer was expected`);
    return r;
  }

  /** A call that may block: resolves with its `done` event (or its immediate reply). */
  async callAsync(op: string, args: Args = {}, data?: Uint8Array): Promise<Done | { kind: 'missing'; what: string }> {
    const tag = this.#next;
    let resolveDone!: (d: Done) => void;
    const done = new Promise<Done>((r) => (resolveDone = r));
    this.#pending.set(tag, resolveDone);
    this.#events.ref();
    let r: Reply | 'pending';
    try {
      r = this.#roundTrip(op, args, data);
    } catch (e) {
      this.#pending.delete(tag);
      throw e;
    }
    if (r !== 'pending') {
      this.#pending.delete(tag);
      if (!this.#pending.size) this.#events.unref();
      if (r.kind === 'missing') return r;
      return { ret: r.ret, errno: r.errno, elapsedMs: 0, kv: r.kv, data: r.data };
    }
    return done;
  }

  #roundTrip(op: string, args: Args, data?: Uint8Array): Reply | 'pending' {
    const tag = this.#next++;
    this.#write(tag, op, args, data);
    const line = this.#readLine();
    if (line === null) throw new StackHelperError(`the stack helper died during ${op}${this.#why()}`);
    const words = line.split(' ');
    if (Number(words[0]) !== tag) throw new StackHelperError(`stack helper: reply ${JSON.stringify(line)} to request ${tag}`);
    const kv = parseKv(words.slice(2));
    switch (words[1]) {
      case 'ok': {
        const ret = Number(kv.ret);
        const body = kv.data !== undefined ? this.#readBytes(Number(kv.data)) : Buffer.alloc(0);
        return { kind: 'ok', ret, errno: ret < 0 ? (kv.errno ?? 'EUNKNOWN') : null, kv, data: body };
      }
      case 'pending':
        return 'pending';
      case 'missing':
        return { kind: 'missing', what: kv.what ?? op };
      default:
        throw new StackHelperError(`stack helper refused ${op}: ${kv.msg ?? line}`);
    }
  }

  #onEvents(chunk: Buffer): void {
    this.#evBuf = this.#evBuf.length ? Buffer.concat([this.#evBuf, chunk]) : chunk;
    for (;;) {
      const nl = this.#evBuf.indexOf(10);
      if (nl < 0) return;
      const words = this.#evBuf.subarray(0, nl).toString('latin1').split(' ');
      const kv = parseKv(words.slice(2));
      const need = kv.data !== undefined ? Number(kv.data) : 0;
      if (this.#evBuf.length < nl + 1 + need) return;
      const data = Buffer.from(this.#evBuf.subarray(nl + 1, nl + 1 + need));
      this.#evBuf = this.#evBuf.subarray(nl + 1 + need);
      const tag = Number(words[0]);
      const resolve = this.#pending.get(tag);
      this.#pending.delete(tag);
      if (!this.#pending.size) this.#events.unref();
      const ret = Number(kv.ret);
      resolve?.({ ret, errno: ret < 0 ? (kv.errno ?? 'EUNKNOWN') : null, elapsedMs: Number(kv.elapsed_us ?? 0) / 1000, kv, data });
    }
  }

  /** Ends the helper: its stack goes with it. */
  close(): void {
    if (!this.#exited) this.#child.kill('SIGKILL');
    try {
      fs.closeSync(this.#reqFd);
      fs.closeSync(this.#replyFd);
    } catch {
      // closed already
    }
    this.#events.destroy();
  }
}
