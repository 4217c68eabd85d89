// The claim registry: every claim twlab puts to the test, once, with the source that makes it
// and the scope that source states it for. Labs name claims by id; the verdict word is derived
// here from what a lab measured, its preconditions and the claim's scope, never written by a lab.
//
// Ids: C… are the seed's claims (../shared/seeds/), T… come from RFCs, man pages and kernel
// documentation. A lab of your own may bring claims of its own (any other prefix).

/** What the source states a claim for. `any` is every TCP (an RFC) or every major OS. */
export type Scope = 'any' | 'BSD' | 'Windows' | 'Linux' | `Linux < ${string}` | `Linux >= ${string}`;

/**
 * What kind of statement a claim makes. `must` (the default) says what a TCP does: it holds when
 * every valid trial shows it. `may` says what can happen ("may be consumed", "can bind"): it holds
 * when some valid trial shows it happening, and the conditions that let it happen (PAWS off, the
 * old segment inside the window, …) are its preconditions; it does not hold when none of enough
 * valid trials shows it (src/lab/api/verdict.ts).
 */
export type Modality = 'must' | 'may';

export interface ClaimSpec {
  id: string;
  text: string;
  /** seed section, RFC section or man page */
  source: string;
  /** the OSes / kernel ranges the source states the claim for */
  scope: readonly Scope[];
  /** `may` for a claim of possibility; absent means `must` */
  modality?: Modality;
}

