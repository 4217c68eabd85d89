// Lab 01's cells: one bind() pairing each, what it measured, and what the seed's BSD rules predict.
import { familyOf, type IpFamily, type Proto } from '../../src/lab';

export const ADDRESS_TOKEN = /^(.+?)(\+v6only)?$/;

// ---------------------------------------------------------------- cells
export type Kind = 'bound' | 'listening' | 'multicast';
export type Uid = 'same' | 'other';

export interface Endpoint {
  token: string;
  family: IpFamily;
  address: string;
  v6only: boolean | null;
}

/** 224.0.0.0/4 (RFC 5771) or ff00::/8 (RFC 4291 §2.7) */
export function isMulticastGroup(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return familyOf(address) === 'ipv4' ? first >= 224 && first <= 239 : /^ff[0-9a-f]{2}:/i.test(address);
}

export function endpoint(token: string): Endpoint {
  const m = ADDRESS_TOKEN.exec(token)!;
  const family = familyOf(m[1]!)!;
  return { token, family, address: m[1]!, v6only: family === 'ipv6' ? !!m[2] : null };
}

export interface Cell {
  proto: Proto;
  kind: Kind;
  reuseaddrA: boolean;
  reuseaddrB: boolean;
  reuseportA: boolean;
  reuseportB: boolean;
  addrA: string;
  addrB: string;
  v6onlyA: boolean | null;
  v6onlyB: boolean | null;
  uidB: Uid;
  port: number;
  /** socket A's own bind (and listen, for the listening kind): OK unless the setup itself failed */
  setupA: string;
  /** B's bind(): OK or the errno name */
  result: string;
  listenA?: string;
  listenB?: string;
  /** what the seed's BSD rules predict, where they cover the cell */
  bsd: string | null;
  /** why the cell was not tested: the system under test cannot make it (a knob it lacks) */
  notTested?: string;
}

export const FLAGS: ReadonlyArray<[boolean, boolean]> = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

export const outcome = (r: { errno: string | null }): string => r.errno ?? 'OK';

export function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/**
 * The seed's BSD model (only for IPv4 pairs, same user): exact same address needs SO_REUSEPORT on
 * both; wildcard vs specific needs SO_REUSEADDR on B (or SO_REUSEPORT on both); different
 * specific addresses never conflict; on a multicast address either flag counts as SO_REUSEPORT.
 */
export function bsdPrediction(
  c: Pick<Cell, 'kind' | 'addrA' | 'addrB' | 'reuseaddrA' | 'reuseaddrB' | 'reuseportA' | 'reuseportB' | 'uidB'>,
): string | null {
  if (c.uidB !== 'same') return null;
  if (familyOf(c.addrA) !== 'ipv4' || familyOf(c.addrB) !== 'ipv4' || c.addrA.includes('+') || c.addrB.includes('+')) return null;
  if (c.kind === 'multicast') return (c.reuseaddrA || c.reuseportA) && (c.reuseaddrB || c.reuseportB) ? 'OK' : 'EADDRINUSE';
  const bothPort = c.reuseportA && c.reuseportB;
  if (c.addrA === c.addrB) return bothPort ? 'OK' : 'EADDRINUSE';
  if (isWildcard(c.addrA) || isWildcard(c.addrB)) return c.reuseaddrB || bothPort ? 'OK' : 'EADDRINUSE';
  return 'OK';
}

/** One probe: A binds, then sets SO_REUSEPORT; B sets it and binds the same address and port. */
export interface AfterBindTrial {
  proto: Proto;
  kind: 'bound' | 'listening';
  port: number;
  /** the control on a port of its own: A set SO_REUSEPORT before its bind (and listened), then B bound */
  control: { setupA: string; bindB: string };
  /** A's bind() (and listen(), for the listening kind) */
  setupA: string;
  /** setsockopt(SO_REUSEPORT, 1) on A after its bind, and what getsockopt reads back */
  setAfter: string;
  readBack: string;
  /** B's bind(): OK or the errno */
  bindB: string;
}
