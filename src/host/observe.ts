// The kernel's own view, from inside the lab namespace: the TCP socket table (/proc/net/tcp,
// /proc/net/tcp6 — per namespace) with each entry's timer, and the TCP counters
// (/proc/net/snmp, /proc/net/netstat).
import * as fs from 'node:fs';
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

/** The namespace's TCP sockets, IPv4 and IPv6. */
export function socketTable(): SocketEntry[] {
  const read = (p: string): string => {
    try {
      return fs.readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  return [...parseProcNetTcp(read('/proc/self/net/tcp')), ...parseProcNetTcp(read('/proc/self/net/tcp6'))];
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

/** Parses /proc/net/snmp or /proc/net/netstat: pairs of header/value lines → "Tcp.ActiveOpens" etc. */
export function parseCounters(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  const lines = text.split('\n').filter(Boolean);
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const head = lines[i]!.split(/\s+/);
    const vals = lines[i + 1]!.split(/\s+/);
    const group = head[0]!.replace(/:$/, '');
    for (let k = 1; k < head.length; k++) out[`${group}.${head[k]}`] = Number(vals[k]);
  }
  return out;
}

/** Every TCP-related counter of this namespace (Tcp.*, TcpExt.*, …). */
export function counters(): Record<string, number> {
  const read = (p: string): string => {
    try {
      return fs.readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  return { ...parseCounters(read('/proc/self/net/snmp')), ...parseCounters(read('/proc/self/net/netstat')) };
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
