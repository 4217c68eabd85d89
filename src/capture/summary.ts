// One line per connection, the first thing an engineer wants from a big capture: the four-tuple,
// its incarnations, who closed first, how it ended (FIN/FIN, RST and from whom), which side holds
// TIME_WAIT, strays, retransmissions, duration — and the close pattern it recognises, with the lab
// that demonstrates it. Fed segment by segment (from FlowAnalyzer), it keeps a few facts per
// incarnation, never the segments themselves.
import { ACK, FIN, RST, SYN } from '../wire/view';
import type { FlowSegment, SegmentFacts } from './flows';
import { PairTable } from './pairtable';
import { Slab } from './slab';

/** Close patterns twlab recognises, with the lab that shows each one happen. */
export const PATTERNS = {
  'orderly-close': { name: 'orderly close', lab: '02' },
  'simultaneous-close': { name: 'simultaneous close', lab: '09' },
  'abort-unsent': { name: 'abortive close with data unsent', lab: '05' },
  abort: { name: 'abortive close', lab: '05' },
  // the wire cannot tell unread data (lab 07) from SO_LINGER {1,0} after reading it (lab 05, lab 11's abort)
  'abort-unread': { name: 'RST after received data', lab: '07' },
  'rst-after-fin': { name: 'RST to late data after a FIN', lab: '08' },
  refused: { name: 'connection refused', lab: null },
  'rst-into-time-wait': { name: 'RST into TIME_WAIT', lab: '13' },
  'syn-into-time-wait-accepted': { name: 'SYN into TIME_WAIT accepted', lab: '12' },
  'tw-reuse-by-closer': { name: 'four-tuple reused by the side in TIME_WAIT', lab: '04' },
  'syn-into-time-wait-refused': { name: 'SYN into TIME_WAIT refused', lab: '12' },
  'old-duplicate': { name: 'old duplicate after reuse of the four-tuple', lab: '11' },
  'challenge-ack': { name: 'challenge ACKs', lab: '14' },
  'zero-window': { name: 'zero window, probed', lab: '06' },
  open: { name: 'not closed in the capture', lab: null },
} as const;

export type PatternId = keyof typeof PATTERNS;

export interface Pattern {
  id: PatternId;
  /** one sentence: what happened, in this connection's endpoints */
  text: string;
  lab: string | null;
  /** the frames (numbers as in Wireshark) that show it */
  frames: number[];
}

/**
 * Per incarnation: numbers and bits, kept in a record of ConnectionSummaries' slab (a big capture
 * holds hundreds of thousands at once) and read out as this object to be explained. The facts at
 * their offsets below, the per-side ones at `fact + side` (side 0: the flow's first endpoint, as
 * sorted), -1 where nothing was seen; the yes/no facts as bits.
 */
interface IncarnationFacts {
  number: number;
  facts: number[];
  bits: number;
  /** frames marked as challenge ACKs, and the zero-window probes (the first 100; null until one) */
  challengeFrames: number[] | null;
  probeFrames: number[] | null;
}

// numbers that need 64 bits (times, sequence numbers)
const FIRST_US = 0;
const LAST_US = 1;
// per side (two slots each):
/** the highest sequence end it sent, and the latest ACK the other side sent of it */
const HIGHEST = 2;
const ACKED = 4;
/** its first FIN's seq and ack */
const FIN_SEQ = 6;
const FIN_ACK = 8;
const DOUBLES = 10;
// whole numbers below 2^31 (frame numbers, counts, sides)
/** the side that sent the SYN */
const CLIENT = 10;
/** the first answer to the SYN from the other side when it is not a SYN-ACK: RST (1) or ACK (2) */
const SYN_ANSWER = 11;
/** frame numbers: the SYN, and its answer (SYN-ACK, RST or ACK) */
const SYN_NUMBER = 12;
const ANSWER_NUMBER = 13;
const LAST_DATA_FROM = 14;
const PROBES = 15;
const CHALLENGE_ACKS = 16;
const RETRANSMISSIONS = 17;
/** the first RST: who sent it, its frame, who had sent data last */
const RST_FROM = 18;
const RST_NUMBER = 19;
const RST_LAST_DATA_FROM = 20;
// per side:
/** its first FIN's frame number and length */
const FIN_NUMBER = 21;
const FIN_LEN = 23;
/** the first RST it sent after both FINs (a frame number) */
const LATE_RST = 25;
/** the yes/no facts below */
const BITS = 27;
const FACTS = 28;

