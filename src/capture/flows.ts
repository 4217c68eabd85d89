// Flow analysis over a capture: TCP segments grouped by four-tuple and incarnation, with relative
// sequence numbers per incarnation and the notable ones marked (RST, retransmission, zero window,
// window probe, stray segment of an earlier incarnation, challenge ACK). Pure: from pcap records.
import { formatEndpoint as endpoint } from '../wire/address';
import { isWireError } from '../wire/errors';
import { parseFrame } from '../wire/frame';
import { seqAdd, seqGt, seqLe, seqRelative, type SeqNumber } from '../wire/seq';
import { formatFlags } from '../wire/tcp';
import { ipPayloadOf, type PcapFile } from './pcap';

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
  seq: SeqNumber;
  ack: SeqNumber;
  /** relative to the sender's ISN in the segment's incarnation; the ACK relative to the receiver's */
  relSeq: number;
  relAck: number | null;
  len: number;
  window: number;
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


interface Incarnation {
  number: number;
  /** per direction: its ISN, the highest sequence end sent, and the receiver's latest ACK */
  isn: Map<string, SeqNumber>;
  highest: Map<string, SeqNumber>;
  lastAck: Map<string, SeqNumber>;
  seen: Set<string>;
  /** over: FINs both ways, or an RST not answered by a challenge ACK */
  closed: boolean;
  fins: Set<string>;
  established: boolean;
  /** per direction: the window scale its SYN offered, the latest window it advertised, its newest TSval */
  wscale: Map<string, number>;
  lastWindow: Map<string, number>;
  tsval: Map<string, number>;
}

function newIncarnation(number: number): Incarnation {
  return { number, isn: new Map(), highest: new Map(), lastAck: new Map(), seen: new Set(), closed: false, fins: new Set(), established: false, wscale: new Map(), lastWindow: new Map(), tsval: new Map() };
}

