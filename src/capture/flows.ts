// Flow analysis over a capture: TCP segments grouped by four-tuple and incarnation, with relative
// sequence numbers per incarnation and the notable ones marked (RST, retransmission, zero window,
// window probe, stray segment of an earlier incarnation, challenge ACK). Pure: from pcap records,
// fed one at a time (FlowAnalyzer) so a capture of any size streams through in bounded memory.
import { formatEndpoint as endpoint } from '../wire/address';
import { isWireError } from '../wire/errors';
import { parseFrame, tcpChecksumPartial } from '../wire/frame';
import { seq, seqAdd, seqGt, seqLe, seqRelative, type SeqNumber } from '../wire/seq';
import { formatFlags } from '../wire/tcp';
import { ACK, FIN, newTcpView, RST, SYN, viewTcp, type TcpView } from '../wire/view';
import { ipPayloadOf, type PcapFile, type PcapRecord } from './pcap';
import { PairTable } from './pairtable';
import { Slab } from './slab';

export type Mark =
  | 'rst'
  | 'retransmission'
  | 'zero-window'
  | 'window-probe'
  | 'syn'
  | 'fin'
  | 'stray'
  | 'challenge-ack'
  | 'out-of-window'
  | 'old-timestamp';

export interface FlowSegment {
  number: number;
  timeUs: number;
  /** "src:port>dst:port" */
  direction: string;
  src: string;
  dst: string;
  /** the four-tuple, direction-free */
  flow: string;
  /**
   * the connection's number, 1-based in order of first appearance: a four-tuple seen again after
   * its connection was forgotten (see AnalyzerOptions.forgetAfterUs) starts a new one
   */
  conn: number;
  incarnation: number;
  /** the flow's newest incarnation when the segment was seen (differs from `incarnation` for a stray) */
  current: number;
  /** set when the segment belongs to an earlier incarnation than the current one */
  strayFrom?: number;
  flags: string;
  /** the flags as bits: FIN 1, SYN 2, RST 4, PSH 8, ACK 16, URG 32, ECE 64, CWR 128 */
  flagBits: number;
  /** 0 when sent by the first endpoint of `flow` (as sorted), 1 by the other */
  side: 0 | 1;
  seq: SeqNumber;
  ack: SeqNumber;
  /** relative to the sender's ISN in the segment's incarnation; the ACK relative to the receiver's */
  relSeq: number;
  relAck: number | null;
  len: number;
  /** the window field as sent */
  window: number;
  /** the window in bytes: the field scaled by the sender's shift once both SYNs offered scaling (RFC 7323 §2.3); null when the capture missed the SYNs */
  scaledWindow: number | null;
  /** the sender's window scale shift applied (0: none) */
  windowScale: number;
  /** the first bytes of the payload as text (non-printable bytes as '.'), when the capture kept them and they read as text */
  snippet?: string;
  /** the timestamps option's TSval, -1 without one */
  tsval: number;
  marks: Mark[];
  /** false when the TCP checksum is wrong; null when not checked, or left to the device (pseudo-header sum only) */
  checksumOk: boolean | null;
  /** the IP addresses, for telling which side is the kernel */
  srcAddress: string;
  dstAddress: string;
}

export interface DirectionSummary {
  segments: number;
  bytes: number;
  rst: number;
  retransmissions: number;
  zeroWindow: number;
  windowProbes: number;
  fin: number;
}

export interface FlowSummary {
  segments: FlowSegment[];
  directions: Record<string, DirectionSummary>;
  /** every non-TCP or undecodable frame, by number */
  other: Array<{ number: number; timeUs: number; summary: string }>;
}

/** bytes of payload shown as a snippet */
const SNIPPET = 16;

/** Payload bytes as text: printable ASCII as is, anything else as '.'. */
function snippetOf(b: Uint8Array, at: number, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    const c = b[at + i]!;
    out += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.';
  }
  return out;
}

/** Whether payload bytes read as text: most of them printable (a buffer of zeros is no snippet). */
function readable(b: Uint8Array, at: number, n: number): boolean {
  let printable = 0;
  for (let i = 0; i < n; i++) {
    const c = b[at + i]!;
    if ((c >= 0x20 && c < 0x7f) || c === 0x0a || c === 0x0d || c === 0x09) printable++;
  }
  return printable * 2 > n;
}

// Flows and their incarnations are records in two Slabs (see slab.ts), not objects: a capture may
// hold hundreds of thousands at once. Their fields: 64-bit numbers (read as D[(r >> 1) + field])
// first, then whole numbers (W[r + field]).

