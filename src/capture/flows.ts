// Flow analysis over a capture: TCP segments per direction of each four-tuple, with the notable
// ones marked (RST, retransmission, zero window, window probe). Pure: from pcap records.
import { isWireError } from '../wire/errors';
import { parseFrame } from '../wire/frame';
import { seqAdd, seqGt, seqLe, type SeqNumber } from '../wire/seq';
import { formatFlags, type TcpRepr } from '../wire/tcp';
import { ipPayloadOf, type PcapFile } from './pcap';

export type Mark = 'rst' | 'retransmission' | 'zero-window' | 'window-probe' | 'syn' | 'fin';

export interface FlowSegment {
  number: number;
  timeUs: number;
  /** "src:port>dst:port" */
  direction: string;
  flags: string;
  seq: SeqNumber;
  ack: SeqNumber;
  len: number;
  window: number;
  marks: Mark[];
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
}

const endpoint = (a: string, p: number): string => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);

function seqSpan(t: TcpRepr): number {
  return t.payload.length + (t.flags.syn ? 1 : 0) + (t.flags.fin ? 1 : 0);
}

export function analyzeTcp(file: PcapFile): FlowSummary {
  const segments: FlowSegment[] = [];
  const directions: Record<string, DirectionSummary> = {};
  const highest = new Map<string, SeqNumber>(); // per direction: highest sequence end sent
  const lastAck = new Map<string, SeqNumber>(); // per direction: the other side's latest ACK
  for (const rec of file.records) {
    const ip = ipPayloadOf(file.linkType, rec.data);
    if (!ip) continue;
    const s = parseFrame(ip);
    if (isWireError(s) || s.kind !== 'tcp') continue;
    const t = s.tcp;
    const dir = `${endpoint(s.ip.src, t.srcPort)}>${endpoint(s.ip.dst, t.dstPort)}`;
    const rev = `${endpoint(s.ip.dst, t.dstPort)}>${endpoint(s.ip.src, t.srcPort)}`;
    const d = (directions[dir] ??= { segments: 0, bytes: 0, rst: 0, retransmissions: 0, zeroWindow: 0, windowProbes: 0, fin: 0 });
    const span = seqSpan(t);
    const end = seqAdd(t.seq, span);
    const marks: Mark[] = [];
    if (t.flags.syn) {
      marks.push('syn');
      if (highest.has(dir) && !seqGt(end, highest.get(dir)!)) marks.push('retransmission');
    } else if (t.flags.rst) marks.push('rst');
    else if (span > 0 && highest.has(dir) && seqLe(end, highest.get(dir)!)) marks.push('retransmission');
    // a probe: no new data, one sequence number below what the receiver has acknowledged
    const acked = lastAck.get(rev);
    if (!t.flags.syn && !t.flags.rst && acked !== undefined && span <= 1 && seqAdd(t.seq, 1) === acked && !t.flags.fin) marks.push('window-probe');
    if (t.window === 0 && !t.flags.rst) marks.push('zero-window');
    if (t.flags.fin) marks.push('fin');
    if (!highest.has(dir) || seqGt(end, highest.get(dir)!)) highest.set(dir, end);
    if (t.flags.ack) lastAck.set(dir, t.ack);
    d.segments++;
    d.bytes += t.payload.length;
    if (marks.includes('rst')) d.rst++;
    if (marks.includes('retransmission')) d.retransmissions++;
    if (marks.includes('zero-window')) d.zeroWindow++;
    if (marks.includes('window-probe')) d.windowProbes++;
    if (marks.includes('fin')) d.fin++;
    segments.push({ number: rec.number, timeUs: rec.timeUs, direction: dir, flags: formatFlags(t.flags), seq: t.seq, ack: t.ack, len: t.payload.length, window: t.window, marks });
  }
  return { segments, directions };
}