// bits; those per side are shifted by the side
/** the other side answered the SYN with a SYN-ACK */
const SYN_ACKED = 1;
const SENT_DATA = 2;
const DATA_AFTER_FIN = 8;
const ZERO_WINDOW = 32;
const FIN_HAS_ACK = 128;
/**
 * what had happened when the first RST came: its sender had sent its FIN; had data the other side had not acknowledged; had seen the other
 * side's window shut
 */
const RST_AFTER_OWN_FIN = 512;
const RST_UNACKED = 1024;
const RST_ZERO_WINDOW_SEEN = 2048;

export interface ConnectionSummary {
  /** 1-based, in order of first appearance: what `twlab show --conn N` takes */
  index: number;
  /** "a:p<>b:p", sorted */
  flow: string;
  endpoints: [string, string];
  incarnations: number;
  firstUs: number;
  lastUs: number;
  segments: number;
  strays: number;
  retransmissions: number;
  /** who sent the first FIN (last incarnation) */
  closedFirst: string | null;
  /** FIN/FIN, RST from X, or open */
  ended: string;
  /** the sides that hold TIME_WAIT after the last incarnation, as the capture implies */
  timeWait: string[];
  patterns: Pattern[];
}

interface FlowFacts {
  index: number;
  names: Names;
  incarnations: IncarnationFacts[];
  segments: number;
  strays: number;
  strayFrames: number[];
}

/** A connection's four-tuple ("a:p<>b:p") and its endpoints, side 0 first. */
export interface Names {
  flow: string;
  endpoints: [string, string];
}

const after = (a: number, b: number): boolean => ((a - b) | 0) > 0;

// A connection's record (see slab.ts): its first incarnation's facts, then its number (the
// connection's, FlowSegment.conn), its segments, its strays, how many incarnations it has had. A
// later incarnation has a record of its own (the connection's fields unused there). Record r's
// 64-bit facts (below DOUBLES) are read as d[(r >> 1) + fact], its whole ones as n[r + DOUBLES + fact]
// (the 64-bit ones take two words each).
const INDEX = FACTS;
const SEGMENTS = FACTS + 1;
const STRAYS = FACTS + 2;
const COUNT = FACTS + 3;
/** how many whole numbers a record holds */
const WHOLES = COUNT + 1 - DOUBLES;

/**
 * The summaries of a capture's connections, fed segment by segment: FlowSegments (which carry
 * their four-tuple), or SegmentFacts (numbers only; the names are then given when a connection is
 * summarised). Each connection's facts — one record of numbers, no object — are kept until
 * `retire(conn)` (when FlowAnalyzer forgets it) or the end.
 */
export class ConnectionSummaries {
  readonly #records = new Slab(DOUBLES, WHOLES);
  /** each connection's record, by the connection's number (and 0) */
  readonly #byConn = new PairTable();
  /** the records of incarnations 2, 3, … of a connection whose four-tuple was reused */
  readonly #more = new Map<number, number[]>();
  /** the four-tuples of connections fed as FlowSegments */
  readonly #names = new Map<number, Names>();
  /** the first 100 frames of each kind: strays (per connection), challenge ACKs and window probes (per incarnation) */
  readonly #strayFrames = new Map<number, number[]>();
  readonly #challengeFrames = new Map<number, number[]>();
  readonly #probeFrames = new Map<number, number[]>();

