// One line per connection, the first thing an engineer wants from a big capture: the four-tuple,
// its incarnations, who closed first, how it ended (FIN/FIN, RST and from whom), which side holds
// TIME_WAIT, strays, retransmissions, duration — and the close pattern it recognises, with the lab
// that demonstrates it. Fed segment by segment (from FlowAnalyzer), it keeps a few facts per
// incarnation, never the segments themselves.
import { ACK, FIN, RST, SYN } from '../wire/view';
import type { FlowSegment } from './flows';

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

interface FinFact {
  number: number;
  seq: number;
  ack: number;
  len: number;
  hasAck: boolean;
}

/** Per incarnation; pairs are indexed by side (0: the flow's first endpoint, as sorted). */
interface IncarnationFacts {
  number: number;
  firstUs: number;
  lastUs: number;
  /** the side that sent the SYN (-1: none seen) */
  client: -1 | 0 | 1;
  synAck: boolean;
  /** the first answer to the SYN from the other side, when it is not a SYN-ACK */
  synAnswer: 'rst' | 'ack' | null;
  /** frame numbers: the SYN, and its answer (SYN-ACK, RST or ACK) */
  synNumber: number;
  answerNumber: number;
  /** frames marked as challenge ACKs, and the zero-window probes */
  challengeFrames: number[];
  probeFrames: number[];
  fins: [FinFact | null, FinFact | null];
  rst: Array<{ from: 0 | 1; number: number; afterOwnFin: boolean; afterBothFins: boolean; lastDataFrom: -1 | 0 | 1; unacked: boolean; zeroWindowSeen: boolean }>;
  /** per side: bytes sent, whether it sent data after the other side's FIN, whether it shut its window */
  bytes: [number, number];
  dataAfterFin: [boolean, boolean];
  zeroWindow: [boolean, boolean];
  lastDataFrom: -1 | 0 | 1;
  probes: number;
  challengeAcks: number;
  retransmissions: number;
  /** per side: the highest sequence end it sent (-1: none), and the latest ACK the other side sent of it */
  highest: [number, number];
  acked: [number, number];
}

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

const newIncarnation = (number: number, at: number): IncarnationFacts => ({
  number,
  firstUs: at,
  lastUs: at,
  client: -1,
  synAck: false,
  synAnswer: null,
  synNumber: 0,
  answerNumber: 0,
  challengeFrames: [],
  probeFrames: [],
  fins: [null, null],
  rst: [],
  bytes: [0, 0],
  dataAfterFin: [false, false],
  zeroWindow: [false, false],
  lastDataFrom: -1,
  probes: 0,
  challengeAcks: 0,
  retransmissions: 0,
  highest: [-1, -1],
  acked: [-1, -1],
});

interface FlowFacts {
  index: number;
  flow: string;
  endpoints: [string, string];
  incarnations: IncarnationFacts[];
  segments: number;
  strays: number;
  strayFrames: number[];
}

const after = (a: number, b: number): boolean => ((a - b) | 0) > 0;
const FLAG_BIT = { FIN, SYN, RST, ACK } as const;

export class ConnectionSummaries {
  readonly #flows = new Map<string, FlowFacts>();

