// The peer's `expect` in memory (two stacks over a MemoryLink, virtual clock): the segment that
// fits a pattern or a predicate, and the typed "nothing came" when the timeout passes first.
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../src/stack/clock';
import { describePattern } from '../src/stack/expect';
import { memoryLink } from '../src/stack/memorylink';
import { TcpStack, type Connection } from '../src/stack/stack';
import { seqAdd } from '../src/lab/api/seq';
import { NO_FLAGS } from '../src/wire/tcp';

const A = '192.0.2.1';
const B = '192.0.2.2';

function established() {
  const clock = new VirtualClock();
  const [la, lb] = memoryLink(clock, { delayMs: 1 }, { delayMs: 1 });
  const server = new TcpStack(la, { addresses: [A], clock });
  const client = new TcpStack(lb, { addresses: [B], clock });
  const accepted: Connection[] = [];
  server.listen(80).onConnection((c) => accepted.push(c));
  const c = client.connect({ local: { address: B, port: 40000 }, remote: { address: A, port: 80 } });
  clock.advance(10);
  expect(c.state).toBe('ESTABLISHED');
  return { clock, server, client, c, s: accepted[0]! };
}

/** Lets the promise callbacks run (the virtual clock fires timers synchronously). */
const settle = () => new Promise((r) => setImmediate(r));

describe('peer expect', () => {
  it('an in-window RST not at RCV.NXT draws the challenge ACK the pattern names, with the time it came', async () => {
    const { clock, client, c } = established();
    const events: string[] = [];
    client.onExpect((r) => events.push(`${r.came} ${r.what}`));
    client.sendSegment(c.tuple, { seq: seqAdd(c.tcb.sndNxt, 1000), flags: { ...NO_FLAGS, rst: true } });
    const answer = client.expect({ flags: 'A', len: 0, ackNo: c.tcb.sndNxt, on: c.tuple }, 500);
    clock.advance(5);
    const r = await answer;
    expect(r.came).toBe(true);
    if (!r.came) return;
    expect(r.segment.tcp.flags.ack && !r.segment.tcp.flags.rst).toBe(true);
    expect(r.segment.tcp.ack).toBe(c.tcb.sndNxt);
    expect(r.afterMs).toBe(2); // one link delay each way
    expect(c.state).toBe('ESTABLISHED');
    expect(events).toEqual([`true ACK, ack ${c.tcb.sndNxt}, len 0, on ${B}:40000>${A}:80`]);
  });

  it('nothing came: a typed result after the timeout on the stack clock, not an exception', async () => {
    const { clock, client, c } = established();
    const r = client.expect({ rst: true, peerPort: 40000 }, 300);
    clock.advance(299);
    let settled = false;
    void r.then(() => (settled = true));
    await settle();
    expect(settled).toBe(false);
    clock.advance(1);
    const got = await r;
    expect(got).toEqual({ came: false, waitedMs: 300, what: 'RST, peer port 40000' });
    expect(c.state).toBe('ESTABLISHED');
  });

  it('a predicate sees only incoming segments unless asked for outgoing ones; a later match is ignored once met', async () => {
    const { clock, client, server, c, s } = established();
    const fin = client.expect((e) => e.tcp.flags.fin, 1000);
    const ownFin = client.expect((e) => e.tcp.flags.fin, 1000, { direction: 'out' });
    c.end();
    clock.advance(5);
    const out = await ownFin;
    expect(out.came && out.segment.direction).toBe('out');
    s.end();
    clock.advance(5);
    const r = await fin;
    expect(r.came && r.segment.tuple.remote.port).toBe(80);
    expect(server.connections.length + client.connections.length).toBeGreaterThan(0);
  });

  it('flag letters are the exact set; an unknown letter is a programming error', () => {
    expect(describePattern({ flags: 'RA' })).toBe('RST,ACK');
    expect(describePattern({ syn: true, ack: false })).toBe('SYN, no ACK');
    expect(() => describePattern({ flags: 'RX' })).toThrow(/unknown TCP flag letter "X"/);
  });
});
