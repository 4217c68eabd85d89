// Random and mutated segments against a TCB in every state, checked against what TCP promises —
// not only "no exception": after every step SND.UNA ≤ retransmission point ≤ SND.NXT (and the
// TCB's own invariants), SND.UNA and RCV.NXT never move back, the right edge we advertise never
// moves left (but for the truncation window scaling allows, RFC 7323 §2.4), no segment carries
// more than the MSS less its options, no ACK covers bytes the peer never sent, no data goes
// beyond the peer's window but a probe at SND.UNA, nothing beyond SND.NXT. Seeded, so a failure
// replays exactly.
import { describe, expect, it } from 'vitest';
import { seededRandom, VirtualClock } from '../src/stack/clock';
import { memoryLink } from '../src/stack/memorylink';
import { TcpStack } from '../src/stack/stack';
import type { Tcb } from '../src/stack/tcb';
import { emitTcpFrame } from '../src/wire/frame';
import { seq, seqAdd, seqDiff, seqGt, seqLe, seqLt, type SeqNumber } from '../src/wire/seq';
import { formatFlags, NO_FLAGS, optionsLength, segLen, type TcpFlags, type TcpOption, type TcpRepr } from '../src/wire/tcp';
import { FIXTURES, LOCAL_SEQ, REMOTE_SEQ, SEND_TEMPL, T0, tcbEstablishedTsSack, WIN } from './fixtures/tcb';

const FLAG_NAMES: Array<keyof TcpFlags> = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ece', 'cwr'];

function randomSegment(r: () => number, tcb: Tcb): TcpRepr {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const flags = { ...NO_FLAGS };
  for (const f of FLAG_NAMES) flags[f] = r() < (f === 'ack' ? 0.85 : f === 'syn' || f === 'rst' ? 0.06 : 0.12);
  // sequence numbers where things happen (at RCV.NXT, a little off, in or beyond the window), or anywhere
  const seqNo = pick([
    tcb.rcvNxt,
    tcb.rcvNxt,
    seqAdd(tcb.rcvNxt, Math.floor(r() * 3000)),
    seqAdd(tcb.rcvNxt, -Math.floor(r() * 3000)),
    seqAdd(REMOTE_SEQ, Math.floor(r() * WIN * 2) - WIN),
    seq(Math.floor(r() * 2 ** 32)),
  ]);
  const ack = pick([
    tcb.sndNxt,
    tcb.sndUna,
    seqAdd(tcb.sndUna, Math.floor(r() * (seqDiff(tcb.sndNxt, tcb.sndUna) + 1))),
    seqAdd(LOCAL_SEQ, Math.floor(r() * 200_000) - 100_000),
    seq(Math.floor(r() * 2 ** 32)),
  ]);
  const options: TcpOption[] = [];
  if (r() < 0.4)
    options.push({ kind: 'timestamps', tsval: (tcb.tsRecent ?? 0) + Math.floor(r() * 2000) - 500, tsecr: Math.floor(r() * 2 ** 32) });
  if (r() < 0.25) {
    const l = seqAdd(tcb.sndUna, Math.floor(r() * 6000) - 500);
    options.push({ kind: 'sack', blocks: [[l, seqAdd(l, Math.floor(r() * 3000) - 200)]] });
  }
  if (r() < 0.05) options.push({ kind: 'mss', value: Math.floor(r() * 65536) }, { kind: 'wscale', shift: Math.floor(r() * 20) });
  const payload = new Uint8Array(r() < 0.5 ? 0 : Math.floor(r() * 3000));
  return { ...SEND_TEMPL, seq: seqNo, ack, flags, window: Math.floor(r() * 65536), urgent: Math.floor(r() * 10), options, payload };
}

/** What the peer has sent so far, as ranges of sequence space (its SYN included). */
class Sent {
  ranges: Array<[SeqNumber, SeqNumber]> = [];
  add(from: SeqNumber, len: number): void {
    if (len > 0) this.ranges.push([from, seqAdd(from, len)]);
  }
  /** Is all of [from, to) covered by what the peer sent? */
  covers(from: SeqNumber, to: SeqNumber): boolean {
    let p = from;
    for (let moved = true; moved && seqLt(p, to); ) {
      moved = false;
      for (const [l, r] of this.ranges) {
        if (seqLe(l, p) && seqLt(p, r)) {
          p = r;
          moved = true;
        }
      }
    }
    return !seqLt(p, to);
  }
}

