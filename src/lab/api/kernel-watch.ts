// Following the kernel's sockets through the socket table, each from its first state to its end.
//
// A connection is followed by its four-tuple, not by its inode: once the application closes it,
// the socket is orphaned (inode 0) and keeps going — FIN_WAIT1, FIN_WAIT2 — and its TIME_WAIT
// entry, another object in the kernel, has inode 0 too. Keyed by inode, a socket would "vanish" at
// close() and a new one appear. Listeners (remote *:0) share a local address under SO_REUSEPORT,
// so they are told apart by inode (a listener always has a file). A four-tuple gets a new socket
// when the inode changes from one file to another, or the state moves backwards (TIME_WAIT to
// SYN_RECV, FIN_WAIT2 to ESTABLISHED): the old one is reported gone first. Pure: table readings in,
// changes out.
import { formatEndpoint } from '../../wire/address';
import type { SocketEntry } from '../../host/observe';

export interface SocketChange {
  local: string;
  remote: string;
  /** null: the socket is gone from the table */
  state: string | null;
  timer: string | null;
  timerMs: number | null;
  /** set for a listener (several may share one address) */
  inode?: number;
}

interface Followed {
  local: string;
  remote: string;
  state: string;
  timer: string;
  inode: number;
  listener: boolean;
}

/** How far along a connection's life a state is: a socket never goes back (RFC 9293 §3.3.2; Linux's names). */
const STAGE: Record<string, number> = {
  SYN_SENT: 0,
  SYN_RECV: 0,
  NEW_SYN_RECV: 0,
  ESTABLISHED: 1,
  FIN_WAIT1: 2,
  CLOSE_WAIT: 2,
  FIN_WAIT2: 3,
  CLOSING: 3,
  LAST_ACK: 3,
  TIME_WAIT: 4,
  CLOSE: 5,
};

/** Whether `next` can be the same socket as `prev`, a moment later. */
function sameSocket(prev: Followed, next: SocketEntry): boolean {
  if (prev.inode !== 0 && next.inode !== 0 && prev.inode !== next.inode) return false; // another file
  if (prev.state === 'TIME_WAIT') return next.state === 'TIME_WAIT'; // a TIME_WAIT entry only goes
  // inode 0 → a file: a child socket the application accepted; anything else going backwards is new
  return (STAGE[next.state] ?? 0) >= (STAGE[prev.state] ?? 0);
}

export class SocketFollower {
  #followed = new Map<string, Followed>();

  /** The changes since the last reading of the whole table: new sockets, new states or timer kinds, sockets gone. */
  update(table: readonly SocketEntry[]): SocketChange[] {
    const out: SocketChange[] = [];
    const seen = new Set<string>();
    for (const e of table) {
      const local = formatEndpoint(e.local.address, e.local.port);
      const remote = formatEndpoint(e.remote.address, e.remote.port);
      const listener = e.remote.port === 0;
      let key = listener ? `${local}|${remote}|${e.inode}` : `${local}|${remote}`;
      // two entries on one four-tuple in one reading (a TIME_WAIT and a new connection): the second by inode
      if (seen.has(key)) key = `${key}|${e.inode}`;
      seen.add(key);
      this.#see(key, local, remote, e, out);
    }
    for (const [key, f] of [...this.#followed]) if (!seen.has(key)) this.#gone(key, f, out);
    return out;
  }

  /**
   * The changes on one connection's four-tuple, read on its own (src/host/diag.ts) as a frame of it
   * crosses: `entry` null when the kernel has no socket there any more.
   */
  updateOne(local: string, remote: string, entry: SocketEntry | null): SocketChange[] {
    const out: SocketChange[] = [];
    const key = `${local}|${remote}`;
    if (entry) this.#see(key, local, remote, entry, out);
    else {
      const f = this.#followed.get(key);
      if (f) this.#gone(key, f, out);
    }
    return out;
  }

  #gone(key: string, f: Followed, out: SocketChange[]): void {
    this.#followed.delete(key);
    out.push({ local: f.local, remote: f.remote, state: null, timer: null, timerMs: null, ...(f.listener ? { inode: f.inode } : {}) });
  }

  #see(key: string, local: string, remote: string, e: SocketEntry, out: SocketChange[]): void {
    const listener = e.remote.port === 0;
    const prev = this.#followed.get(key);
    if (prev && !sameSocket(prev, e)) this.#gone(key, prev, out);
    const cur = this.#followed.get(key);
    if (!cur || cur.state !== e.state || cur.timer !== e.timer) {
      out.push({ local, remote, state: e.state, timer: e.timer, timerMs: e.timerMs, ...(listener ? { inode: e.inode } : {}) });
    }
    this.#followed.set(key, { local, remote, state: e.state, timer: e.timer, inode: e.inode || cur?.inode || 0, listener });
  }

  /** The connections (not listeners) being followed, as their endpoints' text. */
  connections(): Array<{ local: string; remote: string }> {
    return [...this.#followed.values()].filter((f) => !f.listener).map((f) => ({ local: f.local, remote: f.remote }));
  }
}
