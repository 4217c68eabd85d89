// Random and mutated segments against a TCB in every state: no exception escapes, and the
// invariants hold after every segment. Seeded, so a failure replays exactly.
import { describe, expect, it } from 'vitest';
import { seededRandom, VirtualClock } from '../src/stack/clock';
import { memoryLink } from '../src/stack/memorylink';
import { TcpStack } from '../src/stack/stack';
import { emitTcpFrame } from '../src/wire/frame';
import { seq, seqAdd } from '../src/wire/seq';
import { NO_FLAGS, type TcpFlags, type TcpOption, type TcpRepr } from '../src/wire/tcp';
import { FIXTURES, LOCAL_SEQ, REMOTE_SEQ, SEND_TEMPL, T0, WIN } from './fixtures/tcb';

const FLAG_NAMES: Array<keyof TcpFlags> = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ece', 'cwr'];

function randomSegment(r: () => number, base: TcpRepr): TcpRepr {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const flags = { ...NO_FLAGS };
  for (const f of FLAG_NAMES) flags[f] = r() < (f === 'ack' ? 0.8 : 0.15);
  // sequence numbers near the interesting edges, or anywhere
  const seqNo = pick([seqAdd(REMOTE_SEQ, Math.floor(r() * 8) - 2), seqAdd(REMOTE_SEQ, Math.floor(r() * WIN * 2) - WIN), seq(Math.floor(r() * 2 ** 32)), base.seq]);
  const ack = pick([seqAdd(LOCAL_SEQ, Math.floor(r() * 6) - 2), seqAdd(LOCAL_SEQ, Math.floor(r() * 200_000) - 100_000), seq(Math.floor(r() * 2 ** 32))]);
  const options: TcpOption[] = [];
  if (r() < 0.3) options.push({ kind: 'timestamps', tsval: Math.floor(r() * 2 ** 32), tsecr: Math.floor(r() * 2 ** 32) });
  if (r() < 0.2) options.push({ kind: 'sack', blocks: [[seqAdd(LOCAL_SEQ, Math.floor(r() * 5000)), seqAdd(LOCAL_SEQ, Math.floor(r() * 10000))]] });
  if (r() < 0.1) options.push({ kind: 'mss', value: Math.floor(r() * 65536) }, { kind: 'wscale', shift: Math.floor(r() * 20) });
  const payload = new Uint8Array(r() < 0.5 ? 0 : Math.floor(r() * 3000));
  return { ...base, seq: seqNo, ack, flags, window: Math.floor(r() * 65536), options, payload };
}

describe('fuzz: random segments to a TCB in every state', () => {
  it.each(FIXTURES)('%s', (_state, make) => {
    const r = seededRandom(0xbeef + _state.length);
    for (let round = 0; round < 20; round++) {
      const tcb = make();
      let now = T0;
      for (let i = 0; i < 150; i++) {
        now += Math.floor(r() * 400);
        const seg = randomSegment(r, SEND_TEMPL);
        expect(() => {
          tcb.process(seg, now);
          tcb.dispatch(now);
          if (r() < 0.1) tcb.write(new Uint8Array(Math.floor(r() * 5000)));
          if (r() < 0.05) tcb.read();
          if (r() < 0.02) tcb.close(now);
          tcb.checkInvariants();
        }, `round ${round} segment ${i}: ${JSON.stringify({ ...seg, payload: seg.payload.length })}`).not.toThrow();
        if (tcb.state === 'CLOSED') break;
      }
    }
  });
});

describe('fuzz: random and mutated frames into a stack', () => {
  it('never throws on garbage, truncated or bit-flipped frames', () => {
    const clock = new VirtualClock();
    const [la, lb] = memoryLink(clock);
    const stack = new TcpStack(la, { addresses: ['192.0.2.1'], clock });
    stack.listen(80);
    const r = seededRandom(42);
    const valid = emitTcpFrame('192.0.2.2', '192.0.2.1', { ...SEND_TEMPL, dstPort: 80, flags: { ...NO_FLAGS, syn: true }, options: [{ kind: 'mss', value: 1460 }] });
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
