// Lab 14 — blind-attack defences on an established connection (RFC 5961).
//
// Question: what does the kernel answer to an RST that is in the window but not exactly at
// RCV.NXT, a SYN on an established four-tuple, and an ACK for data it never sent — and how are
// those answers (challenge ACKs) rate-limited? Each probe is sent on `trials` connections; on
// one connection the probes are spaced beyond the per-socket rate limit, so each may be answered.
// The answers are counted in the capture after the variant, never in a live time window: a late
// answer is still an answer. On a connection that negotiated timestamps every probe carries one,
// as a real peer's segment would (RFC 7323 §3.2 lets a stack drop a segment without one before
// any other check: FreeBSD 13 does). A probe that drew no answer counts against a claim only when
// the kernel's side does not say it was dropped before RFC 5961's check: where the system counts
// that check, its counters must have moved for every probe of the round.
import {
  defineLab,
  kernelConnects,
  NO_FLAGS,
  requires,
  seqAdd,
  seqDiff,
  seqEq,
  signed,
  type Connection,
  type CraftedSegment,
  type FlowSegment,
  type KernelClient,
  type Precondition,
  type SegmentPattern,
  type Trial,
  type TupleOnWire,
  kOfN,
  distinct,
  sum,
} from '../src/lab';

export default defineLab({
  id: '14',
  slug: 'challenge-ack',
  title: 'Challenge ACKs: blind-attack defences',
  shows: 'an in-window RST, a SYN and an ACK beyond SND.NXT each draw a challenge ACK; a burst shows the per-socket rate limit',
  showsInDetail:
    'RFC 5961 on established connections: in-window RST, SYN, ACK beyond SND.NXT, and a burst to show the rate limit; the ' +
    'challenge ACKs counted in the capture',
  question: 'How does Linux answer segments a blind attacker would send on an established connection, and how often?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'invalid_ratelimit',
      kind: 'int',
      default: 500,
      min: 0,
      max: 10_000,
      unit: 'ms',
      sysctl: 'net.ipv4.tcp_invalid_ratelimit',
      claims: [],
      help: 'net.ipv4.tcp_invalid_ratelimit: at most one challenge ACK per socket per this many ms',
    },
    {
      name: 'spacing_ms',
      kind: 'int',
      default: 600,
      min: 0,
      max: 20_000,
      unit: 'ms',
      help: 'time between two probes on one connection (below invalid_ratelimit the second may go unanswered by design)',
    },
    { name: 'burst', kind: 'int', default: 50, min: 1, max: 2000, help: 'in-window RSTs sent, one every 20 ms, to see the rate limit' },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'connections each probe is sent on' },
  ],
  claims: [
    'T12', // An RST inside the window but not at RCV.NXT draws a challenge ACK instead of a reset.
    'T13', // A SYN on an established four-tuple draws a challenge ACK.
    'T14', // An ACK beyond SND.NXT is dropped and answered with an ACK.
  ],
  questions: [
    {
      id: 'q1',
      text: 'On an established connection an RST arrives inside the window, but not exactly at RCV.NXT. What does the kernel do?',
      choices: ['resets the connection', 'answers with an ACK and keeps the connection', 'ignores it silently'],
    },
  ],
  recordSysctls: ['net.ipv4.tcp_challenge_ack_limit'],
  course: {
    order: 170,
    teaches: 'How Linux answers the segments a blind attacker would send, and how often.',
    look: "probes.pcap: each probe and the kernel's answer right after it.",
  },
  async run(ctx) {
    const spacing = ctx.int('spacing_ms');
    const ratelimit = ctx.int('invalid_ratelimit');
    const n = ctx.int('trials');
    const { trials: probes, rounds } = await ctx.variant('probes', { trials: n, spacing_ms: spacing }, async () => {
      const conns: KernelClient[] = [];
      for (let i = 0; i < n; i++) conns.push(await kernelConnects(ctx, 80));
      const last = new Map<number, number>();
      const out: Probe[] = [];
      const rounds: Round[] = [];
      for (const kind of ['rst', 'syn', 'ack'] as const) {
        await ctx.sleep(spacing);
        const before = ctx.counters();
        // one probe per connection, at the same moment: each socket has its own rate limit
        const round = await Promise.all(
          conns.map(async ({ k, conn, local }): Promise<Probe> => {
            const stateBefore = k.tcpInfo().info?.state;
            const prev = last.get(local.port);
            const now = performance.now();
            last.set(local.port, now);
            ctx.peer().sendSegment(conn.tuple, craft(kind, conn));
            // the first answer (waiting at most what the spacing leaves), then a little longer for any second one
            const first = await ctx.peer().expect(challengeAck(conn), Math.max(150, spacing - 50));
            const second = await ctx.peer().expect(challengeAck(conn), 100);
            const answers = Number(first.came) + Number(second.came);
            const p: Probe = {
              kind,
              local: local.port,
              peerPort: conn.tuple.local.port,
              stateBefore,
              sincePreviousMs: prev === undefined ? null : Math.round(now - prev),
              answersSeenLive: answers,
              stateAfter: k.tcpInfo().info?.state,
              peerReset: conn.resetReason,
            };
            if (kind === 'ack') {
              const r = await k.recv(100, { timeoutMs: 200 });
              p.injectedRead = r.ret > 0 ? r.data.toString() : '';
            }
            return p;
          }),
        );
        out.push(...round);
        rounds.push(roundCount(kind, round.length, before, ctx.counters()));
      }
      for (const { k } of conns) k.closeNow();
      return { trials: out, rounds };
    });
    const rate = await ctx.variant('rate-limit', { burst: ctx.int('burst') }, async () => {
      const { k, conn, local } = await kernelConnects(ctx, 81);
      await ctx.sleep(Math.max(spacing, ratelimit + 100));
      const t0 = performance.now();
      let answers = 0;
      for (let i = 0; i < ctx.int('burst'); i++) {
        ctx.peer().sendSegment(conn.tuple, {
          seq: seqAdd(conn.tcb.sndNxt, 1000 + i),
          flags: { ...NO_FLAGS, rst: true },
          options: tsNow(conn, false),
        });
        const answer = ctx.peer().expect(challengeAck(conn), 20);
        await ctx.sleep(20);
        if ((await answer).came) answers++;
      }
      if ((await ctx.peer().expect(challengeAck(conn), 100)).came) answers++;
      return {
        sent: ctx.int('burst'),
        spanMs: Math.round(performance.now() - t0 - 100),
        answersSeenLive: answers,
        local: local.port,
        stateAfter: k.tcpInfo().info?.state,
      };
    });
    const onWire = (variant: string, local: number, peerPort: number): TupleOnWire =>
      ctx.onWire(variant, { address: ctx.addr.host, port: local }, { address: ctx.addr.peer, port: peerPort });
    // each probe's answers, counted in the capture
    const answersOf = new Map<Probe, { w: TupleOnWire; probe: FlowSegment | null; acks: FlowSegment[] }>();
    for (const p of probes) {
      const w = onWire('probes', p.local, p.peerPort);
      const { probes: sent, acks } = challengeAcks(w, (s) => isProbe(p.kind, s));
      answersOf.set(p, { w, probe: sent[0] ?? null, acks });
    }
    const roundOf = (kind: Kind): Round => rounds.find((r) => r.kind === kind)!;
    const answers = (p: Probe): number => answersOf.get(p)!.acks.length;
    const burst = challengeAcks(onWire('rate-limit', rate.local, 81), (s) => isProbe('rst', s));

    const alive = (p: Probe): boolean => p.stateAfter === 'ESTABLISHED' && !p.peerReset;
    const conditions = (p: Probe): Trial['requires'] => {
      const { w, probe } = answersOf.get(p)!;
      return [
        requires('the connection was ESTABLISHED before the probe', p.stateBefore === 'ESTABLISHED', p.stateBefore ?? 'no socket'),
        requires('the probe is in the capture', probe !== null, probe ? `#${probe.number}` : 'not found'),
        requires(
          `no earlier probe on this connection within tcp_invalid_ratelimit (${ratelimit} ms)`,
          p.sincePreviousMs === null || p.sincePreviousMs > ratelimit,
          p.sincePreviousMs === null ? 'the first probe' : `${p.sincePreviousMs} ms after the previous one`,
        ),
        ...(probe ? [probeTimestamp(w, probe)] : []),
        probeTaken(answers(p) >= 1, p.stateAfter, roundOf(p.kind)),
      ];
    };
    const of = (kind: Kind): Probe[] => probes.filter((p) => p.kind === kind);
    const answered = (kind: Kind): string =>
      `${kOfN(of(kind), (p) => answers(p) >= 1)} answered with a challenge ACK, ${of(kind).filter(alive).length} still ESTABLISHED`;
    ctx.judge('T12', {
      trials: of('rst').map((p) => ({ requires: conditions(p), agrees: answers(p) >= 1 && alive(p) })),
      evidence: `in-window RST 1000 past RCV.NXT: ${answered('rst')}; ${roundText(roundOf('rst'))}`,
    });
    ctx.judge('T13', {
      trials: of('syn').map((p) => ({ requires: conditions(p), agrees: answers(p) >= 1 && alive(p) })),
      evidence: `SYN on the established four-tuple: ${answered('syn')}; ${roundText(roundOf('syn'))}`,
    });
    const change = (variant: string, name: string): string => `${name} ${signed(ctx.counterChange(variant, name))}`;
    ctx.judge('T14', {
      trials: of('ack').map((p) => ({ requires: conditions(p), agrees: answers(p) >= 1 && p.injectedRead === '' && alive(p) })),
      evidence:
        `ACK 100000 beyond SND.NXT carrying "evil": ${answered('ack')}; the application ` +
        `read ${distinct(of('ack').map((p) => JSON.stringify(p.injectedRead)))}; ${roundText(roundOf('ack'))}`,
    });
    const rstFates = [
      ...new Set(
        of('rst').map((p) =>
          !alive(p) ? 'resets the connection' : answers(p) >= 1 ? 'answers with an ACK and keeps the connection' : 'ignores it silently',
        ),
      ),
    ];
    ctx.answer('q1', {
      answer: rstFates[0] ?? '',
      why:
        `measured on ${of('rst').length} connections: ${answered('rst')}` +
        (rstFates[0] === 'answers with an ACK and keeps the connection'
          ? ' (RFC 5961 §3: the challenge ACK lets a real peer resend its RST at RCV.NXT)'
          : ''),
      frames: [ctx.framesWhere('probes', (s) => s.flags === 'RST' || s.marks.includes('challenge-ack'))],
      requires: [
        requires('every probe gave the same answer', rstFates.length === 1, rstFates.join(' / ')),
        requires(
          'each connection was ESTABLISHED before the probe',
          of('rst').every((p) => p.stateBefore === 'ESTABLISHED'),
          of('rst')
            .map((p) => p.stateBefore)
            .join(','),
        ),
      ],
    });
    ctx.print(`Lab 14 — ${this.title} (${n} connections, probes ${spacing} ms apart)`);
    ctx.print(`in-window RST             → ${answered('rst')}`);
    ctx.print(`SYN when established      → ${answered('syn')}`);
    ctx.print(
      `ACK beyond SND.NXT + data → ${answered('ack')}; data read: ${distinct(of('ack').map((p) => JSON.stringify(p.injectedRead)))}`,
    );
    ctx.print(
      `rate limit: ${burst.probes.length} in-window RSTs ` +
        `over ${rate.spanMs} ms drew ${burst.acks.length} challenge ACKs (in the capture) ` +
        `(tcp_invalid_ratelimit ${ratelimit} ms; ${change('rate-limit', 'TcpExt.TCPChallengeACK')}, ` +
        `${change('rate-limit', 'TcpExt.TCPACKSkippedChallenge')})`,
    );
    ctx.print();
    ctx.concludeClaims();
  },
});

