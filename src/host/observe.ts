// The kernel's own view, from inside the lab namespace: the TCP socket table (/proc/net/tcp,
// /proc/net/tcp6 — per namespace) with each entry's timer, and the TCP counters
// (/proc/net/snmp, /proc/net/netstat).
//
// A file that cannot be read is an error (ObserverError, naming the file and the errno), never
// an empty table or no counters: an empty table reads as "no TIME_WAIT", and a counter that is
// not there as 0 — both would become verdicts about the kernel.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatIPv4, formatIPv6 } from '../wire/address';
import { tcpStateName, type KernelTcpState } from './backend/types';

/** Timer kinds as /proc/net/tcp numbers them (net/ipv4/tcp_ipv4.c get_tcp4_sock). */
const TIMERS = ['none', 'retransmit', 'keepalive', 'time-wait', 'probe'] as const;
export type KernelTimer = (typeof TIMERS)[number] | 'unknown';

export interface SocketEntry {
  family: 'ipv4' | 'ipv6';
  state: KernelTcpState;
  local: { address: string; port: number };
  remote: { address: string; port: number };
  timer: KernelTimer;
  /** time until the timer fires, ms (USER_HZ resolution); 0 without a timer; null where the system does not say (NetBSD's pcblist) */
  timerMs: number | null;
  /** null where the system does not say */
  retransmits: number | null;
  txQueue: number;
  rxQueue: number;
  /** null where the system does not say */
  uid: number | null;
  inode: number;
}

const USER_HZ = 100; // /proc/net/tcp reports timers in clock ticks (jiffies_delta_to_clock_t)

function hexAddress(hex: string): { family: 'ipv4' | 'ipv6'; address: string } {
  // each 32-bit word is printed in host byte order (little-endian here)
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = new Uint8Array(words.length * 4);
  words.forEach((w, i) => {
    const v = parseInt(w, 16);
    bytes[i * 4] = v & 0xff;
    bytes[i * 4 + 1] = (v >>> 8) & 0xff;
    bytes[i * 4 + 2] = (v >>> 16) & 0xff;
    bytes[i * 4 + 3] = (v >>> 24) & 0xff;
  });
  return bytes.length === 4 ? { family: 'ipv4', address: formatIPv4(bytes) } : { family: 'ipv6', address: formatIPv6(bytes) };
}

/** Parses the text of /proc/net/tcp or /proc/net/tcp6. */
export function parseProcNetTcp(text: string): SocketEntry[] {
  const out: SocketEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [localHex, localPort] = f[1]!.split(':');
    const [remoteHex, remotePort] = f[2]!.split(':');
    const [tx, rx] = f[4]!.split(':');
    const [tr, when] = f[5]!.split(':');
    const l = hexAddress(localHex!);
    const r = hexAddress(remoteHex!);
    const timerNo = parseInt(tr!, 16);
    out.push({
      family: l.family,
      state: tcpStateName(parseInt(f[3]!, 16)),
      local: { address: l.address, port: parseInt(localPort!, 16) },
      remote: { address: r.address, port: parseInt(remotePort!, 16) },
      timer: TIMERS[timerNo] ?? 'unknown',
      timerMs: timerNo === 0 ? 0 : Math.round((parseInt(when!, 16) * 1000) / USER_HZ),
      retransmits: parseInt(f[6]!, 16),
      txQueue: parseInt(tx!, 16),
      rxQueue: parseInt(rx!, 16),
      uid: Number(f[7]),
      inode: Number(f[9]),
    });
  }
  return out;
}

/** The kernel's view could not be read: which file, and why. */
export class ObserverError extends Error {
  readonly code = 'OBSERVER_READ';
  constructor(
    readonly file: string,
    readonly errno: string,
    detail?: string,
  ) {
    super(
      `the kernel's ${path.basename(file) === 'netstat' || path.basename(file) === 'snmp' ? 'counters' : 'socket table'} could not be read: ${file}: ${detail ?? errno}`,
    );
  }
}

/** Where this process's namespace shows its network files (a test points it at a folder of its own). */
export const PROC_NET = '/proc/self/net';