/** Checks each step of a run against the promises above; throws with the broken one. */
class Watch {
  readonly tcb: Tcb;
  readonly peer = new Sent();
  #una: SeqNumber;
  #rcvNxt: SeqNumber;
  #edge: SeqNumber | null = null;
  #synSent: boolean;

  constructor(tcb: Tcb) {
    this.tcb = tcb;
    this.#una = tcb.sndUna;
    this.#rcvNxt = tcb.rcvNxt;
    this.#synSent = tcb.state === 'SYN-SENT';
    // what got the fixture here: the peer's SYN and FIN where it sent one
    if (tcb.state !== 'SYN-SENT') this.peer.add(tcb.irs, seqDiff(tcb.rcvNxt, tcb.irs));
  }

  fed(seg: TcpRepr): void {
    this.peer.add(seg.seq, segLen(seg));
  }

  /** After the TCB handled something: its state, and the segments it sent. */
  check(out: TcpRepr[], what: string): void {
    const t = this.tcb;
    const fail = (m: string): never => {
      throw new Error(`${what}: ${m}`);
    };
    t.checkInvariants();
    if (this.#synSent && t.state !== 'SYN-SENT') {
      this.#synSent = false; // the peer's SYN just set RCV.NXT: count from its sequence number
      this.#rcvNxt = t.irs;
    }
    if (t.state !== 'CLOSED') {
      if (seqLt(t.sndUna, this.#una)) fail(`SND.UNA moved back ${this.#una} → ${t.sndUna}`);
      if (t.state !== 'SYN-SENT' && seqLt(t.rcvNxt, this.#rcvNxt)) fail(`RCV.NXT moved back ${this.#rcvNxt} → ${t.rcvNxt}`);
      if (t.state !== 'SYN-SENT' && seqGt(t.rcvNxt, this.#rcvNxt) && !this.peer.covers(this.#rcvNxt, t.rcvNxt))
        fail(`RCV.NXT ${t.rcvNxt} covers bytes the peer never sent (from ${this.#rcvNxt})`);
      this.#una = t.sndUna;
      this.#rcvNxt = t.rcvNxt;
    }
    const ownMss = t.cfg.mss ?? t.cfg.mtu - 40;
    for (const s of out) {
      const name = `${formatFlags(s.flags)} seq=${s.seq} ack=${s.ack} len=${s.payload.length}`;
      if (s.payload.length > 0 && s.payload.length + optionsLength(s.options) > Math.min(t.peerMss, ownMss))
        fail(`${name}: payload + options beyond the MSS ${Math.min(t.peerMss, ownMss)}`);
      if (s.flags.rst) continue; // an RST's numbers answer the segment that drew it
      if (s.flags.ack && !s.flags.syn && !this.peer.covers(t.irs, s.ack)) fail(`${name}: ACKs bytes the peer never sent`);
      if (seqGt(seqAdd(s.seq, segLen(s)), t.sndNxt)) fail(`${name}: beyond SND.NXT ${t.sndNxt}`);
      if (s.payload.length > 0 && s.seq !== t.sndUna && seqGt(seqAdd(s.seq, s.payload.length), seqAdd(t.sndUna, t.sndWnd)))
        fail(`${name}: beyond the peer's window ${t.sndUna}+${t.sndWnd}`);
      if (s.flags.ack && t.windowOverride === null) {
        const edge = seqAdd(s.ack, s.window * 2 ** (s.flags.syn ? 0 : t.rcvShift));
        if (this.#edge !== null && seqLt(edge, seqAdd(this.#edge, -(2 ** t.rcvShift - 1))))
          fail(`${name}: right edge moved left ${this.#edge} → ${edge}`);
        if (this.#edge === null || seqGt(edge, this.#edge)) this.#edge = edge;
      }
    }
  }
}

const MAKERS: Array<[string, () => Tcb]> = [...FIXTURES, ['ESTABLISHED with timestamps and SACK', () => tcbEstablishedTsSack()]];

describe('fuzz: random segments to a TCB in every state, checked against what TCP promises', () => {
  it.each(MAKERS)('%s', (state, make) => {
    const r = seededRandom(0xbeef + state.length);
    let steps = 0;
    for (let round = 0; round < 30; round++) {
      const tcb = make();
      tcb.events.length = 0;
      const watch = new Watch(tcb);
      let now = T0;
      for (let i = 0; i < 200; i++) {
        now += Math.floor(r() * (r() < 0.1 ? 3000 : 100));
        const seg = randomSegment(r, tcb);
        const what = `round ${round} step ${i} (${tcb.state}) ${JSON.stringify({ ...seg, payload: seg.payload.length })}`;
        watch.fed(seg);
        watch.check(tcb.process(seg, now), what);
        if (r() < 0.15) tcb.write(new Uint8Array(Math.floor(r() * 5000)));
        if (r() < 0.3) tcb.read(Math.floor(r() * 4000));
        if (r() < 0.01) tcb.shutdown(now);
        if (r() < 0.005) watch.check(tcb.close(now), what);
        watch.check(tcb.dispatch(now), `${what}, then dispatch`);
        steps++;
        if (tcb.state === 'CLOSED') break;
      }
    }
    expect(steps).toBeGreaterThan(100); // short-lived states close soon, but every state ran
  });
});

describe('fuzz: random and mutated frames into a stack', () => {
  it('never throws on garbage, truncated or bit-flipped frames', () => {
    const clock = new VirtualClock();
    const [la, lb] = memoryLink(clock);
    const stack = new TcpStack(la, { addresses: ['192.0.2.1'], clock });
    stack.listen(80);
    const r = seededRandom(42);
    const valid = emitTcpFrame('192.0.2.2', '192.0.2.1', {
      ...SEND_TEMPL,
      dstPort: 80,
      flags: { ...NO_FLAGS, syn: true },
      options: [{ kind: 'mss', value: 1460 }],
    });
    for (let i = 0; i < 5000; i++) {
      let frame: Uint8Array;
      const kind = r();
      if (kind < 0.3) frame = Uint8Array.from({ length: Math.floor(r() * 80) }, () => Math.floor(r() * 256));
      else if (kind < 0.6) frame = valid.slice(0, Math.floor(r() * valid.length));
      else {
        frame = valid.slice();
        for (let k = 0; k < 1 + Math.floor(r() * 4); k++) frame[Math.floor(r() * frame.length)] = Math.floor(r() * 256);
      }
      expect(() => {
        lb.send(frame);
        clock.advance(Math.floor(r() * 50));
      }).not.toThrow();
    }
    for (const c of stack.connections) expect(() => c.tcb.checkInvariants()).not.toThrow();
  });
});

// the checks themselves can fail: a watch over a TCB that lies about RCV.NXT must throw
describe('fuzz: the checks bite', () => {
  it('a RCV.NXT beyond what the peer sent is caught', () => {
    const tcb = FIXTURES[2]![1]();
    const watch = new Watch(tcb);
    tcb.rcvNxt = seqAdd(tcb.rcvNxt, 10);
    expect(() => watch.check([], 'tampered')).toThrow(/never sent/);
  });
  it('a segment beyond the MSS is caught', () => {
    const tcb = FIXTURES[2]![1]();
    const watch = new Watch(tcb);
    const big: TcpRepr = { ...SEND_TEMPL, seq: tcb.sndNxt, ack: tcb.rcvNxt, payload: new Uint8Array(1461) };
    expect(() => watch.check([big], 'tampered')).toThrow(/beyond the MSS/);
  });
  it('a right edge moving left is caught', () => {
    const tcb = FIXTURES[2]![1]();
    const watch = new Watch(tcb);
    const ack = (window: number): TcpRepr => ({
      ...SEND_TEMPL,
      flags: { ...NO_FLAGS, ack: true },
      seq: tcb.sndNxt,
      ack: tcb.rcvNxt,
      window,
    });
    watch.check([ack(1000)], 'first');
    expect(() => watch.check([ack(10)], 'tampered')).toThrow(/moved left/);
  });
});
