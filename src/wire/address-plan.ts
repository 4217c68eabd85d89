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
} as const;

/** The system under test's addresses with their prefix lengths. */
export const HOST_PREFIXES = [
  [ADDR.host4, 24],
  [ADDR.host4b, 24],
  [ADDR.host6, 64],
] as const;

/** The addresses the userspace peer answers for. */
export const PEER_ADDRESSES = [ADDR.peer4, ADDR.peer4b, ADDR.peer6] as const;

/** The kernel-side addresses: in a capture, frames from these are the kernel's, frames to them the peer's. */
export const KERNEL_ADDRESSES: ReadonlySet<string> = new Set(HOST_PREFIXES.map(([a]) => a));