export type Kind = 'rst' | 'syn' | 'ack';

interface Probe {
  kind: Kind;
  local: number;
  /** the peer's port of this connection (the capture's four-tuple is host:local ↔ peer:peerPort) */
  peerPort: number;
  stateBefore: string | undefined;
  /** ms since the previous probe on this connection (null for the first) */
  sincePreviousMs: number | null;
  /** answers the peer saw while the lab waited (only paces the probes; the verdict counts the capture's) */
  answersSeenLive: number;
  stateAfter: string | undefined;
  peerReset: string | null;
  /** the ACK probe carries "evil": what the application then read */
  injectedRead?: string;
}

/**
 * Counters that count a probe of each kind reaching the connection's RFC 5961 check, whatever the
 * check then does (answer, hold back by a rate limit, drop), by the names a system's counters go by
 * (ctx.counters()); a system has some of them, or none for a kind. A counter of the answer alone
 * is not one. Linux: an in-window RST not at RCV.NXT goes to tcp_send_challenge_ack(), which
 * counts TCPChallengeACK or TCPACKSkippedChallenge (nothing once the host-wide
 * tcp_challenge_ack_limit runs out); a SYN counts TCPSYNChallenge first; an ACK beyond SND.NXT
 * has none: 6.1 drops it in tcp_ack() uncounted (RFC 793's rule), 6.18 answers it and counts the
 * answer in TCPChallengeACK. FreeBSD 13's tcp_do_segment(): badrst, badsyn, rcvacktoomuch.
 * NetBSD 7.99's tcp_input(): rcvacktoomuch only (its RST and SYN checks answer through
 * dropafterack_ratelim, which counts nothing).
 */
