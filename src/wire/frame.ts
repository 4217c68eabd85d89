// A whole IP frame (as read from the TUN, LINKTYPE_RAW) decoded down to the transport layer.
import { formatAddress, parseAddress } from './address';
import { addressSum, fold, pseudoLength, sum16 } from './checksum';
import { isWireError, type WireError } from './errors';
import { emitIp, ipSpan, newIpSpan, parseIp, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, type IpRepr, type ParseOptions } from './ip';
import { optionsLength, parseTcp, parseTcpWith, writeTcp, type TcpRepr } from './tcp';
import { emitUdp, parseUdp, type UdpRepr } from './udp';
import { newTcpView, viewTcp } from './view';

/**
 * `missing`: bytes of the packet the capture did not keep (a snaplen cut the payload; the
 * transport payload is then shorter than its true length, and no checksum can be verified).
 */
export type Segment =
  | { kind: 'tcp'; ip: IpRepr; missing: number; tcp: TcpRepr & { checksumOk: boolean | null } }
  | { kind: 'udp'; ip: IpRepr; missing: number; udp: UdpRepr & { checksumOk: boolean | null } }
  | { kind: 'icmp'; ip: IpRepr; missing: number; type: number; code: number }
  | { kind: 'other'; ip: IpRepr; missing: number };

export function parseFrame(frame: Uint8Array, opts: ParseOptions = {}): Segment | WireError {
  const p = parseIp(frame, opts);
  if (isWireError(p)) return p;
  const { ip, srcBytes, dstBytes, payload, missing } = p;
  if (ip.fragmented) return { kind: 'other', ip, missing };
  const whole = missing === 0;
  if (ip.protocol === PROTO_TCP) {
    const tcp = whole ? parseTcp(payload, srcBytes, dstBytes) : parseTcp(payload);
    return isWireError(tcp) ? tcp : { kind: 'tcp', ip, missing, tcp };
  }
  if (ip.protocol === PROTO_UDP) {
    const udp = whole ? parseUdp(payload, srcBytes, dstBytes) : parseUdp(payload);
    return isWireError(udp) ? udp : { kind: 'udp', ip, missing, udp };
  }
  if (ip.protocol === PROTO_ICMP || ip.protocol === PROTO_ICMPV6) {
    return { kind: 'icmp', ip, missing, type: payload[0] ?? -1, code: payload[1] ?? -1 };
  }
  return { kind: 'other', ip, missing };
}

/**
 * How many leading bytes of a TCP frame are headers (IP, extension headers, TCP with options):
 * what a capture keeps when it drops the payload. Null for anything but a whole TCP header.
 */
export function tcpHeadersLength(frame: Uint8Array): number | null {
  return viewTcp(frame, true, headers) ? headers.payloadOffset : null;
}

const headers = newTcpView();

/** An address as text (parsed here) or as its 4 or 16 bytes. */
export type AddressLike = string | Uint8Array;

const addressBytes = (a: AddressLike): Uint8Array => (typeof a === 'string' ? parseAddress(a).bytes : a);

/**
 * Memory for frames: slices of 64 KiB blocks, 8-byte aligned (so checksums can read 32-bit
 * words), handed out without the zero-fill and bookkeeping a fresh ArrayBuffer per frame costs.
 * A frame kept alive keeps its block alive: fine for frames, which are small and short-lived.
 */
class FramePool {
  static readonly BLOCK = 64 * 1024;
  #block = new ArrayBuffer(FramePool.BLOCK);
  #used = 0;
  take(len: number): Uint8Array {
    if (len > FramePool.BLOCK / 4) return new Uint8Array(len);
    if (this.#used + len > FramePool.BLOCK) {
      this.#block = new ArrayBuffer(FramePool.BLOCK);
      this.#used = 0;
    }
    const out = new Uint8Array(this.#block, this.#used, len);
    this.#used = (this.#used + len + 7) & ~7;
    return out;
  }
}

const pool = new FramePool();

/**
 * Emits TCP frames for one pair of addresses: the addresses are bytes, the pseudo-header's
 * address sum and the IPv4 header's constant part are computed once, and each frame is one
 * allocation written in place (IP header, TCP header and options, payload copied once).
 */
export class TcpFramer {
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly ipv6: boolean;
  readonly #addrSum: number;
  readonly #ipHeader: number;
  /** IPv4: the header's words other than the total length, summed */
  readonly #ipSum: number;

