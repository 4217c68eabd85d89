// KernelSocket: the system under test. Every method is exactly one syscall with exactly the
// options the caller names — no SO_REUSEADDR behind your back (unlike libuv's listeners).
// An errno is a result ({ ret, errno }), never an exception.
import { formatEndpoint, parseAddress, type IpFamily } from '../wire/address';
import { fromRealtimeUs, wallUs } from './clock';
import { native, type AsyncSyscallResult, type SyscallResult } from './native';
import { decodeSockaddr, encodeSockaddr, type SocketAddress } from './sockaddr';

export type Proto = 'tcp' | 'udp';

export interface Linger {
  onoff: boolean;
  seconds: number;
}

/** Socket options a lab may name, with the value type each takes. */
export interface SocketOptionValues {
  SO_REUSEADDR: boolean;
  SO_REUSEPORT: boolean;
  SO_LINGER: Linger;
  SO_RCVBUF: number;
  SO_SNDBUF: number;
  SO_KEEPALIVE: boolean;
  IPV6_V6ONLY: boolean;
  TCP_NODELAY: boolean;
  TCP_MAXSEG: number;
  /** struct ip_mreq: join `group` on the interface with address `iface` */
  IP_ADD_MEMBERSHIP: { group: string; iface: string };
  /** Linux ≥ 6.3 (and backports, Debian's 6.1): per-socket ephemeral port range [lo, hi] (0 = system default) */
  IP_LOCAL_PORT_RANGE: { lo: number; hi: number };
}
export type SocketOption = keyof SocketOptionValues;

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

const TCP_STATES = [
  'UNKNOWN',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
  'NEW_SYN_RECV',
] as const;
export type KernelTcpState = (typeof TCP_STATES)[number];

export function tcpStateName(n: number): KernelTcpState {
  return TCP_STATES[n] ?? 'UNKNOWN';
}

/** The part of struct tcp_info (linux/tcp.h) twlab reads. */
export interface TcpInfo {
  state: KernelTcpState;
  retransmits: number;
  probes: number;
  backoff: number;
  options: number;
  rtoUs: number;
  sndMss: number;
  rcvMss: number;
  unacked: number;
  lost: number;
  retrans: number;
  lastDataSentMs: number;
  lastAckRecvMs: number;
  rttUs: number;
  sndCwnd: number;
  totalRetrans: number;
}

function optionSpec(name: SocketOption): { level: number; optname: number } {
  const c = native().constants;
  switch (name) {
    case 'SO_REUSEADDR':
    case 'SO_REUSEPORT':
    case 'SO_LINGER':
    case 'SO_RCVBUF':
    case 'SO_SNDBUF':
    case 'SO_KEEPALIVE':
      return { level: c.SOL_SOCKET, optname: c[name] };
    case 'IPV6_V6ONLY':
      return { level: c.IPPROTO_IPV6, optname: c.IPV6_V6ONLY };
    case 'TCP_NODELAY':
    case 'TCP_MAXSEG':
      return { level: c.IPPROTO_TCP, optname: c[name] };
    case 'IP_ADD_MEMBERSHIP':
    case 'IP_LOCAL_PORT_RANGE':
      return { level: c.IPPROTO_IP, optname: c[name] };
  }
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
}

function encodeOption<K extends SocketOption>(name: K, value: SocketOptionValues[K]): Buffer {
  switch (name) {
    case 'SO_LINGER': {
      const l = value as Linger;
      const b = Buffer.alloc(8); // struct linger { int l_onoff; int l_linger; }
      b.writeInt32LE(l.onoff ? 1 : 0, 0);
      b.writeInt32LE(l.seconds, 4);
      return b;
    }
    case 'IP_ADD_MEMBERSHIP': {
      const m = value as SocketOptionValues['IP_ADD_MEMBERSHIP'];
      const b = Buffer.alloc(8); // struct ip_mreq { in_addr imr_multiaddr; in_addr imr_interface; }
      b.set(parseAddress(m.group).bytes, 0);
      b.set(parseAddress(m.iface).bytes, 4);
      return b;
    }
    case 'IP_LOCAL_PORT_RANGE': {
      const r = value as SocketOptionValues['IP_LOCAL_PORT_RANGE'];
      const b = Buffer.alloc(4); // u32: low 16 bits = lo, high 16 bits = hi (ip(7))
      b.writeUInt32LE((((r.hi & 0xffff) << 16) | (r.lo & 0xffff)) >>> 0);
      return b;
    }
    default:
      return int32(typeof value === 'boolean' ? (value ? 1 : 0) : (value as number));
  }
}

