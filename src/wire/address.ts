// IP addresses as text and as bytes. Pure: no sockets, no filesystem.

export type IPv4Address = string & { readonly __brand: 'IPv4Address' };
export type IPv6Address = string & { readonly __brand: 'IPv6Address' };
export type IpFamily = 'ipv4' | 'ipv6';

export class AddressError extends Error {
  readonly code = 'BAD_ADDRESS';
}

/** Parses dotted-quad IPv4 text to 4 bytes, or returns null. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

/** Parses IPv6 text (with `::` and an optional trailing dotted quad) to 16 bytes, or returns null. */
export function parseIPv6(text: string): Uint8Array | null {
  if (text.includes('%')) return null; // scoped addresses are not used in twlab
  let head = text;
  let tail4: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail4 = parseIPv4(text.slice(lastColon + 1));
    if (!tail4) return null;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  if (!left || !right) return null;
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...left, ...new Array<number>(missing).fill(0), ...right];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  if (tail4) out.set(tail4, 12);
  return out;
}

export function familyOf(text: string): IpFamily | null {
  if (parseIPv4(text)) return 'ipv4';
  if (parseIPv6(text)) return 'ipv6';
  return null;
}

export function formatIPv4(bytes: Uint8Array): IPv4Address {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}` as IPv4Address;
}

/** RFC 5952 text: lower case, longest zero run compressed, IPv4-mapped shown dotted. */
export function formatIPv6(bytes: Uint8Array): IPv6Address {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((bytes[i * 2]! << 8) | bytes[i * 2 + 1]!);
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mapped) return `::ffff:${formatIPv4(bytes.subarray(12, 16))}` as IPv6Address;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':') as IPv6Address;
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}` as IPv6Address;
}

export function formatAddress(bytes: Uint8Array): string {
  return bytes.length === 4 ? formatIPv4(bytes) : formatIPv6(bytes);
}

/** "192.0.2.1:80" or "[2001:db8::1]:80" */
export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function parseAddress(text: string): { family: IpFamily; bytes: Uint8Array } {
  const v4 = parseIPv4(text);
  if (v4) return { family: 'ipv4', bytes: v4 };
  const v6 = parseIPv6(text);
  if (v6) return { family: 'ipv6', bytes: v6 };
  throw new AddressError(`not an IP address: ${JSON.stringify(text)}`);
}

/** An address in one of the documentation ranges twlab may use (RFC 5737, RFC 3849), or loopback/wildcard/multicast. */
export function isDocumentationAddress(text: string): boolean {
  const v4 = parseIPv4(text);
  if (v4) {
    return (v4[0] === 192 && v4[1] === 0 && v4[2] === 2) || (v4[0] === 198 && v4[1] === 51 && v4[2] === 100);
  }
  const v6 = parseIPv6(text);
  return !!v6 && v6[0] === 0x20 && v6[1] === 0x01 && v6[2] === 0x0d && v6[3] === 0xb8;
}
