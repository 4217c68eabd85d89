// struct sockaddr_in / sockaddr_in6 as bytes, for the addon's bind/connect/getsockname.
import * as os from 'node:os';
import { formatIPv4, formatIPv6, parseAddress, type IpFamily } from '../wire/address';
import { native } from './native';

export interface SocketAddress {
  family: IpFamily;
  address: string;
  port: number;
}

const littleEndian = os.endianness() === 'LE';

export function encodeSockaddr(address: string, port: number): Buffer {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port out of range: ${port}`);
  const { family, bytes } = parseAddress(address);
  const c = native().constants;
  const v4 = family === 'ipv4';
  const b = Buffer.alloc(v4 ? 16 : 28);
  // sa_family in host order; sin_port / sin6_port in network order
  if (littleEndian) b.writeUInt16LE(v4 ? c.AF_INET : c.AF_INET6, 0);
  else b.writeUInt16BE(v4 ? c.AF_INET : c.AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  b.set(bytes, v4 ? 4 : 8); // IPv6: after sin6_flowinfo; sin6_scope_id stays 0
  return b;
}

export function decodeSockaddr(b: Buffer): SocketAddress | null {
  if (b.length < 2) return null;
  const c = native().constants;
  const fam = littleEndian ? b.readUInt16LE(0) : b.readUInt16BE(0);
  if (fam === c.AF_INET && b.length >= 8) {
    return { family: 'ipv4', address: formatIPv4(b.subarray(4, 8)), port: b.readUInt16BE(2) };
  }
  if (fam === c.AF_INET6 && b.length >= 24) {
    return { family: 'ipv6', address: formatIPv6(b.subarray(8, 24)), port: b.readUInt16BE(2) };
  }
  return null;
}
