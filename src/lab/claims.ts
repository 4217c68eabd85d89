// The claim registry: every claim twlab puts to the test, once, with the source that makes it
// and the scope that source states it for. Labs name claims by id; the verdict word is derived
// here from what a lab measured, its preconditions and the claim's scope, never written by a lab.
//
// Ids: C… are the seed's claims (../shared/seeds/), T… come from RFCs, man pages and kernel
// documentation. A lab of your own may bring claims of its own (any other prefix).

/** What the source states a claim for. `any` is every TCP (an RFC) or every major OS. */
export type Scope = 'any' | 'BSD' | 'Windows' | 'Linux' | `Linux < ${string}` | `Linux >= ${string}`;

export interface ClaimSpec {
  id: string;
  text: string;
  /** seed section, RFC section or man page */
  source: string;
  /** the OSes / kernel ranges the source states the claim for */
  scope: readonly Scope[];
}

export const CLAIMS: readonly ClaimSpec[] = [
  // ---- the seed (../shared/seeds/): mostly stated for BSD, some for Linux by kernel version
  { id: 'C1', text: 'By default no two sockets can be bound to the same source address and port.', source: 'seed §basics ("pretty much equal for all major operating systems")', scope: ['any'] },
  {
    id: 'C2',
    text: 'Binding a wildcard address and a specific address on the same port fails without SO_REUSEADDR and succeeds with it, set on the socket being bound, in either order.',
    source: 'seed §SO_REUSEADDR',
    scope: ['BSD'],
  },
  { id: 'C3', text: "The seed's eight-row SO_REUSEADDR table (socket A bound, then socket B binds) gives each result.", source: 'seed §SO_REUSEADDR (table)', scope: ['BSD'] },
  {
    id: 'C4',
    text: 'A socket in TIME_WAIT blocks bind() unless the new socket sets SO_REUSEADDR; the flag of the old socket is not looked at.',
    source: 'seed §SO_REUSEADDR',
    scope: ['BSD'],
  },
  {
    id: 'C5',
    text: 'SO_REUSEPORT lets sockets bind exactly the same address and port only if every socket, the first included, set it before binding.',
    source: 'seed §SO_REUSEPORT; seed §Linux >= 3.9 ("behaves exactly like the option in BSD")',
    scope: ['BSD', 'Linux >= 3.9'],
  },
  { id: 'C6', text: 'connect() fails with EADDRINUSE when the five-tuple already exists.', source: 'seed §"Connect() Returning EADDRINUSE?"', scope: ['BSD'] },
  { id: 'C7', text: 'For multicast addresses SO_REUSEADDR behaves exactly as SO_REUSEPORT, and the other way round.', source: 'seed §Multicast Addresses', scope: ['BSD'] },
  {
    id: 'C8',
    text: 'While a TCP socket listens on a port SO_REUSEADDR is ignored for that port; for sockets that do not listen, SO_REUSEADDR on both behaves like SO_REUSEPORT.',
    source: 'seed §Linux < 3.9',
    scope: ['Linux < 3.9'],
  },
  {
    id: 'C9',
    text: 'Sockets can share an address and port through SO_REUSEPORT only if they belong to the same effective user ID.',
    source: 'seed §Linux >= 3.9 (1.); man 7 socket (SO_REUSEPORT)',
    scope: ['Linux >= 3.9'],
  },
  { id: 'C10', text: 'Linux distributes incoming connections and datagrams evenly across SO_REUSEPORT sockets.', source: 'seed §Linux >= 3.9 (2.)', scope: ['Linux >= 3.9'] },
  {
    id: 'C11',
    text: 'close() with SO_LINGER {1,0} sends RST instead of FIN, discards unsent data, and leaves no TIME_WAIT.',
    source: 'seed §SO_REUSEADDR ("disabling lingering"); man 7 socket (SO_LINGER)',
    scope: ['BSD', 'Linux'],
  },
  { id: 'C12', text: 'The linger time bounds how long the socket stays in TIME_WAIT.', source: 'seed comments (Mecki, on FreeBSD and macOS; disputed by user207421)', scope: ['BSD'] },
  {
    id: 'C13',
    text: 'A packet for the old incarnation may be consumed by a new socket bound to the same address, which may react incorrectly.',
    source: 'seed comments (Good Person, Mecki)',
    scope: ['any'],
  },
  { id: 'C14', text: 'TIME_WAIT exists so that delayed segments of an old connection are not taken for new data.', source: 'seed comments; RFC 9293 §3.4.1, §3.6.1', scope: ['any'] },
  { id: 'C16', text: 'If the process dies without closing the socket, the system lingers nonetheless, ignoring SO_LINGER.', source: 'seed §SO_REUSEADDR ("BSD (and possibly other systems)")', scope: ['BSD'] },
  {
    id: 'C17',
    text: 'Without SO_REUSEADDR, a socket may bind the address and port of a socket in TIME_WAIT only if both set SO_REUSEPORT before binding.',
    source: 'seed §SO_REUSEPORT ("SO_REUSEPORT does not imply SO_REUSEADDR")',
    scope: ['BSD'],
  },
  { id: 'C18', text: 'When the linger time runs out with data unsent, the socket is closed forcefully and the unsent data is lost.', source: 'seed §SO_REUSEADDR ("closed forcefully")', scope: ['BSD'] },

  // ---- RFCs, man pages, kernel documentation
  { id: 'T1', text: 'Only the side that closes first enters TIME-WAIT.', source: 'RFC 9293 §3.6 (figure 12)', scope: ['any'] },
  { id: 'T2', text: 'Linux keeps TIME_WAIT for 60 s, and tcp_fin_timeout does not change that.', source: 'man 7 tcp (tcp_fin_timeout); include/net/tcp.h TCP_TIMEWAIT_LEN', scope: ['Linux'] },
  {
    id: 'T3',
    text: 'tcp_tw_reuse governs whether a new outgoing connection may take over a four-tuple in TIME_WAIT (when timestamps make it safe).',
    source: 'Documentation/networking/ip-sysctl.rst (tcp_tw_reuse)',
    scope: ['Linux'],
  },
  {
    id: 'T5',
    text: 'An orphaned FIN_WAIT_2 socket lives tcp_fin_timeout seconds; one the application still holds does not time out.',
    source: 'man 7 tcp (tcp_fin_timeout)',
    scope: ['Linux'],
  },
  { id: 'T6', text: 'In a simultaneous close both sides pass through CLOSING and both enter TIME-WAIT.', source: 'RFC 9293 §3.6 (figure 13)', scope: ['any'] },
  {
    id: 'T7',
    text: 'Beyond tcp_max_tw_buckets the kernel skips TIME_WAIT (and says so in a counter), and the port is free at once.',
    source: 'Documentation/networking/ip-sysctl.rst (tcp_max_tw_buckets)',
    scope: ['Linux'],
  },
  { id: 'T8', text: 'With timestamps, PAWS rejects the old segment.', source: 'RFC 7323 §5', scope: ['any'] },
  { id: 'T9', text: 'A TIME-WAIT socket may accept a new SYN whose sequence number is larger than any of the old incarnation.', source: 'RFC 9293 §3.10.7.4 (MAY-2); RFC 1122 §4.2.2.13', scope: ['any'] },
  { id: 'T10', text: 'With timestamps, a newer timestamp suffices, whatever the sequence number.', source: 'RFC 6191', scope: ['any'] },
  { id: 'T11', text: 'An RST kills a TIME-WAIT socket unless tcp_rfc1337=1.', source: 'RFC 1337 hazard H1; man 7 tcp (tcp_rfc1337)', scope: ['Linux'] },
  { id: 'T12', text: 'An RST inside the window but not at RCV.NXT draws a challenge ACK instead of a reset.', source: 'RFC 5961 §3', scope: ['any'] },
  { id: 'T13', text: 'A SYN on an established four-tuple draws a challenge ACK.', source: 'RFC 5961 §4', scope: ['any'] },
  { id: 'T14', text: 'An ACK beyond SND.NXT is dropped and answered with an ACK.', source: 'RFC 5961 §5', scope: ['any'] },
  {
    id: 'T15',
    text: 'close() with received data still unread sends RST, not FIN, whatever SO_LINGER says.',
    source: 'RFC 2525 §2.17; RFC 1122 §4.2.2.13; net/ipv4/tcp.c (tcp_close: data_was_unread)',
    scope: ['Linux'],
  },
];

