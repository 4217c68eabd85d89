// Issue 16, part B: verdicts judged on the kernel's side. In memory, each lab's judging function
// fed the bad condition — a setup call that failed, a control that was refused, a peer that was
// not silent, a reading taken too early — must say "not tested" and name it; lab 15's χ² test must
// be able to see the skew its evidence says it can. Then for real: lab 15 with one socket's setup
// made to fail. (Lab 17's orphans waited out: test/labs.test.ts, beside lab 02's full TIME_WAIT.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebindJudgements, type RebindCell } from '../labs/03-rebind-listener';
import { c6Trial, reuseTrials, type Cell as RebindClientCell, type TwoSockets } from '../labs/04-rebind-client';
import {
  ALPHA,
  chiSquareCritical,
  chiSquarePValue,
  detectableSkew,
  everySocketSetUp,
  evenness,
  type SocketSetup,
} from '../labs/15-reuseport-balance';
import { c21Trial, type PairTrial } from '../labs/16-specific-vs-wildcard';
import { c25Trial, type Orphan, type OrphanOnWire } from '../labs/17-orphan-lifetime';
import type { FlowSegment } from '../src/capture/flows';
import { claimById } from '../src/lab/api/claims';
import { finExchange } from '../src/lab/api/fins';
import type { LabResult } from '../src/lab/api/types';
import { decide, type Judgement, type Trial } from '../src/lab/api/verdict';
import { seq } from '../src/wire/seq';
import { privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const KERNEL = '6.18.0';
const verdictOf = (id: string, j: Judgement) => decide(claimById(id), j, KERNEL);
const trialsOf = (id: string, trials: Trial[], evidence = 'e') => verdictOf(id, { trials, evidence });

/** A small seeded PRNG (mulberry32): the same draws on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How often χ² rejects (p < ALPHA) `reps` multinomial samples of `n` over the shares `p`. */
function rejectionRate(p: number[], n: number, reps: number, rand: () => number): number {
  let rejected = 0;
  for (let r = 0; r < reps; r++) {
    const counts = p.map(() => 0);
    for (let i = 0; i < n; i++) {
      let u = rand();
      let k = 0;
      while (k < p.length - 1 && u >= p[k]!) u -= p[k++]!;
      counts[k]!++;
    }
    if (evenness(counts).pValue < ALPHA) rejected++;
  }
  return rejected / reps;
}

describe('lab 15: the χ² test sees the skew its evidence names', () => {
  it('p-values and the critical value agree with the χ² tables', () => {
    expect(chiSquarePValue(3.841, 1)).toBeCloseTo(0.05, 3);
    expect(chiSquarePValue(16.266, 3)).toBeCloseTo(0.001, 4);
    expect(chiSquareCritical(3)).toBeCloseTo(16.266, 2);
    expect(evenness([100, 100, 100, 100]).pValue).toBe(1);
  });
  it('with 400 over 4 sockets it sees one socket at 36 % (or 14 %) instead of 25 %, 90 times in 100', () => {
    const s = detectableSkew(400, 4);
    expect(s.above).toBeCloseTo(0.3603, 3);
    expect(s.below).toBeCloseTo(0.1397, 3);
    // a real skew of that size, drawn 2000 times: rejected about 90 % of the time …
    const rest = (1 - s.above) / 3;
    const skewed = rejectionRate([s.above, rest, rest, rest], 400, 2000, prng(16));
    expect(skewed).toBeGreaterThan(0.86);
    expect(skewed).toBeLessThan(0.94);
    // … a skew half that size mostly slips through, and an even spread almost never is rejected
    const half = 0.25 + (s.above - 0.25) / 2;
    expect(rejectionRate([half, (1 - half) / 3, (1 - half) / 3, (1 - half) / 3], 400, 2000, prng(17))).toBeLessThan(0.5);
    expect(rejectionRate([0.25, 0.25, 0.25, 0.25], 400, 2000, prng(18))).toBeLessThan(0.005);
  });
  it('one socket that got nothing (its bind failed) is a skew the test rejects: hence the setup precondition', () => {
    expect(evenness([134, 0, 133, 133]).pValue).toBeLessThan(1e-20);
    const setup: SocketSetup[] = [
      { group: 'TCP', socket: 1, reuseport: 'OK', bind: 'OK', listen: 'OK' },
      { group: 'TCP', socket: 2, reuseport: 'not set', bind: 'EADDRINUSE', listen: 'not called' },
    ];
    const p = everySocketSetUp(setup);
    expect(p.met).toBe(false);
    expect(p.measured).toBe('TCP socket 2: SO_REUSEPORT not set, bind → EADDRINUSE, listen → not called');
    const v = verdictOf('C10', { requires: [p], trials: [{ agrees: false }], evidence: '134/0/133/133' });
    expect(v.verdict).toBe('not tested');
    expect(everySocketSetUp([setup[0]!]).met).toBe(true);
  });
});

describe('lab 04: C6 counts address errnos on an ESTABLISHED first connection; T3 and T16', () => {
  const two = (over: Partial<TwoSockets> = {}): TwoSockets => ({
    local: 41000,
    bindA: 'OK',
    bindB: 'OK',
    connectA: 'OK',
    firstState: 'ESTABLISHED',
    connectB: 'EADDRNOTAVAIL',
    ...over,
  });
  it('EADDRNOTAVAIL counts (against the BSD claim); ECONNREFUSED or a first connection not ESTABLISHED does not', () => {
    expect(trialsOf('C6', [c6Trial(two(), '192.0.2.1')]).verdict).toBe('differs by OS');
    expect(trialsOf('C6', [c6Trial(two({ connectB: 'EADDRINUSE' }), '192.0.2.1')]).verdict).toBe('holds');
    const refused = trialsOf('C6', [c6Trial(two({ connectB: 'ECONNREFUSED' }), '192.0.2.1')]);
    expect(refused.verdict).toBe('not tested');
    expect(refused.evidence).toMatch(
      /the second connect\(\) failed for its address \(EADDRINUSE or EADDRNOTAVAIL\) or succeeded — connect → ECONNREFUSED/,
    );
    const synSent = trialsOf('C6', [c6Trial(two({ firstState: 'SYN_SENT' }), '192.0.2.1')]);
    expect(synSent.verdict).toBe('not tested');
    expect(synSent.evidence).toMatch(/the first connect\(\) succeeded and the socket table shows it ESTABLISHED — connect → OK, SYN_SENT/);
  });

  const cell = (how: 'bind' | 'range', twReuse: '0' | '1', connect: string, delayMs: number | null = 1200): RebindClientCell => ({
    how,
    twReuse,
    trial: 1,
    local: 41000,
    first: { timeWait: true, timestamps: true, closedAt: 0, twSeenAt: 0, setup: 'OK' },
    delayMs,
    setup: 'OK',
    bind: how === 'bind' ? 'OK' : null,
    connect,
    localPort: 41000,
    twBefore: true,
    twRecycled: 0,
  });
  const linux = [cell('range', '0', 'EADDRNOTAVAIL'), cell('range', '1', 'OK'), cell('bind', '0', 'OK'), cell('bind', '1', 'OK')];
  it('what 6.18 does: T3 and T16 both hold', () => {
    const r = reuseTrials(linux, 1, '1000', true);
    expect(trialsOf('T3', r.t3).verdict).toBe('holds');
    expect(trialsOf('T16', r.t16).verdict).toBe('holds');
  });
  it('a reconnect sooner than tcp_tw_reuse_delay after the TIME_WAIT was first seen: T3 not tested; T16 needs no delay', () => {
    const early = linux.map((c) => ({ ...c, delayMs: 300 }));
    const r = reuseTrials(early, 1, '1000', true);
    const t3 = trialsOf('T3', r.t3);
    expect(t3.verdict).toBe('not tested');
    expect(t3.evidence).toMatch(
      /the reconnect came at least tcp_tw_reuse_delay \(1000 ms\) after the TIME_WAIT entry was first seen — 300 ms/,
    );
    expect(trialsOf('T16', r.t16).verdict).toBe('holds');
  });
  it('a kernel without tcp_tw_reuse_delay is named, not assumed', () => {
    const t3 = trialsOf(
      'T3',
      reuseTrials(
        linux.map((c) => ({ ...c, delayMs: 300 })),
        1,
        null,
        true,
      ).t3,
    );
    expect(t3.evidence).toMatch(/this kernel has no net\.ipv4\.tcp_tw_reuse_delay/);
  });
  it('an explicit bind refused with tcp_tw_reuse=0: T16 does not hold', () => {
    expect(
      trialsOf('T16', reuseTrials([linux[0]!, linux[1]!, cell('bind', '0', 'EADDRNOTAVAIL'), linux[3]!], 1, '1000', true).t16).verdict,
    ).toBe('does not hold');
  });
});

describe('lab 03: the no-TIME_WAIT control is required', () => {
  const rc = (over: Partial<RebindCell>): RebindCell => ({
    address: 'specific',
    trial: 1,
    oldListener: 'none',
    newSocket: 'none',
    port: 8000,
    timeWait: true,
    bind: 'EADDRINUSE',
    listen: null,
    ...over,
  });
  const cells = [
    rc({ newSocket: 'reuseaddr' }),
    rc({ oldListener: 'reuseaddr', newSocket: 'reuseaddr', bind: 'OK' }),
    rc({ oldListener: 'reuseport', newSocket: 'reuseport', bind: 'OK' }),
    rc({ oldListener: 'reuseport' }),
  ];
  it('the control bound: judged', () => {
    const j = rebindJudgements(cells, rc({ timeWait: false, bind: 'OK' }), 1, 'server');
    expect(verdictOf('C4', j.C4).verdict).toBe('differs by OS');
    expect(verdictOf('C17', j.C17).verdict).toBe('holds');
  });
  it('the control refused (the port is held by something other than the TIME_WAIT): not tested', () => {
    const j = rebindJudgements(cells, rc({ timeWait: false, bind: 'EADDRINUSE' }), 1, 'server');
    for (const [id, x] of [
      ['C4', j.C4],
      ['C17', j.C17],
    ] as const) {
      const v = verdictOf(id, x);
      expect(v.verdict).toBe('not tested');
      expect(v.evidence).toMatch(
        /^precondition failed: the control: with no TIME_WAIT on the server \(the client closed first\), a new socket without flags binds the port — no TIME_WAIT entry, bind → EADDRINUSE/,
      );
    }
  });
});

describe('lab 16: C21 needs both sockets set up and the wildcard one receiving', () => {
  const pair = (over: Partial<PairTrial>): PairTrial => ({
    proto: 'udp',
    trial: 1,
    port: 7600,
    order: 'wildcard first',
    wildcardSetup: 'OK',
    specificSetup: 'OK',
    sent: { specific: 10, other: 10 },
    toSpecific: { bySpecific: 10, byWildcard: 0 },
    toOther: { bySpecific: 0, byWildcard: 10 },
    ...over,
  });
  it('the specific socket got them: holds; the wildcard did: does not hold', () => {
    expect(trialsOf('C21', [c21Trial(pair({}))]).verdict).toBe('holds');
    expect(trialsOf('C21', [c21Trial(pair({ toSpecific: { bySpecific: 0, byWildcard: 10 } }))]).verdict).toBe('does not hold');
  });
  it('a failed bind, or a wildcard socket that received nothing: not tested', () => {
    expect(trialsOf('C21', [c21Trial(pair({ specificSetup: 'bind EADDRINUSE' }))]).evidence).toMatch(
      /both sockets were set up.* — 0\.0\.0\.0:7600 → OK, 192\.0\.2\.1:7600 → bind EADDRINUSE/,
    );
    expect(trialsOf('C21', [c21Trial(pair({ toOther: { bySpecific: 0, byWildcard: 0 } }))]).evidence).toMatch(
      /the control: the wildcard socket received every datagram to 198\.51\.100\.1 — 0 of 10/,
    );
  });
});

describe('lab 17: C25 needs the orphan watched until it went, and a silent peer', () => {
  const orphan = (over: Partial<Orphan>): Orphan => ({
    local: 41000,
    queued: 65536,
    close: { ret: 0, errno: null, elapsedMs: 0 },
    afterClose: { state: 'FIN_WAIT1', timer: 'retransmit', sendQueue: 65537 },
    lifetimeMs: 107_300,
    goneWithinMs: 150,
    stillAfterWatch: null,
    ...over,
  });
  const wire: OrphanOnWire = { segments: 8, retransmissions: 7, lastSegmentMs: 54_000, rst: 0, fromPeer: 0 };
  it('about two minutes: holds; twenty seconds: does not hold', () => {
    expect(trialsOf('C25', [c25Trial(orphan({}), wire, 240)]).verdict).toBe('holds');
    expect(trialsOf('C25', [c25Trial(orphan({ lifetimeMs: 20_000 }), wire, 240)]).verdict).toBe('does not hold');
  });
  it('not waited out, or the peer not silent, or no data unsent: not tested, naming it', () => {
    expect(
      trialsOf('C25', [
        c25Trial(orphan({ lifetimeMs: null, goneWithinMs: null, stillAfterWatch: 'FIN_WAIT1 (retransmit timer)' }), wire, 3),
      ]).evidence,
    ).toMatch(/the orphan was watched until it went \(watch 3 s\) — still FIN_WAIT1 \(retransmit timer\) after 3 s/);
    expect(trialsOf('C25', [c25Trial(orphan({}), { ...wire, fromPeer: 3 }, 240)]).evidence).toMatch(
      /the peer stayed silent .* — 3 segments from the peer/,
    );
    expect(
      trialsOf('C25', [c25Trial(orphan({ afterClose: { state: 'FIN_WAIT2', timer: 'timewait', sendQueue: 0 } }), wire, 240)]).verdict,
    ).toBe('not tested');
  });
});

describe("finExchange reads a close from the kernel's segments", () => {
  // the kernel at 192.0.2.1:40000, the peer at 192.0.2.2:80; relative numbers from 1000 (kernel) and 5000 (peer)
  const K = '192.0.2.1:40000';
  const P = '192.0.2.2:80';
  let n = 0;
  const seg = (from: 'k' | 'p', flags: 'FA' | 'A', s: number, a: number): FlowSegment =>
    ({
      number: ++n,
      src: from === 'k' ? K : P,
      dst: from === 'k' ? P : K,
      flagBits: flags === 'FA' ? 17 : 16,
      seq: seq(s),
      ack: seq(a),
      len: 0,
    }) as unknown as FlowSegment;
  it('kernel first, peer first, crossed', () => {
    n = 0;
    const kFirst = finExchange(
      [seg('k', 'FA', 1000, 5000), seg('p', 'A', 5000, 1001), seg('p', 'FA', 5000, 1001), seg('k', 'A', 1001, 5001)],
      { address: '192.0.2.1', port: 40000 },
    );
    expect(kFirst).toMatchObject({ order: 'kernel first', kernelAckedPeerFin: true, peerAckedKernelFin: true });
    n = 0;
    const pFirst = finExchange([seg('p', 'FA', 5000, 1000), seg('k', 'FA', 1000, 5001), seg('p', 'A', 5001, 1001)], {
      address: '192.0.2.1',
      port: 40000,
    });
    expect(pFirst).toMatchObject({ order: 'peer first', kernelAckedPeerFin: true, peerAckedKernelFin: true });
    n = 0;
    const crossed = finExchange([seg('k', 'FA', 1000, 5000), seg('p', 'FA', 5000, 1000), seg('k', 'A', 1001, 5001)], {
      address: '192.0.2.1',
      port: 40000,
    });
    expect(crossed).toMatchObject({ order: 'crossed', kernelAckedPeerFin: true, peerAckedKernelFin: false });
    expect(crossed.text).toMatch(
      /^kernel FIN #1 does not acknowledge the peer's FIN #2, which does not acknowledge it; the kernel acknowledged the peer's FIN in #3, the peer the kernel's in no segment$/,
    );
  });
  it("which ACK came first when the FINs crossed: a stack that took the peer's FIN and ACK at once acknowledges the FIN last", () => {
    n = 0;
    // the kernel in CLOSING: it acknowledged the peer's FIN (#3) before the peer's ACK of its own FIN (#4)
    const closing = finExchange(
      [seg('k', 'FA', 1000, 5000), seg('p', 'FA', 5000, 1000), seg('k', 'A', 1001, 5001), seg('p', 'A', 5001, 1001)],
      { address: '192.0.2.1', port: 40000 },
    );
    expect(closing).toMatchObject({ order: 'crossed', kernelAckOfPeerFin: 3, peerAckOfKernelFin: 4 });
    n = 0;
    // both came to the kernel before it looked (NetBSD's input thread, under load): its ACK follows the peer's
    const atOnce = finExchange(
      [seg('k', 'FA', 1000, 5000), seg('p', 'FA', 5000, 1000), seg('p', 'A', 5001, 1001), seg('k', 'A', 1001, 5001)],
      { address: '192.0.2.1', port: 40000 },
    );
    expect(atOnce).toMatchObject({ order: 'crossed', kernelAckOfPeerFin: 4, peerAckOfKernelFin: 3 });
  });
});

describe.skipIf(!privileged())('for real: lab 15 with a socket that could not join', () => {
  let result: LabResult;
  beforeAll(() => {
    const r = runCli(
      ['run', '15', '--json', '--out', tmpDir('kernel-side'), '--set', 'no_reuseport=2', '--set', 'trials=3', '--set', 'connections=200'],
      { timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    result = (JSON.parse(r.stdout) as LabResult[])[0]!;
  }, 130_000);
  const claim = (id: string) => result.claims.find((c) => c.id === id)!;

  it('socket 2 without SO_REUSEPORT fails its bind; C10 and C20 say so instead of "does not hold"', () => {
    const c10 = claim('C10');
    expect(c10.verdict).toBe('not tested');
    expect(c10.evidence).toMatch(
      /^precondition failed: every socket of the group set SO_REUSEPORT and its bind\(\) \(and listen\(\), connect\(\)\) returned 0 — TCP socket 2: SO_REUSEPORT not set, bind → EADDRINUSE, listen → not called; UDP socket 2: SO_REUSEPORT not set, bind → EADDRINUSE/,
    );
    // what the failed setup did to the spread: socket 2 got nothing, a skew χ² rejects
    const tcp = result.variants.find((v) => v.name === 'tcp-connections')!.observations;
    expect((tcp.counts as number[])[1]).toBe(0);
    expect(tcp.pValue as number).toBeLessThan(ALPHA);
    expect(claim('C20').verdict).toBe('not tested');
    expect(claim('C20').evidence).toMatch(/UDP group \d socket 2: SO_REUSEPORT not set, bind → EADDRINUSE/);
    expect(claim('C9').verdict).toBe('holds');
  });
});