function decodeOption<K extends SocketOption>(name: K, b: Buffer): SocketOptionValues[K] {
  switch (name) {
    case 'SO_LINGER':
      return { onoff: b.readInt32LE(0) !== 0, seconds: b.readInt32LE(4) } as SocketOptionValues[K];
    case 'IP_ADD_MEMBERSHIP':
      throw new TypeError('IP_ADD_MEMBERSHIP cannot be read back');
    case 'IP_LOCAL_PORT_RANGE': {
      const v = b.readUInt32LE(0);
      return { lo: v & 0xffff, hi: v >>> 16 } as SocketOptionValues[K];
    }
    case 'SO_RCVBUF':
    case 'SO_SNDBUF':
    case 'TCP_MAXSEG':
      return b.readInt32LE(0) as SocketOptionValues[K];
    default:
      return (b.readInt32LE(0) !== 0) as SocketOptionValues[K];
  }
}

export interface OpenOptions {
  nonBlocking?: boolean;
  observer?: SyscallObserver;
}

export class KernelSocket {
  readonly fd: number;
  readonly family: IpFamily;
  readonly proto: Proto;
  #observer: SyscallObserver | undefined;
  #closed = false;

  private constructor(fd: number, family: IpFamily, proto: Proto, observer?: SyscallObserver) {
    this.fd = fd;
    this.family = family;
    this.proto = proto;
    this.#observer = observer;
  }

  /** socket(2). Returns the socket, or null with the errno in `result`. */
  static open(family: IpFamily, proto: Proto, opts: OpenOptions = {}): { socket: KernelSocket | null; result: SyscallResult } {
    const c = native().constants;
    const domain = family === 'ipv4' ? c.AF_INET : c.AF_INET6;
    const type = (proto === 'tcp' ? c.SOCK_STREAM : c.SOCK_DGRAM) | c.SOCK_CLOEXEC | (opts.nonBlocking ? c.SOCK_NONBLOCK : 0);
    const at = wallUs();
    const result = native().socket(domain, type, 0);
    opts.observer?.({ at, fd: result.ret, call: 'socket', args: { family, proto, nonBlocking: !!opts.nonBlocking }, ret: result.ret, errno: result.errno });
    return { socket: result.ret >= 0 ? new KernelSocket(result.ret, family, proto, opts.observer) : null, result };
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
    const { level, optname } = optionSpec(name);
    const at = wallUs();
    return this.#record('setsockopt', { option: name, value }, at, native().setsockopt(this.fd, level, optname, encodeOption(name, value)));
  }

  getOption<K extends SocketOption>(name: K): SyscallResult & { value: SocketOptionValues[K] | null } {
    const { level, optname } = optionSpec(name);
    const len = name === 'SO_LINGER' || name === 'IP_ADD_MEMBERSHIP' ? 8 : 4;
    const r = native().getsockopt(this.fd, level, optname, len);
    return { ret: r.ret, errno: r.errno, value: r.ret < 0 ? null : decodeOption(name, r.value) };
  }

  bind(address: string, port: number): SyscallResult {
    const at = wallUs();
    return this.#record('bind', { address, port }, at, native().bind(this.fd, encodeSockaddr(address, port)));
  }

  listen(backlog = 128): SyscallResult {
    const at = wallUs();
    return this.#record('listen', { backlog }, at, native().listen(this.fd, backlog));
  }

  async connect(address: string, port: number): Promise<AsyncSyscallResult> {
    const at = wallUs();
    return this.#record('connect', { address, port }, at, await native().connect(this.fd, encodeSockaddr(address, port)));
  }

