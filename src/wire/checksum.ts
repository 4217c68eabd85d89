// Internet checksum (RFC 1071) and the TCP/UDP pseudo-headers (RFC 9293 §3.1, RFC 8200 §8.1).

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Byte-wise sum of 16-bit big-endian words: the reference, and the path for odd offsets. */
function sumBytes(bytes: Uint8Array, initial: number): number {
  let sum = initial;
  const n = bytes.length & ~1;
  for (let i = 0; i < n; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length & 1) sum += bytes[bytes.length - 1]! << 8;
  return sum;
}

/**
 * One's-complement sum of 16-bit words, not yet folded or inverted. Reads 32-bit words when the
 * bytes start on a 4-byte boundary (every frame the stack builds or reads does): the sum is
 * independent of byte order (RFC 1071 §2(B)), so little-endian words summed and the folded
 * result swapped give the same value at a third of the cost.
 */
export function sum16(bytes: Uint8Array, initial = 0): number {
  const n4 = bytes.length >>> 2;
  if (!LITTLE_ENDIAN || (bytes.byteOffset & 3) !== 0 || n4 < 8) return sumBytes(bytes, initial);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, n4);
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < n4; i++) {
    const w = words[i]!;
    lo += w & 0xffff;
    hi += w >>> 16;
  }
  let s = fold(lo + hi);
  s = ((s & 0xff) << 8) | (s >>> 8); // little-endian words: swap back
  let i = n4 << 2;
  if (i + 1 < bytes.length) {
    s += (bytes[i]! << 8) | bytes[i + 1]!;
    i += 2;
  }
  if (i < bytes.length) s += bytes[i]! << 8;
  return s + initial;
}

export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  return ~fold(sum16(bytes, initial)) & 0xffff;
}

/** The pseudo-header's addresses and protocol, summed once per four-tuple (the length is added per segment). */
export function addressSum(src: Uint8Array, dst: Uint8Array, protocol: number): number {
  return sumBytes(src, 0) + sumBytes(dst, 0) + protocol;
}

export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  return addressSum(src, dst, protocol) + pseudoLength(src.length === 16, length);
}

/** The length field of the pseudo-header: 16 bits for IPv4, 32 for IPv6. */
export function pseudoLength(ipv6: boolean, length: number): number {
  return ipv6 ? Math.floor(length / 0x10000) + (length & 0xffff) : length;
}
