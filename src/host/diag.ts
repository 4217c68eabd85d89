// The kernel's socket on one four-tuple, asked of the kernel directly (an exact NETLINK_SOCK_DIAG
// request: one hash lookup) instead of reading the whole table from /proc/net/tcp, which walks
// every bucket of the established hash whatever the namespace holds (262144 buckets on this
// host: ~10 ms a read under load). For following a connection as each of its frames crosses.
import { tcpStateName } from './backend/types';
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

let available: boolean | null = null;

/**
 * Whether this kernel answers sock_diag for TCP (inet_diag and tcp_diag built in or loaded; a
 * guest that loads only the modules it needs may lack them — then both "no such socket" and "no
 * diag" read ENOENT, so it is asked once, of a listener known to be there).
 */
export function diagAvailable(): boolean {
  if (available !== null) return available;
  const n = native();
  const c = n.constants;
  const s = n.socket(c.AF_INET, c.SOCK_STREAM | c.SOCK_CLOEXEC, 0);
  if (s.ret < 0) return (available = false);
  try {
    if (n.bind(s.ret, encodeSockaddr('127.0.0.1', 0)).ret < 0 || n.listen(s.ret, 1).ret < 0) return (available = false);
    const name = n.getsockname(s.ret);
    if (name.ret < 0) return (available = false);
    // a four-tuple no connection has falls to the listener: found, with remote port 0
    const r = n.diagLookup(name.addr, encodeSockaddr('127.0.0.1', 1));
    available = r.ret === 0 && r.remotePort === 0;
  } finally {
    n.closeNow(s.ret);
  }
  return available;
}
