// IPv4 (RFC 791) and IPv6 (RFC 8200) headers: parse bytes to a repr, emit a repr to bytes.
import { formatIPv4, formatIPv6, parseAddress } from './address';
import { internetChecksum } from './checksum';
import { wireError, type WireError } from './errors';

export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;

export interface IPv4Repr {
  version: 4;
  src: string;
  dst: string;
  protocol: number;
  ttl: number;
  id: number;
  dontFragment: boolean;
  /** offset of the payload in the frame */
  headerLength: number;
  /** total length from the header (payload = frame[headerLength, totalLength)) */
  totalLength: number;
  fragmented: boolean;
}

export interface IPv6Repr {
  version: 6;
  src: string;
  dst: string;
  /** next header after any extension headers twlab skips (hop-by-hop, routing, destination options) */
  protocol: number;
  ttl: number;
  headerLength: number;
  totalLength: number;
  fragmented: boolean;
}

export type IpRepr = IPv4Repr | IPv6Repr;

export interface IpPacket {
  ip: IpRepr;
  srcBytes: Uint8Array;
  dstBytes: Uint8Array;
  /** the payload as present in `frame` (shorter than the header says when the frame was cut by a snaplen) */
  payload: Uint8Array;
  /** bytes of the packet the header declares but the frame does not hold (0 unless `snapped`) */
  missing: number;
}

export interface ParseOptions {
  /**
   * The frame comes from a capture with a snaplen (tcpdump -s, twlab's bulk phases): accept a
   * frame shorter than its IP header's length, as long as the headers themselves are whole.
   */
  snapped?: boolean;
}

export function parseIp(frame: Uint8Array, opts: ParseOptions = {}): IpPacket | WireError {
  if (frame.length < 1) return wireError('frame', 'empty frame');
  const version = frame[0]! >> 4;
  if (version === 4) return parseIPv4Packet(frame, opts.snapped === true);
  if (version === 6) return parseIPv6Packet(frame, opts.snapped === true);
  return wireError('frame', `IP version ${version}`);
}

function parseIPv4Packet(b: Uint8Array, snapped: boolean): IpPacket | WireError {
  if (b.length < 20) return wireError('ipv4', `truncated header (${b.length} bytes)`);
  const ihl = (b[0]! & 0x0f) * 4;
  if (ihl < 20 || ihl > b.length) return wireError('ipv4', `bad header length ${ihl}`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const totalLength = v.getUint16(2);
  if (totalLength < ihl || (totalLength > b.length && !snapped)) return wireError('ipv4', `total length ${totalLength} vs ${b.length} bytes`);
  const present = Math.min(totalLength, b.length);
  const flagsFrag = v.getUint16(6);
  const srcBytes = b.slice(12, 16);
  const dstBytes = b.slice(16, 20);
  return {
    ip: {
      version: 4,
      src: formatIPv4(srcBytes),
      dst: formatIPv4(dstBytes),
      protocol: b[9]!,
      ttl: b[8]!,
      id: v.getUint16(4),
      dontFragment: (flagsFrag & 0x4000) !== 0,
      headerLength: ihl,
      totalLength,
      fragmented: (flagsFrag & 0x2000) !== 0 || (flagsFrag & 0x1fff) !== 0,
    },
    srcBytes,
    dstBytes,
    payload: b.subarray(ihl, present),
    missing: totalLength - present,
  };
}

const IPV6_SKIPPABLE = new Set([0, 43, 60]); // hop-by-hop, routing, destination options

function parseIPv6Packet(b: Uint8Array, snapped: boolean): IpPacket | WireError {
  if (b.length < 40) return wireError('ipv6', `truncated header (${b.length} bytes)`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const payloadLength = v.getUint16(4);
  const totalLength = 40 + payloadLength;
  if (totalLength > b.length && !snapped) return wireError('ipv6', `payload length ${payloadLength} vs ${b.length - 40} bytes`);
  const present = Math.min(totalLength, b.length);
  let next = b[6]!;
  let off = 40;
  let fragmented = false;
  while (IPV6_SKIPPABLE.has(next) || next === 44) {
    if (off + 8 > present) return wireError('ipv6', 'truncated extension header');
    if (next === 44) {
      fragmented = true;
      next = b[off]!;
      off += 8;
    } else {
      const len = (b[off + 1]! + 1) * 8;
      next = b[off]!;
      off += len;
    }
  }
  if (off > present) return wireError('ipv6', 'extension headers overrun the packet');
  const srcBytes = b.slice(8, 24);
  const dstBytes = b.slice(24, 40);
  return {
    ip: { version: 6, src: formatIPv6(srcBytes), dst: formatIPv6(dstBytes), protocol: next, ttl: b[7]!, headerLength: off, totalLength, fragmented },
    srcBytes,
    dstBytes,
    payload: b.subarray(off, present),
    missing: totalLength - present,
  };
}

export interface IpEmit {
  src: string;
  dst: string;
  protocol: number;
  ttl?: number;
  id?: number;
  dontFragment?: boolean;
}

/** Builds an IPv4 or IPv6 packet (by the addresses' family) around `payload`. */
export function emitIp(h: IpEmit, payload: Uint8Array): Uint8Array {
  const src = parseAddress(h.src);
  const dst = parseAddress(h.dst);
  if (src.family !== dst.family) throw new TypeError(`mixed address families: ${h.src} → ${h.dst}`);
  if (src.family === 'ipv4') {
    const out = new Uint8Array(20 + payload.length);
    const v = new DataView(out.buffer);
    out[0] = 0x45;
    v.setUint16(2, out.length);
    v.setUint16(4, h.id ?? 0);
    v.setUint16(6, h.dontFragment === false ? 0 : 0x4000);
    out[8] = h.ttl ?? 64;
    out[9] = h.protocol;
    out.set(src.bytes, 12);
    out.set(dst.bytes, 16);
    v.setUint16(10, internetChecksum(out.subarray(0, 20)));
    out.set(payload, 20);
    return out;
  }
  const out = new Uint8Array(40 + payload.length);
  const v = new DataView(out.buffer);
  out[0] = 0x60;
  v.setUint16(4, payload.length);
  out[6] = h.protocol;
  out[7] = h.ttl ?? 64;
  out.set(src.bytes, 8);
  out.set(dst.bytes, 24);
  out.set(payload, 40);
  return out;
}
