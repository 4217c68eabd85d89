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

/**
 * Where an IP packet's parts lie in a frame: the one walk over IPv4 and IPv6 headers (extension
 * headers included) every decoder here shares. No copies, no text; `out` is filled and reused.
 */
export interface IpSpan {
  version: 4 | 6;
  /** where the source address starts (the destination follows it), and the addresses' length */
  srcAt: number;
  addrLen: 4 | 16;
  /** where the transport header starts */
  headerLength: number;
  totalLength: number;
  /** how much of the packet the frame holds (less than totalLength only when snapped) */
  present: number;
  protocol: number;
  fragmented: boolean;
}

export function newIpSpan(): IpSpan {
  return { version: 4, srcAt: 12, addrLen: 4, headerLength: 20, totalLength: 0, present: 0, protocol: 0, fragmented: false };
}

/** Fills `out` from the frame's IP headers; a malformed or (unless `snapped`) cut frame is an error. */
export function ipSpan(b: Uint8Array, snapped: boolean, out: IpSpan): WireError | null {
  if (b.length < 1) return wireError('frame', 'empty frame');
  const version = b[0]! >> 4;
  if (version === 4) {
    if (b.length < 20) return wireError('ipv4', `truncated header (${b.length} bytes)`);
    const ihl = (b[0]! & 0x0f) * 4;
    if (ihl < 20 || ihl > b.length) return wireError('ipv4', `bad header length ${ihl}`);
    const total = (b[2]! << 8) | b[3]!;
    if (total < ihl || (total > b.length && !snapped)) return wireError('ipv4', `total length ${total} vs ${b.length} bytes`);
    out.version = 4;
    out.srcAt = 12;
    out.addrLen = 4;
    out.headerLength = ihl;
    out.totalLength = total;
    out.present = Math.min(total, b.length);
    out.protocol = b[9]!;
    out.fragmented = (b[6]! & 0x3f) !== 0 || b[7] !== 0; // MF, or an offset
    return null;
  }
  if (version !== 6) return wireError('frame', `IP version ${version}`);
  if (b.length < 40) return wireError('ipv6', `truncated header (${b.length} bytes)`);
  const payloadLength = (b[4]! << 8) | b[5]!;
  const total = 40 + payloadLength;
  if (total > b.length && !snapped) return wireError('ipv6', `payload length ${payloadLength} vs ${b.length - 40} bytes`);
  const present = Math.min(total, b.length);
  let next = b[6]!;
  let off = 40;
  let fragmented = false;
  // hop-by-hop, routing and destination options are skipped; a fragment header is noted and skipped
  while (next === 0 || next === 43 || next === 60 || next === 44) {
    if (off + 8 > present) return wireError('ipv6', 'truncated extension header');
    if (next === 44) fragmented = true;
    const len = next === 44 ? 8 : (b[off + 1]! + 1) * 8;
    next = b[off]!;
    off += len;
  }
  if (off > present) return wireError('ipv6', 'extension headers overrun the packet');
  out.version = 6;
  out.srcAt = 8;
  out.addrLen = 16;
  out.headerLength = off;
  out.totalLength = total;
  out.present = present;
  out.protocol = next;
  out.fragmented = fragmented;
  return null;
}

export function parseIp(frame: Uint8Array, opts: ParseOptions = {}): IpPacket | WireError {
  const span = newIpSpan();
  const err = ipSpan(frame, opts.snapped === true, span);
  if (err) return err;
  const { srcAt, addrLen, headerLength, totalLength, present } = span;
  const srcBytes = frame.slice(srcAt, srcAt + addrLen);
  const dstBytes = frame.slice(srcAt + addrLen, srcAt + 2 * addrLen);
  const common = { protocol: span.protocol, headerLength, totalLength, fragmented: span.fragmented };
  const ip: IpRepr =
    span.version === 4
      ? {
          version: 4,
          src: formatIPv4(srcBytes),
          dst: formatIPv4(dstBytes),
          ttl: frame[8]!,
          id: (frame[4]! << 8) | frame[5]!,
          dontFragment: (frame[6]! & 0x40) !== 0,
          ...common,
        }
      : { version: 6, src: formatIPv6(srcBytes), dst: formatIPv6(dstBytes), ttl: frame[7]!, ...common };
  return { ip, srcBytes, dstBytes, payload: frame.subarray(headerLength, present), missing: totalLength - present };
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
