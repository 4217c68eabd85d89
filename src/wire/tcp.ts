// TCP header and options (RFC 9293 §3.1, RFC 7323, RFC 2018): bytes ⇄ TcpRepr.
import { fold, internetChecksum, pseudoHeaderSum, sum16 } from './checksum';
import { wireError, type WireError } from './errors';
import { PROTO_TCP } from './ip';
import { seq, type SeqNumber } from './seq';

export interface TcpFlags {
  fin: boolean;
  syn: boolean;
  rst: boolean;
  psh: boolean;
  ack: boolean;
  urg: boolean;
  ece: boolean;
  cwr: boolean;
}

export type TcpOption =
  | { kind: 'mss'; value: number }
  | { kind: 'wscale'; shift: number }
  | { kind: 'sackPermitted' }
  | { kind: 'sack'; blocks: Array<[SeqNumber, SeqNumber]> }
  | { kind: 'timestamps'; tsval: number; tsecr: number }
  | { kind: 'nop' }
  | { kind: 'eol' }
  | { kind: 'unknown'; type: number; bytes: Uint8Array };

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: SeqNumber;
  ack: SeqNumber;
  flags: TcpFlags;
  window: number;
  urgent: number;
  options: TcpOption[];
  payload: Uint8Array;
  /** as found on the wire; emit() computes its own */
  checksum?: number;
}

export const NO_FLAGS: TcpFlags = { fin: false, syn: false, rst: false, psh: false, ack: false, urg: false, ece: false, cwr: false };

export function flags(spec: string): TcpFlags {
  const f = { ...NO_FLAGS };
  for (const name of spec.toLowerCase().split(/[\s,|+]+/).filter(Boolean)) {
    if (!(name in f)) throw new TypeError(`unknown TCP flag ${name}`);
    f[name as keyof TcpFlags] = true;
  }
  return f;
}

/** SEG.LEN (RFC 9293 §3.4): the payload, plus one for SYN and one for FIN. */
export function segLen(s: Pick<TcpRepr, 'flags' | 'payload'>): number {
  return s.payload.length + (s.flags.syn ? 1 : 0) + (s.flags.fin ? 1 : 0);
}

/** "SYN,ACK" in the order tcpdump prints them */
export function formatFlags(f: TcpFlags): string {
  const order: Array<[keyof TcpFlags, string]> = [
    ['syn', 'SYN'],
    ['fin', 'FIN'],
    ['rst', 'RST'],
    ['psh', 'PSH'],
    ['ack', 'ACK'],
    ['urg', 'URG'],
    ['ece', 'ECE'],
    ['cwr', 'CWR'],
  ];
  return order
    .filter(([k]) => f[k])
    .map(([, s]) => s)
    .join(',');
}

function parseOptions(b: Uint8Array): TcpOption[] | WireError {
  const out: TcpOption[] = [];
  let i = 0;
  while (i < b.length) {
    const type = b[i]!;
    if (type === 0) {
      out.push({ kind: 'eol' });
      break;
    }
    if (type === 1) {
      out.push({ kind: 'nop' });
      i++;
      continue;
    }
    if (i + 1 >= b.length) return wireError('tcp', `option ${type} has no length`);
    const len = b[i + 1]!;
    if (len < 2 || i + len > b.length) return wireError('tcp', `option ${type} length ${len} overruns the header`);
    const body = b.subarray(i + 2, i + len);
    const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
    if (type === 2 && len === 4) out.push({ kind: 'mss', value: v.getUint16(0) });
    else if (type === 3 && len === 3) out.push({ kind: 'wscale', shift: body[0]! });
    else if (type === 4 && len === 2) out.push({ kind: 'sackPermitted' });
    else if (type === 5 && (len - 2) % 8 === 0) {
      const blocks: Array<[SeqNumber, SeqNumber]> = [];
      for (let k = 0; k < body.length; k += 8) blocks.push([seq(v.getUint32(k)), seq(v.getUint32(k + 4))]);
      out.push({ kind: 'sack', blocks });
    } else if (type === 8 && len === 10) out.push({ kind: 'timestamps', tsval: v.getUint32(0), tsecr: v.getUint32(4) });
    else out.push({ kind: 'unknown', type, bytes: b.slice(i, i + len) });
    i += len;
  }
  return out;
}

