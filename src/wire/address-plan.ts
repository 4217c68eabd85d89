// The lab network's address plan: documentation ranges only (RFC 5737, RFC 3849), used only
// inside each lab's own namespace. The system under test holds the `host` addresses on the TUN
// (or another OS's stack on its tap), the userspace peer answers for the `peer` ones. Everything
// that names an address of the lab network (the namespace setup, the peer, a capture listing that
// tells the kernel's frames from the peer's) reads it here.

export const ADDR = {
  host4: '192.0.2.1',
  peer4: '192.0.2.2',
  /** a second specific host address, for bind-matrix cells */
  host4b: '198.51.100.1',
  peer4b: '198.51.100.2',
  host6: '2001:db8::1',
  peer6: '2001:db8::2',
  /** the second pair over IPv6 (a lab that needs two host addresses runs over either family) */
  host6b: '2001:db8:1::1',
  peer6b: '2001:db8:1::2',
} as const;

/** One address family's share of the plan, as a lab that runs over either family names it. */
export interface FamilyAddresses {
  /** the system under test's address, and the peer's */
  host: string;
  peer: string;
  /** the second pair (another subnet) */
  hostB: string;
  peerB: string;
  /** the wildcard a socket binds to for "any address": 0.0.0.0 or :: */
  any: string;
}

export const FAMILY_ADDRESSES: Readonly<Record<'ipv4' | 'ipv6', FamilyAddresses>> = {
  ipv4: { host: ADDR.host4, peer: ADDR.peer4, hostB: ADDR.host4b, peerB: ADDR.peer4b, any: '0.0.0.0' },
  ipv6: { host: ADDR.host6, peer: ADDR.peer6, hostB: ADDR.host6b, peerB: ADDR.peer6b, any: '::' },
};

/** The system under test's addresses with their prefix lengths. */
export const HOST_PREFIXES = [
  [ADDR.host4, 24],
  [ADDR.host4b, 24],
  [ADDR.host6, 64],
  [ADDR.host6b, 64],
] as const;

/** The addresses the userspace peer answers for. */
export const PEER_ADDRESSES = [ADDR.peer4, ADDR.peer4b, ADDR.peer6, ADDR.peer6b] as const;

/** The kernel-side addresses: in a capture, frames from these are the kernel's, frames to them the peer's. */
export const KERNEL_ADDRESSES: ReadonlySet<string> = new Set(HOST_PREFIXES.map(([a]) => a));
