// Labs 11–14 judge the kernel from its own side — its segments in the capture, its socket table,
// its counters — never from a timeout, a live time window or the peer's state. In memory: the
// labs' capture-reading judgements fed captures made frame by frame (the bad condition each
// guards against, forced), through the real verdict rules. Against the kernel: parameters that
// make a precondition impossible, each claim then `not tested` with the numbers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeTcp } from '../src/capture/flows';
import type { PcapRecord } from '../src/capture/pcap';
import { claimById } from '../src/lab/api/claims';
import { newSynOnWire, TupleOnWire } from '../src/lab/api/onwire';
import type { LabResult } from '../src/lab/api/types';
import { decide, requires, type Trial } from '../src/lab/api/verdict';
import { emitTcpFrame } from '../src/wire/frame';
import { seq } from '../src/wire/seq';
import { NO_FLAGS, type TcpFlags } from '../src/wire/tcp';
import { controlTrial, pawsTrial, type Outcome } from '../labs/11-old-duplicate';
import { besideTrial, lateSegmentTaker, rstOnWire, type Beside } from '../labs/13-time-wait-assassination';
import { CHECKED_BY, challengeAcks, isProbe, probeTaken, probeTimestamp, roundCount, type Kind } from '../labs/14-challenge-ack';
import { privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const KERNEL = { address: '192.0.2.1', port: 7000 };
const PEER = { address: '192.0.2.2', port: 45000 };
const RELEASE = '6.18.0';

/** One segment of a made capture: who sent it, its flags ("SA" = SYN,ACK), numbers, payload length, TSval; `at` in ms. */
interface Seg {
  from: 'k' | 'p';
  flags: string;
  seq: number;
  ack?: number;
  len?: number;
  tsval?: number;
  at?: number;
}

function flagsOf(f: string): TcpFlags {
  return { ...NO_FLAGS, syn: f.includes('S'), ack: f.includes('A'), rst: f.includes('R'), fin: f.includes('F'), psh: f.includes('P') };
}

/** A capture of one four-tuple, frame by frame, read back as a lab reads it. */
function wire(segs: Seg[], kernel = KERNEL, peer = PEER): TupleOnWire {
  const records: PcapRecord[] = segs.map((s, i) => {
    const [src, dst] = s.from === 'k' ? [kernel, peer] : [peer, kernel];
    const frame = emitTcpFrame(src.address, dst.address, {
      srcPort: src.port,
      dstPort: dst.port,
      seq: seq(s.seq >>> 0),
      ack: seq((s.ack ?? 0) >>> 0),
      flags: flagsOf(s.flags),
      window: 65535,
      urgent: 0,
      options: s.tsval === undefined ? [] : [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', tsval: s.tsval, tsecr: 0 }],
      payload: new Uint8Array(s.len ?? 0),
    });
    return { number: i + 1, timeUs: (s.at ?? i) * 1000, data: frame, origLength: frame.length, linkType: 101 };
  });
  return new TupleOnWire(analyzeTcp(records), kernel, peer);
}

// the first incarnation of a four-tuple the kernel then holds in TIME_WAIT: peer ISN 1000, kernel ISN 5000;
// the kernel's RCV.NXT ends at 1006 ("hello" and the peer's FIN), its SND.NXT at 5007
const FIRST: Seg[] = [
  { from: 'p', flags: 'S', seq: 1000 },
  { from: 'k', flags: 'SA', seq: 5000, ack: 1001 },
  { from: 'p', flags: 'A', seq: 1001, ack: 5001 },
  { from: 'p', flags: 'PA', seq: 1001, ack: 5001, len: 5 },
  { from: 'k', flags: 'A', seq: 5001, ack: 1006 },
  { from: 'k', flags: 'PA', seq: 5001, ack: 1006, len: 5 },
  { from: 'k', flags: 'FA', seq: 5006, ack: 1006 },
  { from: 'p', flags: 'FA', seq: 1006, ack: 5007 },
  { from: 'k', flags: 'A', seq: 5007, ack: 1007 },
];
const NEW_SYN: Seg = { from: 'p', flags: 'S', seq: 900 }; // below the old sequence space

const judge = (id: string, trials: Trial[], requiresAll: ReturnType<typeof requires>[] = []) =>
  decide(claimById(id), { requires: requiresAll, trials, evidence: 'e' }, RELEASE);

describe("lab 11, C14: the control's refusal is read from the capture, not from accept() timing out", () => {
  const c13Showed = [requires('without TIME_WAIT an old segment was taken for new data', true, '3 of 3')];
  it('an ACK of the old connection, and no SYN-ACK: the kernel refused it', () => {
    const a = newSynOnWire(wire([...FIRST, NEW_SYN, { from: 'k', flags: 'A', seq: 5007, ack: 1007 }]));
    expect(a).toMatchObject({ syn: 10, synVsRcvNxt: -107, synAck: null, refusal: 11, oldTimestamps: false });
    const d = judge(
      'C14',
      [0, 1, 2].map(() => controlTrial(true, a, 'near')),
      c13Showed,
    );
    expect(d.verdict).toBe('holds');
  });
  it('a SYN the kernel never answered (lost, or accept() merely slow) is no refusal: not tested', () => {
    const a = newSynOnWire(wire([...FIRST, NEW_SYN]));
    expect(a).toMatchObject({ syn: 10, synAck: null, refusal: null });
    const d = judge(
      'C14',
      [0, 1, 2].map(() => controlTrial(true, a, 'near')),
      c13Showed,
    );
    expect(d.verdict).toBe('not tested');
    expect(d.evidence).toMatch(
      /^precondition failed in all 3 trials: the kernel answered the SYN \(in the capture\) — no answer from the kernel after SYN #10/,
    );
  });
  it('a SYN-ACK — the TIME_WAIT let the new incarnation in — does not hold', () => {
    const a = newSynOnWire(wire([...FIRST, NEW_SYN, { from: 'k', flags: 'SA', seq: 70_000, ack: 901 }]));
    expect(
      judge(
        'C14',
        [0, 1, 2].map(() => controlTrial(true, a, 'near')),
        c13Showed,
      ).verdict,
    ).toBe('does not hold');
  });
  it('a SYN above the old space, or an old connection with timestamps, is no control', () => {
    const above = newSynOnWire(
      wire([...FIRST, { from: 'p', flags: 'S', seq: 200_000 }, { from: 'k', flags: 'SA', seq: 70_000, ack: 200_001 }]),
    );
    expect(
      judge(
        'C14',
        [0, 1, 2].map(() => controlTrial(true, above, 'far')),
        c13Showed,
      ).evidence,
    ).toMatch(/new SYN lay below the old connection's sequence space \(in the capture\) — SYN #10 198993 from the kernel's RCV.NXT/);
    const withTs = FIRST.map((s) => ({ ...s, tsval: 100 }));
    const ts = newSynOnWire(wire([...withTs, { ...NEW_SYN, tsval: 200 }, { from: 'k', flags: 'SA', seq: 70_000, ack: 901, tsval: 300 }]));
    expect(
      judge(
        'C14',
        [0, 1, 2].map(() => controlTrial(true, ts, 'near')),
        c13Showed,
      ).evidence,
    ).toMatch(/the old connection used no timestamps .* — timestamps on/);
  });
});

describe('lab 11, T8: a counter the kernel does not have is not a 0', () => {
  const o: Outcome = {
    peerPort: 45000,
    isnAlign: 'none',
    clockBackMs: null,
    firstRead: 'AAAABBBBCCCC',
    firstBytes: 0,
    firstMs: 0,
    timeWaitBeforeSecond: false,
    peerSegments: ['AAAA', 'BBBB', 'CCCC'],
    heldRecorded: true,
    opened: true,
    timestamps: true,
    kernelRead: 'NEW!',
    kernelIsnGrowth: 0,
    oldAckLead: -1,
    secondBytes: 0,
    secondReceived: 0,
    oldSeqOffset: 0,
    windowAtReplay: 65535,
    pawsEstab: 1,
  };
  const tsOn = newSynOnWire(
    wire([
      ...FIRST.map((s) => ({ ...s, tsval: 100 })),
      { ...NEW_SYN, tsval: 200 },
      { from: 'k', flags: 'SA', seq: 70_000, ack: 901, tsval: 300 },
    ]),
  );
  it('PAWSEstab counted: holds', () => {
    expect(
      judge(
        'T8',
        [0, 1, 2].map(() => pawsTrial(o, tsOn)),
      ).verdict,
    ).toBe('holds');
  });
  it('PAWSEstab missing from /proc/net/netstat: not tested, never "does not hold"', () => {
    const d = judge(
      'T8',
      [0, 1, 2].map(() => pawsTrial({ ...o, pawsEstab: null }, tsOn)),
    );
    expect(d.verdict).toBe('not tested');
    expect(d.evidence).toMatch(/the kernel counts TcpExt.PAWSEstab — n\/a \(no such counter here\)/);
  });
});

describe("a new SYN and the kernel's answer, from the capture (labs 11 and 12)", () => {
  it('T10: the new SYN’s TSval against the newest of the old connection', () => {
    const old = FIRST.map((s) => ({ ...s, tsval: s.from === 'p' ? 1000 + s.seq - 1000 : 7 }));
    expect(newSynOnWire(wire([...old, { ...NEW_SYN, tsval: 2000 }])).tsvalLead).toBe(2000 - 1006);
    // an older timestamp (what ts_lead_ms < 0 forces): the lead is negative, and lab 12 does not count the probe
    expect(newSynOnWire(wire([...old, { ...NEW_SYN, tsval: 500 }])).tsvalLead).toBe(500 - 1006);
    // wrapping past 2^32 is still newer
    expect(newSynOnWire(wire([...FIRST.map((s) => ({ ...s, tsval: 0xffff_fff0 })), { ...NEW_SYN, tsval: 5 }])).tsvalLead).toBe(21);
  });
  it('T9: a refused SYN is the kernel’s ACK of the old connection, and no answer is no refusal', () => {
    expect(newSynOnWire(wire([...FIRST, NEW_SYN, { from: 'k', flags: 'A', seq: 5007, ack: 1007 }]))).toMatchObject({
      synAck: null,
      refusal: 11,
      oldTimestamps: false,
      synVsRcvNxt: -107,
    });
    expect(newSynOnWire(wire([...FIRST, NEW_SYN]))).toMatchObject({ synAck: null, refusal: null });
  });
});

describe('lab 13: the RST at RCV.NXT, and which socket takes a late segment', () => {
  it('T11: the RST must be in the capture at the kernel’s RCV.NXT (the ACK of its last segment)', () => {
    expect(rstOnWire(wire([...FIRST, { from: 'p', flags: 'R', seq: 1007 }]))).toMatchObject({ rcvNxt: 1007, rst: { seq: 1007 } });
    const beyond = rstOnWire(wire([...FIRST, { from: 'p', flags: 'R', seq: 10_001_007 }]));
    expect((beyond.rst!.seq as number) - beyond.rcvNxt!).toBe(10_000_000);
    expect(rstOnWire(wire(FIRST))).toEqual({ rst: null, rcvNxt: null }); // no RST crossed: nothing to judge
  });
  const b: Beside = {
    late: 'data',
    port: 7000,
    peerPort: 45000,
    bind: 'OK',
    listen: 'OK',
    timeWaitBefore: true,
    listeningBefore: true,
    timeWaitAfter: true,
    listeningAfter: true,
    accept: 'EAGAIN',
  };
  const late: Seg = { from: 'p', flags: 'PA', seq: 1001, ack: 5001, len: 5 };
  it('C19: the TIME_WAIT’s ACK of the old connection means the TIME_WAIT took it; on Linux the claim (BSD’s) differs by OS', () => {
    const t = lateSegmentTaker(wire([...FIRST, late, { from: 'k', flags: 'A', seq: 5007, ack: 1007 }]), b);
    expect(t).toMatchObject({ byTimeWait: true, byNewSocket: false });
    expect(
      judge(
        'C19',
        [0, 1, 2].map(() => besideTrial(b, t, true)),
      ).verdict,
    ).toBe('differs by OS');
  });
  it('C19: an RST from the new listener would show the new socket took it — and one instance makes the "may" claim hold', () => {
    const taken = lateSegmentTaker(wire([...FIRST, late, { from: 'k', flags: 'R', seq: 5001 }]), b);
    expect(taken).toMatchObject({ byTimeWait: false, byNewSocket: true });
    const notTaken = lateSegmentTaker(wire([...FIRST, late, { from: 'k', flags: 'A', seq: 5007, ack: 1007 }]), b);
    expect(judge('C19', [besideTrial(b, notTaken, true), besideTrial(b, taken, true), besideTrial(b, notTaken, true)]).verdict).toBe(
      'holds',
    );
  });
  it('C19: no answer at all decides nothing; a bind() that failed is no setup', () => {
    const silent = lateSegmentTaker(wire([...FIRST, late]), b);
    expect(
      judge(
        'C19',
        [0, 1, 2].map(() => besideTrial(b, silent, true)),
      ).evidence,
    ).toMatch(/the kernel showed which socket took it — late data #10 → no answer/);
    const failed = { ...b, bind: 'EADDRINUSE', listen: 'EADDRINUSE', listeningBefore: false };
    expect(
      judge(
        'C19',
        [0, 1, 2].map(() => besideTrial(failed, silent, false)),
      ).evidence,
    ).toMatch(/SO_REUSEADDR off: bind\(\) → EADDRINUSE/);
  });
});

describe('lab 14: challenge ACKs are counted in the capture, however late', () => {
  const EST: Seg[] = [
    { from: 'k', flags: 'S', seq: 5000, at: 0 },
    { from: 'p', flags: 'SA', seq: 1000, ack: 5001, at: 1 },
    { from: 'k', flags: 'A', seq: 5001, ack: 1001, at: 2 },
  ];
  it('an answer 2 s after the probe (past any live window) is counted; one after the next probe is not this probe’s', () => {
    const w = wire([
      ...EST,
      { from: 'p', flags: 'R', seq: 2001, at: 100 },
      { from: 'k', flags: 'A', seq: 5001, ack: 1001, at: 2100 },
      { from: 'p', flags: 'S', seq: 6001, at: 2700 },
      { from: 'k', flags: 'A', seq: 5001, ack: 1001, at: 2701 },
    ]);
    const rst = challengeAcks(w, (s) => isProbe('rst', s));
    expect(rst.probes.map((s) => s.number)).toEqual([4]);
    expect(rst.acks.map((s) => s.number)).toEqual([5]);
    expect(challengeAcks(w, (s) => isProbe('syn', s)).acks.map((s) => s.number)).toEqual([7]);
  });
  it('no answer, and no probe, are told apart', () => {
    const w = wire([...EST, { from: 'p', flags: 'R', seq: 2001 }]);
    expect(challengeAcks(w, (s) => isProbe('rst', s))).toMatchObject({ acks: [] });
    expect(challengeAcks(w, (s) => isProbe('syn', s)).probes).toEqual([]);
  });
});

describe('lab 14: a probe that drew no answer counts only when it could be taken to the check, and nothing says it was not', () => {
  // a connection that negotiated timestamps: both SYNs carry one
  const TS_EST: Seg[] = [
    { from: 'k', flags: 'S', seq: 5000, tsval: 70_000, at: 0 },
    { from: 'p', flags: 'SA', seq: 1000, ack: 5001, tsval: 9000, at: 1 },
    { from: 'k', flags: 'A', seq: 5001, ack: 1001, tsval: 70_002, at: 2 },
  ];
  const synProbe = (tsval?: number): TupleOnWire =>
    wire([...TS_EST, { from: 'p', flags: 'S', seq: 6001, ...(tsval === undefined ? {} : { tsval }), at: 600 }]);
  const probeOf = (w: TupleOnWire) => challengeAcks(w, (s) => isProbe('syn', s)).probes[0]!;
  /** counters before and after a round of five probes of `kind`, as ctx.counters() gives them */
  const round = (kind: Kind, counters: Record<string, [number, number]>) =>
    roundCount(
      kind,
      5,
      Object.fromEntries(Object.entries(counters).map(([k, [b]]) => [k, b])),
      Object.fromEntries(Object.entries(counters).map(([k, [, a]]) => [k, a])),
    );

  it('without a timestamp on a timestamped connection (RFC 7323 §3.2: FreeBSD 13 drops it unseen) the trial is left out', () => {
    const w = synProbe();
    const p = probeTimestamp(w, probeOf(w));
    expect(p).toMatchObject({ met: false, measured: 'no timestamp option on #4, on a connection whose SYNs both carried one' });
  });
  it('a current timestamp passes; one older than the peer’s last (PAWS) does not; no timestamps negotiated needs none', () => {
    const w = synProbe(9600);
    expect(probeTimestamp(w, probeOf(w))).toMatchObject({ met: true, measured: "TSval 9600, +600 on the peer's last (#2)" });
    const old = synProbe(8000);
    expect(probeTimestamp(old, probeOf(old))).toMatchObject({ met: false, measured: "TSval 8000, -1000 on the peer's last (#2)" });
    const plain = wire([...TS_EST.map(({ tsval: _, ...seg }) => seg), { from: 'p', flags: 'S', seq: 6001 }]);
    expect(probeTimestamp(plain, probeOf(plain))).toMatchObject({ met: true, measured: 'no timestamps negotiated' });
  });
  it('no answer: where the system counts the check, its counters must have moved for every probe of the round', () => {
    // FreeBSD's SYN probes before they carried timestamps: no answer, and tcp.badsyn did not move
    const unseen = round('syn', { 'FreeBSD.tcp.badsyn': [7, 7], 'FreeBSD.tcp.rcvtotal': [40, 45] });
    expect(unseen.counters).toEqual([{ name: 'FreeBSD.tcp.badsyn', change: 0 }]);
    expect(probeTaken(false, 'ESTABLISHED', unseen)).toMatchObject({
      met: false,
      measured: 'no answer; FreeBSD.tcp.badsyn +0 for 5 SYN probes',
    });
    // some moved, not all: which probes were taken cannot be told, so none counts
    expect(
      probeTaken(false, 'ESTABLISHED', round('rst', { 'TcpExt.TCPChallengeACK': [0, 2], 'TcpExt.TCPACKSkippedChallenge': [0, 1] })).met,
    ).toBe(false);
    // every probe reached the check (Linux: answered or skipped by the per-socket rate limit)
    expect(
      probeTaken(false, 'ESTABLISHED', round('rst', { 'TcpExt.TCPChallengeACK': [0, 2], 'TcpExt.TCPACKSkippedChallenge': [0, 3] })),
    ).toMatchObject({ met: true });
    // the kernel's own signs need no counter: its answer, or its reset of the connection
    expect(probeTaken(true, 'ESTABLISHED', round('syn', {})).met).toBe(true);
    expect(probeTaken(false, 'CLOSE', round('syn', {})).met).toBe(true);
  });
  it('a counter of the answer is no counter of the check: Linux 6.1 drops an ACK beyond SND.NXT at the check, uncounted, and that silence is judged', () => {
    // 6.1 in a guest: no answer to 5 ACK probes, TCPChallengeACK +0 — not a sign the probes were dropped before the check
    const linux61 = round('ack', {
      'TcpExt.TCPChallengeACK': [3, 3],
      'TcpExt.TCPACKSkippedChallenge': [0, 0],
      'TcpExt.TCPSYNChallenge': [5, 5],
    });
    expect(linux61.counters).toEqual([]);
    expect(probeTaken(false, 'ESTABLISHED', linux61)).toMatchObject({
      met: true,
      measured: `no answer; no counter of the check here (${CHECKED_BY.ack.join(', ')})`,
    });
    expect(
      judge(
        'T14',
        [0, 1, 2, 3, 4].map(() => ({ requires: [probeTaken(false, 'ESTABLISHED', linux61)], agrees: false })),
      ).verdict,
    ).toBe('does not hold');
    // NetBSD counts its ACK check (tcp.rcvacktoomuch), so there an uncounted probe is not judged
    expect(probeTaken(false, 'ESTABLISHED', round('ack', { 'NetBSD.tcp.rcvacktoomuch': [0, 4] }))).toMatchObject({
      met: false,
      measured: 'no answer; NetBSD.tcp.rcvacktoomuch +4 for 5 ACK probes',
    });
    // and its RST and SYN checks count nothing: a NetBSD counter of another kind is not theirs
    expect(round('syn', { 'NetBSD.tcp.rcvacktoomuch': [0, 5] }).counters).toEqual([]);
  });
  it('another OS’s reading throws on a Linux counter it lacks: the round only asks `in`', () => {
    const strict = (values: Record<string, number>) =>
      new Proxy(values, {
        get: (t, k) => {
          if (typeof k === 'string' && !(k in t) && k.startsWith('TcpExt.')) throw new Error(`${k}: no equivalent`);
          return Reflect.get(t, k) as unknown;
        },
      });
    const r = roundCount('rst', 5, strict({ 'FreeBSD.tcp.badrst': 1 }), strict({ 'FreeBSD.tcp.badrst': 6 }));
    expect(r.counters).toEqual([{ name: 'FreeBSD.tcp.badrst', change: 5 }]);
  });
  it('through the verdict rules: unanswered probes the kernel’s counters say never reached the check are not tested; taken ones do not hold', () => {
    const w = synProbe(9600);
    const trial = (taken: ReturnType<typeof probeTaken>): Trial => ({ requires: [probeTimestamp(w, probeOf(w)), taken], agrees: false });
    const unseen = round('syn', { 'FreeBSD.tcp.badsyn': [7, 7] });
    const d = judge(
      'T13',
      [0, 1, 2, 3, 4].map(() => trial(probeTaken(false, 'ESTABLISHED', unseen))),
    );
    expect(d.verdict).toBe('not tested');
    expect(d.evidence).toMatch(
      /^precondition failed in all 5 trials: no sign on the kernel's side that the probe was dropped before RFC 5961's check .* — no answer; FreeBSD.tcp.badsyn \+0 for 5 SYN probes/,
    );
    const taken = round('syn', { 'TcpExt.TCPSYNChallenge': [0, 5] });
    expect(
      judge(
        'T13',
        [0, 1, 2, 3, 4].map(() => trial(probeTaken(false, 'ESTABLISHED', taken))),
      ).verdict,
    ).toBe('does not hold');
    const noTs = synProbe();
    expect(
      judge(
        'T13',
        [0, 1, 2].map(() => ({ requires: [probeTimestamp(noTs, probeOf(noTs)), probeTaken(false, 'ESTABLISHED', taken)], agrees: false })),
      ).evidence,
    ).toMatch(/no timestamp option on #4/);
  });
});

const run = privileged();

describe.skipIf(!run)('against the kernel: a precondition made impossible gives "not tested", with the numbers', () => {
  let results: Map<string, LabResult>;
  beforeAll(() => {
    // lab 12: the new SYN's timestamp 100 s older; lab 13: the new socket without SO_REUSEADDR
    const r = runCli(
      [
        'run',
        '12',
        '13',
        '--json',
        '--out',
        tmpDir('judging-a'),
        '--set',
        'ts_lead_ms=-100000',
        '--set',
        'beside_reuseaddr=off',
        '--set',
        'trials=3',
      ],
      { timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    results = new Map((JSON.parse(r.stdout) as LabResult[]).map((x) => [x.lab, x]));
  }, 150_000);
  const claim = (lab: string, id: string) => results.get(lab)!.claims.find((c) => c.id === id)!;

  it('lab 12, T10: an older timestamp is no test of "a newer timestamp suffices"; T9 is still judged', () => {
    const t10 = claim('12', 'T10');
    expect(t10.verdict, t10.evidence).toBe('not tested');
    expect(t10.evidence).toMatch(
      /the new SYN's timestamp was newer than the old connection's last \(TSvals in the capture\) — TSval -\d+ from the newest of the old connection/,
    );
    expect(claim('12', 'T9')).toMatchObject({ verdict: 'holds', trials: { agree: 6, valid: 6, excluded: 0 } });
  });
  it('lab 13, C19: without SO_REUSEADDR the new socket cannot bind beside the TIME_WAIT; T11 is still judged', () => {
    const c19 = claim('13', 'C19');
    expect(c19.verdict, c19.evidence).toBe('not tested');
    expect(c19.evidence).toMatch(/SO_REUSEADDR off: bind\(\) → EADDRINUSE/);
    expect(claim('13', 'T11')).toMatchObject({ verdict: 'holds', trials: { agree: 6, valid: 6, excluded: 0 } });
  });
  it('isn_align=clock on the host: a one-line error before anything is sent (twlab never sets the host clock)', () => {
    const r = runCli(['run', '11', '--json', '--set', 'isn_align=clock', '--out', tmpDir('clock')], { timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.includes('isn_align=clock')),
    ).toEqual([expect.stringMatching(/isn_align=clock needs a realtime clock the lab may set: only a --kernel guest's/)]);
  });
});
