// Waiting for a segment, as packetimpact's `conn.Expect(TCP{Flags: RST}, timeout)` or a packetdrill
// line reads: the segment that came, or a typed "nothing came" — never an exception. An expect
// paces a script (wait for the answer, not longer); what a lab judges is read from the capture and
// the kernel's side afterwards, never from whether an expect was met.
import type { TimerHandle } from './clock';
import type { Direction, FourTuple, SegmentEvent } from './stack';
import type { TcpFlags } from '../wire/tcp';
import { formatFlags } from '../wire/tcp';

/**
 * A segment's shape: every field given must match. `flags` is the exact set, in letters
 * (S F R P A U E C: 'SA' a SYN-ACK, 'RA' an RST-ACK, 'A' a bare ACK); `syn`, `rst`… test one flag.
 */
export interface SegmentPattern {
  flags?: string;
  syn?: boolean;
  fin?: boolean;
  rst?: boolean;
  ack?: boolean;
  psh?: boolean;
  /** SEG.SEQ */
  seq?: number;
  /** SEG.ACK (the acknowledgment number; `ack` is the flag) */
  ackNo?: number;
  /** payload length */
  len?: number;
  /** the peer's port the segment concerns (its destination when incoming) */
  peerPort?: number;
  /** one four-tuple, as the peer sees it (a connection's `tuple`) */
  on?: FourTuple;
}

/** A pattern, or any test of the segment event (a predicate sees the segment's direction too). */
export type SegmentMatch = SegmentPattern | ((e: SegmentEvent) => boolean);

/** The segment came: `afterMs` after the expect began (stack clock). */
export interface SegmentCame {
  came: true;
  segment: SegmentEvent;
  afterMs: number;
  /** the pattern in words, for the timeline */
  what: string;
}

/** Nothing matching came within the timeout: a result, not an error. */
export interface NothingCame {
  came: false;
  waitedMs: number;
  what: string;
}

export type Expected = SegmentCame | NothingCame;

export interface ExpectOptions {
  /** 'in' (default): segments that reached the peer; 'out': segments the peer sent */
  direction?: Direction;
}

const LETTERS: ReadonlyArray<[string, keyof TcpFlags]> = [
  ['S', 'syn'],
  ['F', 'fin'],
  ['R', 'rst'],
  ['P', 'psh'],
  ['A', 'ack'],
  ['U', 'urg'],
  ['E', 'ece'],
  ['C', 'cwr'],
];

/** 'RA' → the exact flag set; an unknown letter is a programming error. */
function flagSet(letters: string): TcpFlags {
  const f: TcpFlags = { fin: false, syn: false, rst: false, psh: false, ack: false, urg: false, ece: false, cwr: false };
  for (const ch of letters.toUpperCase()) {
    const l = LETTERS.find(([c]) => c === ch);
    if (!l) throw new TypeError(`unknown TCP flag letter ${JSON.stringify(ch)} in ${JSON.stringify(letters)} (use S F R P A U E C)`);
    f[l[1]] = true;
  }
  return f;
}

const sameTuple = (a: FourTuple, b: FourTuple): boolean =>
  a.local.port === b.local.port &&
  a.remote.port === b.remote.port &&
  a.local.address === b.local.address &&
  a.remote.address === b.remote.address;

/** Whether one segment event fits the pattern (direction aside). */
export function matchesPattern(p: SegmentPattern, e: SegmentEvent): boolean {
  const f = e.tcp.flags;
  if (p.flags !== undefined) {
    const want = flagSet(p.flags);
    for (const [, k] of LETTERS) if (want[k] !== f[k]) return false;
  }
  for (const k of ['syn', 'fin', 'rst', 'ack', 'psh'] as const) if (p[k] !== undefined && p[k] !== f[k]) return false;
  if (p.seq !== undefined && p.seq >>> 0 !== e.tcp.seq) return false;
  if (p.ackNo !== undefined && p.ackNo >>> 0 !== e.tcp.ack) return false;
  if (p.len !== undefined && p.len !== e.tcp.payload.length) return false;
  if (p.peerPort !== undefined && p.peerPort !== e.tuple.local.port) return false;
  if (p.on !== undefined && !sameTuple(p.on, e.tuple)) return false;
  return true;
}

/** The pattern in words: "RST on port 40000", "flags SA, ack 12345". */
export function describePattern(m: SegmentMatch): string {
  if (typeof m === 'function') return m.name ? `a segment passing ${m.name}` : "a segment passing the lab's test";
  const parts: string[] = [];
  if (m.flags !== undefined) parts.push(formatFlags(flagSet(m.flags)) || 'no flags');
  for (const k of ['syn', 'fin', 'rst', 'ack', 'psh'] as const)
    if (m[k] !== undefined) parts.push(`${m[k] ? '' : 'no '}${k.toUpperCase()}`);
  if (m.seq !== undefined) parts.push(`seq ${m.seq >>> 0}`);
  if (m.ackNo !== undefined) parts.push(`ack ${m.ackNo >>> 0}`);
  if (m.len !== undefined) parts.push(`len ${m.len}`);
  if (m.peerPort !== undefined) parts.push(`peer port ${m.peerPort}`);
  if (m.on !== undefined) parts.push(`on ${m.on.local.address}:${m.on.local.port}>${m.on.remote.address}:${m.on.remote.port}`);
  return parts.join(', ') || 'any segment';
}

/** What expectSegment needs of a stack: its segments and its clock. */
export interface SegmentSource {
  onSegment(l: (e: SegmentEvent) => void): () => void;
  readonly clock: { now(): number; at(at: number, fn: () => void): TimerHandle };
}

/**
 * Resolves with the first segment that fits `match` (from now on), or with "nothing came" once
 * `timeoutMs` has passed on the stack's clock.
 */
export function expectSegment(stack: SegmentSource, match: SegmentMatch, timeoutMs: number, opts: ExpectOptions = {}): Promise<Expected> {
  const direction = opts.direction ?? 'in';
  const test = typeof match === 'function' ? match : (e: SegmentEvent) => matchesPattern(match, e);
  const what = `${direction === 'in' ? '' : 'sent: '}${describePattern(match)}`;
  const t0 = stack.clock.now();
  return new Promise((resolve) => {
    let timer: TimerHandle | null = null;
    const off = stack.onSegment((e) => {
      if (e.direction !== direction || !test(e)) return;
      off();
      timer?.cancel();
      resolve({ came: true, segment: { ...e, frame: e.frame.slice() }, afterMs: e.at - t0, what });
    });
    timer = stack.clock.at(t0 + timeoutMs, () => {
      off();
      resolve({ came: false, waitedMs: stack.clock.now() - t0, what });
    });
  });
}
