// KernelSocket: the system under test. Every method is exactly one syscall with exactly the
// options the caller names — no SO_REUSEADDR behind your back (unlike libuv's listeners).
// An errno is a result ({ ret, errno }), never an exception.
import { formatEndpoint, type IpFamily } from '../wire/address';
import { currentBackend } from './backend/current';
import type { Proto, Shutdown, SocketCalls, SocketOption, SocketOptionValues, TcpInfo } from './backend/types';
import { fromRealtimeUs, wallUs } from './clock';
import type { AsyncSyscallResult, SyscallResult } from './native';
import type { SocketAddress } from './sockaddr';

const MSG_OOB = 1; // Linux's number (bits/socket.h), the one flag send() takes

export type { KernelTcpState, Linger, Proto, SocketOption, SocketOptionValues, TcpInfo } from './backend/types';
export { tcpStateName } from './backend/types';

/** One syscall as the timeline records it. `at` is wall time in µs at the call's start (on a worker: when the worker began it). */
export interface SyscallRecord {
  at: number;
  fd: number;
  call: string;
  args: Record<string, unknown>;
  ret: number;
  errno: string | null;
  elapsedMs?: number;
}
export type SyscallObserver = (r: SyscallRecord) => void;

export interface OpenOptions {
  nonBlocking?: boolean;
  observer?: SyscallObserver;
  /** the system whose socket this is (default: this process's system under test) */
  calls?: SocketCalls;
}

export class KernelSocket {
  readonly fd: number;
  readonly family: IpFamily;
  readonly proto: Proto;
  #calls: SocketCalls;
  #observer: SyscallObserver | undefined;
  #closed = false;

  private constructor(calls: SocketCalls, fd: number, family: IpFamily, proto: Proto, observer?: SyscallObserver) {
    this.#calls = calls;
    this.fd = fd;
    this.family = family;
    this.proto = proto;
    this.#observer = observer;
  }

  /** socket(2). Returns the socket, or null with the errno in `result`. */
  static open(family: IpFamily, proto: Proto, opts: OpenOptions = {}): { socket: KernelSocket | null; result: SyscallResult } {
    const calls = opts.calls ?? currentBackend().sockets;
    const at = wallUs();
    const result = calls.socket(family, proto, !!opts.nonBlocking);
    opts.observer?.({
      at,
      fd: result.ret,
      call: 'socket',
      args: { family, proto, nonBlocking: !!opts.nonBlocking },
      ret: result.ret,
      errno: result.errno,
    });
    return { socket: result.ret >= 0 ? new KernelSocket(calls, result.ret, family, proto, opts.observer) : null, result };
  }

  /** Like open(), but a failing socket(2) is a programming or environment error here. */
  static create(family: IpFamily, proto: Proto, opts: OpenOptions = {}): KernelSocket {
    const { socket, result } = KernelSocket.open(family, proto, opts);
    if (!socket) throw new Error(`socket(${family}, ${proto}) failed: ${result.errno}`);
    return socket;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #record<R extends SyscallResult>(call: string, args: Record<string, unknown>, at: number, r: R): R {
    const rec: SyscallRecord = { at, fd: this.fd, call, args, ret: r.ret, errno: r.errno };
    if ('elapsedMs' in r) {
      const a = r as unknown as AsyncSyscallResult;
      rec.elapsedMs = a.elapsedMs;
      // a call on a worker ran when the worker got to it: that is when it happened
      if (a.startUs) rec.at = fromRealtimeUs(a.startUs);
    }
    this.#observer?.(rec);
    return r;
  }

  setOption<K extends SocketOption>(name: K, value: SocketOptionValues[K]): SyscallResult {
    const at = wallUs();
    return this.#record('setsockopt', { option: name, value }, at, this.#calls.setOption(this.fd, name, value));
  }

  getOption<K extends SocketOption>(name: K): SyscallResult & { value: SocketOptionValues[K] | null } {
    return this.#calls.getOption(this.fd, name);
  }

  bind(address: string, port: number): SyscallResult {
    const at = wallUs();
    return this.#record('bind', { address, port }, at, this.#calls.bind(this.fd, address, port));
  }

  listen(backlog = 128): SyscallResult {
    const at = wallUs();
    return this.#record('listen', { backlog }, at, this.#calls.listen(this.fd, backlog));
  }