export function analyzeTcp(file: PcapFile): FlowSummary {
  const segments: FlowSegment[] = [];
  const other: FlowSummary['other'] = [];
  const directions: Record<string, DirectionSummary> = {};
  const flows = new Map<string, Incarnation[]>();
  const lastOfFlow = new Map<string, FlowSegment>();
  for (const rec of file.records) {
    const ip = ipPayloadOf(file.linkType, rec.data);
    if (!ip) {
      other.push({ number: rec.number, timeUs: rec.timeUs, summary: `link type ${file.linkType}: not IP (${rec.data.length} bytes)` });
      continue;
    }
    const s = parseFrame(ip, { snapped: rec.data.length < rec.origLength });
    if (isWireError(s)) {
      other.push({ number: rec.number, timeUs: rec.timeUs, summary: `malformed ${s.layer}: ${s.reason}` });
      continue;
    }
    if (s.kind !== 'tcp') {
      const ports = s.kind === 'udp' ? [s.udp.srcPort, s.udp.dstPort] : null;
      other.push({
        number: rec.number,
        timeUs: rec.timeUs,
        summary: s.kind === 'udp' ? `UDP ${endpoint(s.ip.src, ports![0]!)} → ${endpoint(s.ip.dst, ports![1]!)} len=${s.udp.payload.length}` : `${s.kind.toUpperCase()} ${s.ip.src} → ${s.ip.dst}`,
      });
      continue;
    }
    const t = s.tcp;
    // a frame cut by the capture's snaplen still says how much data it carried
    const len = t.payload.length + s.missing;
    const src = endpoint(s.ip.src, t.srcPort);
    const dst = endpoint(s.ip.dst, t.dstPort);
    const dir = `${src}>${dst}`;
    const rev = `${dst}>${src}`;
    const flow = [src, dst].sort().join('<>');
    const list = flows.get(flow) ?? [];
    flows.set(flow, list);
    let cur = list[list.length - 1];
    const signature = `${dir}|${t.seq}|${t.ack}|${formatFlags(t.flags)}|${len}|${Buffer.from(t.payload.subarray(0, 16)).toString('hex')}`;
    // a SYN opens the next incarnation once the current one is over (or, before it was
    // established, when it carries a new ISN); a SYN into a live connection stays in it
    const freshSyn = t.flags.syn && !t.flags.ack;
    if (!cur || (freshSyn && (cur.closed || (!cur.established && cur.isn.has(dir) && cur.isn.get(dir) !== t.seq)))) {
      cur = newIncarnation(list.length + 1);
      list.push(cur);
    }
    // a segment of an earlier incarnation: byte for byte one it carried, or an ACK from its sequence space
    let strayFrom: number | undefined;
    if (!t.flags.syn) {
      for (const old of list.slice(0, -1).reverse()) {
        const ackOld =
          t.flags.ack && old.isn.has(rev) && cur.isn.has(rev) && Math.abs(seqRelative(t.ack, cur.isn.get(rev)!) | 0) > 1 << 30 && seqRelative(t.ack, old.isn.get(rev)!) < 1 << 30;
        if (old.seen.has(signature) || ackOld) {
          strayFrom = old.number;
          break;
        }
      }
    }
    const inc = strayFrom !== undefined ? list[strayFrom - 1]! : cur;
    if (t.flags.syn && strayFrom === undefined && !cur.established) cur.isn.set(dir, t.seq);
    if (!inc.isn.has(dir)) inc.isn.set(dir, t.seq);
    const d = (directions[dir] ??= { segments: 0, bytes: 0, rst: 0, retransmissions: 0, zeroWindow: 0, windowProbes: 0, fin: 0 });
    const span = len + (t.flags.syn ? 1 : 0) + (t.flags.fin ? 1 : 0);
    const end = seqAdd(t.seq, span);
    const marks: Mark[] = [];
    const high = inc.highest.get(dir);
    if (t.flags.syn) {
      marks.push('syn');
      if (high !== undefined && !seqGt(end, high)) marks.push('retransmission');
    } else if (t.flags.rst) marks.push('rst');
    else if (span > 0 && high !== undefined && seqLe(end, high)) marks.push('retransmission');
    // a probe: no new data, one below what the receiver has acknowledged (Linux's zero-window probe)
    const acked = inc.lastAck.get(rev);
    if (!t.flags.syn && !t.flags.rst && !t.flags.fin && acked !== undefined && span <= 1 && seqAdd(t.seq, 1) === acked) marks.push('window-probe');
    if (t.window === 0 && !t.flags.rst) marks.push('zero-window');
    if (t.flags.fin) marks.push('fin');
    if (strayFrom !== undefined) marks.push('stray');
    // beyond the right edge of the window the receiver last advertised (scaled once both SYNs offered it)
    const scaled = inc.wscale.has(dir) && inc.wscale.has(rev);
    const revWindow = inc.lastWindow.get(rev);
    if (len > 0 && acked !== undefined && revWindow !== undefined && strayFrom === undefined) {
      const edge = seqAdd(acked, revWindow * 2 ** (scaled ? inc.wscale.get(rev)! : 0));
      if (seqGt(end, edge) && !(revWindow === 0 && span <= 1)) marks.push('out-of-window');
    }
    // a timestamp older than one this side already sent: what PAWS rejects (RFC 7323 §5)
    const ts = t.options.find((o) => o.kind === 'timestamps');
    // (against the current incarnation: the receiver's PAWS compares with the connection it has now)
    const newest = cur.tsval.get(dir);
    if (ts && ts.kind === 'timestamps' && newest !== undefined && ((ts.tsval - newest) | 0) < 0 && !t.flags.syn) marks.push('old-timestamp');
    // a challenge ACK: a bare ACK answering, at once, an RST or SYN the other side sent into an established connection
    const prev = lastOfFlow.get(flow);
    if (prev && prev.direction === rev && t.flags.ack && !t.flags.rst && !t.flags.syn && span === 0 && inc.established && (prev.flags.includes('RST') || (prev.flags === 'SYN' && prev.incarnation === inc.number))) {
      marks.push('challenge-ack');
      inc.closed = false; // the RST did not end it
    }
    if (t.flags.syn) {
      const ws = t.options.find((o) => o.kind === 'wscale');
      if (ws && ws.kind === 'wscale') inc.wscale.set(dir, ws.shift);
    }
    if (ts && ts.kind === 'timestamps' && strayFrom === undefined && (newest === undefined || ((ts.tsval - newest) | 0) > 0)) cur.tsval.set(dir, ts.tsval);
    if (strayFrom === undefined) {
      if (!t.flags.rst) inc.lastWindow.set(dir, t.window);
      if (high === undefined || seqGt(end, high)) inc.highest.set(dir, end);
      if (t.flags.ack) inc.lastAck.set(dir, t.ack);
      inc.seen.add(signature);
      if (t.flags.rst) inc.closed = true;
      if (t.flags.fin) inc.fins.add(dir);
      if (inc.fins.size === 2) inc.closed = true;
      if (t.flags.ack && !t.flags.syn && inc.isn.size === 2) inc.established = true;
    }
    d.segments++;
    d.bytes += len;
    if (marks.includes('rst')) d.rst++;
    if (marks.includes('retransmission')) d.retransmissions++;
    if (marks.includes('zero-window')) d.zeroWindow++;
    if (marks.includes('window-probe')) d.windowProbes++;
    if (marks.includes('fin')) d.fin++;
    const isnRev = inc.isn.get(rev);
    const seg: FlowSegment = {
      number: rec.number,
      timeUs: rec.timeUs,
      direction: dir,
      src,
      dst,
      flow,
      incarnation: inc.number,
      current: cur.number,
      strayFrom,
      flags: formatFlags(t.flags) || 'none',
      seq: t.seq,
      ack: t.ack,
      relSeq: seqRelative(t.seq, inc.isn.get(dir)!),
      relAck: t.flags.ack ? (isnRev !== undefined ? seqRelative(t.ack, isnRev) : null) : null,
      len,
      window: t.window,
      marks,
      checksumOk: t.checksumOk,
      srcAddress: s.ip.src,
      dstAddress: s.ip.dst,
    };
    segments.push(seg);
    lastOfFlow.set(flow, seg);
  }
  return { segments, directions, other };
}