function readProc(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ObserverError(file, err.code ?? 'EIO', err.code ?? err.message);
  }
}

/** The first line of /proc/net/tcp{,6}: a table that lacks it was not read whole. */
const TCP_HEADER = /^\s*sl\s+local_address\s+(rem|remote)_address\s+st\s/;

/**
 * The namespace's TCP sockets, IPv4 and IPv6. Throws ObserverError when a table cannot be read;
 * /proc/net/tcp6 may be absent only on a kernel without IPv6 (then there are no IPv6 sockets).
 */
export function socketTable(dir = PROC_NET): SocketEntry[] {
  const table = (name: string): SocketEntry[] => {
    const file = path.join(dir, name);
    const text = readProc(file);
    if (!TCP_HEADER.test(text)) throw new ObserverError(file, 'EBADMSG', `no header line (read ${text.length} bytes)`);
    return parseProcNetTcp(text);
  };
  const v4 = table('tcp');
  if (!fs.existsSync(path.join(dir, 'tcp6')) && !ipv6Enabled(dir)) return v4;
  return [...v4, ...table('tcp6')];
}

/** Whether the kernel has IPv6 at all (without it, /proc/net/tcp6 does not exist). */
function ipv6Enabled(dir: string): boolean {
  return dir !== PROC_NET || fs.existsSync('/proc/sys/net/ipv6');
}

/** Entries for one local/remote pair (ports 0 = any). */
export function findSockets(local: { address?: string; port?: number }, remote: { address?: string; port?: number } = {}): SocketEntry[] {
  return socketTable().filter(
    (e) =>
      (local.address === undefined || e.local.address === local.address) &&
      (local.port === undefined || e.local.port === local.port) &&
      (remote.address === undefined || e.remote.address === remote.address) &&
      (remote.port === undefined || e.remote.port === remote.port),
  );
}

/**
 * Parses /proc/net/snmp or /proc/net/netstat: pairs of header/value lines → "Tcp.ActiveOpens"
 * etc. Throws on text that is not such pairs (a cut-short read, another file): a counter must
 * never be made up, nor quietly left out.
 */
export function parseCounters(text: string, file = 'counters'): Record<string, number> {
  const out: Record<string, number> = {};
  const lines = text.split('\n').filter(Boolean);
  if (lines.length === 0 || lines.length % 2 !== 0)
    throw new ObserverError(file, 'EBADMSG', `${lines.length} lines, not header/value pairs`);
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const head = lines[i]!.trim().split(/\s+/);
    const vals = lines[i + 1]!.trim().split(/\s+/);
    const group = head[0]!.replace(/:$/, '');
    if (head[0] !== vals[0] || head.length !== vals.length)
      throw new ObserverError(
        file,
        'EBADMSG',
        `line ${i + 2} does not match its header (${head[0]} ${head.length} fields, ${vals[0]} ${vals.length})`,
      );
    for (let k = 1; k < head.length; k++) {
      const v = Number(vals[k]);
      if (!Number.isFinite(v)) throw new ObserverError(file, 'EBADMSG', `${group}.${head[k]} is ${JSON.stringify(vals[k])}`);
      out[`${group}.${head[k]}`] = v;
    }
  }
  return out;
}

/** Every TCP-related counter of this namespace (Tcp.*, TcpExt.*, …); throws ObserverError when a file cannot be read. */
export function counters(dir = PROC_NET): Record<string, number> {
  const read = (name: string): Record<string, number> => {
    const file = path.join(dir, name);
    return parseCounters(readProc(file), file);
  };
  return { ...read('snmp'), ...read('netstat') };
}

/**
 * A counter's change between two readings: null when the kernel has no such counter (a claim
 * that needs it is then not tested — a missing counter is not a 0).
 */
export function counterChange(before: Record<string, number>, after: Record<string, number>, name: string): number | null {
  if (!(name in after) || !(name in before)) return null;
  return after[name]! - before[name]!;
}

/** Counters that changed between two readings, as deltas. */
export function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}
