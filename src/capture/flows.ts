// Flow analysis over a capture: TCP segments grouped by four-tuple and incarnation, with relative
// sequence numbers per incarnation and the notable ones marked (RST, retransmission, zero window,
// window probe, stray segment of an earlier incarnation, challenge ACK). Pure: from pcap records,
// fed one at a time (FlowAnalyzer) so a capture of any size streams through in bounded memory.
import { formatEndpoint as endpoint } from '../wire/address';
import { isWireError } from '../wire/errors';
import { parseFrame } from '../wire/frame';
import { seq, seqAdd, seqGt, seqLe, seqRelative, type SeqNumber } from '../wire/seq';
import { formatFlags } from '../wire/tcp';
import { ACK, FIN, newTcpView, RST, SYN, viewTcp, type TcpView } from '../wire/view';
import { ipPayloadOf, type PcapFile, type PcapRecord } from './pcap';

export type Mark = 'rst' | 'retransmission' | 'zero-window' | 'window-probe' | 'syn' | 'fin' | 'stray' | 'challenge-ack' | 'out-of-window' | 'old-timestamp';

export interface FlowSegment {
  number: number;
  timeUs: number;
  /** "src:port>dst:port" */
  direction: string;
  src: string;
  dst: string;
  /** the four-tuple, direction-free */
  flow: string;
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
  window: number;
  /** the timestamps option's TSval, -1 without one */
  tsval: number;
  marks: Mark[];
  /** false when the TCP checksum is wrong */
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


/** Per incarnation; per-direction facts are pairs indexed by side (0: from the flow's first endpoint). */
interface Incarnation {
  number: number;
  /** per side: its ISN, the highest sequence end sent, the other side's latest ACK of it */
  isn: [number, number];
  hasIsn: [boolean, boolean];
  highest: [number, number];
  hasHighest: [boolean, boolean];
  /** per side: the latest ACK it sent */
  lastAck: [number, number];
  hasLastAck: [boolean, boolean];
  /** keys of the segments it carried (see signature()), for recognising an old duplicate later */
  seen: Set<number>;
  /** over: FINs both ways, or an RST not answered by a challenge ACK */
  closed: boolean;
  fin: [boolean, boolean];
  established: boolean;
  /** per side: the window scale its SYN offered (-1: none), the latest window it advertised (-1: none yet), its newest TSval (-1: none) */
  wscale: [number, number];
  lastWindow: [number, number];
  tsval: [number, number];
}

function newIncarnation(number: number): Incarnation {
  return {
    number,
    isn: [0, 0],
    hasIsn: [false, false],
    highest: [0, 0],
    hasHighest: [false, false],
    lastAck: [0, 0],
    hasLastAck: [false, false],
    seen: new Set(),
    closed: false,
    fin: [false, false],
    established: false,
    wscale: [-1, -1],
    lastWindow: [-1, -1],
    tsval: [-1, -1],
  };
}

const FLAG_NAMES: string[] = Array.from({ length: 256 }, (_, b) =>
  formatFlags({ fin: !!(b & 1), syn: !!(b & 2), rst: !!(b & 4), psh: !!(b & 8), ack: !!(b & 16), urg: !!(b & 32), ece: !!(b & 64), cwr: !!(b & 128) }) || 'none',
);

/**
 * A segment's identity for "byte for byte the same segment again": a 32-bit FNV-1a hash of its
 * direction, seq, ack, flags, length and first 16 payload bytes, joined with 21 bits of its seq
 * (a 53-bit number: two different segments share it with odds of 2^-53).
 */
function signature(side: number, seqNo: number, ack: number, flags: number, len: number, frame: Uint8Array, payloadOffset: number, present: number): number {
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

interface Flow {
  key: string;
  /** the endpoints as text, side 0 first; the two directions' keys; each side's address */
  ends: [string, string];
  directions: [string, string];
  addresses: [string, string];
  /** IPv4: side 0's endpoint as address × 65536 + port (-1 for IPv6) */
  low: number;
  list: Incarnation[];
  /** the flow's previous segment: its flags, side and incarnation (for challenge ACKs) */
  lastFlags: number;
  lastSide: 0 | 1;
  lastIncarnation: number;
  dirs: [DirectionSummary, DirectionSummary];
}

export interface AnalyzerOptions {
  /** keep every segment in `segments` (ladders and listings need them; a summary does not) */
  keepSegments?: boolean;
  /** verify each segment's TCP checksum (default true; a summary does without) */
  checksums?: boolean;
  /** each TCP segment as it is analysed, with its marks */
  onSegment?: (s: FlowSegment) => void;
  /** each frame that is not TCP, or not decodable */
  onOther?: (o: FlowSummary['other'][number]) => void;
  /** segment keys remembered for old-duplicate detection, over all flows (oldest closed incarnations forgotten first) */
  signatureBudget?: number;
}

/** Feeds records one at a time; what it keeps is bounded unless `keepSegments`. */
export class FlowAnalyzer {
  readonly segments: FlowSegment[] = [];
  readonly other: FlowSummary['other'] = [];
  readonly directions: Record<string, DirectionSummary> = {};
  /** incarnations whose segment keys were forgotten to stay within the budget */
  forgotten = 0;
  readonly #opts: AnalyzerOptions;
  /** IPv4 flows by their endpoints as numbers (address × 65536 + port, the lower first), others by text */
  readonly #v4 = new Map<number, Map<number, Flow>>();
  readonly #flows = new Map<string, Flow>();
  /** closed incarnations still holding keys, oldest first */
  readonly #closedWithKeys: Incarnation[] = [];
  #keys = 0;
  readonly #budget: number;
  readonly #view = newTcpView();

  /** The flow a segment belongs to, made on first sight: its strings are built once, not per segment. */
  #flow(v: TcpView): Flow {
    let low = -1;
    let high = -1;
    if (v.family === 4) {
      const a = v.srcNum * 65536 + v.srcPort;
      const b = v.dstNum * 65536 + v.dstPort;
      low = Math.min(a, b);
      high = Math.max(a, b);
      const f = this.#v4.get(low)?.get(high);
      if (f) return f;
    }
    const src = v.family === 4 ? `${v.src}:${v.srcPort}` : endpoint(v.src, v.srcPort);
    const dst = v.family === 4 ? `${v.dst}:${v.dstPort}` : endpoint(v.dst, v.dstPort);
    // side 0 is the endpoint whose text sorts first, as flow keys have always named them
    const srcFirst = src < dst;
    const ends: [string, string] = srcFirst ? [src, dst] : [dst, src];
    const key = `${ends[0]}<>${ends[1]}`;
    const mk = (): DirectionSummary => ({ segments: 0, bytes: 0, rst: 0, retransmissions: 0, zeroWindow: 0, windowProbes: 0, fin: 0 });
    const f: Flow = {
      key,
      ends,
      directions: [`${ends[0]}>${ends[1]}`, `${ends[1]}>${ends[0]}`],
      addresses: srcFirst ? [v.src, v.dst] : [v.dst, v.src],
      low: v.family === 4 ? (srcFirst ? v.srcNum * 65536 + v.srcPort : v.dstNum * 65536 + v.dstPort) : -1,
      list: [],
      lastFlags: -1,
      lastSide: 0,
      lastIncarnation: 0,
      dirs: [mk(), mk()],
    };
    this.#flows.set(key, f);
    this.directions[f.directions[0]] = f.dirs[0];
    this.directions[f.directions[1]] = f.dirs[1];
    if (v.family === 4) {
      let m = this.#v4.get(low);
      if (!m) this.#v4.set(low, (m = new Map()));
      m.set(high, f);
    }
    return f;
  }

  constructor(opts: AnalyzerOptions = {}) {
    this.#opts = opts;
    this.#budget = opts.signatureBudget ?? 250_000;
  }

  #otherFrame(o: FlowSummary['other'][number]): void {
    if (this.#opts.keepSegments !== false) this.other.push(o);
    this.#opts.onOther?.(o);
  }

  #remember(inc: Incarnation, key: number): void {
    if (inc.seen.has(key)) return;
    while (this.#keys >= this.#budget && this.#closedWithKeys.length) {
      const old = this.#closedWithKeys.shift()!;
      this.#keys -= old.seen.size;
      old.seen.clear();
      this.forgotten++;
    }
    if (this.#keys >= this.#budget) return; // only live incarnations hold keys: stop adding
    inc.seen.add(key);
    this.#keys++;
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
      if (!isWireError(full) && full.kind === 'tcp') checksumOk = full.tcp.checksumOk;
    }
    const fl = v.flags;
    const syn = (fl & SYN) !== 0;
    const rst = (fl & RST) !== 0;
    const fin = (fl & FIN) !== 0;
    const ackFlag = (fl & ACK) !== 0;
    const len = v.len;
    const flow = this.#flow(v);
    const side: 0 | 1 = flow.low >= 0 ? (v.srcNum * 65536 + v.srcPort === flow.low ? 0 : 1) : endpoint(v.src, v.srcPort) === flow.ends[0] ? 0 : 1;
    const other = (1 - side) as 0 | 1;
    const src = flow.ends[side];
    const dst = flow.ends[other];
    const list = flow.list;
    let cur = list[list.length - 1];
    const key = signature(side, v.seq, v.ack, fl, len, ip, v.payloadOffset, v.payloadPresent);
    // a SYN opens the next incarnation once the current one is over (or, before it was
    // established, when it carries a new ISN); a SYN into a live connection stays in it
    const freshSyn = syn && !ackFlag;
    if (!cur || (freshSyn && (cur.closed || (!cur.established && cur.hasIsn[side] && cur.isn[side] !== v.seq)))) {
      cur = newIncarnation(list.length + 1);
      list.push(cur);
    }
    // a segment of an earlier incarnation: byte for byte one it carried, or an ACK from its sequence space
    let strayFrom: number | undefined;
    if (!syn && list.length > 1) {
      for (let i = list.length - 2; i >= 0; i--) {
        const old = list[i]!;
        const ackOld = ackFlag && old.hasIsn[other] && cur.hasIsn[other] && Math.abs(seqRelative(seq(v.ack), seq(cur.isn[other])) | 0) > 1 << 30 && seqRelative(seq(v.ack), seq(old.isn[other])) < 1 << 30;
        if (old.seen.has(key) || ackOld) {
          strayFrom = old.number;
          break;
        }
      }
    }
    const inc = strayFrom !== undefined ? list[strayFrom - 1]! : cur;
    if (syn && strayFrom === undefined && !cur.established) {
      cur.isn[side] = v.seq;
      cur.hasIsn[side] = true;
    }
    if (!inc.hasIsn[side]) {
      inc.isn[side] = v.seq;
      inc.hasIsn[side] = true;
    }
    const d = flow.dirs[side];
    const span = len + (syn ? 1 : 0) + (fin ? 1 : 0);
    const end = seqAdd(seq(v.seq), span);
    const marks: Mark[] = [];
    const hasHigh = inc.hasHighest[side];
    const high = seq(inc.highest[side]);
    if (syn) {
      marks.push('syn');
      if (hasHigh && !seqGt(end, high)) marks.push('retransmission');
    } else if (rst) marks.push('rst');
    else if (span > 0 && hasHigh && seqLe(end, high)) marks.push('retransmission');
    // a probe: no new data, one below what the receiver has acknowledged (Linux's zero-window probe)
    const hasAcked = inc.hasLastAck[other];
    const acked = seq(inc.lastAck[other]);
    if (!syn && !rst && !fin && hasAcked && span <= 1 && seqAdd(seq(v.seq), 1) === acked) marks.push('window-probe');
    if (v.window === 0 && !rst) marks.push('zero-window');
    if (fin) marks.push('fin');
    if (strayFrom !== undefined) marks.push('stray');
    // beyond the right edge of the window the receiver last advertised (scaled once both SYNs offered it)
    const scaled = inc.wscale[side] >= 0 && inc.wscale[other] >= 0;
    const revWindow = inc.lastWindow[other];
    if (len > 0 && hasAcked && revWindow >= 0 && strayFrom === undefined) {
      const edge = seqAdd(acked, revWindow * 2 ** (scaled ? inc.wscale[other] : 0));
      if (seqGt(end, edge) && !(revWindow === 0 && span <= 1)) marks.push('out-of-window');
    }
    // a timestamp older than one this side already sent: what PAWS rejects (RFC 7323 §5)
    // (against the current incarnation: the receiver's PAWS compares with the connection it has now)
    const newest = cur.tsval[side];
    if (v.tsval >= 0 && newest >= 0 && ((v.tsval - newest) | 0) < 0 && !syn) marks.push('old-timestamp');
    // a challenge ACK: a bare ACK answering, at once, an RST or SYN the other side sent into an established connection
    if (flow.lastFlags >= 0 && flow.lastSide === other && ackFlag && !rst && !syn && span === 0 && inc.established && ((flow.lastFlags & RST) !== 0 || (flow.lastFlags === SYN && flow.lastIncarnation === inc.number))) {
      marks.push('challenge-ack');
      inc.closed = false; // the RST did not end it
    }
    if (syn && v.wscale >= 0) inc.wscale[side] = v.wscale;
    if (v.tsval >= 0 && strayFrom === undefined && (newest < 0 || ((v.tsval - newest) | 0) > 0)) cur.tsval[side] = v.tsval;
    if (strayFrom === undefined) {
      if (!rst) inc.lastWindow[side] = v.window;
      if (!hasHigh || seqGt(end, high)) {
        inc.highest[side] = end;
        inc.hasHighest[side] = true;
      }
      if (ackFlag) {
        inc.lastAck[side] = v.ack;
        inc.hasLastAck[side] = true;
      }
      this.#remember(inc, key);
      const wasClosed = inc.closed;
      if (rst) inc.closed = true;
      if (fin) inc.fin[side] = true;
      if (inc.fin[0] && inc.fin[1]) inc.closed = true;
      if (ackFlag && !syn && inc.hasIsn[0] && inc.hasIsn[1]) inc.established = true;
      if (inc.closed && !wasClosed) this.#closedWithKeys.push(inc);
    }
    d.segments++;
    d.bytes += len;
    if (rst) d.rst++;
    if (marks.includes('retransmission')) d.retransmissions++;
    if (marks.includes('zero-window')) d.zeroWindow++;
    if (marks.includes('window-probe')) d.windowProbes++;
    if (fin) d.fin++;
    const seg: FlowSegment = {
      number: rec.number,
      timeUs: rec.timeUs,
      direction: flow.directions[side],
      src,
      dst,
      flow: flow.key,
      incarnation: inc.number,
      current: cur.number,
      strayFrom,
      flags: FLAG_NAMES[fl]!,
      flagBits: fl,
      side,
      seq: seq(v.seq),
      ack: seq(v.ack),
      relSeq: seqRelative(seq(v.seq), seq(inc.isn[side])),
      relAck: ackFlag ? (inc.hasIsn[other] ? seqRelative(seq(v.ack), seq(inc.isn[other])) : null) : null,
      len,
      window: v.window,
      tsval: v.tsval,
      marks,
      checksumOk,
      srcAddress: flow.addresses[side],
      dstAddress: flow.addresses[other],
    };
    if (this.#opts.keepSegments !== false) this.segments.push(seg);
    flow.lastFlags = fl;
    flow.lastSide = side;
    flow.lastIncarnation = inc.number;
    this.#opts.onSegment?.(seg);
  }

  summary(): FlowSummary {
    // directions of flows that never sent a segment that way are not listed
    const directions = Object.fromEntries(Object.entries(this.directions).filter(([, d]) => d.segments > 0));
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
