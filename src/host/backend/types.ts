// The seam between a lab and the system under test. A lab calls ctx.socket(), ctx.table(),
// ctx.counters(), ctx.sysctl(), ctx.helper(); behind them a Backend answers — the Linux kernel
// through the addon (linux.ts), or another OS's TCP/IP stack through a helper process of ours
// (stack-helper.ts, native/stack-helper/PROTOCOL.md). A lab does not branch on the OS: what one
// OS lacks is a KnobMissingError naming it, and the claims that need it say `not tested`.
import type { IpFamily } from '../../wire/address';
import type { AsyncSyscallResult, SyscallResult } from '../native';
import type { SocketAddress } from '../sockaddr';
import type { SocketEntry } from '../observe';

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

export const TCP_STATES = [
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

/** Linux's number of a TCP state (include/net/tcp_states.h) → its name */
export function tcpStateName(n: number): KernelTcpState {
  return TCP_STATES[n] ?? 'UNKNOWN';
}

/** The part of struct tcp_info twlab reads; null where the system under test does not fill it. */
export interface TcpInfo {
  state: KernelTcpState;
  retransmits: number | null;
  probes: number | null;
  backoff: number | null;
  options: number | null;
  rtoUs: number | null;
  sndMss: number | null;
  rcvMss: number | null;
  unacked: number | null;
  lost: number | null;
  retrans: number | null;
  lastDataSentMs: number | null;
  lastAckRecvMs: number | null;
  rttUs: number | null;
  sndCwnd: number | null;
  totalRetrans: number | null;
}

export type Shutdown = 'SHUT_RD' | 'SHUT_WR' | 'SHUT_RDWR';

/**
 * One process's socket calls on the system under test. Descriptors are the system's own small
 * integers; errnos are names (`EADDRINUSE`), whatever the system numbers them.
 */
export interface SocketCalls {
  socket(family: IpFamily, proto: Proto, nonBlocking: boolean): SyscallResult;
  /** throws KnobMissingError for an option the system does not have */
  setOption<K extends SocketOption>(fd: number, name: K, value: SocketOptionValues[K]): SyscallResult;
  getOption<K extends SocketOption>(fd: number, name: K): SyscallResult & { value: SocketOptionValues[K] | null };
  bind(fd: number, address: string, port: number): SyscallResult;
  listen(fd: number, backlog: number): SyscallResult;
  connect(fd: number, address: string, port: number): Promise<AsyncSyscallResult>;
  accept(fd: number, timeoutMs: number): Promise<AsyncSyscallResult & { peer: SocketAddress | null }>;
  send(fd: number, data: Uint8Array, opts?: { oob?: boolean }): Promise<AsyncSyscallResult>;
  /** send(2) with MSG_DONTWAIT */
  sendNow(fd: number, data: Uint8Array): SyscallResult;
  recv(fd: number, maxLength: number, opts: { peek: boolean; timeoutMs: number }): Promise<AsyncSyscallResult & { data: Buffer }>;
  shutdown(fd: number, how: Shutdown): SyscallResult;
  setNonBlocking(fd: number, on: boolean): SyscallResult;
  /** close(2) off the event loop: a lingering close may block */
  close(fd: number): Promise<AsyncSyscallResult>;
  closeNow(fd: number): SyscallResult;
  localAddress(fd: number): SocketAddress | null;
  peerAddress(fd: number): SocketAddress | null;
  tcpInfo(fd: number): SyscallResult & { info: TcpInfo | null };
}

/** Which system answered: "Linux 6.18.44-…", "NetBSD 7.99.34 (src-netbsd 82f3a69)". */
export interface SystemIdentity {
  os: 'Linux' | 'NetBSD' | 'FreeBSD';
  /** uname -r, or the stack's own release ("7.99.34") */
  release: string;
  /** what a column or a result is labelled with */
  label: string;
}

/** The kernel's own view: socket table, counters, sysctls (by Linux's names; mapped where the OS has an equivalent). */
export interface Observer {
  table(): SocketEntry[];
  /**
   * One four-tuple's socket as table() would show it (null: none), asked of the system directly;
   * absent where the system has no such lookup (then table() is read whole).
   */
  socketAt?(local: { address: string; port: number }, remote: { address: string; port: number }): SocketEntry | null;
  /**
   * counters by Linux's names (Tcp.*, TcpExt.*): one the system lacks is absent (`in` says false;
   * another OS's reading throws KnobMissingError naming why when it is read), never a 0. A reading
   * that fails throws.
   */
  counters(): Record<string, number>;
  readSysctl(name: string): string | null;
  /** throws KnobMissingError when the system has no such knob */
  writeSysctl(name: string, value: string | number): string;
}

/** A process that can hold sockets and be killed (ctx.helper(), ctx.otherUid()). */
export interface ProcessHandle {
  readonly uid: number;
  readonly pid: number | undefined;
  bind(req: RemoteBind): Promise<{ id: number; bind: SyscallResult }>;
  listen(id: number): Promise<SyscallResult>;
  close(id: number): Promise<SyscallResult>;
  socket(family: IpFamily, proto: Proto): Promise<number>;
  setLinger(id: number, onoff: boolean, seconds: number): Promise<SyscallResult>;
  /** getsockopt(SO_LINGER) in that process: what its socket really has */
  getLinger(id: number): Promise<SyscallResult & { value: Linger | null }>;
  connect(id: number, address: string, port: number): Promise<SyscallResult>;
  /** send(2) with MSG_DONTWAIT of `bytes` zero bytes */
  send(id: number, bytes: number): Promise<SyscallResult>;
  localAddress(id: number): Promise<{ address: string; port: number } | null>;
  /** dies without closing its sockets: the system's exit path closes them. Resolves with how it died. */
  kill(): Promise<NodeJS.Signals | 'exit' | null>;
  stop(): void;
}

export interface RemoteBind {
  family: IpFamily;
  proto: Proto;
  reuseaddr: boolean;
  reuseport: boolean;
  v6only: boolean | null;
  address: string;
  port: number;
}

/** The system under test, as a lab process sees it. */
export interface Backend extends Observer {
  readonly identity: SystemIdentity;
  readonly sockets: SocketCalls;
  /** a process of `uid` (default: this one's) that holds sockets of its own */
  process(uid?: number): Promise<ProcessHandle>;
  /** the MTU of the lab's wire, kernel side */
  setMtu(mtu: number): Promise<void>;
  /** releases whatever the backend holds (a helper process) */
  close(): void;
}

/** What the system under test lacks: an option, sysctl or counter of another OS. */
export class KnobMissingError extends Error {
  readonly code = 'KNOB_MISSING';
  constructor(
    /** the knob as the lab named it: `net.ipv4.tcp_rfc1337`, `TcpExt.TWRecycled`, `IP_LOCAL_PORT_RANGE` */
    readonly knob: string,
    readonly system: string,
    why = 'has no equivalent',
  ) {
    super(`${knob}: ${system} ${why}`);
  }
}