/** Parses a TCP segment; with src/dst address bytes, also reports whether the checksum is right. */
export function parseTcp(b: Uint8Array, src?: Uint8Array, dst?: Uint8Array): (TcpRepr & { checksumOk: boolean | null }) | WireError {
  if (b.length < 20) return wireError('tcp', `truncated header (${b.length} bytes)`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dataOffset = (b[12]! >> 4) * 4;
  if (dataOffset < 20 || dataOffset > b.length) return wireError('tcp', `bad data offset ${dataOffset}`);
  const options = parseOptions(b.subarray(20, dataOffset));
  if ('kind' in options) return options;
  const fl = b[13]!;
  let checksumOk: boolean | null = null;
  if (src && dst) checksumOk = fold(sum16(b, pseudoHeaderSum(src, dst, PROTO_TCP, b.length))) === 0xffff;
  return {
    srcPort: v.getUint16(0),
    dstPort: v.getUint16(2),
    seq: seq(v.getUint32(4)),
    ack: seq(v.getUint32(8)),
    flags: {
      fin: (fl & 0x01) !== 0,
      syn: (fl & 0x02) !== 0,
      rst: (fl & 0x04) !== 0,
      psh: (fl & 0x08) !== 0,
      ack: (fl & 0x10) !== 0,
      urg: (fl & 0x20) !== 0,
      ece: (fl & 0x40) !== 0,
      cwr: (fl & 0x80) !== 0,
    },
    window: v.getUint16(14),
    checksum: v.getUint16(16),
    urgent: v.getUint16(18),
    options,
    payload: b.subarray(dataOffset),
    checksumOk,
  };
}

function emitOptions(options: TcpOption[]): Uint8Array {
  const parts: number[] = [];
  for (const o of options) {
    switch (o.kind) {
      case 'mss':
        parts.push(2, 4, o.value >> 8, o.value & 0xff);
        break;
      case 'wscale':
        parts.push(3, 3, o.shift);
        break;
      case 'sackPermitted':
        parts.push(4, 2);
        break;
      case 'sack':
        parts.push(5, 2 + 8 * o.blocks.length);
        for (const [l, r] of o.blocks) for (const n of [l, r]) parts.push(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
        break;
      case 'timestamps':
        parts.push(8, 10);
        for (const n of [o.tsval, o.tsecr]) parts.push(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
        break;
      case 'nop':
        parts.push(1);
        break;
      case 'eol':
        parts.push(0);
        break;
      case 'unknown':
        parts.push(...o.bytes);
        break;
    }
  }
  while (parts.length % 4 !== 0) parts.push(0); // pad with EOL
  if (parts.length > 40) throw new RangeError(`TCP options take ${parts.length} bytes (max 40)`);
  return Uint8Array.from(parts);
}

/** Emits a TCP segment with its checksum over the pseudo-header of src/dst (4 or 16 bytes each). */
export function emitTcp(t: TcpRepr, src: Uint8Array, dst: Uint8Array): Uint8Array {
  const opts = emitOptions(t.options);
  const hlen = 20 + opts.length;
  const out = new Uint8Array(hlen + t.payload.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, t.srcPort);
  v.setUint16(2, t.dstPort);
  v.setUint32(4, t.seq >>> 0);
  v.setUint32(8, t.ack >>> 0);
  out[12] = (hlen / 4) << 4;
  const f = t.flags;
  out[13] =
    (f.fin ? 0x01 : 0) | (f.syn ? 0x02 : 0) | (f.rst ? 0x04 : 0) | (f.psh ? 0x08 : 0) | (f.ack ? 0x10 : 0) | (f.urg ? 0x20 : 0) | (f.ece ? 0x40 : 0) | (f.cwr ? 0x80 : 0);
  v.setUint16(14, t.window);
  v.setUint16(18, t.urgent);
  out.set(opts, 20);
  out.set(t.payload, hlen);
  v.setUint16(16, internetChecksum(out, pseudoHeaderSum(src, dst, PROTO_TCP, out.length)));
  return out;
}