export const CLAIMS: readonly ClaimSpec[] = [
  // ---- the seed (../shared/seeds/): mostly stated for BSD, some for Linux by kernel version
  {
    id: 'C1',
    text: 'By default no two sockets can be bound to the same source address and port.',
    source: 'seed §basics ("pretty much equal for all major operating systems")',
    scope: ['any'],
  },
  {
    id: 'C2',
    text: 'Binding a wildcard address and a specific address on the same port fails without SO_REUSEADDR and succeeds with it, set on the socket being bound, in either order.',
    source: 'seed §SO_REUSEADDR',
    scope: ['BSD'],
  },
  {
    id: 'C3',
    text: "The seed's eight-row SO_REUSEADDR table (socket A bound, then socket B binds) gives each result.",
    source: 'seed §SO_REUSEADDR (table)',
    scope: ['BSD'],
  },
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
  {
    id: 'C6',
    text: 'connect() fails with EADDRINUSE when the five-tuple already exists.',
    source: 'seed §"Connect() Returning EADDRINUSE?"',
    scope: ['BSD'],
  },
  {
    id: 'C7',
    text: 'For multicast addresses SO_REUSEADDR behaves exactly as SO_REUSEPORT, and the other way round.',
    source: 'seed §Multicast Addresses',
    scope: ['BSD'],
  },
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
  {
    id: 'C10',
    text: 'Linux distributes incoming connections and datagrams evenly across SO_REUSEPORT sockets.',
    source: 'seed §Linux >= 3.9 (2.)',
    scope: ['Linux >= 3.9'],
  },
  {
    id: 'C11',
    text: 'close() with SO_LINGER {1,0} sends RST instead of FIN, discards unsent data, and leaves no TIME_WAIT.',
    source: 'seed §SO_REUSEADDR ("disabling lingering"); man 7 socket (SO_LINGER)',
    scope: ['BSD', 'Linux'],
  },
  {
    id: 'C12',
    text: 'The linger time bounds how long the socket stays in TIME_WAIT.',
    source: 'seed comments (Mecki, on FreeBSD and macOS; disputed by user207421)',
    scope: ['BSD'],
  },
  {
    id: 'C13',
    text: 'When a four-tuple is used again, the new connection may get data destined for the old one.',
    source: 'seed comments (Good Person: "application B opens the same socket it may get data destined for A")',
    scope: ['any'],
    modality: 'may',
  },
  {
    id: 'C19',
    text: 'A late segment for a socket in TIME_WAIT may be consumed by another socket bound to the same address and port with SO_REUSEADDR, so the TIME_WAIT socket never sees it and the other socket reacts to it.',
    source:
      'seed comments (Mecki: "this packet may be consumed by the other socket bound to the same address"); seed §SO_REUSEADDR ("side effects in case the other socket is still at work")',
    scope: ['BSD'],
    modality: 'may',
  },
  {
    id: 'C14',
    text: 'TIME_WAIT exists so that delayed segments of an old connection are not taken for new data.',
    source: 'seed comments; RFC 9293 §3.4.1, §3.6.1',
    scope: ['any'],
  },
  {
    id: 'C16',
    text: 'If the process dies without closing the socket, the system lingers nonetheless, ignoring SO_LINGER.',
    source: 'seed §SO_REUSEADDR ("BSD (and possibly other systems)")',
    scope: ['BSD'],
  },
  {
    id: 'C17',
    text: 'Without SO_REUSEADDR, a socket may bind the address and port of a socket in TIME_WAIT only if both set SO_REUSEPORT before binding.',
    source: 'seed §SO_REUSEPORT ("SO_REUSEPORT does not imply SO_REUSEADDR")',
    scope: ['BSD'],
  },
  {
    id: 'C18',
    text: 'When the linger time runs out with data unsent, the socket is closed forcefully and the unsent data is lost.',
    source: 'seed §SO_REUSEADDR ("closed forcefully")',
    scope: ['BSD'],
  },
  // the seed, covered (issue 16): claims no lab tested before
  {
    id: 'C20',
    text: "A connected UDP socket in a SO_REUSEPORT group receives every datagram from the remote endpoint it is connected to; the unconnected sockets get only the other endpoints' datagrams.",
    source:
      'seed comments (Mecki, Sep 2 \'19: "if one is connected to a remote endpoint, then all datagrams originating from that remote endpoint will end up at the connected socket. The unconnected one would only catch datagrams from other remote endpoints")',
    scope: ['Linux >= 3.9'],
  },
  {
    id: 'C21',
    text: 'When one socket is bound to the wildcard address and another to a specific address on the same port, traffic to the specific address goes to the specific-address socket.',
    source:
      'seed comments (Mecki, Apr 25 \'18: "the socket with the specific address usually wins over the socket with the wildcard address (in networking, the most specific match usually wins)")',
    scope: ['any'],
  },
  {
    id: 'C22',
    text: 'SO_REUSEPORT counts only when it was set before bind(): a socket that set it after binding does not let another socket bind the same address and port.',
    source:
      'seed §SO_REUSEPORT ("as long as all prior bound sockets also had SO_REUSEPORT set before they were bound"); seed §Linux >= 3.9 ("as long as all sockets have this option set prior to binding them")',
    scope: ['BSD', 'Linux >= 3.9'],
  },
  {
    id: 'C23',
    text: 'Without SO_REUSEADDR or SO_REUSEPORT, a socket bound to 0.0.0.0:P keeps every other socket from binding port P, whatever specific address it names.',
    source:
      'seed §basics ("If a socket is bound to 0.0.0.0:21 … no other socket can be bound to port 21, regardless which specific IP address it tries to bind to"; "pretty much equal for all major operating systems")',
    scope: ['any'],
  },
  {
    id: 'C24',
    text: 'Two sockets can always bind the same port on two different specific addresses, without any flag.',
    source:
      'seed §basics ("Binding socketA to ipA:portA and socketB to ipB:portB is always possible if ipA != ipB holds true, even when portA == portB"; "pretty much equal for all major operating systems")',
    scope: ['any'],
  },
  {
    id: 'C25',
    text: 'By default a closed socket keeps trying to deliver its unsent data for a long time, about two minutes (the default linger time), before the system gives up.',
    source:
      'seed §SO_REUSEADDR ("The Linger Time is globally configurable on most systems and by default rather long (two minutes is a common value you will find on many systems)")',
    scope: ['any'],
  },

  // ---- RFCs, man pages, kernel documentation
  { id: 'T1', text: 'Only the side that closes first enters TIME-WAIT.', source: 'RFC 9293 §3.6 (figure 12)', scope: ['any'] },
  {
    id: 'T2',
    text: 'Linux keeps TIME_WAIT for 60 s, and tcp_fin_timeout does not change that.',
    source: 'man 7 tcp (tcp_fin_timeout); include/net/tcp.h TCP_TIMEWAIT_LEN',
    scope: ['Linux'],
  },
  {
    id: 'T3',
    text: 'For a connect() whose local port the kernel chooses, tcp_tw_reuse decides whether it may take over a four-tuple in TIME_WAIT (when timestamps make it safe and the TIME_WAIT is tcp_tw_reuse_delay old).',
    source:
      'Documentation/networking/ip-sysctl.rst (tcp_tw_reuse: "Enable reuse of TIME-WAIT sockets for new connections when it is safe from protocol viewpoint"; tcp_tw_reuse_delay)',
    scope: ['Linux'],
  },
  {
    id: 'T16',
    text: 'A connect() from an explicitly bound local port takes over a four-tuple in a timestamped TIME_WAIT whatever tcp_tw_reuse says: the sysctl is never consulted on that path.',
    source:
      'net/ipv4/tcp_ipv4.c tcp_twsk_unique() ("if (ts_recent_stamp && (!twp || (reuse && …)))"); net/ipv4/inet_hashtables.c __inet_hash_connect() (a bound port: check_established(…, NULL))',
    scope: ['Linux'],
  },
  {
    id: 'T5',
    text: 'An orphaned FIN_WAIT_2 socket lives tcp_fin_timeout seconds; one the application still holds does not time out.',
    source: 'man 7 tcp (tcp_fin_timeout)',
    scope: ['Linux'],
  },
  {
    id: 'T6',
    text: 'In a simultaneous close both sides pass through CLOSING and both enter TIME-WAIT.',
    source: 'RFC 9293 §3.6 (figure 13)',
    scope: ['any'],
  },
  {
    id: 'T7',
    text: 'Beyond tcp_max_tw_buckets the kernel skips TIME_WAIT (and says so in a counter), and the port is free at once.',
    source: 'Documentation/networking/ip-sysctl.rst (tcp_max_tw_buckets)',
    scope: ['Linux'],
  },
  { id: 'T8', text: 'With timestamps, PAWS rejects the old segment.', source: 'RFC 7323 §5', scope: ['any'] },
  {
    id: 'T9',
    text: 'Without timestamps, a TIME-WAIT socket lets in a new SYN whose sequence number is above any of the old incarnation (RFC 9293 permits it), and refuses one below it with an ACK of the old connection.',
    source: 'RFC 9293 §3.10.7.4 (MAY-2, and "an acknowledgment should be sent" for an unacceptable segment); RFC 1122 §4.2.2.13',
    scope: ['any'],
  },
  {
    id: 'T10',
    text: 'With timestamps, a new SYN whose timestamp is newer than the last one the TIME-WAIT socket saw is let in, whatever its sequence number.',
    source: 'RFC 6191 §2',
    scope: ['any'],
  },
  {
    id: 'T11',
    text: "An RST at the TIME-WAIT socket's RCV.NXT kills it (the port is free at once) unless tcp_rfc1337=1.",
    source: 'RFC 1337 hazard H1; man 7 tcp (tcp_rfc1337)',
    scope: ['Linux'],
  },
  {
    id: 'T12',
    text: 'An RST inside the window but not at RCV.NXT draws a challenge ACK instead of a reset.',
    source: 'RFC 5961 §3',
    scope: ['any'],
  },
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
  if (!c) throw new Error(`no claim ${id} in the registry (src/lab/api/claims.ts)`);
  return c;
}