export const CHECKED_BY: Readonly<Record<Kind, readonly string[]>> = {
  rst: ['TcpExt.TCPChallengeACK', 'TcpExt.TCPACKSkippedChallenge', 'FreeBSD.tcp.badrst'],
  syn: ['TcpExt.TCPSYNChallenge', 'FreeBSD.tcp.badsyn'],
  ack: ['FreeBSD.tcp.rcvacktoomuch', 'NetBSD.tcp.rcvacktoomuch'],
};

/** One round of probes (one kind, one per connection, sent together) and how the system's CHECKED_BY counters moved over it. */
export interface Round {
  kind: Kind;
  probes: number;
  counters: Array<{ name: string; change: number }>;
}

export function roundCount(
  kind: Kind,
  probes: number,
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
): Round {
  // `in` first: another OS's reading throws on a Linux name it has no equivalent of
  return {
    kind,
    probes,
    counters: CHECKED_BY[kind]
      .filter((name) => name in before && name in after)
      .map((name) => ({ name, change: after[name]! - before[name]! })),
  };
}

const roundText = (r: Round): string =>
  r.counters.length
    ? `${r.counters.map((c) => `${c.name} ${signed(c.change)}`).join(', ')} for ${r.probes} ${r.kind.toUpperCase()} probes`
    : `no counter of the check here (${CHECKED_BY[r.kind].join(', ')})`;