/**
 * An incarnation: per side s at `field + s` (side 0: sent by the flow's first endpoint; -1 until
 * seen), its ISN; the highest sequence end it sent; the latest ACK it sent; its newest TSval; the
 * window scale its SYN offered; the latest window it advertised. Then its number and state.
 */
const ISN = 0;
const HIGHEST = 2;
const LAST_ACK = 4;
const TSVAL = 6;
const WSCALE = 16;
const WINDOW = 18;
const NUMBER = 20;
/**
 * bits: a FIN seen from side s (1 << s); CLOSED (FINs both ways, or an RST not answered by a
 * challenge ACK); ESTABLISHED; side s's SYN in the capture (SAW_SYN << s; else its window scale is unknown)
 */
const STATE = 21;
const CLOSED = 4;
const ESTABLISHED = 8;
const SAW_SYN = 16;
const BOTH_SYNS = SAW_SYN | (SAW_SYN << 1);
/** an incarnation's record: 8 64-bit numbers, 6 whole ones */
const newIncarnations = (initialRecords?: number): Slab => new Slab(8, 6, initialRecords);

/**
 * A flow (one four-tuple): the time of its latest segment; IPv4: each side's endpoint as address ×
 * 65536 + port, side 0 first (-1 for IPv6); its connection's number (FlowSegment.conn; -1 once
 * forgotten); its previous segment's flags, side and incarnation (for challenge ACKs); its current
 * incarnation's record and how many it has had; its neighbours in the list of ended flows (-1:
 * none), and whether it is in it. With directions counted, then each side's DirectionSummary counts
 * (COUNTED order).
 */
const LAST_US = 0;
const END0 = 1;
const END1 = 2;
const CONN = 6;
const LAST_FLAGS = 7;
const LAST_SIDE = 8;
const LAST_INCARNATION = 9;
const CURRENT = 10;
const INCARNATIONS = 11;
const PREV = 12;
const NEXT = 13;
const ENDED = 14;
const COUNTS = 15;
/** a flow's record: 3 64-bit numbers, then whole ones up to COUNTS (and the counts when directions are counted) */
const newFlows = (directions: boolean): Slab => new Slab(3, COUNTS - 6 + (directions ? 2 * COUNTED.length : 0));

const FLAG_NAMES: string[] = Array.from(
  { length: 256 },
  (_, b) =>
    formatFlags({
      fin: !!(b & 1),
      syn: !!(b & 2),
      rst: !!(b & 4),
      psh: !!(b & 8),
      ack: !!(b & 16),
      urg: !!(b & 32),
      ece: !!(b & 64),
      cwr: !!(b & 128),
    }) || 'none',
);

/**
 * A segment's identity for "byte for byte the same segment again": a 32-bit FNV-1a hash of its
 * direction, seq, ack, flags, length and first 16 payload bytes, joined with 21 bits of its seq
 * (a 53-bit number: two different segments share it with odds of 2^-53).
 */
function signature(
  side: number,
  seqNo: number,
  ack: number,
  flags: number,
  len: number,
  frame: Uint8Array,
  payloadOffset: number,
  present: number,
): number {
  let h = 0x811c9dc5 ^ side;
  h = Math.imul(h ^ (seqNo & 0xffff), 0x01000193);
  h = Math.imul(h ^ (seqNo >>> 16), 0x01000193);
  h = Math.imul(h ^ (ack & 0xffff), 0x01000193);
  h = Math.imul(h ^ (ack >>> 16), 0x01000193);
  h = Math.imul(h ^ flags, 0x01000193);
  h = Math.imul(h ^ (len & 0xffff), 0x01000193);
  h = Math.imul(h ^ (len >>> 16), 0x01000193);
  for (let i = 0, n = Math.min(16, present); i < n; i++) h = Math.imul(h ^ frame[payloadOffset + i]!, 0x01000193);
  return (h >>> 0) * 2 ** 21 + (seqNo & 0x1fffff);
}

/** A flow's text: made once per flow, when first wanted (segments carry it; a summary needs it only at the end). */
export interface FlowNames {
  /** the four-tuple, "a:p<>b:p" */
  key: string;
  /** the endpoints, side 0 first; the two directions' keys ("a:p>b:p"); each side's address */
  ends: [string, string];
  directions: [string, string];
  addresses: [string, string];
}