  /** accept(2) on a worker; `timeoutMs` (default: forever) bounds the wait with poll(2) → ETIMEDOUT. */
  async accept(timeoutMs = -1): Promise<{ socket: KernelSocket | null; peer: SocketAddress | null; result: AsyncSyscallResult }> {
    const at = wallUs();
    const r = await native().accept(this.fd, timeoutMs);
    const { addr, ...result } = r;
    this.#record('accept', { timeoutMs }, at, result);
    if (r.ret < 0) return { socket: null, peer: null, result };
    return { socket: new KernelSocket(r.ret, this.family, this.proto, this.#observer), peer: decodeSockaddr(addr), result };
  }

  async send(data: Uint8Array, flags = 0): Promise<AsyncSyscallResult> {
    const at = wallUs();
    return this.#record('send', { bytes: data.length, flags }, at, await native().send(this.fd, Buffer.from(data.buffer, data.byteOffset, data.length), flags));
  }

  /** send(2) with MSG_DONTWAIT: never blocks, EAGAIN when the send buffer is full. */
  sendNow(data: Uint8Array, flags = 0): SyscallResult {
    const at = wallUs();
    return this.#record('send', { bytes: data.length, flags, dontwait: true }, at, native().sendNow(this.fd, Buffer.from(data.buffer, data.byteOffset, data.length), flags));
  }

  async recv(maxLength = 65536, opts: { flags?: number; timeoutMs?: number } = {}): Promise<AsyncSyscallResult & { data: Buffer }> {
    const at = wallUs();
    const r = await native().recv(this.fd, maxLength, opts.flags ?? 0, opts.timeoutMs ?? -1);
    this.#record('recv', { maxLength, flags: opts.flags ?? 0 }, at, { ret: r.ret, errno: r.errno, elapsedMs: r.elapsedMs, startUs: r.startUs });
    return r;
  }

  shutdown(how: 'SHUT_RD' | 'SHUT_WR' | 'SHUT_RDWR'): SyscallResult {
    const at = wallUs();
    return this.#record('shutdown', { how }, at, native().shutdown(this.fd, native().constants[how]));
  }

  setNonBlocking(on: boolean): SyscallResult {
    const at = wallUs();
    return this.#record('fcntl', { O_NONBLOCK: on }, at, native().setNonBlocking(this.fd, on));
  }

  /** close(2) on a worker: with SO_LINGER {1,N} it may block up to N seconds, and the loop stays free. */
  async close(): Promise<AsyncSyscallResult> {
    if (this.#closed) throw new Error(`fd ${this.fd} already closed`);
    this.#closed = true;
    const at = wallUs();
    return this.#record('close', {}, at, await native().close(this.fd));
  }

  /** close(2) inline, for sockets that cannot block on close (no SO_LINGER {1,N} with queued data). */
  closeNow(): SyscallResult {
    if (this.#closed) throw new Error(`fd ${this.fd} already closed`);
    this.#closed = true;
    const at = wallUs();
    return this.#record('close', {}, at, native().closeNow(this.fd));
  }

  /** The connection an open fd is, as "local>remote" (getsockname, getpeername), or null when it has no peer. */
  static endpointsOf(fd: number): string | null {
    const l = native().getsockname(fd);
    const p = native().getpeername(fd);
    if (l.ret < 0 || p.ret < 0) return null;
    const local = decodeSockaddr(l.addr);
    const remote = decodeSockaddr(p.addr);
    if (!local || !remote || remote.port === 0) return null;
    return `${formatEndpoint(local.address, local.port)}>${formatEndpoint(remote.address, remote.port)}`;
  }

  localAddress(): SocketAddress | null {
    const r = native().getsockname(this.fd);
    return r.ret < 0 ? null : decodeSockaddr(r.addr);
  }

  peerAddress(): SocketAddress | null {
    const r = native().getpeername(this.fd);
    return r.ret < 0 ? null : decodeSockaddr(r.addr);
  }

  /** getsockopt(TCP_INFO): the kernel's own view of this connection. */
  tcpInfo(): (SyscallResult & { info: TcpInfo | null }) {
    const c = native().constants;
    const r = native().getsockopt(this.fd, c.IPPROTO_TCP, c.TCP_INFO, c.sizeofTcpInfo);
    if (r.ret < 0 || r.value.length < 104) return { ret: r.ret, errno: r.errno, info: null };
    const b = r.value;
    return {
      ret: r.ret,
      errno: r.errno,
      info: {
        state: tcpStateName(b.readUInt8(0)),
        retransmits: b.readUInt8(2),
        probes: b.readUInt8(3),
        backoff: b.readUInt8(4),
        options: b.readUInt8(5),
        rtoUs: b.readUInt32LE(8),
        sndMss: b.readUInt32LE(16),
        rcvMss: b.readUInt32LE(20),
        unacked: b.readUInt32LE(24),
        lost: b.readUInt32LE(32),
        retrans: b.readUInt32LE(36),
        lastDataSentMs: b.readUInt32LE(44),
        lastAckRecvMs: b.readUInt32LE(56),
        rttUs: b.readUInt32LE(68),
        sndCwnd: b.readUInt32LE(80),
        totalRetrans: b.readUInt32LE(100),
      },
    };
  }
}
