// Which of the sysctls the labs set or record govern IPv6 TCP too. Linux has no net.ipv6.tcp_*:
// tcp_ipv6.c runs the same TCP (tcp_input.c, tcp_minisocks.c, tcp_timer.c, inet_hashtables.c) and
// every one of these is read from `net->ipv4.sysctl_*` there, whatever the socket's family. Each
// line below was measured on both families in a private namespace (test/fixtures/v6/sysctls.py,
// run by test/family.test.ts) and its reason names the kernel function that reads the knob.
// Written down, one line each, so the table is reviewed, never guessed at run time.

export type IpFamilyName = 'ipv4' | 'ipv6';

export interface FamilyRule {
  /** the address families whose TCP the knob governs */
  governs: readonly IpFamilyName[];
  /** the knob that does the same for the other family, when it is another one (none of these has one) */
  counterpart: string | null;
  /** where the knob lives: per network namespace (a lab's write stays in it), or one for the whole machine */
  scope: 'namespace' | 'global';
  /** one line: why, citing the kernel function that reads it */
  why: string;
  /** what was measured, on both families alike (null: read from the source only) */
  measured: string | null;
}

/** Every sysctl the labs (and src/host/backend/knobs.ts) name, with the families it governs. */
export const SYSCTL_FAMILIES: Readonly<Record<string, FamilyRule>> = {
  'net.ipv4.tcp_fin_timeout': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why:
      'tcp_fin_time() (include/net/tcp.h), read by tcp_close() for an orphaned FIN_WAIT2 of either family, which ' +
      'tcp_time_wait() then holds that long',
    measured: 'an orphaned FIN_WAIT2 timer of 6.9 s at 7 and 32 s at 33, over AF_INET and AF_INET6 alike (ss -tanoe)',
  },
  'net.ipv4.tcp_max_tw_buckets': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why:
      'inet_twsk_alloc() against net->ipv4.tcp_death_row, the one death row tcp_time_wait() uses for both families: v4 and v6 ' +
      'TIME_WAITs count against one cap',
    measured: 'with room for one more TIME_WAIT, a v4 one took it and the v6 one after it was not made (TcpExtTCPTimeWaitOverflow +1)',
  },
  'net.ipv4.tcp_tw_reuse': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why:
      'tcp_twsk_unique(), called from __inet6_check_established() as from __inet_check_established(); its "loopback only" (2) ' +
      'tests ::1 and ::ffff:127.0.0.0/104 for v6, 127.0.0.0/8 for v4',
    measured:
      'connect() onto a four-tuple in TIME_WAIT: 0 EADDRNOTAVAIL, 1 connected, 2 connected only to 127.0.0.1 and ::1 ' +
      '(EADDRNOTAVAIL to 192.0.2.2 and 2001:db8::2 on lo), both families',
  },
  'net.ipv4.tcp_tw_reuse_delay': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why: 'tcp_twsk_unique() again: the same wait before a TIME_WAIT four-tuple is reused, for both families',
    measured: null,
  },
  'net.ipv4.tcp_timestamps': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why:
      'tcp_syn_options() and tcp_connect_init() read it for every TCP socket; secure_tcpv6_ts_off() (tcp_v6_connect) gives 2 ' +
      'its no-offset meaning as secure_tcp_ts_off() does for v4',
    measured: 'the SYN carries the timestamps option at 1 and none at 0, over v4 and v6 alike',
  },
  'net.ipv4.tcp_rfc1337': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why: 'tcp_timewait_state_process() (tcp_minisocks.c), which tcp_v6_rcv() calls for a v6 TIME_WAIT as tcp_v4_rcv() does for v4',
    measured: 'an in-window RST into TIME_WAIT: the entry gone at 0, still there at 1, both families',
  },
  'net.ipv4.tcp_invalid_ratelimit': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why: 'tcp_oow_rate_limited(), on the path tcp_validate_incoming() → tcp_send_challenge_ack() shared by both families',
    measured: '5 SYNs into ESTABLISHED at once: 1 challenge ACK (4 skipped) at 500 ms, 5 at 0, both families',
  },
  'net.ipv4.tcp_challenge_ack_limit': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why: 'tcp_send_challenge_ack(): one per-namespace budget (net->ipv4.tcp_challenge_count) that v4 and v6 challenge ACKs share',
    measured: null,
  },
  'net.ipv4.tcp_orphan_retries': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why: 'tcp_orphan_retries() in tcp_write_timeout() (tcp_timer.c), the retransmit timer of every TCP socket',
    measured: null,
  },
  'net.ipv4.tcp_retries2': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why: 'tcp_write_timeout() (tcp_timer.c), for every TCP socket',
    measured: null,
  },
  'net.ipv4.tcp_max_orphans': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'global',
    why:
      'tcp_too_many_orphans() counts every orphan; the knob is in ipv4_table, not the per-namespace table: a lab namespace has ' +
      'no /proc/sys/net/ipv4/tcp_max_orphans',
    measured: 'absent inside a fresh network namespace',
  },
  'net.ipv4.tcp_migrate_req': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why: 'reuseport_migrate_sock() via inet_csk_listen_stop() and inet_csk_complete_hashdance(), shared by tcp_v4 and tcp_v6 listeners',
    measured: null,
  },
  'net.ipv4.tcp_wmem': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why: 'tcp_init_sock() sets sk_sndbuf from it; tcp_v6_init_sock() calls tcp_init_sock()',
    measured: null,
  },
  'net.ipv4.ip_local_port_range': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why:
      'inet_sk_get_local_port_range() in __inet_hash_connect(), which inet6_hash_connect() calls too (and inet_csk_get_port() ' +
      'for bind(port 0)): one range for both families',
    measured: 'a one-port range: AF_INET6 connect() took that port as AF_INET did',
  },
  'net.ipv6.bindv6only': {
    governs: ['ipv6'],
    counterpart: null,
    scope: 'namespace',
    why:
      'inet6_create() copies it into sk_ipv6only, the default of IPV6_V6ONLY: it says whether an AF_INET6 socket also takes ' +
      'IPv4; an AF_INET socket never reads it',
    measured: null,
  },
  'net.core.somaxconn': {
    governs: ['ipv4', 'ipv6'],
    counterpart: null,
    scope: 'namespace',
    why: '__sys_listen_socket() caps every listen() backlog at the socket layer, whatever the family',
    measured: null,
  },
};

/** Whether `sysctl` governs TCP over `family` on Linux; null when the table does not know the knob. */
export function governsFamily(sysctl: string, family: IpFamilyName): boolean | null {
  const rule = SYSCTL_FAMILIES[sysctl];
  return rule ? rule.governs.includes(family) : null;
}

/**
 * The precondition text a lab gives (`not tested`) when a knob it varies has no meaning for the
 * family it runs over; null when the knob governs that family (or is not in the table).
 */
export function noMeaningFor(sysctl: string, family: IpFamilyName): string | null {
  const rule = SYSCTL_FAMILIES[sysctl];
  if (!rule || rule.governs.includes(family)) return null;
  const other = rule.counterpart ? `; over ${family === 'ipv4' ? 'IPv4' : 'IPv6'} it is ${rule.counterpart}` : '';
  return `${sysctl} has no meaning for ${family === 'ipv4' ? 'IPv4' : 'IPv6'} TCP on Linux (${rule.why})${other}`;
}
