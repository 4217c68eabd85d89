// A readable per-frame listing of a capture: time, direction, flags, relative seq/ack, length.
// Pure: from parsed pcap records to lines.
import { isWireError } from '../wire/errors';
import { parseFrame } from '../wire/frame';
import { seqRelative, type SeqNumber } from '../wire/seq';
import { formatFlags } from '../wire/tcp';
import { ipPayloadOf, type PcapFile } from './pcap';

/** twlab's kernel-side addresses: frames from these are the kernel's, frames to them the peer's. */
const KERNEL_ADDRESSES = new Set(['192.0.2.1', '198.51.100.1', '2001:db8::1']);

export interface ListingRow {
  /** which incarnation of its four-tuple this frame belongs to (a new SYN starts the next) */
  incarnation?: number;
  /** set when the segment belongs to an earlier incarnation than the current one */
  strayFrom?: number;
  number: number;
  timeS: number;
  direction: string;
  src: string;
  dst: string;
  summary: string;
}

const endpoint = (addr: string, port: number): string => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

interface Incarnation {
  number: number;
  /** per direction: the ISN, and signatures of every segment seen */
  isn: Map<string, SeqNumber>;
  seen: Set<string>;
  closed: boolean;
}

export function listFrames(file: PcapFile): ListingRow[] {
  const rows: ListingRow[] = [];
  const t0 = file.records[0]?.timeUs ?? 0;
  // per direction of a four-tuple: the ISN (from its SYN, else the first seq seen)
  const isn = new Map<string, SeqNumber>();
  // per four-tuple (either direction): its incarnations, the current one last
  const incarnations = new Map<string, Incarnation[]>();
  for (const rec of file.records) {
    const base = { number: rec.number, timeS: (rec.timeUs - t0) / 1e6 };
    const ip = ipPayloadOf(file.linkType, rec.data);
    if (!ip) {
      rows.push({ ...base, direction: '?', src: '', dst: '', summary: `link type ${file.linkType}: not IP (${rec.data.length} bytes)` });
      continue;
    }
    const seg = parseFrame(ip);
    if (isWireError(seg)) {
      rows.push({ ...base, direction: '?', src: '', dst: '', summary: `malformed ${seg.layer}: ${seg.reason}` });
      continue;
    }
    const direction = KERNEL_ADDRESSES.has(seg.ip.src) ? 'K→P' : KERNEL_ADDRESSES.has(seg.ip.dst) ? 'P→K' : '→';
    if (seg.kind === 'tcp') {
      const t = seg.tcp;
      const fwd = `${seg.ip.src}|${t.srcPort}|${seg.ip.dst}|${t.dstPort}`;
      const rev = `${seg.ip.dst}|${t.dstPort}|${seg.ip.src}|${t.srcPort}`;
      const pair = [fwd, rev].sort().join('#');
      const list = incarnations.get(pair) ?? [];
      incarnations.set(pair, list);
      let cur = list[list.length - 1];
      const signature = `${fwd}|${t.seq}|${t.ack}|${formatFlags(t.flags)}|${t.payload.length}|${Buffer.from(t.payload.subarray(0, 16)).toString('hex')}`;
      // a SYN (not a retransmission of the current one) opens the next incarnation
      if (t.flags.syn && !t.flags.ack && (!cur || (cur.isn.has(fwd) && cur.isn.get(fwd) !== t.seq) || cur.closed)) {
        cur = { number: list.length + 1, isn: new Map(), seen: new Set(), closed: false };
        list.push(cur);
      }
      if (!cur) {
        cur = { number: 1, isn: new Map(), seen: new Set(), closed: false };
        list.push(cur);
      }
      // a segment of an earlier incarnation: byte for byte one it carried, or an ACK from its sequence space
      let strayFrom: number | undefined;
      if (!t.flags.syn) {
        for (const old of list.slice(0, -1).reverse()) {
          const ackOld = t.flags.ack && old.isn.has(rev) && cur.isn.has(rev) && Math.abs(seqRelative(t.ack, cur.isn.get(rev)!) | 0) > 1 << 30 && seqRelative(t.ack, old.isn.get(rev)!) < 1 << 30;
          if (old.seen.has(signature) || ackOld) {
            strayFrom = old.number;
            break;
          }
        }
      }
      if (strayFrom === undefined) {
        if (t.flags.syn) cur.isn.set(fwd, t.seq);
        cur.seen.add(signature);
        if (t.flags.rst) cur.closed = true;
      }
      if (t.flags.syn || !isn.has(fwd)) isn.set(fwd, t.seq);
      const parts = [`[${formatFlags(t.flags) || 'none'}]`, `seq=${seqRelative(t.seq, isn.get(fwd)!)}`];
      if (t.flags.ack) parts.push(`ack=${isn.has(rev) ? seqRelative(t.ack, isn.get(rev)!) : `${t.ack >>> 0} (abs)`}`);
      parts.push(`win=${t.window}`, `len=${t.payload.length}`);
      if (t.checksumOk === false) parts.push('BAD-CHECKSUM');
      if (list.length > 1) parts.push(`(incarnation ${cur.number})`);
      if (strayFrom !== undefined) parts.push(`STRAY: a segment of incarnation ${strayFrom}`);
      rows.push({ ...base, direction, src: endpoint(seg.ip.src, t.srcPort), dst: endpoint(seg.ip.dst, t.dstPort), summary: `TCP ${parts.join(' ')}`, incarnation: cur.number, strayFrom });
    } else if (seg.kind === 'udp') {
      rows.push({ ...base, direction, src: endpoint(seg.ip.src, seg.udp.srcPort), dst: endpoint(seg.ip.dst, seg.udp.dstPort), summary: `UDP len=${seg.udp.payload.length}` });
    } else if (seg.kind === 'icmp') {
      rows.push({ ...base, direction, src: seg.ip.src, dst: seg.ip.dst, summary: `ICMP${seg.ip.version === 6 ? 'v6' : ''} type=${seg.type} code=${seg.code}` });
    } else {
      rows.push({ ...base, direction, src: seg.ip.src, dst: seg.ip.dst, summary: `IP protocol ${seg.ip.protocol}${seg.ip.fragmented ? ' (fragment)' : ''}` });
    }
  }
  return rows;
}

export function formatListing(rows: readonly ListingRow[]): string[] {
  if (rows.length === 0) return ['(no frames: nothing crossed the TUN)'];
  const srcW = Math.max(3, ...rows.map((r) => r.src.length));
  const dstW = Math.max(3, ...rows.map((r) => r.dst.length));
  const head = `${'No.'.padStart(5)}  ${'Time (s)'.padStart(10)}  Dir  ${'Source'.padEnd(srcW)}    ${'Destination'.padEnd(dstW)}  Info`;
  return [head, ...rows.map((r) => `${String(r.number).padStart(5)}  ${r.timeS.toFixed(6).padStart(10)}  ${r.direction.padEnd(3)}  ${r.src.padEnd(srcW)} →  ${r.dst.padEnd(dstW)}  ${r.summary}`)];
}