  constructor(src: AddressLike, dst: AddressLike) {
    this.src = addressBytes(src).slice();
    this.dst = addressBytes(dst).slice();
    if (this.src.length !== this.dst.length)
      throw new TypeError(`mixed address families: ${formatAddress(this.src)} → ${formatAddress(this.dst)}`);
    this.ipv6 = this.src.length === 16;
    this.#addrSum = addressSum(this.src, this.dst, PROTO_TCP);
    this.#ipHeader = this.ipv6 ? 40 : 20;
    this.#ipSum = this.ipv6 ? 0 : 0x4500 + 0x4000 + ((64 << 8) | PROTO_TCP) + sum16(this.src) + sum16(this.dst);
  }

  emit(tcp: TcpRepr): Uint8Array {
    const optLen = optionsLength(tcp.options);
    const tcpLen = 20 + optLen + tcp.payload.length;
    const h = this.#ipHeader;
    const out = pool.take(h + tcpLen); // not zeroed: every byte is written below
    if (this.ipv6) {
      out[0] = 0x60;
      out[1] = 0;
      out[2] = 0;
      out[3] = 0;
      out[4] = tcpLen >> 8;
      out[5] = tcpLen & 0xff;
      out[6] = PROTO_TCP;
      out[7] = 64;
      out.set(this.src, 8);
      out.set(this.dst, 24);
    } else {
      const total = h + tcpLen;
      out[0] = 0x45;
      out[1] = 0;
      out[2] = total >> 8;
      out[3] = total & 0xff;
      out[4] = 0;
      out[5] = 0;
      out[6] = 0x40; // DF
      out[7] = 0;
      out[8] = 64;
      out[9] = PROTO_TCP;
      out.set(this.src, 12);
      out.set(this.dst, 16);
      // the header checksum: the constant part summed once, plus the length
      const c = ~fold(this.#ipSum + total) & 0xffff;
      out[10] = c >> 8;
      out[11] = c & 0xff;
    }
    writeTcp(out, h, tcp, this.#addrSum + pseudoLength(this.ipv6, tcpLen), optLen);
    return out;
  }
}

export function emitTcpFrame(src: AddressLike, dst: AddressLike, tcp: TcpRepr): Uint8Array {
  return new TcpFramer(src, dst).emit(tcp);
}

/** A TCP segment read from a frame for the stack: addresses stay bytes in the frame (no text per frame). */
export interface TcpPacket {
  /** offset and length (4 or 16) of the source and destination addresses in the frame */
  srcAt: number;
  dstAt: number;
  addrLen: 4 | 16;
  tcp: TcpRepr & { checksumOk: boolean | null };
}

/**
 * The stack's receive path: parses an IP frame carrying TCP without formatting addresses as
 * text, and verifies the checksum. Null for anything but an unfragmented TCP packet.
 */
export function parseTcpPacket(frame: Uint8Array): TcpPacket | WireError | null {
  const err = ipSpan(frame, false, span);
  if (err) return err;
  if (span.fragmented || span.protocol !== PROTO_TCP) return null;
  const { srcAt, addrLen } = span;
  const seg = frame.subarray(span.headerLength, span.totalLength);
  const dstAt = srcAt + addrLen;
  let sum = PROTO_TCP + pseudoLength(addrLen === 16, seg.length);
  for (let i = srcAt; i < dstAt + addrLen; i += 2) sum += (frame[i]! << 8) | frame[i + 1]!;
  const tcp = parseTcpWith(seg, sum);
  return isWireError(tcp) ? tcp : { srcAt, dstAt, addrLen, tcp };
}

/**
 * Whether a TCP frame's checksum field holds the pseudo-header's sum alone: what a sender that
 * leaves checksumming to the device (CHECKSUM_PARTIAL; loopback, offloading NICs) puts there, as
 * a capture taken on the way out sees it. Not an error: Wireshark does not flag it either.
 */
export function tcpChecksumPartial(frame: Uint8Array): boolean {
  if (ipSpan(frame, false, span) || span.fragmented || span.protocol !== PROTO_TCP) return false;
  const { srcAt, addrLen, headerLength, totalLength } = span;
  if (totalLength - headerLength < 20) return false;
  let sum = PROTO_TCP + pseudoLength(addrLen === 16, totalLength - headerLength);
  for (let i = srcAt; i < srcAt + 2 * addrLen; i += 2) sum += (frame[i]! << 8) | frame[i + 1]!;
  const field = (frame[headerLength + 16]! << 8) | frame[headerLength + 17]!;
  return field === fold(sum);
}

/** one span for the receive path: it is filled and read synchronously, never held */
const span = newIpSpan();

export function emitUdpFrame(src: string, dst: string, udp: UdpRepr): Uint8Array {
  return emitIp({ src, dst, protocol: PROTO_UDP }, emitUdp(udp, parseAddress(src).bytes, parseAddress(dst).bytes));
}
