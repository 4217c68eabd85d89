// Two userspace stacks back to back over a MemoryLink on a virtual clock: whole connections,
// the answers for unknown four-tuples and listeners, TIME-WAIT reuse, and the scripting hooks.
import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { isWireError } from '../src/wire/errors';
import { emitTcpFrame, parseFrame } from '../src/wire/frame';
import { seq, seqAdd } from '../src/wire/seq';
import { flags, formatFlags, NO_FLAGS, type TcpOption } from '../src/wire/tcp';
import { seededRandom, VirtualClock } from '../src/stack/clock';
import { memoryLink, type ImpairmentOptions } from '../src/stack/memorylink';
import { TcpStack, type Connection, type SegmentEvent } from '../src/stack/stack';
import type { Link } from '../src/stack/link';
import type { TcbConfig } from '../src/stack/tcb';

const A = '192.0.2.1';
const B = '192.0.2.2';

function pair(opts: { a?: ImpairmentOptions; b?: ImpairmentOptions; tcb?: Partial<TcbConfig> } = {}) {
  const clock = new VirtualClock();
  const [la, lb] = memoryLink(clock, { delayMs: 1, ...opts.a }, { delayMs: 1, ...opts.b });
  const server = new TcpStack(la, { addresses: [A], clock, tcb: opts.tcb });
  const client = new TcpStack(lb, { addresses: [B], clock, tcb: opts.tcb });
  const log: string[] = [];
  const trace = (who: string) => (e: SegmentEvent) => {
    if (e.direction === 'out') log.push(`${who} ${formatFlags(e.tcp.flags)} len=${e.tcp.payload.length}`);
  };
  server.onSegment(trace('A'));
  client.onSegment(trace('B'));
  return { clock, server, client, la, lb, log };
}

function accept(stack: TcpStack, port: number): { conns: Connection[] } {
  const out = { conns: [] as Connection[] };
  stack.listen(port).onConnection((c) => out.conns.push(c));
  return out;
}

