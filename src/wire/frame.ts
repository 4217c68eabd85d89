// A whole IP frame (as read from the TUN, LINKTYPE_RAW) decoded down to the transport layer.
import { isWireError, type WireError } from './errors';
import { emitIp, parseIp, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, type IpRepr } from './ip';
import { emitTcp, parseTcp, type TcpRepr } from './tcp';
import { emitUdp, parseUdp, type UdpRepr } from './udp';
import { parseAddress } from './address';

export type Segment =
  | { kind: 'tcp'; ip: IpRepr; tcp: TcpRepr & { checksumOk: boolean | null } }
  | { kind: 'udp'; ip: IpRepr; udp: UdpRepr & { checksumOk: boolean | null } }
  | { kind: 'icmp'; ip: IpRepr; type: number; code: number }
  | { kind: 'other'; ip: IpRepr };

export function parseFrame(frame: Uint8Array): Segment | WireError {
  const p = parseIp(frame);
  if (isWireError(p)) return p;
  const { ip, srcBytes, dstBytes, payload } = p;
  if (ip.fragmented) return { kind: 'other', ip };
  if (ip.protocol === PROTO_TCP) {
    const tcp = parseTcp(payload, srcBytes, dstBytes);
    return isWireError(tcp) ? tcp : { kind: 'tcp', ip, tcp };
  }
  if (ip.protocol === PROTO_UDP) {
    const udp = parseUdp(payload, srcBytes, dstBytes);
    return isWireError(udp) ? udp : { kind: 'udp', ip, udp };
  }
  if (ip.protocol === PROTO_ICMP || ip.protocol === PROTO_ICMPV6) {
    return { kind: 'icmp', ip, type: payload[0] ?? -1, code: payload[1] ?? -1 };
  }
  return { kind: 'other', ip };
}

export function emitTcpFrame(src: string, dst: string, tcp: TcpRepr): Uint8Array {
  return emitIp({ src, dst, protocol: PROTO_TCP }, emitTcp(tcp, parseAddress(src).bytes, parseAddress(dst).bytes));
}

export function emitUdpFrame(src: string, dst: string, udp: UdpRepr): Uint8Array {
  return emitIp({ src, dst, protocol: PROTO_UDP }, emitUdp(udp, parseAddress(src).bytes, parseAddress(dst).bytes));
}
