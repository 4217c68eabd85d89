// UDP (RFC 768): bytes ⇄ UdpRepr.
import { fold, internetChecksum, pseudoHeaderSum, sum16 } from './checksum';
import { wireError, type WireError } from './errors';
import { PROTO_UDP } from './ip';

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export function parseUdp(b: Uint8Array, src?: Uint8Array, dst?: Uint8Array): (UdpRepr & { checksumOk: boolean | null }) | WireError {
  if (b.length < 8) return wireError('udp', `truncated header (${b.length} bytes)`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const length = v.getUint16(4);
  if (length < 8 || length > b.length) return wireError('udp', `length ${length} vs ${b.length} bytes`);
  const seg = b.subarray(0, length);
  let checksumOk: boolean | null = null;
  if (src && dst && v.getUint16(6) !== 0) checksumOk = fold(sum16(seg, pseudoHeaderSum(src, dst, PROTO_UDP, length))) === 0xffff;
  return { srcPort: v.getUint16(0), dstPort: v.getUint16(2), payload: b.subarray(8, length), checksumOk };
}

export function emitUdp(u: UdpRepr, src: Uint8Array, dst: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + u.payload.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, u.srcPort);
  v.setUint16(2, u.dstPort);
  v.setUint16(4, out.length);
  out.set(u.payload, 8);
  const c = internetChecksum(out, pseudoHeaderSum(src, dst, PROTO_UDP, out.length));
  v.setUint16(6, c === 0 ? 0xffff : c);
  return out;
}