function random(n: number, seed = 1): Uint8Array {
  const r = seededRandom(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

const sha = (b: Uint8Array | Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const x of Array.isArray(b) ? b : [b]) h.update(x);
  return h.digest('hex');
};

describe('whole connections', () => {
  it('three-way handshake, data both ways, orderly close: the closer ends in TIME-WAIT for 2MSL', () => {
    const { clock, server, client, log } = pair();
    const srv = accept(server, 80);
    const c = client.connect({ local: { address: B }, remote: { address: A, port: 80 } });
    clock.advance(10);
    expect(log.slice(0, 3)).toEqual(['B SYN len=0', 'A SYN,ACK len=0', 'B ACK len=0']);
    const s = srv.conns[0]!;
    const got: Uint8Array[] = [];
    s.onData((d) => got.push(d));
    s.onEnd(() => s.end());
    c.write(new TextEncoder().encode('hello'));
    c.end();
    clock.advance(50);
    expect(new TextDecoder().decode(Buffer.concat(got))).toBe('hello');
    expect(c.history.map((h) => h.state)).toEqual(['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT']);
    expect(s.history.map((h) => h.state)).toEqual(['SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED']);
    clock.advance(60_000);
    expect(c.state).toBe('CLOSED');
    expect(client.connections).toEqual([]);
  });

  it('simultaneous open: both SYN-SENT → SYN-RECEIVED → ESTABLISHED (RFC 9293 figure 8)', () => {
    const { clock, server, client } = pair();
    const a = server.connect({ local: { address: A, port: 5000 }, remote: { address: B, port: 6000 } });
    const b = client.connect({ local: { address: B, port: 6000 }, remote: { address: A, port: 5000 } });
    clock.advance(20);
    expect(a.history.map((h) => h.state)).toEqual(['SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED']);
    expect(b.history.map((h) => h.state)).toEqual(['SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED']);
  });

  it('simultaneous close: both through CLOSING into TIME-WAIT', () => {
    const { clock, server, client } = pair({ a: { delayMs: 5 }, b: { delayMs: 5 } });
    const srv = accept(server, 80);
    const c = client.connect({ local: { address: B }, remote: { address: A, port: 80 } });
    clock.advance(50);
    c.end();
    srv.conns[0]!.end();
    clock.advance(50);
    for (const conn of [c, srv.conns[0]!])
      expect(conn.history.map((h) => h.state).slice(-3)).toEqual(['FIN-WAIT-1', 'CLOSING', 'TIME-WAIT']);
  });

  it('1 MB each way with 5 % loss and reordering in both directions arrives intact', () => {
    const impair = { loss: 0.05, reorder: 0.05, reorderMs: 3, delayMs: 2 };
    const { clock, server, client, la, lb } = pair({ a: { ...impair, seed: 3 }, b: { ...impair, seed: 4 } });
    const up = random(1 << 20, 1);
    const down = random(1 << 20, 2);
    const gotUp: Uint8Array[] = [];
    const gotDown: Uint8Array[] = [];
    let s: Connection | null = null;
    server.listen(80).onConnection((conn) => {
      s = conn;
      conn.onData((d) => gotUp.push(d));
      conn.write(down);
      conn.onEnd(() => conn.end());
    });
    const c = client.connect({ local: { address: B }, remote: { address: A, port: 80 } });
    c.onData((d) => gotDown.push(d));
    c.write(up);
    c.end();
    clock.runUntilIdle(600_000);
    expect(la.dropped + lb.dropped).toBeGreaterThan(50);
    expect(sha(gotUp)).toBe(sha(up));
    expect(sha(gotDown)).toBe(sha(down));
    expect(s!.state).toBe('CLOSED');
    expect(c.state).toBe('CLOSED'); // its TIME-WAIT ran out too
  });
});

describe('segments for no connection (RFC 9293 §3.10.7.1–2)', () => {
  function probe(
    stack: TcpStack,
    clock: VirtualClock,
    lb: ReturnType<typeof memoryLink>[1],
    seg: Parameters<typeof emitTcpFrame>[2],
  ): string[] {
    const replies: string[] = [];
    const off = lb.onFrame((f) => {
      const s = parseFrame(f);
      if (!isWireError(s) && s.kind === 'tcp')
        replies.push(`${formatFlags(s.tcp.flags)} seq=${s.tcp.seq} ack=${s.tcp.flags.ack ? s.tcp.ack : '-'}`);
    });
    lb.send(emitTcpFrame(B, A, seg));
    clock.advance(5);
    off();
    void stack;
    return replies;
  }
  const base = {
    srcPort: 4000,
    dstPort: 9,
    seq: seq(100),
    ack: seq(0),
    flags: NO_FLAGS,
    window: 1000,
    urgent: 0,
    options: [],
    payload: new Uint8Array(3),
  };

  it('CLOSED: a segment without ACK draws RST,ACK <SEQ=0><ACK=SEG.SEQ+SEG.LEN>', () => {
    const { server, clock, lb } = pair();
    // SEG.LEN counts the SYN: 3 bytes of payload + 1
    expect(probe(server, clock, lb, { ...base, flags: flags('syn') })).toEqual(['RST,ACK seq=0 ack=104']);
  });
  it('CLOSED: a segment with ACK draws RST <SEQ=SEG.ACK>', () => {
    const { server, clock, lb } = pair();
    expect(probe(server, clock, lb, { ...base, flags: flags('ack'), ack: seq(777) })).toEqual(['RST seq=777 ack=-']);
  });
  it('CLOSED: the RST echoes a timestamp the segment carried (RFC 7323 §3.2: an RST SHOULD carry TSopt)', () => {
    const { server, clock, lb } = pair();
    let tsOut: TcpOption | undefined;
    server.onSegment((e) => e.direction === 'out' && (tsOut = e.tcp.options.find((o) => o.kind === 'timestamps')));
    const withTs = {
      ...base,
      flags: flags('syn'),
      options: [{ kind: 'nop' as const }, { kind: 'nop' as const }, { kind: 'timestamps' as const, tsval: 4242, tsecr: 0 }],
    };
    expect(probe(server, clock, lb, withTs)).toEqual(['RST,ACK seq=0 ack=104']);
    expect(tsOut).toMatchObject({ kind: 'timestamps', tsecr: 4242 });
  });
  it('CLOSED: an RST draws nothing', () => {
    const { server, clock, lb } = pair();
    expect(probe(server, clock, lb, { ...base, flags: flags('rst') })).toEqual([]);
  });
  it('LISTEN: an ACK draws RST <SEQ=SEG.ACK>; an RST nothing', () => {
    const { server, clock, lb } = pair();
    server.listen(9);
    expect(probe(server, clock, lb, { ...base, flags: flags('ack'), ack: seq(555) })).toEqual(['RST seq=555 ack=-']);
    expect(probe(server, clock, lb, { ...base, flags: flags('rst') })).toEqual([]);
  });
  it('with resetUnknown off, the stack stays silent', () => {
    const clock = new VirtualClock();
    const [la, lb] = memoryLink(clock);
    const quiet = new TcpStack(la, { addresses: [A], clock, resetUnknown: false });
    expect(probe(quiet, clock, lb, { ...base, flags: flags('syn') })).toEqual([]);
  });
  it('frames for other addresses, or with a bad checksum, are ignored', () => {
    const { server, clock, lb } = pair();
    const other = emitTcpFrame(B, '192.0.2.99', { ...base, flags: flags('syn') });
    lb.send(other);
    const bad = emitTcpFrame(B, A, { ...base, flags: flags('syn') });
    bad[bad.length - 1]! ^= 0xff;
    lb.send(bad);
    clock.advance(5);
    expect(server.stats).toMatchObject({ notOurs: 1, badChecksum: 1, out: 0 });
  });
});

describe('TIME-WAIT and a new SYN on the same four-tuple (RFC 9293 §3.10.7.4, RFC 6191)', () => {
  function timeWaitOnServer(tcb: Partial<TcbConfig> = {}) {
    const p = pair({ tcb });
    const srv = accept(p.server, 80);
    const c = p.client.connect({ local: { address: B, port: 5555 }, remote: { address: A, port: 80 } });
    p.clock.advance(10);
    const s = srv.conns[0]!;
    s.end(); // the server closes first: it will hold TIME-WAIT
    c.onEnd(() => c.end());
    p.clock.advance(50);
    expect(s.state).toBe('TIME-WAIT');
    return { ...p, s, srv };
  }
  it('a SYN above the old sequence space opens a new incarnation', () => {
    const { clock, client, s, srv } = timeWaitOnServer({ timestamps: false });
    const c2 = client.connect({
      local: { address: B, port: 5555 },
      remote: { address: A, port: 80 },
      tcb: { isn: seqAdd(s.tcb.rcvNxt, 100_000) },
    });
    clock.advance(20);
    expect(c2.state).toBe('ESTABLISHED');
    expect(srv.conns).toHaveLength(2);
  });
  it('the new incarnation starts above the old one: ISS = old SND.NXT + 65537 (RFC 1122 §4.2.2.13; Linux), and the old connection ends CLOSED in its history', () => {
    const { clock, client, server, s } = timeWaitOnServer({ timestamps: false });
    const oldSndNxt = s.tcb.sndNxt;
    const out: SegmentEvent[] = [];
    server.onSegment((e) => e.direction === 'out' && out.push(e));
    client.connect({ local: { address: B, port: 5555 }, remote: { address: A, port: 80 }, tcb: { isn: seqAdd(s.tcb.rcvNxt, 100_000) } });
    clock.advance(20);
    const synAck = out.find((e) => e.tcp.flags.syn)!;
    expect([formatFlags(synAck.tcp.flags), synAck.tcp.seq, synAck.tcp.ack]).toEqual([
      'SYN,ACK',
      seqAdd(oldSndNxt, 65537),
      seqAdd(s.tcb.rcvNxt, 100_000 + 1),
    ]);
    expect(s.history.map((h) => h.state).slice(-2)).toEqual(['TIME-WAIT', 'CLOSED']);
    expect(s.resetReason).toBe('reincarnated');
  });
  it('with timestamps, a newer TSval takes over even with a lower sequence number, and TSvals keep growing across incarnations (RFC 6191, RFC 7323 §5.4)', () => {
    const { clock, client, server, s, srv } = timeWaitOnServer({ timestamps: true });
    const tsvals: number[] = [];
    server.onSegment((e) => {
      const ts = e.tcp.options.find((o) => o.kind === 'timestamps');
      if (e.direction === 'out' && ts?.kind === 'timestamps') tsvals.push(ts.tsval);
    });
    const lastOld = s.tcb.tsOffset + clock.now();
    clock.advance(1);
    const c2 = client.connect({
      local: { address: B, port: 5555 },
      remote: { address: A, port: 80 },
      tcb: { isn: seqAdd(s.tcb.rcvNxt, -100_000) },
    });
    clock.advance(20);
    expect(c2.state).toBe('ESTABLISHED');
    const s2 = srv.conns[1]!;
    expect(s2.tcb.tsOffset).toBe(s.tcb.tsOffset); // one timestamp clock per address pair
    expect(tsvals.length).toBeGreaterThan(0);
    for (const v of tsvals) expect(v - lastOld).toBeGreaterThan(0);
  });
  it('with timestamps, an equal TSval and a higher sequence number take over too (RFC 6191 §2); equal and lower draws the TIME-WAIT ACK', () => {
    for (const [offset, want] of [
      [100_000, 'SYN,ACK'],
      [-100_000, 'ACK'],
    ] as const) {
      const { clock, client, server, s } = timeWaitOnServer({ timestamps: true });
      const replies: string[] = [];
      server.onSegment(
        (e) =>
          e.direction === 'out' &&
          replies.push(`${formatFlags(e.tcp.flags)} ${e.tcp.seq === seqAdd(s.tcb.sndNxt, 65537) ? 'iss=old+65537' : ''}`.trim()),
      );
      const tuple = { local: { address: B, port: 5555 }, remote: { address: A, port: 80 } };
      client.sendSegment(tuple, {
        seq: seqAdd(s.tcb.rcvNxt, offset),
        flags: flags('syn'),
        window: 1000,
        options: [{ kind: 'mss', value: 1460 }, { kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', tsval: s.tcb.tsRecent!, tsecr: 0 }],
      });
      clock.advance(5);
      expect(replies).toEqual([want === 'SYN,ACK' ? 'SYN,ACK iss=old+65537' : 'ACK']);
    }
  });
  it('a SYN below it (no timestamps) draws an ACK from TIME-WAIT; the client answers RST, which kills the TIME-WAIT (RFC 1337 hazard H1)', () => {
    const { clock, client, s, srv, log } = timeWaitOnServer({ timestamps: false });
    log.length = 0;
    const c2 = client.connect({
      local: { address: B, port: 5555 },
      remote: { address: A, port: 80 },
      tcb: { isn: seqAdd(s.tcb.rcvNxt, -100_000), synRetries: 0 },
    });
    clock.advance(20);
    expect(log).toEqual(['B SYN len=0', 'A ACK len=0', 'B RST len=0']);
    expect(srv.conns).toHaveLength(1);
    expect(s.state).toBe('CLOSED');
    expect(c2.state).toBe('SYN-SENT');
  });
  it('with rfc1337 on, the RST is ignored and TIME-WAIT survives', () => {
    const { clock, client, s, log } = timeWaitOnServer({ timestamps: false, rfc1337: true });
    log.length = 0;
    client.connect({
      local: { address: B, port: 5555 },
      remote: { address: A, port: 80 },
      tcb: { isn: seqAdd(s.tcb.rcvNxt, -100_000), synRetries: 0, rfc1337: false },
    });
    clock.advance(20);
    expect(log).toEqual(['B SYN len=0', 'A ACK len=0', 'B RST len=0']);
    expect(s.state).toBe('TIME-WAIT');
  });
});

describe('the stack picks, the TCB is given (RFC 6528, RFC 7323 §5.4)', () => {
  it("no Math.random: ISNs and timestamp offsets come from the stack's injected generator and clock", () => {
    const spy = vi.spyOn(Math, 'random');
    try {
      const isns = (seed: number): number[] => {
        const clock = new VirtualClock();
        const [la, lb] = memoryLink(clock, { delayMs: 1 }, { delayMs: 1 });
        const server = new TcpStack(la, { addresses: [A], clock, random: seededRandom(seed) });
        const client = new TcpStack(lb, { addresses: [B], clock, random: seededRandom(seed + 1) });
        server.listen(80);
        const a = client.connect({ local: { address: B, port: 7000 }, remote: { address: A, port: 80 } });
        clock.advance(1000);
        a.abort();
        clock.advance(1000);
        const b = client.connect({ local: { address: B, port: 7000 }, remote: { address: A, port: 80 } });
        return [a.tcb.iss, b.tcb.iss, a.tcb.tsOffset];
      };
      const [first, second, offset] = isns(1);
      expect(isns(1)).toEqual([first, second, offset]); // the same generator, the same numbers
      expect(isns(7)).not.toEqual([first, second, offset]);
      // RFC 6528: a clock of 4 µs ticks under a keyed hash of the four-tuple: 2 s later, 500,000 higher
      expect((second! - first!) >>> 0).toBe(500_000);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});

describe('addresses', () => {
  it('IPv6 addresses are canonical (RFC 5952): an upper-case, uncompressed address names the same connection', () => {
    const clock = new VirtualClock();
    const [la, lb] = memoryLink(clock, { delayMs: 1 }, { delayMs: 1 });
    const server = new TcpStack(la, { addresses: ['2001:db8::1'], clock });
    const client = new TcpStack(lb, { addresses: ['2001:DB8:0:0::2'], clock });
    const srv = accept(server, 80);
    const c = client.connect({ local: { address: '2001:0DB8::2' }, remote: { address: '2001:DB8::1', port: 80 } });
    clock.advance(10);
    expect(c.state).toBe('ESTABLISHED');
    expect(c.tuple.local.address).toBe('2001:db8::2');
    expect(
      client.connection({ local: { address: '2001:db8:0::2', port: c.tuple.local.port }, remote: { address: '2001:db8::1', port: 80 } }),
    ).toBe(c);
    expect(srv.conns[0]!.tcb.peerMss).toBe(1440); // IPv6: MTU 1500 − 60
  });
});

describe('batches of frames (a TUN read that drained several)', () => {
  /** Frames queued, then handed to the stack in one go, the last without `more`. */
  class BatchLink implements Link {
    peer!: BatchLink;
    queue: Uint8Array[] = [];
    #ls: Array<(f: Uint8Array, t: number, more?: boolean) => void> = [];
    send(f: Uint8Array): void {
      this.peer.queue.push(f.slice());
    }
    onFrame(l: (f: Uint8Array, t: number, more?: boolean) => void): () => void {
      this.#ls.push(l);
      return () => undefined;
    }
    pump(): number {
      const batch = this.queue;
      this.queue = [];
      for (const [i, f] of batch.entries()) for (const l of this.#ls) l(f, 0, i < batch.length - 1);
      return batch.length;
    }
  }
  function acksFor(segments: number, tcb: Partial<TcbConfig>): string[] {
    const clock = new VirtualClock();
    const la = new BatchLink();
    const lb = new BatchLink();
    la.peer = lb;
    lb.peer = la;
    const server = new TcpStack(la, { addresses: [A], clock, tcb });
    const client = new TcpStack(lb, { addresses: [B], clock, tcb: { ...tcb, mss: 1000, timestamps: false } });
    const srv = accept(server, 80);
    const c = client.connect({ local: { address: B }, remote: { address: A, port: 80 } });
    for (let i = 0; i < 4; i++) la.pump() + lb.pump();
    const acks: string[] = [];
    server.onSegment((e) => e.direction === 'out' && acks.push(`ack=${(e.tcp.ack - srv.conns[0]!.tcb.irs - 1) >>> 0}`));
    c.write(new Uint8Array(segments * 1000)); // one batch of `segments` full-sized segments (the initial window allows 10)
    la.pump();
    return acks;
  }
  it('by default the batch is acknowledged once, at its end, as Linux acknowledges a GRO super-packet', () => {
    expect(acksFor(8, {})).toEqual(['ack=8000']);
  });
  it('with ackCoalesce 0, every second full-sized segment within the batch too (RFC 5681 §4.2)', () => {
    expect(acksFor(8, { ackCoalesce: 0 })).toEqual(['ack=2000', 'ack=4000', 'ack=6000', 'ack=8000']);
  });
  it('a small receive buffer is acknowledged more often: at most a quarter of it waits', () => {
    expect(acksFor(8, { rcvBuf: 12_000 })).toEqual(['ack=4000', 'ack=8000']);
  });
  /** A link that can say what has already arrived (a TUN read on demand). */
  class PollLink extends BatchLink {
    poll(): void {
      this.pump();
    }
  }
  /** The client sends data and FIN; the server's ACK arrives while the client's process is not scheduled; then its timers run. */
  function stalledClient(clientLink: BatchLink): { retransmits: number; state: string } {
    const clock = new VirtualClock();
    const la = new BatchLink();
    la.peer = clientLink;
    clientLink.peer = la;
    const server = new TcpStack(la, { addresses: [A], clock });
    const client = new TcpStack(clientLink, { addresses: [B], clock });
    accept(server, 80);
    const c = client.connect({ local: { address: B }, remote: { address: A, port: 80 } });
    for (let i = 0; i < 4; i++) la.pump() + clientLink.pump();
    let retransmits = 0;
    c.tcbEvents.on((e) => e.kind === 'retransmit' && retransmits++);
    c.write(new TextEncoder().encode('hello'));
    c.end();
    la.pump(); // the server takes data and FIN; its ACK waits in the client's queue
    clock.advance(5000); // the client's process runs again only now: its timers are long due
    clientLink.pump();
    return { retransmits, state: c.state };
  }
  it('before a timer acts, what has already arrived is read (Link.poll): a stalled process does not retransmit what was acknowledged meanwhile', () => {
    expect(stalledClient(new PollLink())).toEqual({ retransmits: 0, state: 'FIN-WAIT-2' });
    // a link that cannot tell: the timer fires first and sends the FIN again for nothing
    expect(stalledClient(new BatchLink()).retransmits).toBeGreaterThan(0);
  });
});

describe('scripting hooks', () => {
  it('close() with unread data (reading paused) resets the connection; end() would not', () => {
    const { clock, server, client, log } = pair();
    const srv = accept(server, 80);
    const c = client.connect({ local: { address: B }, remote: { address: A, port: 80 } });
    clock.advance(10);
    const s = srv.conns[0]!;
    s.pauseReading();
    c.write(new TextEncoder().encode('never read'));
    clock.advance(10);
    log.length = 0;
    s.close();
    clock.advance(10);
    expect(log[0]).toBe('A RST,ACK len=0');
    expect([s.state, s.resetReason, c.state, c.resetReason]).toEqual(['CLOSED', 'rst-sent', 'CLOSED', 'rst-received']);
  });

  it('urgent data is shown: onUrgent hears RCV.UP', () => {
    const { clock, server, client } = pair();
    const srv = accept(server, 80);
    const c = client.connect({ local: { address: B, port: 6001 }, remote: { address: A, port: 80 } });
    clock.advance(10);
    const s = srv.conns[0]!;
    const pointers: number[] = [];
    s.onUrgent((p) => pointers.push((p - s.tcb.irs) >>> 0));
    client.sendSegment(c.tuple, {
      seq: c.tcb.sndNxt,
      ack: c.tcb.rcvNxt,
      flags: flags('urg,psh,ack'),
      urgent: 2,
      window: 1000,
      payload: new TextEncoder().encode('!!rest'),
    });
    clock.advance(10);
    expect(pointers).toEqual([3]); // relative: the byte after the two urgent ones
    expect(s.received).toBe(6);
  });

  it('keep-alive probes a silent peer and resets it after the probes go unanswered', () => {
    const { clock, server, client, log } = pair();
    const srv = accept(server, 80);
    client.connect({ local: { address: B }, remote: { address: A, port: 80 } });
    clock.advance(10);
    srv.conns[0]!.setKeepAlive({ idleMs: 1000, intervalMs: 200, probes: 2 });
    client.detach(); // the peer goes silent
    log.length = 0;
    clock.advance(2000);
    expect(log).toEqual(['A ACK len=0', 'A ACK len=0', 'A RST,ACK len=0']);
    expect(srv.conns[0]!.resetReason).toBe('keepalive-timeout');
  });

  it('chosen ISN and SYN options', () => {
    const { clock, server, client } = pair();
    accept(server, 80);
    const seen: SegmentEvent[] = [];
    client.onSegment((e) => e.direction === 'out' && seen.push(e));
    client.connect({
      local: { address: B },
      remote: { address: A, port: 80 },
      tcb: { isn: 123456, timestamps: false, wscale: 3, mss: 1000, sackPermitted: false },
    });
    clock.advance(5);
    expect(seen[0]!.tcp.seq).toBe(123456);
    expect(seen[0]!.tcp.options.filter((o) => o.kind !== 'nop')).toEqual([
      { kind: 'mss', value: 1000 },
      { kind: 'wscale', shift: 3 },
    ]);
  });

  it('stop reading: the window shrinks to zero and the sender stalls; resume: it drains', () => {
    const { clock, server, client } = pair({ tcb: { rcvBuf: 16 * 1024 } });
    const srv = accept(server, 80);
    const c = client.connect({ local: { address: B }, remote: { address: A, port: 80 } });
    clock.advance(10);
    const s = srv.conns[0]!;
    s.pauseReading();
    c.write(random(100_000));
    clock.advance(2000);
    // full, give or take the truncation window scaling allows (RFC 7323 §2.4: less than 2^7 bytes)
    expect(s.tcb.recvQ.length).toBeGreaterThan(16 * 1024 - 128);
    expect(s.tcb.recvQ.length).toBeLessThanOrEqual(16 * 1024);
    expect(c.tcb.sndWnd).toBe(0);
    s.resumeReading();
    clock.advance(5000);
    expect(s.received).toBe(100_000);
  });

  it('hold ACKs: the sender retransmits; release: one ACK ends it', () => {
    const { clock, server, client } = pair();
    const srv = accept(server, 80);
    const c = client.connect({ local: { address: B }, remote: { address: A, port: 80 }, tcb: { tailLossProbe: false } });
    let retransmits = 0;
    c.tcbEvents.on((e) => {
      if (e.kind === 'retransmit') retransmits++;
    });
    clock.advance(10);
    srv.conns[0]!.holdAcks(true);
    c.write(new Uint8Array(10));
    clock.advance(1000);
    expect(retransmits).toBeGreaterThan(0);
    expect(c.tcb.sndUna).not.toBe(c.tcb.sndNxt);
    srv.conns[0]!.holdAcks(false);
    clock.advance(10);
    expect(c.tcb.sndUna).toBe(c.tcb.sndNxt);
  });

  it('drop, duplicate and delay segments matching a predicate', () => {
    const { clock, server, client, log } = pair();
    accept(server, 80);
    client.addFilter({ direction: 'out', times: 1, match: (e) => e.tcp.flags.syn, action: 'drop' });
    const c = client.connect({ local: { address: B }, remote: { address: A, port: 80 } });
    clock.advance(10);
    expect(c.state).toBe('SYN-SENT'); // the first SYN was dropped
    clock.advance(1000);
    expect(c.state).toBe('ESTABLISHED'); // the retransmitted one went through
    server.addFilter({ direction: 'in', times: 1, match: (e) => e.tcp.payload.length > 0, action: 'duplicate' });
    c.write(new Uint8Array(5));
    clock.advance(10);
    expect(log.filter((l) => l === 'A ACK len=0').length).toBeGreaterThanOrEqual(2);
    client.addFilter({ direction: 'out', match: (e) => e.tcp.payload.length > 0, action: { delayMs: 500 } });
    c.write(new Uint8Array(5));
    clock.advance(100);
    expect(c.tcb.sndUna).not.toBe(c.tcb.sndNxt);
    clock.advance(500);
    expect(c.tcb.sndUna).toBe(c.tcb.sndNxt);
  });

  it('record a segment and replay it later as an old duplicate', () => {
    const { clock, server, client } = pair({ tcb: { timestamps: false } });
    const srv = accept(server, 80);
    const c = client.connect({ local: { address: B }, remote: { address: A, port: 80 } });
    clock.advance(10);
    const rec = client.record((e) => e.direction === 'out' && e.tcp.payload.length > 0);
    c.write(new TextEncoder().encode('first'));
    clock.advance(10);
    rec.stop();
    const got: string[] = [];
    srv.conns[0]!.onData((d) => got.push(new TextDecoder().decode(d)));
    client.replay(rec.segments[0]!);
    clock.advance(10);
    expect(got).toEqual([]); // an old duplicate: acknowledged, not delivered again
    expect(srv.conns[0]!.received).toBe(5);
  });

  it('send a crafted segment on any four-tuple, with or without a TCB', () => {
    const { clock, server, client } = pair();
    const seen: string[] = [];
    server.onSegment((e) => e.direction === 'in' && seen.push(`${formatFlags(e.tcp.flags)} ${e.tcp.seq} ${e.tcp.window}`));
    client.sendSegment(
      { local: { address: B, port: 1234 }, remote: { address: A, port: 4321 } },
      { seq: seq(42), flags: flags('fin,psh'), window: 7, payload: new Uint8Array(2) },
    );
    clock.advance(5);
    expect(seen).toEqual(['FIN,PSH 42 7']);
  });
});
