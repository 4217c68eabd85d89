// The typed face of native/addon.cc. Loading it is the only thing this file does.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Result of a syscall that cannot block: `errno` is the errno's name, or null on success. */
export interface SyscallResult {
  ret: number;
  errno: string | null;
}

/** Result of a syscall run on a libuv worker. */
export interface AsyncSyscallResult extends SyscallResult {
  elapsedMs: number;
  /** when the worker began the call (CLOCK_REALTIME, µs): later than asked when the thread pool is busy */
  startUs?: number;
}

export interface NativeConstants {
  AF_INET: number;
  AF_INET6: number;
  SOCK_STREAM: number;
  SOCK_DGRAM: number;
  SOCK_NONBLOCK: number;
  SOCK_CLOEXEC: number;
  IPPROTO_TCP: number;
  IPPROTO_UDP: number;
  IPPROTO_IP: number;
  IPPROTO_IPV6: number;
  SOL_SOCKET: number;
  SO_REUSEADDR: number;
  SO_REUSEPORT: number;
  SO_LINGER: number;
  SO_RCVBUF: number;
  SO_SNDBUF: number;
  SO_ERROR: number;
  SO_TYPE: number;
  SO_KEEPALIVE: number;
  SO_BINDTODEVICE: number;
  IPV6_V6ONLY: number;
  IPV6_JOIN_GROUP: number;
  IP_ADD_MEMBERSHIP: number;
  IP_LOCAL_PORT_RANGE: number;
  IP_TTL: number;
  IP_MULTICAST_LOOP: number;
  TCP_NODELAY: number;
  TCP_INFO: number;
  TCP_MAXSEG: number;
  SHUT_RD: number;
  SHUT_WR: number;
  SHUT_RDWR: number;
  MSG_DONTWAIT: number;
  MSG_PEEK: number;
  MSG_NOSIGNAL: number;
  EAGAIN: number;
  EINPROGRESS: number;
  SO_RCVBUFFORCE: number;
  sizeofTcpInfo: number;
}

export interface TunPollerHandle {
  stop(): void;
  /** reads every frame queued now and hands them to the callback before returning */
  drain(): void;
}

/** A packet socket's reader (see native/addon.cc "AF_PACKET"). */
export interface PacketPollerHandle {
  stop(): void;
  /** reads every frame queued now, handing them to the callback before it returns; how many */
  drain(): number;
  setSnaplen(snaplen: number): void;
}

/** frames (at most snaplen bytes each), the kernel's stamps (µs, CLOCK_REALTIME), lengths on the wire, sent by this host? */
export type PacketFramesCallback = (
  frames: Buffer[],
  timesUs: number[],
  lengths: number[],
  outgoing: boolean[],
  errno: string | null,
) => void;

export interface NativeAddon {
  constants: NativeConstants;
  socket(domain: number, type: number, protocol: number): SyscallResult;
  setsockopt(fd: number, level: number, optname: number, value: Buffer): SyscallResult;
  getsockopt(fd: number, level: number, optname: number, length: number): SyscallResult & { value: Buffer };
  bind(fd: number, sockaddr: Buffer): SyscallResult;
  listen(fd: number, backlog: number): SyscallResult;
  shutdown(fd: number, how: number): SyscallResult;
  getsockname(fd: number): SyscallResult & { addr: Buffer };
  getpeername(fd: number): SyscallResult & { addr: Buffer };
  closeNow(fd: number): SyscallResult;
  setNonBlocking(fd: number, on: boolean): SyscallResult;
  sendNow(fd: number, data: Buffer, flags: number): SyscallResult;
  connect(fd: number, sockaddr: Buffer): Promise<AsyncSyscallResult>;
  accept(fd: number, timeoutMs: number): Promise<AsyncSyscallResult & { addr: Buffer }>;
  send(fd: number, data: Buffer, flags: number): Promise<AsyncSyscallResult>;
  recv(fd: number, maxLength: number, flags: number, timeoutMs: number): Promise<AsyncSyscallResult & { data: Buffer }>;
  close(fd: number): Promise<AsyncSyscallResult>;
  tunOpen(name: string): SyscallResult & { name: string | null };
  tunWrite(fd: number, frame: Buffer | Uint8Array): SyscallResult;
  /** clock_settime(CLOCK_REALTIME, now + deltaMs): a twlab guest's own clock only (src/host/clock.ts) */
  shiftRealtime(deltaMs: number): SyscallResult;
  TunPoller: new (fd: number, onFrames: (frames: Buffer[], timesUs: number[], errno: string | null) => void) => TunPollerHandle;
  /**
   * AF_PACKET socket bound to `ifname` with kernel timestamps; `raw`: SOCK_RAW (link header kept)
   * instead of SOCK_DGRAM; `ignoreOutgoing`: frames this host sends are not read back (a tap's
   * wire: read with TunPoller, write with packetSend); `step` names the call that failed
   */
  packetOpen(ifname: string, raw?: boolean, ignoreOutgoing?: boolean): SyscallResult & { ifindex: number | null; step: string | null };
  packetSend(fd: number, frame: Buffer | Uint8Array): SyscallResult;
  /** PACKET_STATISTICS since the last call: frames queued to the socket, frames dropped for want of buffer */
  packetStats(fd: number): SyscallResult & { packets: number; drops: number };
  PacketPoller: new (fd: number, snaplen: number, onFrames: PacketFramesCallback) => PacketPollerHandle;
  /** clock_gettime(CLOCK_REALTIME) in µs (ns as the fraction) */
  realtimeUs(): number;
  /** the kernel's TCP socket for one four-tuple (exact NETLINK_SOCK_DIAG request); ENOENT when none; remotePort 0: the listener it falls to */
  diagLookup(
    local: Buffer,
    remote: Buffer,
  ): SyscallResult & {
    state?: number;
    timer?: number;
    expiresMs?: number;
    retrans?: number;
    rqueue?: number;
    wqueue?: number;
    uid?: number;
    inode?: number;
    remotePort?: number;
  };
  /** renameat2(a, b, RENAME_EXCHANGE): swaps two paths in one step */
  renameExchange(a: string, b: string): SyscallResult;
  /** pipe2(O_CLOEXEC), both ends blocking */
  pipe(): SyscallResult & { readFd: number; writeFd: number };
}

/** The native addon is not built (a CodedError: src/lab/api/errors.ts). */
export class AddonMissingError extends Error {
  readonly code = 'ADDON_MISSING';
  readonly exitCode = 2;
}

/** Where node-gyp puts the addon, relative to the package root. */
export const ADDON_RELATIVE_PATH = path.join('build', 'Release', 'twlab.node');

export function packageRoot(): string {
  // this file is dist/src/host/native.js (or src/host/native.ts under vitest)
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    dir = path.dirname(dir);
  }
  throw new AddonMissingError(`cannot find the twlab package root above ${__dirname}`);
}

export function addonPath(): string {
  // TWLAB_ADDON: a copy of the addon readable by another uid (see uidhelper.ts)
  return process.env.TWLAB_ADDON || path.join(packageRoot(), ADDON_RELATIVE_PATH);
}

let loaded: NativeAddon | null = null;

export function native(): NativeAddon {
  if (loaded) return loaded;
  const file = addonPath();
  if (!fs.existsSync(file)) {
    throw new AddonMissingError(`native addon not built (${file} missing); run \`npm install\` or \`npm run build\``);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded = require(file) as NativeAddon;
  return loaded;
}
