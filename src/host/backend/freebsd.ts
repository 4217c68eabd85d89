// FreeBSD 13.0's network stack as F-Stack 1.25 runs it: the knobs FreeBSD has for Linux's (one
// line each with the reason, as knobs.ts does for NetBSD), and where F-Stack is not stock FreeBSD.
//
// F-Stack is FreeBSD's own netinet, but it changes a few things around it (lib/ff_glue.c,
// freebsd/netinet/in_pcb.c under #ifdef FSTACK, lib/ff_kern_synch.c). A lab must never judge
// FreeBSD from those, so the calls that would meet one are refused here as a missing knob
// (KnobMissingError, naming the deviation: the claims that need it say `not tested`):
//  - one credential: every socket has the helper's credential and priv_check() always passes,
//    so no process of another user can be made (FreeBSD's SO_REUSEPORT uid check, reserved
//    ports: not measurable);
//  - bind() to port 0 assigns no port (F-Stack leaves it to connect()), and listen() on an
//    unbound socket listens on port 0: refused, since FreeBSD would pick a port.
// The third, measured as it is: F-Stack cannot sleep in the kernel (tsleep() returns at once),
// so close() with SO_LINGER {1,N} on a blocking, connected socket returns -1 EPERM at once
// instead of waiting (and FreeBSD's disconnect then proceeds as for a non-blocking socket); a lab
// that checks how long close() blocked finds that precondition failed, with "EPERM" in its numbers.
// Socket options cross by FreeBSD's own numbers (native/stack-helper/fstack-bsd.c): a lab's
// SO_REUSEPORT is FreeBSD's SO_REUSEPORT, not SO_REUSEPORT_LB (Linux's load-balancing kind).
import type { KnobTable } from './knobs';
import { KnobMissingError, type Backend, type SocketCalls } from './types';

/** F-Stack's departures from stock FreeBSD, as the README and the refusals name them. */
export const FSTACK_DEVIATIONS = {
  credentials:
    'gives every socket one credential and lets every privilege check pass (F-Stack’s priv_check()), so a socket of another user cannot be made',
  anonymousPort: 'assigns no port to bind(port 0) (F-Stack’s in_pcbbind() leaves it to connect())',
  listenUnbound: 'listens on port 0 when listen() comes before bind() (F-Stack’s in_pcbbind() assigns no port)',
  lingeringClose:
    'cannot sleep in the kernel (F-Stack’s tsleep() returns at once): close() with SO_LINGER {1,N} on a blocking socket returns -1 EPERM at once instead of waiting',
} as const;

/** The FreeBSD backend: the helper's, with F-Stack's deviations refused as missing knobs. */
export function fstackBackend(b: Backend): Backend {
  const system = b.identity.label;
  const inner = b.sockets;
  /** TCP sockets not bound yet (listen() on them would meet F-Stack's port 0) */
  const unbound = new Set<number>();
  const sockets: SocketCalls = {
    socket(family, proto, nonBlocking) {
      const r = inner.socket(family, proto, nonBlocking);
      if (r.ret >= 0 && proto === 'tcp') unbound.add(r.ret);
      return r;
    },
    setOption: (fd, name, value) => inner.setOption(fd, name, value),
    getOption: (fd, name) => inner.getOption(fd, name),
    bind(fd, address, port) {
      if (port === 0) throw new KnobMissingError('bind() to port 0', system, FSTACK_DEVIATIONS.anonymousPort);
      const r = inner.bind(fd, address, port);
      if (r.ret === 0) unbound.delete(fd);
      return r;
    },
    listen(fd, backlog) {
      if (unbound.has(fd)) throw new KnobMissingError('listen() before bind()', system, FSTACK_DEVIATIONS.listenUnbound);
      return inner.listen(fd, backlog);
    },
    connect: (fd, address, port) => inner.connect(fd, address, port),
    accept: (fd, timeoutMs) => inner.accept(fd, timeoutMs),
    send: (fd, data, opts) => inner.send(fd, data, opts),
    sendNow: (fd, data) => inner.sendNow(fd, data),
    recv: (fd, maxLength, opts) => inner.recv(fd, maxLength, opts),
    shutdown: (fd, how) => inner.shutdown(fd, how),
    setNonBlocking: (fd, on) => inner.setNonBlocking(fd, on),
    close(fd) {
      unbound.delete(fd);
      return inner.close(fd);
    },
    closeNow(fd) {
      unbound.delete(fd);
      return inner.closeNow(fd);
    },
    localAddress: (fd) => inner.localAddress(fd),
    peerAddress: (fd) => inner.peerAddress(fd),
    tcpInfo: (fd) => inner.tcpInfo(fd),
  };
  return {
    ...b,
    sockets,
    async process(uid?: number) {
      if (uid !== undefined && uid !== 0) throw new KnobMissingError(`a process of uid ${uid}`, system, FSTACK_DEVIATIONS.credentials);
      return b.process(uid);
    },
  };
}