  async connect(address: string, port: number): Promise<AsyncSyscallResult> {
    const at = wallUs();
    return this.#record('connect', { address, port }, at, await this.#calls.connect(this.fd, address, port));
  }

  /** accept(2) on a worker; `timeoutMs` (default: forever) bounds the wait with poll(2) → ETIMEDOUT. */
  async accept(timeoutMs = -1): Promise<{ socket: KernelSocket | null; peer: SocketAddress | null; result: AsyncSyscallResult }> {
    const at = wallUs();
    const { peer, ...result } = await this.#calls.accept(this.fd, timeoutMs);
    this.#record('accept', { timeoutMs }, at, result);
    if (result.ret < 0) return { socket: null, peer: null, result };
    return { socket: new KernelSocket(this.#calls, result.ret, this.family, this.proto, this.#observer), peer, result };
  }

  /** send(2) on a worker; `flags` may be MSG_OOB (1), as Linux numbers it (urgent data). */
  async send(data: Uint8Array, flags = 0): Promise<AsyncSyscallResult> {
    if (flags & ~MSG_OOB) throw new TypeError(`send flags ${flags}: only MSG_OOB is supported`);
    const at = wallUs();
    return this.#record('send', { bytes: data.length, flags }, at, await this.#calls.send(this.fd, data, { oob: flags === MSG_OOB }));
  }

  /** send(2) with MSG_DONTWAIT: never blocks, EAGAIN when the send buffer is full. */
  sendNow(data: Uint8Array): SyscallResult {
    const at = wallUs();
    return this.#record('send', { bytes: data.length, flags: 0, dontwait: true }, at, this.#calls.sendNow(this.fd, data));
  }

  async recv(maxLength = 65536, opts: { peek?: boolean; timeoutMs?: number } = {}): Promise<AsyncSyscallResult & { data: Buffer }> {
    const at = wallUs();
    const r = await this.#calls.recv(this.fd, maxLength, { peek: !!opts.peek, timeoutMs: opts.timeoutMs ?? -1 });
    this.#record('recv', { maxLength, ...(opts.peek ? { peek: true } : {}) }, at, {
      ret: r.ret,
      errno: r.errno,
      elapsedMs: r.elapsedMs,
      ...(r.startUs === undefined ? {} : { startUs: r.startUs }),
    });
    return r;
  }

  shutdown(how: Shutdown): SyscallResult {
    const at = wallUs();
    return this.#record('shutdown', { how }, at, this.#calls.shutdown(this.fd, how));
  }

  setNonBlocking(on: boolean): SyscallResult {
    const at = wallUs();
    return this.#record('fcntl', { O_NONBLOCK: on }, at, this.#calls.setNonBlocking(this.fd, on));
  }

  /** close(2) on a worker: with SO_LINGER {1,N} it may block up to N seconds, and the loop stays free. */
  async close(): Promise<AsyncSyscallResult> {
    if (this.#closed) throw new Error(`fd ${this.fd} already closed`);
    this.#closed = true;
    const at = wallUs();
    return this.#record('close', {}, at, await this.#calls.close(this.fd));
  }

  /** close(2) inline, for sockets that cannot block on close (no SO_LINGER {1,N} with queued data). */
  closeNow(): SyscallResult {
    if (this.#closed) throw new Error(`fd ${this.fd} already closed`);
    this.#closed = true;
    const at = wallUs();
    return this.#record('close', {}, at, this.#calls.closeNow(this.fd));
  }

  /** The connection an open fd of the system `calls` reach is, as "local>remote" (getsockname, getpeername), or null when it has no peer. */
  static endpointsOf(fd: number, calls: SocketCalls = currentBackend().sockets): string | null {
    const local = calls.localAddress(fd);
    const remote = calls.peerAddress(fd);
    if (!local || !remote || remote.port === 0) return null;
    return `${formatEndpoint(local.address, local.port)}>${formatEndpoint(remote.address, remote.port)}`;
  }

  localAddress(): SocketAddress | null {
    return this.#calls.localAddress(this.fd);
  }

  peerAddress(): SocketAddress | null {
    return this.#calls.peerAddress(this.fd);
  }

  /** getsockopt(TCP_INFO): the kernel's own view of this connection (fields it does not fill are null). */
  tcpInfo(): SyscallResult & { info: TcpInfo | null } {
    return this.#calls.tcpInfo(this.fd);
  }
}