  push(s: FlowSegment): void {
    let f = this.#flows.get(s.flow);
    if (!f) {
      const [a, b] = s.flow.split('<>') as [string, string];
      f = { index: this.#flows.size + 1, flow: s.flow, endpoints: [a, b], incarnations: [], segments: 0, strays: 0, strayFrames: [] };
      this.#flows.set(s.flow, f);
    }
    f.segments++;
    if (s.strayFrom !== undefined) {
      // the first answer to a new SYN may come from the old connection's TIME_WAIT: an ACK of the
      // old sequence space, which is how TIME_WAIT refuses the SYN — that is no old duplicate
      const cur = f.incarnations[s.current - 1];
      if (cur && cur.client === 1 - s.side && !cur.synAck && cur.synAnswer === null && (s.flagBits & (FIN | SYN | RST | ACK)) === ACK) {
        cur.synAnswer = 'ack';
        cur.answerNumber = s.number;
        cur.lastUs = s.timeUs;
        return;
      }
      f.strays++;
      if (f.strayFrames.length < 100) f.strayFrames.push(s.number);
      return; // a segment of an earlier incarnation says nothing about the current one
    }
    while (f.incarnations.length < s.current) f.incarnations.push(newIncarnation(f.incarnations.length + 1, s.timeUs));
    const inc = f.incarnations[s.current - 1]!;
    inc.lastUs = s.timeUs;
    const from = s.side;
    const to = (1 - from) as 0 | 1;
    const bits = s.flagBits;
    const has = (x: 'SYN' | 'ACK' | 'FIN' | 'RST'): boolean => (bits & FLAG_BIT[x]) !== 0;
    if (s.marks.length) {
      if (s.marks.includes('retransmission')) inc.retransmissions++;
      if (s.marks.includes('challenge-ack')) {
        inc.challengeAcks++;
        if (inc.challengeFrames.length < 100) inc.challengeFrames.push(s.number);
      }
      if (s.marks.includes('window-probe')) {
        inc.probes++;
        if (inc.probeFrames.length < 100) inc.probeFrames.push(s.number);
      }
      if (s.marks.includes('zero-window')) inc.zeroWindow[from] = true;
    }
    if (has('SYN') && !has('ACK') && inc.client === -1) {
      inc.client = from;
      inc.synNumber = s.number;
    } else if (has('SYN') && has('ACK') && inc.client === to && !inc.synAck) {
      inc.synAck = true;
      inc.answerNumber = s.number;
    } else if (inc.client === to && !inc.synAck && inc.synAnswer === null) {
      inc.synAnswer = has('RST') ? 'rst' : has('ACK') ? 'ack' : null;
      inc.answerNumber = s.number;
    }
    const end = (s.seq + s.len + (has('SYN') ? 1 : 0) + (has('FIN') ? 1 : 0)) >>> 0;
    if (inc.highest[from] < 0 || after(end, inc.highest[from])) inc.highest[from] = end;
    if (has('ACK') && (inc.acked[to] < 0 || after(s.ack, inc.acked[to]))) inc.acked[to] = s.ack;
    if (s.len > 0) {
      inc.bytes[from] += s.len;
      inc.lastDataFrom = from;
      if (inc.fins[to]) inc.dataAfterFin[from] = true;
    }
    if (has('FIN') && !inc.fins[from]) inc.fins[from] = { number: s.number, seq: s.seq, ack: s.ack, len: s.len, hasAck: has('ACK') };
    if (has('RST')) {
      const sentHigh = inc.highest[from];
      const ackedByOther = inc.acked[from];
      inc.rst.push({
        from,
        number: s.number,
        afterOwnFin: !!inc.fins[from],
        afterBothFins: !!inc.fins[from] && !!inc.fins[to],
        lastDataFrom: inc.lastDataFrom,
        // data this side sent that the other had not acknowledged
        unacked: sentHigh >= 0 && ackedByOther >= 0 && after(sentHigh, ackedByOther) && inc.bytes[from] > 0,
        zeroWindowSeen: inc.zeroWindow[to],
      });
    }
  }

  /** The connections, in order of first appearance. */
  connections(): ConnectionSummary[] {
    return [...this.#flows.values()].map((f) => summarise(f));
  }
}

function explainIncarnation(f: FlowFacts, inc: IncarnationFacts, prev: IncarnationFacts | undefined, prevClosedFirst: -1 | 0 | 1): Pattern[] {
  const out: Pattern[] = [];
  const p = (id: PatternId, text: string, frames: number[]): void => {
    out.push({ id, text, lab: PATTERNS[id].lab, frames: frames.filter((n) => n > 0) });
  };
  const name = (side: number): string => f.endpoints[side]!;
  // a new SYN on a four-tuple whose previous incarnation closed with FINs: one side is in TIME_WAIT
  if (prev && prev.fins[0] && prev.fins[1] && inc.client >= 0) {
    const client = name(inc.client);
    const server = name(1 - inc.client);
    if (inc.synAck) {
      if (prevClosedFirst === inc.client) p('tw-reuse-by-closer', `${client} closed the previous incarnation first, so held its TIME_WAIT, and opened the four-tuple again (tcp_tw_reuse, or an explicit bind)`, [inc.synNumber]);
      else p('syn-into-time-wait-accepted', `${client} sent a new SYN into ${server}'s TIME_WAIT and it was accepted (a higher sequence number or a newer timestamp, RFC 6191)`, [inc.synNumber, inc.answerNumber]);
    } else if (inc.synAnswer === 'ack') p('syn-into-time-wait-refused', `${client}'s new SYN met ${server}'s TIME_WAIT and was answered with an ACK of the old connection`, [inc.synNumber, inc.answerNumber]);
  }
  if (inc.client >= 0 && !inc.synAck && inc.synAnswer === 'rst') {
    p('refused', `${name(1 - inc.client)} answered ${name(inc.client)}'s SYN with RST: nothing listening`, [inc.synNumber, inc.answerNumber]);
    return out;
  }
  const firstFin = closedFirstOf(inc);
  const firstRst = inc.rst[0];
  if (inc.fins[0] && inc.fins[1]) {
    const x = firstFin as 0 | 1;
    const y = (1 - x) as 0 | 1;
    const fx = inc.fins[x]!;
    const fy = inc.fins[y]!;
    if (finsCrossed(inc)) p('simultaneous-close', `the FINs crossed (#${fx.number}, #${fy.number}): both sides pass CLOSING and hold TIME_WAIT`, [fx.number, fy.number]);
    else p('orderly-close', `${name(x)} closed first (FIN #${fx.number}) and holds TIME_WAIT; ${name(y)} closed after it`, [fx.number, fy.number]);
    const late = inc.rst.find((r) => r.afterBothFins && r.from === y);
    if (late) p('rst-into-time-wait', `${name(y)} sent an RST (#${late.number}) into ${name(x)}'s TIME_WAIT: it dies early unless tcp_rfc1337=1 (RFC 1337)`, [late.number]);
  } else if (firstRst) {
    const r = firstRst;
    const o = (1 - r.from) as 0 | 1;
    if (r.afterOwnFin && inc.dataAfterFin[o]) p('rst-after-fin', `${name(r.from)} had closed (its FIN acknowledged, none came back); ${name(o)}'s late data was answered with RST (#${r.number}): the socket was gone (FIN_WAIT_2 timed out, or closed)`, [r.number]);
    else if (r.unacked || r.zeroWindowSeen) p('abort-unsent', `${name(r.from)} reset the connection (#${r.number}) with data still unacknowledged${r.zeroWindowSeen ? ` and ${name(o)}'s window shut` : ''}: an abortive close (SO_LINGER {1,0}) drops it`, [r.number]);
    else if (r.lastDataFrom === o) p('abort-unread', `${name(r.from)} reset the connection (#${r.number}) after ${name(o)}'s data: closed with received data unread (RFC 2525 §2.17), or SO_LINGER {1,0} after reading it`, [r.number]);
    else p('abort', `${name(r.from)} reset the connection (#${r.number}) instead of closing with FIN: an abortive close (SO_LINGER {1,0}, or the process was killed with it set)`, [r.number]);
  } else if (firstFin >= 0) {
    const fin = inc.fins[firstFin as 0 | 1]!;
    p('open', `${name(firstFin)} sent FIN (#${fin.number}); ${name(1 - firstFin)} had not closed by the end of the capture`, [fin.number]);
  } else p('open', 'no FIN or RST in the capture', []);
  if (inc.challengeAcks) p('challenge-ack', `${inc.challengeAcks} challenge ACK${inc.challengeAcks > 1 ? 's' : ''}: an in-window RST, a SYN or an ACK of unsent data was not taken (RFC 5961)`, inc.challengeFrames);
  const shut = [0, 1].filter((x) => inc.zeroWindow[x]);
  if (shut.length && inc.probes) p('zero-window', `${shut.map(name).join(', ')} shut its window; ${inc.probes} window probe${inc.probes > 1 ? 's' : ''}`, inc.probeFrames);
  return out;
}

/** Both sides sent a FIN and neither FIN acknowledges the other's: they crossed (a simultaneous close). */
function finsCrossed(inc: IncarnationFacts): boolean {
  const [a, b] = inc.fins;
  if (!a || !b) return false;
  const acks = (x: FinFact, y: FinFact): boolean => x.hasAck && x.ack === ((y.seq + y.len + 1) >>> 0);
  return !acks(a, b) && !acks(b, a);
}

/** The side whose FIN came first (-1: no FIN). */
function closedFirstOf(inc: IncarnationFacts): -1 | 0 | 1 {
  const [a, b] = inc.fins;
  if (a && b) return a.number < b.number ? 0 : 1;
  return a ? 0 : b ? 1 : -1;
}

function summarise(f: FlowFacts): ConnectionSummary {
  const patterns: Pattern[] = [];
  let prevClosedFirst: -1 | 0 | 1 = -1;
  f.incarnations.forEach((inc, i) => {
    for (const pat of explainIncarnation(f, inc, f.incarnations[i - 1], prevClosedFirst)) if (!patterns.some((q) => q.id === pat.id)) patterns.push(pat);
    prevClosedFirst = closedFirstOf(inc);
  });
  if (f.strays) patterns.unshift({ id: 'old-duplicate', text: `${f.strays} segment${f.strays > 1 ? 's' : ''} of an earlier incarnation arrived after a later one had begun`, lab: PATTERNS['old-duplicate'].lab, frames: f.strayFrames });
  const last = f.incarnations[f.incarnations.length - 1];
  const first = last ? closedFirstOf(last) : -1;
  const rst = last?.rst[0];
  let ended = 'open';
  let timeWait: string[] = [];
  if (last && last.fins[0] && last.fins[1]) {
    ended = 'FIN/FIN' + (rst ? `, then RST from ${f.endpoints[rst.from]}` : '');
    timeWait = finsCrossed(last) ? [...f.endpoints] : [f.endpoints[first as 0 | 1]];
  } else if (rst) ended = `RST from ${f.endpoints[rst.from]}`;
  else if (first >= 0) ended = `FIN from ${f.endpoints[first as 0 | 1]} only`;
  if (patterns.length === 0) patterns.push({ id: 'open', text: 'no TCP handshake or close in the capture', lab: null, frames: [] });
  return {
    index: f.index,
    flow: f.flow,
    endpoints: f.endpoints,
    incarnations: f.incarnations.length,
    firstUs: f.incarnations[0]?.firstUs ?? 0,
    lastUs: last?.lastUs ?? 0,
    segments: f.segments,
    strays: f.strays,
    retransmissions: f.incarnations.reduce((n, x) => n + x.retransmissions, 0),
    closedFirst: first >= 0 ? f.endpoints[first as 0 | 1] : null,
    ended,
    timeWait,
    patterns,
  };
}

/** The summary as text: one line per connection, then its patterns indented beneath. */
export function formatSummary(conns: readonly ConnectionSummary[], opts: { explain?: boolean } = {}): string[] {
  if (conns.length === 0) return ['(no TCP connections in the capture)'];
  const width = Math.max(10, ...conns.map((c) => c.endpoints.join(' ↔ ').length));
  const out = [`${'#'.padStart(4)}  ${'connection'.padEnd(width)}  inc  ${'ended'.padEnd(14)}  TIME_WAIT held by   strays  retrans  duration  close`];
  for (const c of conns) {
    const dur = `${((c.lastUs - c.firstUs) / 1e6).toFixed(3)} s`;
    const tw = c.timeWait.length ? c.timeWait.map((x) => (x === c.endpoints[0] ? 'left' : 'right')).join('+') : '-';
    const main = c.patterns.map((p) => PATTERNS[p.id].name).join('; ');
    const ended = c.ended.replace(c.endpoints[0], 'left').replace(c.endpoints[1], 'right');
    out.push(`${String(c.index).padStart(4)}  ${c.endpoints.join(' ↔ ').padEnd(width)}  ${String(c.incarnations).padStart(3)}  ${ended.padEnd(14)}  ${tw.padEnd(18)}  ${String(c.strays).padStart(6)}  ${String(c.retransmissions).padStart(7)}  ${dur.padStart(8)}  ${main}`);
    if (opts.explain) for (const p of c.patterns) out.push(`${''.padStart(6)}${PATTERNS[p.id].name}: ${p.text}${p.lab ? ` — see \`twlab run ${p.lab}\`` : ''}`);
  }
  return out;
}
