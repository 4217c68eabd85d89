// Linux's knobs (sysctls, counters) and what another OS's stack has that does the same. A lab
// names Linux's knobs; where an OS has an equivalent it is used, where it has none the knob is
// missing there (KnobMissingError, and the claims that need it say `not tested`). Written down
// here, one line each with the reason, so a mapping is reviewed, never guessed at run time.

export interface SysctlMap {
  /** the OS's own name */
  name: string;
  /** Linux's value → the OS's (identity if absent); null: that value has no equivalent */
  toOs?: (linux: string) => string | null;
  /** the OS's value → Linux's form */
  toLinux?: (os: string) => string;
  /** why this is the same knob */
  why: string;
}

export interface KnobTable {
  /** Linux sysctl name → the OS's; a Linux name not listed here is missing on the OS */
  sysctls: Record<string, SysctlMap | { missing: string }>;
  /** Linux counter name (Tcp.ActiveOpens, TcpExt.…) → the OS's counter name, or missing */
  counters: Record<string, string | { missing: string }>;
  /** sysctls of the OS's own worth recording in every result: what the stack ran with */
  record: string[];
}

/** NetBSD 7.99 (sys/netinet/tcp_usrreq.c, ip_input.c, in6_proto.c sysctl trees). */
export const NETBSD_KNOBS: KnobTable = {
  sysctls: {
    'net.ipv4.tcp_timestamps': {
      name: 'net.inet.tcp.timestamps',
      toOs: (v) => (v === '0' || v === '1' ? v : null),
      why: 'RFC 7323 timestamps on new connections, 0/1 (Linux’s 2 — no random offset — has no NetBSD counterpart)',
    },
    'net.ipv6.bindv6only': { name: 'net.inet6.ip6.v6only', why: 'the default of IPV6_V6ONLY for new AF_INET6 sockets' },
    'net.core.somaxconn': { name: 'kern.somaxconn', why: 'the cap on listen() backlogs' },
    'net.ipv4.tcp_fin_timeout': {
      missing: 'an orphaned FIN_WAIT_2 lives tcp_maxidle there (keepcnt × keepintvl, the keepalive knobs): no knob of its own',
    },
    'net.ipv4.tcp_max_tw_buckets': { missing: 'no cap on TIME_WAIT sockets' },
    'net.ipv4.tcp_tw_reuse': { missing: 'no reuse of TIME_WAIT four-tuples for outgoing connections' },
    'net.ipv4.tcp_tw_reuse_delay': { missing: 'no reuse of TIME_WAIT four-tuples for outgoing connections' },
    'net.ipv4.tcp_rfc1337': { missing: 'no such switch (RFC 1337)' },
    'net.ipv4.tcp_invalid_ratelimit': { missing: 'no rate limit on duplicate ACKs / challenge ACKs' },
    'net.ipv4.tcp_challenge_ack_limit': { missing: 'no challenge-ACK limit' },
    'net.ipv4.tcp_migrate_req': { missing: 'no migration of a closed listener’s requests' },
    'net.ipv4.tcp_orphan_retries': { missing: 'orphans retransmit as any connection (tcp_maxrxtshift is not a sysctl)' },
    'net.ipv4.tcp_wmem': { missing: 'send buffers are net.inet.tcp.sendspace and sbmax, not a min/default/max triple' },
    'net.ipv4.ip_local_port_range': {
      missing: 'ephemeral ports are net.inet.ip.anonportmin…anonportmax (recorded as such)',
    },
  },
  counters: {
    'Tcp.ActiveOpens': 'tcp.connattempt',
    'Tcp.PassiveOpens': 'tcp.accepts',
    'Tcp.RetransSegs': 'tcp.sndrexmitpack',
    'TcpExt.PAWSEstab': { missing: 'tcp.pawsdrop counts PAWS drops in every state, not only ESTABLISHED' },
    'TcpExt.TWRecycled': { missing: 'no reuse of TIME_WAIT four-tuples' },
    'TcpExt.TCPTimeWaitOverflow': { missing: 'no cap on TIME_WAIT sockets' },
    'TcpExt.TCPChallengeACK': { missing: 'no challenge ACKs counted' },
  },
  record: [
    'net.inet.tcp.msl',
    'net.inet.tcp.mslt.enable',
    'net.inet.tcp.mslt.loopback',
    'net.inet.tcp.mslt.local',
    'net.inet.tcp.mslt.remote',
    'net.inet.tcp.timestamps',
    'net.inet.ip.anonportmin',
    'net.inet.ip.anonportmax',
    'net.inet.tcp.sendspace',
    'net.inet.tcp.recvspace',
    'kern.somaxconn',
  ],
};

/** A name in Linux's counter namespace (/proc/net/snmp, /proc/net/netstat). */
export const LINUX_COUNTER = /^(Ip|IpExt|Icmp|IcmpMsg|Tcp|TcpExt|Udp|UdpLite|MPTcpExt)\./;