/**
 * Where the kernel sent no answer, that must still be its answer to this probe, not a drop before
 * RFC 5961's check: it reset the connection (its own state), or — where the system counts the
 * check — its counters moved by every probe of the round (a counter cannot tell a round's probes
 * apart). A system that counts no such check is judged on the probe's own preconditions (the
 * capture's), and the evidence says so: Linux 6.1 drops an ACK beyond SND.NXT at that very check
 * without counting it, and that silence is its answer.
 */
export function probeTaken(answered: boolean, stateAfter: string | undefined, round: Round): Precondition {
  const what =
    "no sign on the kernel's side that the probe was dropped before RFC 5961's check (an answer, a reset, or its counters of the " +
    'check, where it has any, moving for every probe of the round)';
  if (answered) return requires(what, true, 'answered');
  if (stateAfter !== 'ESTABLISHED') return requires(what, true, `no answer; the connection is ${stateAfter ?? 'gone'}`);
  const taken = sum(round.counters, (c) => c.change);
  return requires(what, round.counters.length === 0 || taken >= round.probes, `no answer; ${roundText(round)}`);
}

/**
 * RFC 7323 §3.2: once both SYNs carried timestamps, a segment without one may be dropped before
 * any other check (FreeBSD 13 drops every one but an RST: net.inet.tcp.tolerate_missing_ts=0),
 * and one whose TSval is older than the last (PAWS, §5) likewise. From the capture: the probe
 * carries one, not older than the peer's last segment's.
 */
