// Internet checksum (RFC 1071) and the TCP/UDP pseudo-headers (RFC 9293 §3.1, RFC 8200 §8.1).

/** One's-complement sum of 16-bit words, not yet folded or inverted. */
export function sum16(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  const n = bytes.length & ~1;
  for (let i = 0; i < n; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length & 1) sum += bytes[bytes.length - 1]! << 8;
  return sum;
}

export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  return ~fold(sum16(bytes, initial)) & 0xffff;
}

export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  let s = sum16(src) + sum16(dst) + protocol;
  if (src.length === 16) s += Math.floor(length / 0x10000) + (length & 0xffff);
  else s += length;
  return s;
}
