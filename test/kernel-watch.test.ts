// Following the kernel's sockets by four-tuple through close(): readings of the socket table as
// the kernel gives them (an orphaned socket and a TIME_WAIT entry have inode 0), and the changes
// the timeline records.
import { describe, expect, it } from 'vitest';
import type { SocketEntry } from '../src/host/observe';
import { SocketFollower, type SocketChange } from '../src/lab/api/kernel-watch';

const K = '192.0.2.1';
const P = '192.0.2.2';

function entry(
  state: SocketEntry['state'],
  inode: number,
  o: { lport?: number; rport?: number; timer?: SocketEntry['timer']; timerMs?: number } = {},
): SocketEntry {
  return {
    family: 'ipv4',
    state,
    local: { address: K, port: o.lport ?? 40000 },
    remote: { address: o.rport === 0 ? '0.0.0.0' : P, port: o.rport ?? 80 },
    timer: o.timer ?? 'none',
    timerMs: o.timerMs ?? 0,
    retransmits: 0,
    txQueue: 0,
    rxQueue: 0,
    uid: 0,
    inode,
  };
}

const states = (cs: SocketChange[]): Array<string | null> => cs.map((c) => c.state);

describe('SocketFollower: a connection followed by its four-tuple', () => {
  it('an active close: ESTABLISHED → FIN_WAIT1 → FIN_WAIT2 → TIME_WAIT → gone, though the inode drops to 0 at close()', () => {
    const f = new SocketFollower();
    expect(states(f.update([entry('ESTABLISHED', 5001)]))).toEqual(['ESTABLISHED']);
    expect(states(f.update([entry('FIN_WAIT1', 0, { timer: 'retransmit', timerMs: 200 })]))).toEqual(['FIN_WAIT1']);
    expect(states(f.update([entry('FIN_WAIT2', 0, { timer: 'time-wait', timerMs: 60000 })]))).toEqual(['FIN_WAIT2']);
    const tw = f.update([entry('TIME_WAIT', 0, { timer: 'time-wait', timerMs: 60000 })]);
    expect(tw).toEqual([{ local: `${K}:40000`, remote: `${P}:80`, state: 'TIME_WAIT', timer: 'time-wait', timerMs: 60000 }]);
    expect(f.update([entry('TIME_WAIT', 0, { timer: 'time-wait', timerMs: 30000 })])).toEqual([]); // the countdown is no news
    expect(states(f.update([]))).toEqual([null]);
    expect(f.update([])).toEqual([]);
  });

  it('a child socket the application accepts gains an inode: the same socket', () => {
    const f = new SocketFollower();
    f.update([entry('SYN_RECV', 0)]);
    expect(states(f.update([entry('ESTABLISHED', 0)]))).toEqual(['ESTABLISHED']);
    expect(f.update([entry('ESTABLISHED', 7002)])).toEqual([]);
  });

  it('a new socket on the four-tuple is another socket: the old one is reported gone first', () => {
    const f = new SocketFollower();
    f.update([entry('TIME_WAIT', 0, { timer: 'time-wait', timerMs: 60000 })]);
    expect(states(f.update([entry('SYN_RECV', 0)]))).toEqual([null, 'SYN_RECV']); // a SYN into TIME_WAIT accepted
    const g = new SocketFollower();
    g.update([entry('ESTABLISHED', 10)]);
    expect(states(g.update([entry('ESTABLISHED', 11)]))).toEqual([null, 'ESTABLISHED']); // reset and reconnected between readings
    const h = new SocketFollower();
    h.update([entry('FIN_WAIT2', 0)]);
    expect(states(h.update([entry('ESTABLISHED', 12)]))).toEqual([null, 'ESTABLISHED']); // states never go back
  });

  it('listeners on one address (SO_REUSEPORT) are told apart by inode', () => {
    const f = new SocketFollower();
    const l = (inode: number): SocketEntry => entry('LISTEN', inode, { lport: 80, rport: 0 });
    expect(f.update([l(1), l(2), l(3)]).map((c) => c.inode)).toEqual([1, 2, 3]);
    const gone = f.update([l(1), l(3)]);
    expect(gone).toEqual([{ local: `${K}:80`, remote: '0.0.0.0:0', state: null, timer: null, timerMs: null, inode: 2 }]);
  });

  it('one four-tuple read on its own: its changes, and "gone" when the kernel has no socket there', () => {
    const f = new SocketFollower();
    f.update([entry('ESTABLISHED', 9)]);
    expect(states(f.updateOne(`${K}:40000`, `${P}:80`, entry('FIN_WAIT1', 0)))).toEqual(['FIN_WAIT1']);
    expect(f.connections()).toEqual([{ local: `${K}:40000`, remote: `${P}:80` }]);
    expect(states(f.updateOne(`${K}:40000`, `${P}:80`, null))).toEqual([null]);
    expect(f.updateOne(`${K}:40000`, `${P}:80`, null)).toEqual([]);
  });
});