/** `C5` → its registry entry, or throws (a lab naming an unknown claim is a programming error). */
export function claimById(id: string): ClaimSpec {
  const c = CLAIMS.find((x) => x.id === id);
  if (!c) throw new Error(`no claim ${id} in the registry (src/lab/claims.ts)`);
  return c;
}

export function scopeLabel(scope: readonly Scope[]): string {
  return scope.map((s) => (s === 'any' ? 'every TCP' : s.replace('>=', '≥'))).join('; ');
}

/** Compares dotted kernel versions numerically: "6.18.4-x" vs "3.9" → 1. */
export function compareVersions(a: string, b: string): number {
  const pa = (/^\d+(\.\d+)*/.exec(a)?.[0] ?? '0').split('.').map(Number);
  const pb = (/^\d+(\.\d+)*/.exec(b)?.[0] ?? '0').split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** The system a verdict is given for: a Linux release (uname -r), or another OS's stack. */
export type SystemRef = string | { os: string; release: string };

/** Whether a claim's source speaks of `system`: a Linux kernel release (uname -r), or a BSD's stack. */
export function inScope(scope: readonly Scope[], system: SystemRef): boolean {
  const { os, release } = typeof system === 'string' ? { os: 'Linux', release: system } : system;
  return scope.some((s) => {
    if (s === 'any') return true;
    if (s === 'BSD') return os === 'NetBSD' || os === 'FreeBSD';
    if (os !== 'Linux') return false;
    if (s === 'Linux') return true;
    const m = /^Linux (<|>=) (.+)$/.exec(s);
    if (!m) return false; // another OS
    const cmp = compareVersions(release, m[2]!);
    return m[1] === '<' ? cmp < 0 : cmp >= 0;
  });
}