/** The OS names a scope may give (beside `any` and Linux kernel ranges). */
export const SCOPE_OSES: readonly string[] = ['BSD', 'Windows', 'Linux'];

/**
 * Throws when a claim is malformed: a scope string that names no OS or kernel range twlab knows
 * (a typo would otherwise judge the claim "differs by OS" everywhere), a range whose version is
 * not a dotted number, or an unknown modality. The registry is checked when it loads; a lab's own
 * claims when the lab is defined.
 */
export function validateClaim(c: ClaimSpec): void {
  if (!c.scope.length) throw new Error(`claim ${c.id}: no scope`);
  for (const s of c.scope as readonly string[]) {
    if (s === 'any' || SCOPE_OSES.includes(s)) continue;
    const m = /^Linux (<|>=) (.*)$/.exec(s);
    if (!m)
      throw new Error(
        `claim ${c.id}: unknown scope ${JSON.stringify(s)} (give any, ${SCOPE_OSES.join(', ')}, "Linux < X.Y" or "Linux >= X.Y")`,
      );
    if (!/^\d+(\.\d+)*$/.test(m[2]!))
      throw new Error(`claim ${c.id}: scope ${JSON.stringify(s)}: the kernel version must be dotted numbers`);
  }
  if (c.modality !== undefined && c.modality !== 'must' && c.modality !== 'may')
    throw new Error(`claim ${c.id}: unknown modality ${JSON.stringify(c.modality)} (must or may)`);
}

for (const c of CLAIMS) validateClaim(c);

export function scopeLabel(scope: readonly Scope[]): string {
  return scope.map((s) => (s === 'any' ? 'every TCP' : s.replace('>=', '≥'))).join('; ');
}

/** The leading dotted number of a kernel release ("6.18.4-x" → [6, 18, 4]); null when it has none. */
export function parseVersion(release: string): number[] | null {
  const m = /^\d+(\.\d+)*/.exec(release);
  return m ? m[0].split('.').map(Number) : null;
}

/** Compares dotted kernel versions numerically: "6.18.4-x" vs "3.9" → 1; null when either has no version. */
export function compareVersions(a: string, b: string): number | null {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) return null;
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** The system under test: its OS and release ("Linux", uname -r). A bare string is a Linux release. */
export interface SystemUnderTest {
  os: string;
  release: string;
}

export const asSystem = (s: string | SystemUnderTest): SystemUnderTest => (typeof s === 'string' ? { os: 'Linux', release: s } : s);

/**
 * Whether a claim's source speaks of this system: true, false, or null when it cannot be told (a
 * kernel range, and a release with no version in it). `BSD` covers every *BSD.
 */
export function inScope(scope: readonly Scope[], system: string | SystemUnderTest): boolean | null {
  const { os, release } = asSystem(system);
  let unknown = false;
  for (const s of scope as readonly string[]) {
    if (s === 'any' || s === os || (s === 'BSD' && /BSD$/.test(os))) return true;
    const m = /^Linux (<|>=) (.+)$/.exec(s);
    if (!m || os !== 'Linux') continue; // another OS
    const cmp = compareVersions(release, m[2]!);
    if (cmp === null) unknown = true;
    else if (m[1] === '<' ? cmp < 0 : cmp >= 0) return true;
  }
  return unknown ? null : false;
}