/** The fields of a DirectionSummary, in the order a flow's record counts them (7 per side). */
const COUNTED = ['segments', 'bytes', 'rst', 'retransmissions', 'zeroWindow', 'windowProbes', 'fin'] as const;

const v4Text = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

function namesOf(a: string, b: string, addressA: string, addressB: string): FlowNames {
  return { key: `${a}<>${b}`, ends: [a, b], directions: [`${a}>${b}`, `${b}>${a}`], addresses: [addressA, addressB] };
}

/** What a summary needs of each segment: numbers only. The object (and its marks) is reused for the next segment: copy what you keep. */
export type SegmentFacts = Pick<
  FlowSegment,
  'number' | 'timeUs' | 'conn' | 'side' | 'flagBits' | 'seq' | 'ack' | 'len' | 'current' | 'strayFrom' | 'marks'
>;

export interface AnalyzerOptions {
  /** keep every segment in `segments` (ladders and listings need them; a summary does not) */
  keepSegments?: boolean;
  /** verify each segment's TCP checksum (default true; a summary does without) */
  checksums?: boolean;
  /** each TCP segment as it is analysed, with its marks */
  onSegment?: (s: FlowSegment) => void;
  /** the same, numbers only: with no `onSegment` and `keepSegments: false`, no text is made per flow */
  onFacts?: (s: SegmentFacts) => void;
  /** count each direction's segments, bytes, RSTs… for summary().directions (default true) */
  directions?: boolean;
  /** each frame that is not TCP, or not decodable */
  onOther?: (o: FlowSummary['other'][number]) => void;
  /** segment keys remembered for old-duplicate detection, over all flows (oldest closed incarnations forgotten first) */
  signatureBudget?: number;
  /**
   * Forget a connection once it has ended (FINs both ways, or an RST) and this long of capture
   * time has passed without a segment of it: its state is dropped (what keeps memory bounded on a
   * capture of any length) and `onForget` called. A later segment on the same four-tuple starts a
   * new connection. Unset: every connection is kept to the end.
   */
  forgetAfterUs?: number;
  onForget?: (conn: number, names: FlowNames) => void;
}

/**
 * How long after its end a connection may still see segments of its own: the longest TIME_WAIT
 * a stack holds, 2 × MSL with RFC 9293's MSL of 2 minutes (Linux holds 60 s, BSD 30–60 s,
 * Windows up to 240 s). Past it a new SYN on the four-tuple is a new connection, not a reuse.
 */
export const TIME_WAIT_BOUND_US = 240e6;

