// A whole IP frame (as read from the TUN, LINKTYPE_RAW) decoded down to the transport layer.
import { isWireError, type WireError } from './errors';
import { emitIp, parseIp, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, type IpRepr, type ParseOptions } from './ip';
import { emitTcp, parseTcp, type TcpRepr } from './tcp';
import { emitUdp, parseUdp, type UdpRepr } from './udp';
import { parseAddress } from './address';

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
  const p = parseIp(frame, { snapped: true });
  if (isWireError(p) || p.ip.protocol !== PROTO_TCP || p.ip.fragmented || p.payload.length < 20) return null;
  const tcpHeader = (p.payload[12]! >> 4) * 4;
  return tcpHeader < 20 || tcpHeader > p.payload.length ? null : p.ip.headerLength + tcpHeader;
}

export function emitTcpFrame(src: string, dst: string, tcp: TcpRepr): Uint8Array {
  return emitIp({ src, dst, protocol: PROTO_TCP }, emitTcp(tcp, parseAddress(src).bytes, parseAddress(dst).bytes));
}

export function emitUdpFrame(src: string, dst: string, udp: UdpRepr): Uint8Array {
  return emitIp({ src, dst, protocol: PROTO_UDP }, emitUdp(udp, parseAddress(src).bytes, parseAddress(dst).bytes));
}
