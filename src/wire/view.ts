// A zero-copy view of a TCP segment's headers inside an IP frame, for reading captures fast:
// no repr objects, no option list, no checksum — the fields flow analysis needs, read straight
// from the bytes into one reused object. parseFrame() (frame.ts) stays the full decoder.
import { formatIPv4, formatIPv6 } from './address';
import { ipSpan, newIpSpan, PROTO_TCP } from './ip';

export interface TcpView {
  family: 4 | 6;
  src: string;
  dst: string;
  /** IPv4 addresses as 32-bit numbers (-1 for IPv6): a flow can be found without building strings */
  srcNum: number;
  dstNum: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** FIN 1, SYN 2, RST 4, PSH 8, ACK 16, URG 32, ECE 64, CWR 128 */
  flags: number;
  window: number;
  /** the payload's true length (a snaplen may have cut some of it) */
  len: number;
  /** where the payload starts in the frame, and how much of it the frame holds */
  payloadOffset: number;
  payloadPresent: number;
  /** the timestamps option's TSval, or -1 */
  tsval: number;
  /** the window scale option's shift (SYNs), or -1 */
  wscale: number;
}

export function newTcpView(): TcpView {
  return {
    family: 4,
    src: '',
    dst: '',
    srcNum: -1,
    dstNum: -1,
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    len: 0,
    payloadOffset: 0,
    payloadPresent: 0,
    tsval: -1,
    wscale: -1,
  };
}

export const FIN = 1;
export const SYN = 2;
export const RST = 4;
export const PSH = 8;
export const ACK = 16;
export const URG = 32;

const v4Names = new Map<number, string>();
const span = newIpSpan();

function ipv4Name(b: Uint8Array, off: number): string {
  const key = ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
  let name = v4Names.get(key);
  if (name === undefined) {
    name = formatIPv4(b.subarray(off, off + 4));
    if (v4Names.size < 100_000) v4Names.set(key, name);
  }
  return name;
}

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

/**
 * Fills `v` from a TCP frame and returns true; false for anything else (not IP, not TCP, a
 * fragment, headers cut or malformed) — parseFrame() says what that is. `snapped`: the frame may
 * hold less than its IP header's length (a capture's snaplen), as long as the headers are whole.
 */
export function viewTcp(b: Uint8Array, snapped: boolean, v: TcpView): boolean {
  if (ipSpan(b, snapped, span) || span.fragmented || span.protocol !== PROTO_TCP) return false;
  const off = span.headerLength;
  const total = span.totalLength;
  v.family = span.version;
  if (span.version === 4) {
    v.src = ipv4Name(b, 12);
    v.dst = ipv4Name(b, 16);
    v.srcNum = u32(b, 12);
    v.dstNum = u32(b, 16);
  } else {
    v.src = formatIPv6(b.subarray(8, 24));
    v.dst = formatIPv6(b.subarray(24, 40));
    v.srcNum = -1;
    v.dstNum = -1;
  }
  if (off + 20 > b.length) return false;
  const dataOffset = (b[off + 12]! >> 4) * 4;
  if (dataOffset < 20 || off + dataOffset > b.length || off + dataOffset > total) return false;
  v.srcPort = u16(b, off);
  v.dstPort = u16(b, off + 2);
  v.seq = u32(b, off + 4);
  v.ack = u32(b, off + 8);
  v.flags = b[off + 13]!;
  v.window = u16(b, off + 14);
  v.payloadOffset = off + dataOffset;
  v.len = total - off - dataOffset;
  v.payloadPresent = Math.max(0, Math.min(b.length, total) - v.payloadOffset);
  v.tsval = -1;
  v.wscale = -1;
  for (let i = off + 20, end = off + dataOffset; i < end; ) {
    const kind = b[i]!;
    if (kind === 0) break;
    if (kind === 1) {
      i++;
      continue;
    }
    const len = b[i + 1];
    if (len === undefined || len < 2 || i + len > end) return false;
    if (kind === 8 && len === 10) v.tsval = u32(b, i + 2);
    else if (kind === 3 && len === 3) v.wscale = b[i + 2]!;
    i += len;
  }
  return true;
}
