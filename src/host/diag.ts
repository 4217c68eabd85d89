// The kernel's socket on one four-tuple, asked of the kernel directly (an exact NETLINK_SOCK_DIAG
// request: one hash lookup) instead of reading the whole table from /proc/net/tcp, which walks
// every bucket of the established hash whatever the namespace holds (262144 buckets on this
// host: ~10 ms a read under load). For following a connection as each of its frames crosses.
import { tcpStateName } from './ksocket';
import { native } from './native';
import type { KernelTimer, SocketEntry } from './observe';
import { encodeSockaddr } from './sockaddr';

/** Timer kinds as inet_diag numbers them (the same as /proc/net/tcp's). */
const TIMERS: readonly KernelTimer[] = ['none', 'retransmit', 'keepalive', 'time-wait', 'probe'];

/**
 * The socket on `local`↔`remote` as the socket table would show it, or null when there is none
 * (a listener the four-tuple would fall to is not its socket). Throws only for a bad address.
 */
export function socketAt(local: { address: string; port: number }, remote: { address: string; port: number }): SocketEntry | null {
  const r = native().diagLookup(encodeSockaddr(local.address, local.port), encodeSockaddr(remote.address, remote.port));
  if (r.ret < 0 || r.state === undefined || r.remotePort !== remote.port) return null;
  const timer = TIMERS[r.timer ?? 0] ?? 'unknown';
  return {
    family: local.address.includes(':') ? 'ipv6' : 'ipv4',
    state: tcpStateName(r.state),
    local: { ...local },
    remote: { ...remote },
    timer,
    timerMs: timer === 'none' ? 0 : (r.expiresMs ?? 0),
    retransmits: r.retrans ?? 0,
    txQueue: r.wqueue ?? 0,
    rxQueue: r.rqueue ?? 0,
    uid: r.uid ?? 0,
    inode: r.inode ?? 0,
  };
}