/** FreeBSD 13.0’s knobs for Linux’s (freebsd/netinet, sys/kern of F-Stack’s tree). */
export const FREEBSD_KNOBS: KnobTable = {
  sysctls: {
    'net.ipv4.tcp_fin_timeout': {
      // tcp_usrclosed(), tcp_input(), tcp_timer_2msl(): the orphan's 2MSL timer is finwait2_timeout
      // only when fast_finwait2_recycle=1, else TP_MAXIDLE (keepcnt × keepintvl)
      missing:
        'an orphaned FIN_WAIT_2 lives until idle for tcp_maxidle (net.inet.tcp.keepcnt × keepintvl, 8 × 75 s); net.inet.tcp.finwait2_timeout counts only with fast_finwait2_recycle=1 (off by default; F-Stack’s sample config turns it on): no one knob',
    },
    'net.ipv4.tcp_timestamps': {
      name: 'net.inet.tcp.rfc1323',
      // 13.0's rfc1323 switches window scaling and timestamps together: only "on" is the same
      toOs: (v) => (v === '1' ? '1' : null),
      why: 'RFC 7323 timestamps on new connections; FreeBSD 13.0 has no switch for timestamps alone',
    },
    'net.ipv6.bindv6only': { name: 'net.inet6.ip6.v6only', why: 'the default of IPV6_V6ONLY for new AF_INET6 sockets (FreeBSD: 1)' },
    'net.core.somaxconn': { name: 'kern.ipc.soacceptqueue', why: 'the cap on listen() backlogs (kern.ipc.somaxconn is its old name)' },
    'net.ipv4.tcp_max_tw_buckets': {
      missing:
        'net.inet.tcp.maxtcptw caps TIME_WAIT entries, but at the cap FreeBSD ends the oldest one to make room (tcp_tw_2msl_scan) instead of skipping the new one, and 0 means "sized automatically"',
    },
    'net.ipv4.tcp_tw_reuse': { missing: 'no reuse of TIME_WAIT four-tuples for outgoing connections' },
    'net.ipv4.tcp_tw_reuse_delay': { missing: 'no reuse of TIME_WAIT four-tuples for outgoing connections' },
    'net.ipv4.tcp_rfc1337': { missing: 'no switch: tcp_twcheck() drops every RST that meets a TIME_WAIT (RFC 1337’s remedy, always on)' },
    'net.ipv4.tcp_invalid_ratelimit': {
      missing: 'no rate limit on challenge ACKs: 13.0’s tcp_input answers every in-window RST and every SYN with one',
    },
    'net.ipv4.tcp_challenge_ack_limit': {
      missing: 'no rate limit on challenge ACKs: 13.0’s tcp_input answers every in-window RST and every SYN with one',
    },
    'net.ipv4.tcp_migrate_req': { missing: 'no migration of a closed listener’s requests' },
    'net.ipv4.tcp_orphan_retries': { missing: 'orphans retransmit as any connection (TCP_MAXRXTSHIFT is a constant)' },
    'net.ipv4.tcp_wmem': { missing: 'send buffers are net.inet.tcp.sendspace and sendbuf_max, not a min/default/max triple' },
    'net.ipv4.ip_local_port_range': { missing: 'ephemeral ports are net.inet.ip.portrange.first…last (two sysctls; recorded as such)' },
  },
  counters: {
    'Tcp.ActiveOpens': 'tcp.connattempt',
    'Tcp.PassiveOpens': 'tcp.accepts',
    'Tcp.RetransSegs': 'tcp.sndrexmitpack',
    'TcpExt.PAWSEstab': { missing: 'tcp.pawsdrop counts PAWS drops in every state, not only ESTABLISHED' },
    'TcpExt.TWRecycled': { missing: 'no reuse of TIME_WAIT four-tuples' },
    'TcpExt.TCPTimeWaitOverflow': { missing: 'no counter of TIME_WAIT entries ended at the cap' },
    'TcpExt.TCPChallengeACK': {
      missing: 'challenge ACKs are not counted as such (tcp.badrst and tcp.badsyn count the segments that caused them)',
    },
    'TcpExt.TCPACKSkippedChallenge': { missing: 'no rate limit on challenge ACKs, so none is skipped' },
    'TcpExt.TCPAbortOnClose': { missing: 'no counter of connections reset by close() with unread data (tcp.drops counts every drop)' },
  },
  record: [
    'net.inet.tcp.msl',
    'net.inet.tcp.finwait2_timeout',
    'net.inet.tcp.fast_finwait2_recycle',
    'net.inet.tcp.keepintvl',
    'net.inet.tcp.keepcnt',
    'net.inet.tcp.tolerate_missing_ts',
    'net.inet.tcp.maxtcptw',
    'net.inet.tcp.nolocaltimewait',
    'net.inet.tcp.blackhole',
    'net.inet.udp.blackhole',
    'net.inet.tcp.rfc1323',
    'net.inet.tcp.insecure_rst',
    'net.inet.tcp.insecure_syn',
    'net.inet.ip.portrange.first',
    'net.inet.ip.portrange.last',
    'net.inet.ip.portrange.randomized',
    'net.inet6.ip6.v6only',
    'net.inet.tcp.sendspace',
    'net.inet.tcp.recvspace',
    'kern.ipc.soacceptqueue',
    'kern.hz',
  ],
};