  /** A new record (its offset), for an incarnation that begins at `timeUs`. */
  #newIncarnation(timeUs: number): number {
    const r = this.#records.alloc(-1);
    const d = this.#records.doubles;
    const n = this.#records.words;
    for (const zero of [PROBES, CHALLENGE_ACKS, RETRANSMISSIONS, BITS]) n[r + DOUBLES + zero] = 0;
    d[(r >> 1) + FIRST_US] = timeUs;
    d[(r >> 1) + LAST_US] = timeUs;
    return r;
  }

  #free(r: number): void {
    this.#records.words[r + DOUBLES + INDEX] = -1;
    this.#records.free(r);
  }

  /** The record of connection f's incarnation n. */
  #incarnation(f: number, n: number): number {
    return n === 1 ? f : this.#more.get(f)![n - 2]!;
  }

  push(s: SegmentFacts | FlowSegment): void {
    let f = this.#byConn.get(s.conn, 0);
    if (f < 0) {
      f = this.#newIncarnation(s.timeUs);
      const n = this.#records.words;
      const fn = f + DOUBLES;
      n[fn + INDEX] = s.conn;
      n[fn + SEGMENTS] = 0;
      n[fn + STRAYS] = 0;
      n[fn + COUNT] = 1;
      this.#byConn.set(s.conn, 0, f);
      // a segment's strings are the analyzer's, shared: nothing is copied per connection
      if ('flow' in s) this.#names.set(f, { flow: s.flow, endpoints: s.side === 0 ? [s.src, s.dst] : [s.dst, s.src] });
    }
    // (facts are read as d[rd + fact] for the 64-bit ones, n[rn + fact] for the whole ones)
    const fn = f + DOUBLES;
    this.#records.words[fn + SEGMENTS]!++;
    if (s.strayFrom !== undefined) {
      // the first answer to a new SYN may come from the old connection's TIME_WAIT: an ACK of the
      // old sequence space, which is how TIME_WAIT refuses the SYN — that is no old duplicate
      const n = this.#records.words;
      const d = this.#records.doubles;
      const r = s.current <= n[fn + COUNT]! ? this.#incarnation(f, s.current) : -1;
      const rn = r + DOUBLES;
      const rd = r >> 1;
      if (
        r >= 0 &&
        n[rn + CLIENT] === 1 - s.side &&
        !(n[rn + BITS]! & SYN_ACKED) &&
        n[rn + SYN_ANSWER]! < 0 &&
        (s.flagBits & (FIN | SYN | RST | ACK)) === ACK
      ) {
        n[rn + SYN_ANSWER] = 2;
        n[rn + ANSWER_NUMBER] = s.number;
        d[rd + LAST_US] = s.timeUs;
        return;
      }
      n[fn + STRAYS]!++;
      keepFrame(this.#strayFrames, f, s.number);
      return; // a segment of an earlier incarnation says nothing about the current one
    }
    for (let i = this.#records.words[fn + COUNT]! + 1; i <= s.current; i++) {
      const r = this.#newIncarnation(s.timeUs);
      const more = this.#more.get(f);
      if (more) more.push(r);
      else this.#more.set(f, [r]);
      this.#records.words[fn + COUNT] = i;
    }
    const r = this.#incarnation(f, s.current);
    const d = this.#records.doubles;
    const n = this.#records.words;
    const rd = r >> 1;
    const rn = r + DOUBLES;
    d[rd + LAST_US] = s.timeUs;
    const from = s.side;
    const to = (1 - from) as 0 | 1;
    const syn = (s.flagBits & SYN) !== 0;
    const ack = (s.flagBits & ACK) !== 0;
    const fin = (s.flagBits & FIN) !== 0;
    const rst = (s.flagBits & RST) !== 0;
    let bits = n[rn + BITS]!;
    if (s.marks.length) {
      if (s.marks.includes('retransmission')) n[rn + RETRANSMISSIONS]!++;
      if (s.marks.includes('challenge-ack')) {
        n[rn + CHALLENGE_ACKS]!++;
        keepFrame(this.#challengeFrames, r, s.number);
      }
      if (s.marks.includes('window-probe')) {
        n[rn + PROBES]!++;
        keepFrame(this.#probeFrames, r, s.number);
      }
      if (s.marks.includes('zero-window')) bits |= ZERO_WINDOW << from;
    }
    if (syn && !ack && n[rn + CLIENT]! < 0) {
      n[rn + CLIENT] = from;
      n[rn + SYN_NUMBER] = s.number;
    } else if (syn && ack && n[rn + CLIENT] === to && !(bits & SYN_ACKED)) {
      bits |= SYN_ACKED;
      n[rn + ANSWER_NUMBER] = s.number;
    } else if (n[rn + CLIENT] === to && !(bits & SYN_ACKED) && n[rn + SYN_ANSWER]! < 0) {
      n[rn + SYN_ANSWER] = rst ? 1 : ack ? 2 : -1;
      n[rn + ANSWER_NUMBER] = s.number;
    }
    const end = (s.seq + s.len + (syn ? 1 : 0) + (fin ? 1 : 0)) >>> 0;
    if (d[rd + HIGHEST + from]! < 0 || after(end, d[rd + HIGHEST + from]!)) d[rd + HIGHEST + from] = end;
    if (ack && (d[rd + ACKED + to]! < 0 || after(s.ack, d[rd + ACKED + to]!))) d[rd + ACKED + to] = s.ack;
    if (s.len > 0) {
      bits |= SENT_DATA << from;
      n[rn + LAST_DATA_FROM] = from;
      if (n[rn + FIN_NUMBER + to]! >= 0) bits |= DATA_AFTER_FIN << from;
    }
    if (fin && n[rn + FIN_NUMBER + from]! < 0) {
      n[rn + FIN_NUMBER + from] = s.number;
      d[rd + FIN_SEQ + from] = s.seq;
      d[rd + FIN_ACK + from] = s.ack;
      n[rn + FIN_LEN + from] = s.len;
      if (ack) bits |= FIN_HAS_ACK << from;
    }
    if (rst) {
      const ownFin = n[rn + FIN_NUMBER + from]! >= 0;
      if (ownFin && n[rn + FIN_NUMBER + to]! >= 0 && n[rn + LATE_RST + from]! < 0) n[rn + LATE_RST + from] = s.number;
      if (n[rn + RST_FROM]! < 0) {
        const sentHigh = d[rd + HIGHEST + from]!;
        const ackedByOther = d[rd + ACKED + from]!;
        n[rn + RST_FROM] = from;
        n[rn + RST_NUMBER] = s.number;
        n[rn + RST_LAST_DATA_FROM] = n[rn + LAST_DATA_FROM]!;
        if (ownFin) bits |= RST_AFTER_OWN_FIN;
        if (sentHigh >= 0 && ackedByOther >= 0 && after(sentHigh, ackedByOther) && bits & (SENT_DATA << from)) bits |= RST_UNACKED;
        if (bits & (ZERO_WINDOW << to)) bits |= RST_ZERO_WINDOW_SEEN;
      }
    }
    n[rn + BITS] = bits;
  }

  /** Connection f's facts, read out of its records (as objects: one connection at a time). */
  #facts(f: number, names: Names): FlowFacts {
    const d = this.#records.doubles;
    const n = this.#records.words;
    const fn = f + DOUBLES;
    const incarnations: IncarnationFacts[] = [];
    for (let i = 1; i <= n[fn + COUNT]!; i++) {
      const r = this.#incarnation(f, i);
      const facts = [...d.subarray(r >> 1, (r >> 1) + DOUBLES), ...n.subarray(r + 2 * DOUBLES, r + DOUBLES + FACTS)];
      incarnations.push({
        number: i,
        facts,
        bits: facts[BITS]!,
        challengeFrames: this.#challengeFrames.get(r) ?? null,
        probeFrames: this.#probeFrames.get(r) ?? null,
      });
    }
    return {
      index: n[fn + INDEX]!,
      names,
      incarnations,
      segments: n[fn + SEGMENTS]!,
      strays: n[fn + STRAYS]!,
      strayFrames: this.#strayFrames.get(f) ?? [],
    };
  }

  /** The summary of connection `conn`, its records freed (undefined when it had no segment). */
  retire(conn: number, names?: Names): ConnectionSummary | undefined {
    const f = this.#byConn.get(conn, 0);
    if (f < 0) return undefined;
    const summary = summarise(this.#facts(f, this.#namesOf(f, names)));
    for (const r of [f, ...(this.#more.get(f) ?? [])]) {
      this.#challengeFrames.delete(r);
      this.#probeFrames.delete(r);
      this.#free(r);
    }
    this.#byConn.delete(conn, 0);
    this.#more.delete(f);
    this.#names.delete(f);
    this.#strayFrames.delete(f);
    return summary;
  }

  #namesOf(f: number, given: Names | undefined): Names {
    const names = this.#names.get(f) ?? given;
    if (!names) throw new Error(`connection ${this.#records.words[f + DOUBLES + INDEX]}: fed as numbers, so its names must be given`);
    return names;
  }

  /** The connections not retired, in order of first appearance (fed as FlowSegments, which name them). */
  connections(): ConnectionSummary[] {
    const n = this.#records.words;
    const index = (r: number): number => n[r + DOUBLES + INDEX]!;
    const first: number[] = [];
    for (let r = 0; r < this.#records.top; r += this.#records.stride) if (index(r) > 0) first.push(r);
    first.sort((a, b) => index(a) - index(b));
    return first.map((f) => summarise(this.#facts(f, this.#namesOf(f, undefined))));
  }
}

/** Keeps frame `n` in `map`'s list for `key`, up to 100 of them. */
function keepFrame(map: Map<number, number[]>, key: number, n: number): void {
  const list = map.get(key);
  if (!list) map.set(key, [n]);
  else if (list.length < 100) list.push(n);
}

function explainIncarnation(f: Names, inc: IncarnationFacts, prev: IncarnationFacts | undefined, prevClosedFirst: -1 | 0 | 1): Pattern[] {
  const out: Pattern[] = [];
  const p = (id: PatternId, text: string, frames: readonly number[] | null): void => {
    out.push({ id, text, lab: PATTERNS[id].lab, frames: (frames ?? []).filter((n) => n > 0) });
  };
  const name = (side: number): string => f.endpoints[side]!;
  const x = inc.facts;
  const client = x[CLIENT]!;
  // a new SYN on a four-tuple whose previous incarnation closed with FINs: one side is in TIME_WAIT
  if (prev && bothFins(prev) && client >= 0) {
    const c = name(client);
    const server = name(1 - client);
    if (inc.bits & SYN_ACKED) {
      if (prevClosedFirst === client)
        p(
          'tw-reuse-by-closer',
          `${c} closed the previous incarnation first, so held its TIME_WAIT, ` +
            `and opened the four-tuple again (tcp_tw_reuse, or an explicit bind)`,
          [x[SYN_NUMBER]!],
        );
      else
        p(
          'syn-into-time-wait-accepted',
          `${c} sent a new SYN into ${server}'s TIME_WAIT and it was accepted (a higher sequence number or a newer timestamp, RFC 6191)`,
          [x[SYN_NUMBER]!, x[ANSWER_NUMBER]!],
        );
    } else if (x[SYN_ANSWER] === 2)
      p('syn-into-time-wait-refused', `${c}'s new SYN met ${server}'s TIME_WAIT and was answered with an ACK of the old connection`, [
        x[SYN_NUMBER]!,
        x[ANSWER_NUMBER]!,
      ]);
  }
  if (client >= 0 && !(inc.bits & SYN_ACKED) && x[SYN_ANSWER] === 1) {
    p('refused', `${name(1 - client)} answered ${name(client)}'s SYN with RST: nothing listening`, [x[SYN_NUMBER]!, x[ANSWER_NUMBER]!]);
    return out;
  }
  const firstFin = closedFirstOf(inc);
  if (bothFins(inc)) {
    const a = firstFin as 0 | 1;
    const b = (1 - a) as 0 | 1;
    const fa = x[FIN_NUMBER + a]!;
    const fb = x[FIN_NUMBER + b]!;
    if (finsCrossed(inc))
      p('simultaneous-close', `the FINs crossed (#${fa}, #${fb}): both sides pass CLOSING and hold TIME_WAIT`, [fa, fb]);
    else p('orderly-close', `${name(a)} closed first (FIN #${fa}) and holds TIME_WAIT; ${name(b)} closed after it`, [fa, fb]);
    const late = x[LATE_RST + b]!;
    if (late >= 0)
      p(
        'rst-into-time-wait',
        `${name(b)} sent an RST (#${late}) into ${name(a)}'s TIME_WAIT: it dies early unless tcp_rfc1337=1 (RFC 1337)`,
        [late],
      );
  } else if (x[RST_FROM]! >= 0) {
    const from = x[RST_FROM]!;
    const o = (1 - from) as 0 | 1;
    const n = x[RST_NUMBER]!;
    const windowShut = inc.bits & RST_ZERO_WINDOW_SEEN ? ` and ${name(o)}'s window shut` : '';
    if (inc.bits & RST_AFTER_OWN_FIN && inc.bits & (DATA_AFTER_FIN << o))
      p(
        'rst-after-fin',
        `${name(from)} had closed (its FIN acknowledged, none came back); ${name(o)}'s late data was answered with RST ` +
          `(#${n}): the socket was gone (FIN_WAIT_2 timed out, or closed)`,
        [n],
      );
    else if (inc.bits & (RST_UNACKED | RST_ZERO_WINDOW_SEEN))
      p(
        'abort-unsent',
        `${name(from)} reset the connection (#${n}) with data still unacknowledged${windowShut}: ` +
          `an abortive close (SO_LINGER {1,0}) drops it`,
        [n],
      );
    else if (x[RST_LAST_DATA_FROM] === o)
      p(
        'abort-unread',
        `${name(from)} reset the connection (#${n}) after ${name(o)}'s data: closed with received data unread (RFC 2525 §2.17), or ` +
          `SO_LINGER {1,0} after reading it`,
        [n],
      );
    else
      p(
        'abort',
        `${name(from)} reset the connection (#${n}) instead of closing with FIN: an abortive close (SO_LINGER {1,0}, or the ` +
          `process was killed with it set)`,
        [n],
      );
  } else if (firstFin >= 0) {
    const fin = x[FIN_NUMBER + firstFin]!;
    p('open', `${name(firstFin)} sent FIN (#${fin}); ${name(1 - firstFin)} had not closed by the end of the capture`, [fin]);
  } else p('open', 'no FIN or RST in the capture', []);
  const challenges = x[CHALLENGE_ACKS]!;
  if (challenges)
    p(
      'challenge-ack',
      `${challenges} challenge ACK${challenges > 1 ? 's' : ''}: an in-window RST, a SYN or an ACK of unsent data was not taken (RFC 5961)`,
      inc.challengeFrames,
    );
  const shut = [0, 1].filter((side) => inc.bits & (ZERO_WINDOW << side));
  const probes = x[PROBES]!;
  if (shut.length && probes)
    p('zero-window', `${shut.map(name).join(', ')} shut its window; ${probes} window probe${probes > 1 ? 's' : ''}`, inc.probeFrames);
  return out;
}

const bothFins = (inc: IncarnationFacts): boolean => inc.facts[FIN_NUMBER]! >= 0 && inc.facts[FIN_NUMBER + 1]! >= 0;

/** Both sides sent a FIN and neither FIN acknowledges the other's: they crossed (a simultaneous close). */
function finsCrossed(inc: IncarnationFacts): boolean {
  if (!bothFins(inc)) return false;
  const x = inc.facts;
  const acks = (a: number, b: number): boolean =>
    (inc.bits & (FIN_HAS_ACK << a)) !== 0 && x[FIN_ACK + a] === (x[FIN_SEQ + b]! + x[FIN_LEN + b]! + 1) >>> 0;
  return !acks(0, 1) && !acks(1, 0);
}

/** The side whose FIN came first (-1: no FIN). */
function closedFirstOf(inc: IncarnationFacts): -1 | 0 | 1 {
  const a = inc.facts[FIN_NUMBER]!;
  const b = inc.facts[FIN_NUMBER + 1]!;
  if (a >= 0 && b >= 0) return a < b ? 0 : 1;
  return a >= 0 ? 0 : b >= 0 ? 1 : -1;
}

function summarise(f: FlowFacts): ConnectionSummary {
  const names = f.names;
  const { flow, endpoints } = names;
  const patterns: Pattern[] = [];
  let prevClosedFirst: -1 | 0 | 1 = -1;
  f.incarnations.forEach((inc, i) => {
    for (const pat of explainIncarnation(names, inc, f.incarnations[i - 1], prevClosedFirst))
      if (!patterns.some((q) => q.id === pat.id)) patterns.push(pat);
    prevClosedFirst = closedFirstOf(inc);
  });
  if (f.strays)
    patterns.unshift({
      id: 'old-duplicate',
      text: `${f.strays} segment${f.strays > 1 ? 's' : ''} of an earlier incarnation arrived after a later one had begun`,
      lab: PATTERNS['old-duplicate'].lab,
      frames: f.strayFrames ?? [],
    });
  const last = f.incarnations[f.incarnations.length - 1];
  const first = last ? closedFirstOf(last) : -1;
  const rstFrom = last ? last.facts[RST_FROM]! : -1;
  let ended = 'open';
  let timeWait: string[] = [];
  if (last && bothFins(last)) {
    ended = 'FIN/FIN' + (rstFrom >= 0 ? `, then RST from ${endpoints[rstFrom]}` : '');
    timeWait = finsCrossed(last) ? [...endpoints] : [endpoints[first as 0 | 1]];
  } else if (rstFrom >= 0) ended = `RST from ${endpoints[rstFrom]}`;
  else if (first >= 0) ended = `FIN from ${endpoints[first as 0 | 1]} only`;
  if (patterns.length === 0) patterns.push({ id: 'open', text: 'no TCP handshake or close in the capture', lab: null, frames: [] });
  return {
    index: f.index,
    flow,
    endpoints: endpoints,
    incarnations: f.incarnations.length,
    firstUs: f.incarnations[0]?.facts[FIRST_US] ?? 0,
    lastUs: last?.facts[LAST_US] ?? 0,
    segments: f.segments,
    strays: f.strays,
    retransmissions: f.incarnations.reduce((n, inc) => n + inc.facts[RETRANSMISSIONS]!, 0),
    closedFirst: first >= 0 ? endpoints[first as 0 | 1] : null,
    ended,
    timeWait,
    patterns,
  };
}

/**
 * The summary as text, connection by connection as they come (a capture of any size streams
 * through): a header, then one line per connection with its patterns indented beneath (with
 * `explain`). The connection column is as wide as the widest of the first 1,000 connections, held
 * back until then as text (not as objects: objects kept that long teach V8 to allocate every later
 * summary in the old generation, which then grows to three times the live heap — measured).
 */
export class SummaryWriter {
  /** the first connections: their four-tuple, a NUL, the rest of the line (and explanations) */
  #pending: string[] | null = [];
  #width = 10;
  count = 0;
  readonly #out: (line: string) => void;
  readonly #explain: boolean;

  constructor(out: (line: string) => void, opts: { explain?: boolean } = {}) {
    this.#out = out;
    this.#explain = !!opts.explain;
  }

  add(c: ConnectionSummary): void {
    this.count++;
    const dur = `${((c.lastUs - c.firstUs) / 1e6).toFixed(3)} s`;
    const tw = c.timeWait.length ? c.timeWait.map((x) => (x === c.endpoints[0] ? 'left' : 'right')).join('+') : '-';
    const main = c.patterns.map((p) => PATTERNS[p.id].name).join('; ');
    // whole words only: 192.0.2.1:5000 (or [2001:db8::1]:5000) is no part of …:50000
    const ended = c.ended
      .split(' ')
      .map((w) => (w === c.endpoints[0] ? 'left' : w === c.endpoints[1] ? 'right' : w))
      .join(' ');
    const counts = `${String(c.strays).padStart(6)}  ${String(c.retransmissions).padStart(7)}`;
    const rest = `${String(c.incarnations).padStart(3)}  ${ended.padEnd(14)}  ${tw.padEnd(18)}  ${counts}  ${dur.padStart(8)}  ${main}`;
    const explained = this.#explain
      ? c.patterns
          .map((p) => `\n${''.padStart(6)}${PATTERNS[p.id].name}: ${p.text}${p.lab ? ` — see \`twlab run ${p.lab}\`` : ''}`)
          .join('')
      : '';
    const text = `${String(c.index).padStart(4)}\0${c.endpoints.join(' ↔ ')}\0${rest}${explained}`;
    if (!this.#pending) return this.#write(text);
    this.#pending.push(text);
    if (this.#pending.length >= 1000) this.#flushPending();
  }

  /** Writes what is still held back (or says there were no connections). */
  end(): void {
    if (this.count === 0) this.#out('(no TCP connections in the capture)');
    else this.#flushPending();
  }

  #flushPending(): void {
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = null;
    for (const text of pending) this.#width = Math.max(this.#width, text.split('\0')[1]!.length);
    const connection = 'connection'.padEnd(this.#width);
    this.#out(`${'#'.padStart(4)}  ${connection}  inc  ${'ended'.padEnd(14)}  TIME_WAIT held by   strays  retrans  duration  close`);
    for (const text of pending) this.#write(text);
  }

  #write(text: string): void {
    const [index, conn, rest] = text.split('\0') as [string, string, string];
    const lines = rest.split('\n');
    this.#out(`${index}  ${conn.padEnd(this.#width)}  ${lines[0]}`);
    for (let i = 1; i < lines.length; i++) this.#out(lines[i]!);
  }
}

/** The summary as text, all at once (for a few connections; SummaryWriter streams). */
export function formatSummary(conns: readonly ConnectionSummary[], opts: { explain?: boolean } = {}): string[] {
  const out: string[] = [];
  const w = new SummaryWriter((line) => out.push(line), opts);
  for (const c of conns) w.add(c);
  w.end();
  return out;
}