export function probeTimestamp(w: TupleOnWire, probe: FlowSegment): Precondition {
  const what =
    "the probe carries a timestamp where the connection negotiated them, not older than the peer's last (RFC 7323 §3.2, §5; in the " +
    'capture)';
  const syn = w.segments.find((s) => (s.flagBits & 18) === 2 && s.number < probe.number);
  const synAck = w.segments.find((s) => (s.flagBits & 18) === 18 && s.number < probe.number);
  if (!syn || !synAck) return requires(what, false, 'the handshake is not in the capture');
  if (syn.tsval < 0 || synAck.tsval < 0) return requires(what, true, 'no timestamps negotiated');
  if (probe.tsval < 0) return requires(what, false, `no timestamp option on #${probe.number}, on a connection whose SYNs both carried one`);
  const last = w.peerSent((s) => s.number < probe.number && s.tsval >= 0).pop();
  const lead = last ? seqDiff(probe.tsval, last.tsval) : 0; // TSvals wrap as sequence numbers do (RFC 7323 §5.2)
  return requires(what, lead >= 0, `TSval ${probe.tsval}, ${signed(lead)} on the peer's last (#${last?.number ?? '-'})`);
}

/**
 * A challenge ACK as the peer sees it: a bare ACK of RCV.NXT from the kernel on `conn`'s
 * four-tuple. Only to pace the probes (wait for the first answer, not longer); what is judged is
 * counted in the capture (challengeAcks).
 */
const challengeAck = (conn: Connection): SegmentPattern => ({ on: conn.tuple, flags: 'A', len: 0, ackNo: conn.tcb.sndNxt });

/** A probe of `kind` as the capture shows it: the peer's segment on the four-tuple. */
export const isProbe = (kind: Kind, s: FlowSegment): boolean =>
  kind === 'rst' ? (s.flagBits & 4) !== 0 : kind === 'syn' ? s.flags === 'SYN' : s.len === 4 && (s.flagBits & 16) !== 0;

/**
 * From the capture: the kernel's challenge ACKs to the peer's segments that pass `probe` — bare
 * ACKs of its RCV.NXT (the ACK of its last segment before the probe), sent after the first such
 * probe and before the next segment the peer sent that is no probe (or the capture's end).
 */
export function challengeAcks(w: TupleOnWire, probe: (s: FlowSegment) => boolean): { probes: FlowSegment[]; acks: FlowSegment[] } {
  const probes = w.peerSent(probe);
  if (!probes.length) return { probes, acks: [] };
  const from = probes[0]!.number;
  const rcvNxt = w.kernelRcvNxt(from);
  const next = w.peerSent((s) => s.number > from && !probe(s))[0]?.number ?? Infinity;
  const acks = w
    .kernelSent(from)
    .filter((s) => s.number < next && s.flagBits === 16 && s.len === 0 && rcvNxt !== null && seqEq(s.ack, rcvNxt));
  return { probes, acks };
}

/** The timestamps option the connection's own next segment would carry (none if not negotiated): a probe looks like the peer's. */
const tsNow = (c: Connection, ack: boolean) => c.tcb.timestampOptions(c.stack.clock.now(), ack);

const craft = (kind: Kind, c: Connection): CraftedSegment =>
  kind === 'rst'
    ? { seq: seqAdd(c.tcb.sndNxt, 1000), flags: { ...NO_FLAGS, rst: true }, options: tsNow(c, false) }
    : kind === 'syn'
      ? { seq: seqAdd(c.tcb.sndNxt, 5000), flags: { ...NO_FLAGS, syn: true }, window: 1000, options: tsNow(c, false) }
      : {
          seq: c.tcb.sndNxt,
          ack: seqAdd(c.tcb.rcvNxt, 100_000),
          flags: { ...NO_FLAGS, ack: true, psh: true },
          window: 1000,
          payload: new TextEncoder().encode('evil'),
          options: tsNow(c, true),
        };