/** Feeds records one at a time; what it keeps is bounded unless `keepSegments`. */
export class FlowAnalyzer {
  readonly segments: FlowSegment[] = [];
  readonly other: FlowSummary['other'] = [];
  /** incarnations whose segment keys were forgotten to stay within the budget (while their connection was still remembered) */
  forgotten = 0;
  readonly #opts: AnalyzerOptions;
  readonly #flows: Slab;
  #incarnations = newIncarnations();
  /** IPv4 flows by their endpoints as numbers (address × 65536 + port, the lower first), IPv6 flows by their key */
  #v4 = new PairTable();
  readonly #v6 = new Map<string, number>();
  /** each flow's text, once made (IPv6 flows have it from the start) */
  readonly #names = new Map<number, FlowNames>();
  /** the records of a flow's earlier incarnations (by number − 1), once it has had more than one */
  readonly #earlier = new Map<number, number[]>();
  /** connections numbered so far */
  #connections = 0;
  /** the list of ended flows, least recently active first (when forgetting): its ends */
  #endedHead = -1;
  #endedTail = -1;
  /** the latest frame time seen */
  #now = -Infinity;
  /** each incarnation's segment keys (see signature()), for recognising an old duplicate later */
  #seen = new Map<number, Set<number>>();
  /** set by finish(): no more segments */
  #finished = false;
  /** closed incarnations still holding keys, oldest first */
  readonly #closedWithKeys = new Set<number>();
  #keys = 0;
  readonly #budget: number;
  readonly #view = newTcpView();
  readonly #facts: SegmentFacts = {
    number: 0,
    timeUs: 0,
    conn: 0,
    side: 0,
    flagBits: 0,
    seq: seq(0),
    ack: seq(0),
    len: 0,
    current: 0,
    strayFrom: undefined,
    marks: [],
  };

  constructor(opts: AnalyzerOptions = {}) {
    this.#opts = opts;
    this.#budget = opts.signatureBudget ?? 250_000;
    this.#flows = newFlows(opts.directions !== false);
  }

  /** how many connections it has seen (the highest FlowSegment.conn) */
  get connections(): number {
    return this.#connections;
  }

  /** The flow a segment belongs to (its record), made on first sight with its first incarnation. */
  #flow(v: TcpView): number {
    let low = -1;
    let high = -1;
    let names: FlowNames | null = null;
    if (v.family === 4) {
      const a = v.srcNum * 65536 + v.srcPort;
      const b = v.dstNum * 65536 + v.dstPort;
      low = Math.min(a, b);
      high = Math.max(a, b);
      const f = this.#v4.get(low, high);
      if (f >= 0) return f;
    } else {
      const src = endpoint(v.src, v.srcPort);
      const dst = endpoint(v.dst, v.dstPort);
      names = src < dst ? namesOf(src, dst, v.src, v.dst) : namesOf(dst, src, v.dst, v.src);
      const f = this.#v6.get(names.key);
      if (f !== undefined) return f;
    }
    // side 0 is the endpoint whose text sorts first, as flow keys have always named them
    const srcFirst = v.family === 4 ? `${v.src}:${v.srcPort}` < `${v.dst}:${v.dstPort}` : names!.ends[0] === endpoint(v.src, v.srcPort);
    const src = v.srcNum * 65536 + v.srcPort;
    const dst = v.dstNum * 65536 + v.dstPort;
    const inc = this.#newIncarnation(1);
    const f = this.#flows.alloc(0);
    const FD = this.#flows.doubles;
    const FW = this.#flows.words;
    FW[f + CONN] = ++this.#connections;
    FD[(f >> 1) + LAST_US] = -Infinity;
    FD[(f >> 1) + END0] = v.family === 4 ? (srcFirst ? src : dst) : -1;
    FD[(f >> 1) + END1] = v.family === 4 ? (srcFirst ? dst : src) : -1;
    FW[f + LAST_FLAGS] = -1;
    FW[f + CURRENT] = inc;
    FW[f + INCARNATIONS] = 1;
    FW[f + PREV] = -1;
    FW[f + NEXT] = -1;
    if (names) {
      this.#names.set(f, names);
      this.#v6.set(names.key, f);
    } else this.#v4.set(low, high, f);
    return f;
  }

  #newIncarnation(number: number): number {
    const inc = this.#incarnations.alloc(-1);
    this.#incarnations.words[inc + NUMBER] = number;
    this.#incarnations.words[inc + STATE] = 0;
    return inc;
  }

  /** The record of flow f's incarnation `number`. */
  #incarnation(f: number, number: number): number {
    const FW = this.#flows.words;
    return number === FW[f + INCARNATIONS] ? FW[f + CURRENT]! : this.#earlier.get(f)![number - 1]!;
  }

  /** A flow's text: an IPv4 flow's is made from its numbers the first time it is wanted (and kept when `keep`). */
  #namesOf(f: number, keep = true): FlowNames {
    const made = this.#names.get(f);
    if (made) return made;
    const FD = this.#flows.doubles;
    const end0 = FD[(f >> 1) + END0]!;
    const end1 = FD[(f >> 1) + END1]!;
    const address = (n: number): string => v4Text(Math.floor(n / 65536));
    const names = namesOf(`${address(end0)}:${end0 % 65536}`, `${address(end1)}:${end1 % 65536}`, address(end0), address(end1));
    if (keep) this.#names.set(f, names);
    return names;
  }

  /** The records of the flows it remembers, in order of first appearance. */
  #rememberedFlows(): number[] {
    const flows: number[] = [];
    const FW = this.#flows.words;
    for (let f = 0; f < this.#flows.top; f += this.#flows.stride) if (FW[f + CONN]! > 0) flows.push(f);
    return flows.sort((a, b) => FW[a + CONN]! - FW[b + CONN]!);
  }

  /**
   * No more segments will come: what only the analysis needed (incarnations, lookup tables,
   * segment keys) is let go, so the memory is free for what follows (summarising every connection
   * still remembered, say); the flows themselves and their text remain.
   */
  finish(): void {
    this.#finished = true;
    this.#incarnations = newIncarnations(1);
    this.#v4 = new PairTable(16);
    this.#seen = new Map();
    this.#closedWithKeys.clear();
  }

  /** The connections it still remembers, in order of first appearance, each with its text. */
  *remembered(): Generator<{ conn: number; names: FlowNames }> {
    for (const f of this.#rememberedFlows()) yield { conn: this.#flows.words[f + CONN]!, names: this.#namesOf(f, false) };
  }

  #otherFrame(o: FlowSummary['other'][number]): void {
    if (this.#opts.keepSegments !== false) this.other.push(o);
    this.#opts.onOther?.(o);
  }

  #remember(inc: number, key: number): void {
    let seen = this.#seen.get(inc);
    if (seen?.has(key)) return;
    while (this.#keys >= this.#budget && this.#closedWithKeys.size) {
      const old: number = this.#closedWithKeys.values().next().value!;
      this.#closedWithKeys.delete(old);
      this.#keys -= this.#seen.get(old)?.size ?? 0;
      this.#seen.delete(old);
      this.forgotten++;
    }
    if (this.#keys >= this.#budget) return; // only live incarnations hold keys: stop adding
    if (!seen) this.#seen.set(inc, (seen = new Set()));
    seen.add(key);
    this.#keys++;
  }

  /** Takes flow f out of the list of ended flows. */
  #unlink(f: number): void {
    const _FD = this.#flows.doubles;
    const FW = this.#flows.words;
    if (!FW[f + ENDED]) return;
    const prev = FW[f + PREV]!;
    const next = FW[f + NEXT]!;
    if (prev >= 0) FW[prev + NEXT] = next;
    else this.#endedHead = next;
    if (next >= 0) FW[next + PREV] = prev;
    else this.#endedTail = prev;
    FW[f + PREV] = -1;
    FW[f + NEXT] = -1;
    FW[f + ENDED] = 0;
  }

  /** Puts flow f at the end of the list of ended flows (the most recently active). */
  #append(f: number): void {
    const _FD = this.#flows.doubles;
    const FW = this.#flows.words;
    FW[f + PREV] = this.#endedTail;
    FW[f + NEXT] = -1;
    FW[f + ENDED] = 1;
    if (this.#endedTail >= 0) FW[this.#endedTail + NEXT] = f;
    else this.#endedHead = f;
    this.#endedTail = f;
  }

  /** Drops every ended connection idle longer than `after` at the latest frame's time. */
  #forgetIdle(after: number): void {
    for (let f = this.#endedHead; f >= 0; f = this.#endedHead) {
      const FD = this.#flows.doubles;
      const FW = this.#flows.words;
      if (FD[(f >> 1) + LAST_US]! + after >= this.#now) return;
      this.#unlink(f);
      const names = this.#namesOf(f, false);
      if (FD[(f >> 1) + END0]! >= 0) {
        this.#v4.delete(Math.min(FD[(f >> 1) + END0]!, FD[(f >> 1) + END1]!), Math.max(FD[(f >> 1) + END0]!, FD[(f >> 1) + END1]!));
      } else this.#v6.delete(names.key);
      for (const inc of [...(this.#earlier.get(f) ?? []), FW[f + CURRENT]!]) {
        this.#keys -= this.#seen.get(inc)?.size ?? 0;
        this.#seen.delete(inc);
        this.#closedWithKeys.delete(inc);
        this.#incarnations.free(inc);
      }
      this.#earlier.delete(f);
      this.#names.delete(f);
      const conn = FW[f + CONN]!;
      FW[f + CONN] = -1;
      this.#flows.free(f);
      this.#opts.onForget?.(conn, names);
    }
  }

  /** Describes a frame that is not a whole TCP segment (the full decoder says what it is). */
  #notTcp(rec: Pick<PcapRecord, 'number' | 'timeUs' | 'data' | 'origLength' | 'linkType'>, ip: Uint8Array): void {
    const s = parseFrame(ip, { snapped: rec.data.length < rec.origLength });
    if (isWireError(s)) {
      this.#otherFrame({ number: rec.number, timeUs: rec.timeUs, summary: `malformed ${s.layer}: ${s.reason}` });
      return;
    }
    const ports = s.kind === 'udp' ? [s.udp.srcPort, s.udp.dstPort] : null;
    this.#otherFrame({
      number: rec.number,
      timeUs: rec.timeUs,
      summary:
        s.kind === 'udp'
          ? `UDP ${endpoint(s.ip.src, ports![0]!)} → ${endpoint(s.ip.dst, ports![1]!)} len=${s.udp.payload.length}`
          : s.kind === 'tcp'
            ? `TCP fragment ${s.ip.src} → ${s.ip.dst}`
            : `${s.kind.toUpperCase()} ${s.ip.src} → ${s.ip.dst}`,
    });
  }

  push(rec: Pick<PcapRecord, 'number' | 'timeUs' | 'data' | 'origLength' | 'linkType'>): void {
    if (this.#finished) throw new Error('FlowAnalyzer: push() after finish()');
    const after = this.#opts.forgetAfterUs;
    if (rec.timeUs > this.#now) {
      this.#now = rec.timeUs;
      if (after !== undefined) this.#forgetIdle(after);
    }
    const ip = ipPayloadOf(rec.linkType, rec.data);
    if (!ip) {
      this.#otherFrame({ number: rec.number, timeUs: rec.timeUs, summary: `link type ${rec.linkType}: not IP (${rec.data.length} bytes)` });
      return;
    }
    const v = this.#view;
    if (!viewTcp(ip, rec.data.length < rec.origLength, v)) return this.#notTcp(rec, ip);
    let checksumOk: boolean | null = null;
    if (this.#opts.checksums !== false && v.payloadPresent === v.len) {
      const full = parseFrame(ip);
      if (!isWireError(full) && full.kind === 'tcp')
        checksumOk = full.tcp.checksumOk === false && tcpChecksumPartial(ip) ? null : full.tcp.checksumOk;
    }
    const fl = v.flags;
    const syn = (fl & SYN) !== 0;
    const rst = (fl & RST) !== 0;
    const fin = (fl & FIN) !== 0;
    const ackFlag = (fl & ACK) !== 0;
    const len = v.len;
    const flow = this.#flow(v);
    let FD = this.#flows.doubles;
    let FW = this.#flows.words;
    const side: 0 | 1 =
      FD[(flow >> 1) + END0]! >= 0
        ? v.srcNum * 65536 + v.srcPort === FD[(flow >> 1) + END0]
          ? 0
          : 1
        : endpoint(v.src, v.srcPort) === this.#names.get(flow)!.ends[0]
          ? 0
          : 1;
    const other = (1 - side) as 0 | 1;
    let cur = FW[flow + CURRENT]!;
    let ID = this.#incarnations.doubles;
    let IW = this.#incarnations.words;
    const key = signature(side, v.seq, v.ack, fl, len, ip, v.payloadOffset, v.payloadPresent);
    // a SYN opens the next incarnation once the current one is over (or, before it was
    // established, when it carries a new ISN); a SYN into a live connection stays in it
    const freshSyn = syn && !ackFlag;
    if (
      freshSyn &&
      (IW[cur + STATE]! & CLOSED ||
        (!(IW[cur + STATE]! & ESTABLISHED) && ID[(cur >> 1) + ISN + side]! >= 0 && ID[(cur >> 1) + ISN + side] !== v.seq))
    ) {
      const count = FW[flow + INCARNATIONS]!;
      const earlier = this.#earlier.get(flow);
      if (earlier) earlier.push(cur);
      else this.#earlier.set(flow, [cur]);
      cur = this.#newIncarnation(count + 1);
      FD = this.#flows.doubles;
      FW = this.#flows.words;
      ID = this.#incarnations.doubles;
      IW = this.#incarnations.words;
      FW[flow + CURRENT] = cur;
      FW[flow + INCARNATIONS] = count + 1;
    }
    const curNumber = FW[flow + INCARNATIONS]!;
    // a segment of an earlier incarnation: byte for byte one it carried, or an ACK from its sequence space
    let strayFrom: number | undefined;
    if (!syn && curNumber > 1) {
      const earlier = this.#earlier.get(flow)!;
      for (let i = earlier.length - 1; i >= 0; i--) {
        const old = earlier[i]!;
        const oldIsn = ID[(old >> 1) + ISN + other]!;
        const curIsn = ID[(cur >> 1) + ISN + other]!;
        const ackOld =
          ackFlag &&
          oldIsn >= 0 &&
          curIsn >= 0 &&
          Math.abs(seqRelative(seq(v.ack), seq(curIsn)) | 0) > 1 << 30 &&
          seqRelative(seq(v.ack), seq(oldIsn)) < 1 << 30;
        if (this.#seen.get(old)?.has(key) || ackOld) {
          strayFrom = IW[old + NUMBER]!;
          break;
        }
      }
    }
    const inc = strayFrom !== undefined ? this.#incarnation(flow, strayFrom) : cur;
    if (syn) IW[inc + STATE] = IW[inc + STATE]! | (SAW_SYN << side);
    if (syn && strayFrom === undefined && !(IW[cur + STATE]! & ESTABLISHED)) ID[(cur >> 1) + ISN + side] = v.seq;
    if (ID[(inc >> 1) + ISN + side]! < 0) ID[(inc >> 1) + ISN + side] = v.seq;
    const span = len + (syn ? 1 : 0) + (fin ? 1 : 0);
    const end = seqAdd(seq(v.seq), span);
    // numbers only (no FlowSegments wanted): one facts object and marks list, reused for every segment
    const lean = this.#opts.keepSegments === false && !this.#opts.onSegment;
    const marks: Mark[] = lean ? this.#facts.marks : [];
    marks.length = 0;
    const hasHigh = ID[(inc >> 1) + HIGHEST + side]! >= 0;
    const high = seq(ID[(inc >> 1) + HIGHEST + side]!);
    if (syn) {
      marks.push('syn');
      if (hasHigh && !seqGt(end, high)) marks.push('retransmission');
    } else if (rst) marks.push('rst');
    else if (span > 0 && hasHigh && seqLe(end, high)) marks.push('retransmission');
    // a probe: no new data, one below what the receiver has acknowledged (Linux's zero-window probe)
    const hasAcked = ID[(inc >> 1) + LAST_ACK + other]! >= 0;
    const acked = seq(ID[(inc >> 1) + LAST_ACK + other]!);
    if (!syn && !rst && !fin && hasAcked && span <= 1 && seqAdd(seq(v.seq), 1) === acked) marks.push('window-probe');
    if (v.window === 0 && !rst) marks.push('zero-window');
    if (fin) marks.push('fin');
    if (strayFrom !== undefined) marks.push('stray');
    // beyond the right edge of the window the receiver last advertised (scaled once both SYNs offered it)
    const scaled = IW[inc + WSCALE + side]! >= 0 && IW[inc + WSCALE + other]! >= 0;
    const revWindow = IW[inc + WINDOW + other]!;
    if (len > 0 && hasAcked && revWindow >= 0 && strayFrom === undefined) {
      const edge = seqAdd(acked, revWindow * 2 ** (scaled ? IW[inc + WSCALE + other]! : 0));
      if (seqGt(end, edge) && !(revWindow === 0 && span <= 1)) marks.push('out-of-window');
    }
    // a timestamp older than one this side already sent: what PAWS rejects (RFC 7323 §5)
    // (against the current incarnation: the receiver's PAWS compares with the connection it has now)
    const newest = ID[(cur >> 1) + TSVAL + side]!;
    if (v.tsval >= 0 && newest >= 0 && ((v.tsval - newest) | 0) < 0 && !syn) marks.push('old-timestamp');
    // a challenge ACK: a bare ACK answering, at once, an RST or SYN the other side sent into an established connection
    const lastFlags = FW[flow + LAST_FLAGS]!;
    const incNumber = IW[inc + NUMBER]!;
    if (
      lastFlags >= 0 &&
      FW[flow + LAST_SIDE] === other &&
      ackFlag &&
      !rst &&
      !syn &&
      span === 0 &&
      IW[inc + STATE]! & ESTABLISHED &&
      ((lastFlags & RST) !== 0 || (lastFlags === SYN && FW[flow + LAST_INCARNATION] === incNumber))
    ) {
      marks.push('challenge-ack');
      IW[inc + STATE] = IW[inc + STATE]! & ~CLOSED; // the RST did not end it
    }
    if (syn && v.wscale >= 0) IW[inc + WSCALE + side] = v.wscale;
    // RFC 7323 §2.2: a SYN's window is never scaled; the shift applies once both SYNs offered it
    const shift = !syn && scaled ? IW[inc + WSCALE + side]! : 0;
    if (v.tsval >= 0 && strayFrom === undefined && (newest < 0 || ((v.tsval - newest) | 0) > 0)) ID[(cur >> 1) + TSVAL + side] = v.tsval;
    if (strayFrom === undefined) {
      if (!rst) IW[inc + WINDOW + side] = v.window;
      if (!hasHigh || seqGt(end, high)) ID[(inc >> 1) + HIGHEST + side] = end;
      if (ackFlag) ID[(inc >> 1) + LAST_ACK + side] = v.ack;
      this.#remember(inc, key);
      let state = IW[inc + STATE]!;
      const wasClosed = state & CLOSED;
      if (rst) state |= CLOSED;
      if (fin) state |= 1 << side;
      if ((state & 3) === 3) state |= CLOSED;
      if (ackFlag && !syn && ID[(inc >> 1) + ISN]! >= 0 && ID[(inc >> 1) + ISN + 1]! >= 0) state |= ESTABLISHED;
      IW[inc + STATE] = state;
      if (state & CLOSED && !wasClosed) this.#closedWithKeys.add(inc);
    }
    if (rec.timeUs > FD[(flow >> 1) + LAST_US]!) FD[(flow >> 1) + LAST_US] = rec.timeUs;
    if (after !== undefined) {
      // the least recently active first: taken out and put back at the end
      this.#unlink(flow);
      if (IW[cur + STATE]! & CLOSED) this.#append(flow);
    }
    if (this.#flows.stride > COUNTS + 1) {
      const at = flow + COUNTS + side * COUNTED.length;
      FW[at]!++;
      FW[at + 1]! += len;
      if (rst) FW[at + 2]!++;
      if (marks.includes('retransmission')) FW[at + 3]!++;
      if (marks.includes('zero-window')) FW[at + 4]!++;
      if (marks.includes('window-probe')) FW[at + 5]!++;
      if (fin) FW[at + 6]!++;
    }
    FW[flow + LAST_FLAGS] = fl;
    FW[flow + LAST_SIDE] = side;
    FW[flow + LAST_INCARNATION] = incNumber;
    const conn = FW[flow + CONN]!;
    const opts = this.#opts;
    if (lean) {
      // no text is made for the flow
      const f = this.#facts;
      f.number = rec.number;
      f.timeUs = rec.timeUs;
      f.conn = conn;
      f.side = side;
      f.flagBits = fl;
      f.seq = seq(v.seq);
      f.ack = seq(v.ack);
      f.len = len;
      f.current = curNumber;
      f.strayFrom = strayFrom;
      opts.onFacts?.(f);
      return;
    }
    const names = this.#namesOf(flow);
    const isn = ID[(inc >> 1) + ISN + side]!;
    const otherIsn = ID[(inc >> 1) + ISN + other]!;
    const seg: FlowSegment = {
      number: rec.number,
      timeUs: rec.timeUs,
      direction: names.directions[side],
      src: names.ends[side],
      dst: names.ends[other],
      flow: names.key,
      conn,
      incarnation: incNumber,
      current: curNumber,
      strayFrom,
      flags: FLAG_NAMES[fl]!,
      flagBits: fl,
      side,
      seq: seq(v.seq),
      ack: seq(v.ack),
      relSeq: seqRelative(seq(v.seq), seq(isn)),
      relAck: ackFlag ? (otherIsn >= 0 ? seqRelative(seq(v.ack), seq(otherIsn)) : null) : null,
      len,
      window: v.window,
      scaledWindow: syn ? v.window : (IW[inc + STATE]! & BOTH_SYNS) === BOTH_SYNS ? v.window * 2 ** shift : null,
      windowScale: shift,
      ...(v.payloadPresent > 0 && readable(ip, v.payloadOffset, Math.min(v.payloadPresent, SNIPPET))
        ? { snippet: snippetOf(ip, v.payloadOffset, Math.min(v.payloadPresent, SNIPPET)) }
        : {}),
      tsval: v.tsval,
      marks,
      checksumOk,
      srcAddress: names.addresses[side],
      dstAddress: names.addresses[other],
    };
    if (opts.keepSegments !== false) this.segments.push(seg);
    opts.onSegment?.(seg);
    opts.onFacts?.(seg);
  }

  summary(): FlowSummary {
    // the directions of the flows still remembered; those that never sent a segment that way are not listed
    const directions: Record<string, DirectionSummary> = {};
    if (this.#flows.stride > COUNTS + 1) {
      for (const f of this.#rememberedFlows()) {
        const _FD = this.#flows.doubles;
        const FW = this.#flows.words;
        for (const side of [0, 1] as const) {
          const at = f + COUNTS + side * COUNTED.length;
          if (FW[at] === 0) continue;
          directions[this.#namesOf(f).directions[side]] = {
            segments: FW[at]!,
            bytes: FW[at + 1]!,
            rst: FW[at + 2]!,
            retransmissions: FW[at + 3]!,
            zeroWindow: FW[at + 4]!,
            windowProbes: FW[at + 5]!,
            fin: FW[at + 6]!,
          };
        }
      }
    }
    return { segments: this.segments, directions, other: this.other };
  }
}

/** Every TCP segment of a capture, analysed (a whole parsed file, or any stream of records). */
export function analyzeTcp(file: PcapFile | Iterable<PcapRecord>): FlowSummary {
  const a = new FlowAnalyzer();
  const records: Iterable<PcapRecord> = 'records' in file ? file.records : file;
  for (const rec of records) a.push(rec);
  return a.summary();
}
