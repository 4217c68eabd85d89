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

/** The flags of a header's flags byte (RFC 9293 §3.1, RFC 3168 for ECE/CWR). */
export function flagsOfByte(b: number): TcpFlags {
  return {
    fin: (b & 0x01) !== 0,
    syn: (b & 0x02) !== 0,
    rst: (b & 0x04) !== 0,
    psh: (b & 0x08) !== 0,
    ack: (b & 0x10) !== 0,
    urg: (b & 0x20) !== 0,
    ece: (b & 0x40) !== 0,
    cwr: (b & 0x80) !== 0,
  };
}

/** One frozen TcpFlags per flags byte: parsing and building segments allocates none. */
export const FLAGS_BY_BYTE: readonly TcpFlags[] = Array.from({ length: 256 }, (_, b) => Object.freeze(flagsOfByte(b)));

export function flags(spec: string): TcpFlags {
  const f = { ...NO_FLAGS };
  for (const name of spec
    .toLowerCase()
    .split(/[\s,|+]+/)
    .filter(Boolean)) {
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

const get16 = (b: Uint8Array, i: number): number => (b[i]! << 8) | b[i + 1]!;
const get32 = (b: Uint8Array, i: number): number => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;

const NOP: TcpOption = Object.freeze({ kind: 'nop' });
const EOL: TcpOption = Object.freeze({ kind: 'eol' });
const SACK_PERMITTED: TcpOption = Object.freeze({ kind: 'sackPermitted' });

/** Parses the options in b[from, to). */
function parseOptions(b: Uint8Array, from: number, to: number): TcpOption[] | WireError {
  const out: TcpOption[] = [];
  let i = from;
  while (i < to) {
    const type = b[i]!;
    if (type === 0) {
      out.push(EOL);
      break;
    }
    if (type === 1) {
      out.push(NOP);
      i++;
      continue;
    }
    if (i + 1 >= to) return wireError('tcp', `option ${type} has no length`);
    const len = b[i + 1]!;
    if (len < 2 || i + len > to) return wireError('tcp', `option ${type} length ${len} overruns the header`);
    const at = i + 2;
    if (type === 2 && len === 4) out.push({ kind: 'mss', value: get16(b, at) });
    else if (type === 3 && len === 3) out.push({ kind: 'wscale', shift: b[at]! });
    else if (type === 4 && len === 2) out.push(SACK_PERMITTED);
    else if (type === 5 && (len - 2) % 8 === 0) {
      const blocks: Array<[SeqNumber, SeqNumber]> = [];
      for (let k = at; k < i + len; k += 8) blocks.push([seq(get32(b, k)), seq(get32(b, k + 4))]);
      out.push({ kind: 'sack', blocks });
    } else if (type === 8 && len === 10) out.push({ kind: 'timestamps', tsval: get32(b, at), tsecr: get32(b, at + 4) });
    else out.push({ kind: 'unknown', type, bytes: b.slice(i, i + len) });
    i += len;
  }
  return out;
}

/** Parses a TCP segment; with src/dst address bytes, also reports whether the checksum is right. */
export function parseTcp(b: Uint8Array, src?: Uint8Array, dst?: Uint8Array): (TcpRepr & { checksumOk: boolean | null }) | WireError {
  return parseTcpWith(b, src && dst ? pseudoHeaderSum(src, dst, PROTO_TCP, b.length) : null);
}

/** parseTcp with the pseudo-header sum already known (null: do not verify the checksum). */
export function parseTcpWith(b: Uint8Array, pseudo: number | null): (TcpRepr & { checksumOk: boolean | null }) | WireError {
  if (b.length < 20) return wireError('tcp', `truncated header (${b.length} bytes)`);
  const dataOffset = (b[12]! >> 4) * 4;
  if (dataOffset < 20 || dataOffset > b.length) return wireError('tcp', `bad data offset ${dataOffset}`);
  const options = parseOptions(b, 20, dataOffset);
  if ('kind' in options) return options;
  return {
    srcPort: get16(b, 0),
    dstPort: get16(b, 2),
    seq: seq(get32(b, 4)),
    ack: seq(get32(b, 8)),
    flags: FLAGS_BY_BYTE[b[13]!]!,
    window: get16(b, 14),
    checksum: get16(b, 16),
    urgent: get16(b, 18),
    options,
    payload: b.subarray(dataOffset),
    checksumOk: pseudo === null ? null : fold(sum16(b, pseudo)) === 0xffff,
  };
}

/** Bytes the options take on the wire, padded to a multiple of 4 (with EOL). */
export function optionsLength(options: readonly TcpOption[]): number {
  let n = 0;
  for (const o of options) {
    switch (o.kind) {
      case 'mss':
        n += 4;
        break;
      case 'wscale':
        n += 3;
        break;
      case 'sackPermitted':
        n += 2;
        break;
      case 'sack':
        n += 2 + 8 * o.blocks.length;
        break;
      case 'timestamps':
        n += 10;
        break;
      case 'nop':
      case 'eol':
        n += 1;
        break;
      case 'unknown':
        n += o.bytes.length;
        break;
    }
  }
  return (n + 3) & ~3;
}

function put32(b: Uint8Array, i: number, n: number): void {
  b[i] = n >>> 24;
  b[i + 1] = (n >>> 16) & 0xff;
  b[i + 2] = (n >>> 8) & 0xff;
  b[i + 3] = n & 0xff;
}

/** Writes the options at `at` (padding with EOL to `optionsLength`); returns the bytes written. */
function writeOptions(b: Uint8Array, at: number, options: readonly TcpOption[]): number {
  let i = at;
  for (const o of options) {
    switch (o.kind) {
      case 'mss':
        b[i] = 2;
        b[i + 1] = 4;
        b[i + 2] = o.value >> 8;
        b[i + 3] = o.value & 0xff;
        i += 4;
        break;
      case 'wscale':
        b[i] = 3;
        b[i + 1] = 3;
        b[i + 2] = o.shift;
        i += 3;
        break;
      case 'sackPermitted':
        b[i] = 4;
        b[i + 1] = 2;
        i += 2;
        break;
      case 'sack':
        b[i] = 5;
        b[i + 1] = 2 + 8 * o.blocks.length;
        i += 2;
        for (const [l, r] of o.blocks) {
          put32(b, i, l);
          put32(b, i + 4, r);
          i += 8;
        }
        break;
      case 'timestamps':
        b[i] = 8;
        b[i + 1] = 10;
        put32(b, i + 2, o.tsval);
        put32(b, i + 6, o.tsecr);
        i += 10;
        break;
      case 'nop':
        b[i++] = 1;
        break;
      case 'eol':
        b[i++] = 0;
        break;
      case 'unknown':
        b.set(o.bytes, i);
        i += o.bytes.length;
        break;
    }
  }
  while ((i - at) & 3) b[i++] = 0; // pad with EOL
  return i - at;
}

/**
 * Writes the TCP header, options and payload of `t` into `out` at `at` (room for
 * `tcpLength(t)` bytes must be there), with the checksum over the pseudo-header sum `pseudo`
 * (addresses, protocol and length: see checksum.ts). Returns the segment's length.
 */
export function writeTcp(out: Uint8Array, at: number, t: TcpRepr, pseudo: number, optLen = optionsLength(t.options)): number {
  if (optLen > 40) throw new RangeError(`TCP options take ${optLen} bytes (max 40)`);
  const hlen = 20 + optLen;
  out[at] = t.srcPort >> 8;
  out[at + 1] = t.srcPort & 0xff;
  out[at + 2] = t.dstPort >> 8;
  out[at + 3] = t.dstPort & 0xff;
  put32(out, at + 4, t.seq);
  put32(out, at + 8, t.ack);
  out[at + 12] = (hlen / 4) << 4;
  const f = t.flags;
  out[at + 13] =
    (f.fin ? 0x01 : 0) |
    (f.syn ? 0x02 : 0) |
    (f.rst ? 0x04 : 0) |
    (f.psh ? 0x08 : 0) |
    (f.ack ? 0x10 : 0) |
    (f.urg ? 0x20 : 0) |
    (f.ece ? 0x40 : 0) |
    (f.cwr ? 0x80 : 0);
  out[at + 14] = t.window >> 8;
  out[at + 15] = t.window & 0xff;
  out[at + 16] = 0;
  out[at + 17] = 0;
  out[at + 18] = t.urgent >> 8;
  out[at + 19] = t.urgent & 0xff;
  writeOptions(out, at + 20, t.options);
  out.set(t.payload, at + hlen);
  const len = hlen + t.payload.length;
  const c = internetChecksum(out.subarray(at, at + len), pseudo);
  out[at + 16] = c >> 8;
  out[at + 17] = c & 0xff;
  return len;
}

/** Bytes the segment takes: header, options (padded) and payload. */
export function tcpLength(t: TcpRepr): number {
  return 20 + optionsLength(t.options) + t.payload.length;
}

/** Emits a TCP segment with its checksum over the pseudo-header of src/dst (4 or 16 bytes each). */
export function emitTcp(t: TcpRepr, src: Uint8Array, dst: Uint8Array): Uint8Array {
  const optLen = optionsLength(t.options);
  const out = new Uint8Array(20 + optLen + t.payload.length);
  writeTcp(out, 0, t, pseudoHeaderSum(src, dst, PROTO_TCP, out.length), optLen);
  return out;
}

/** The eleven states of RFC 9293 §3.3.2, printed as the RFC prints them. */
export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT';
