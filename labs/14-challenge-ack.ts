// Lab 14 — blind-attack defences on an established connection (RFC 5961).
//
// Question: what does the kernel answer to an RST that is in the window but not exactly at
// RCV.NXT, a SYN on an established four-tuple, and an ACK for data it never sent — and how are
// those answers (challenge ACKs) rate-limited? Each probe is sent on `trials` connections; on
// one connection the probes are spaced beyond the per-socket rate limit, so each may be answered.
// The answers are counted in the capture after the variant, never in a live time window: a late
// answer is still an answer.
import { defineLab, kernelConnects, NO_FLAGS, requires, signed, type Connection, type FlowSegment, type KernelClient, type LabContext, type Trial, type TupleOnWire } from '../src/lab';

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
 * Bare ACKs of RCV.NXT from the kernel on `conn`'s four-tuple, as the peer sees them while
 * `during` runs: only to pace the probes (wait for the first answer, not longer). What is judged
 * is counted in the capture (challengeAcks).
 */
async function countAnswers(ctx: LabContext, conn: Connection, during: (answers: () => number) => Promise<void>): Promise<number> {
  let answers = 0;
  const off = ctx.peer().onSegment((e) => {
    if (e.direction === 'in' && e.tuple.local.port === conn.tuple.local.port && e.tuple.remote.port === conn.tuple.remote.port && e.tcp.flags.ack && !e.tcp.flags.rst && e.tcp.payload.length === 0 && e.tcp.ack === conn.tcb.sndNxt) answers++;
  });
  try {
    await during(() => answers);
  } finally {
    off();
  }
  return answers;
}

/** A probe of `kind` as the capture shows it: the peer's segment on the four-tuple. */
export const isProbe = (kind: Kind, s: FlowSegment): boolean => (kind === 'rst' ? (s.flagBits & 4) !== 0 : kind === 'syn' ? s.flags === 'SYN' : s.len === 4 && (s.flagBits & 16) !== 0);

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
  const acks = w.kernelSent(from).filter((s) => s.number < next && s.flagBits === 16 && s.len === 0 && rcvNxt !== null && (s.ack as number) === rcvNxt);
  return { probes, acks };
}

const craft = (kind: Kind, c: Connection): Parameters<ReturnType<LabContext['peer']>['sendSegment']>[1] =>
  kind === 'rst'
    ? { seq: (c.tcb.sndNxt + 1000) as never, flags: { ...NO_FLAGS, rst: true } }
    : kind === 'syn'
      ? { seq: (c.tcb.sndNxt + 5000) as never, flags: { ...NO_FLAGS, syn: true }, window: 1000 }
      : { seq: c.tcb.sndNxt, ack: (c.tcb.rcvNxt + 100_000) as never, flags: { ...NO_FLAGS, ack: true, psh: true }, window: 1000, payload: new TextEncoder().encode('evil') };

export default defineLab({
  id: '14',
  slug: 'challenge-ack',
  title: 'Challenge ACKs: blind-attack defences',
  shows: 'an in-window RST, a SYN and an ACK beyond SND.NXT each draw a challenge ACK; a burst shows the per-socket rate limit',
  question: 'How does Linux answer segments a blind attacker would send on an established connection, and how often?',
  params: [
    { name: 'invalid_ratelimit', kind: 'int', default: 500, min: 0, max: 10_000, unit: 'ms', sysctl: 'net.ipv4.tcp_invalid_ratelimit', claims: [], help: 'net.ipv4.tcp_invalid_ratelimit: at most one challenge ACK per socket per this many ms' },
    { name: 'spacing_ms', kind: 'int', default: 600, min: 0, max: 20_000, unit: 'ms', help: 'time between two probes on one connection (below invalid_ratelimit the second may go unanswered by design)' },
    { name: 'burst', kind: 'int', default: 50, min: 1, max: 2000, help: 'in-window RSTs sent, one every 20 ms, to see the rate limit' },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'connections each probe is sent on' },
  ],
  claims: ['T12', 'T13', 'T14'],
  questions: [
    { id: 'q1', text: 'On an established connection an RST arrives inside the window, but not exactly at RCV.NXT. What does the kernel do?', choices: ['resets the connection', 'answers with an ACK and keeps the connection', 'ignores it silently'] },
  ],
  recordSysctls: ['net.ipv4.tcp_challenge_ack_limit'],
  async run(ctx) {
    const spacing = ctx.int('spacing_ms');
    const ratelimit = ctx.int('invalid_ratelimit');
    const n = ctx.int('trials');
    const probes = (
      await ctx.variant('probes', { trials: n, spacing_ms: spacing }, async () => {
        const conns: KernelClient[] = [];
        for (let i = 0; i < n; i++) conns.push(await kernelConnects(ctx, 80));
        const last = new Map<number, number>();
        const out: Probe[] = [];
        for (const kind of ['rst', 'syn', 'ack'] as const) {
          await ctx.sleep(spacing);
          // one probe per connection, at the same moment: each socket has its own rate limit
          const round = await Promise.all(
            conns.map(async ({ k, conn, local }): Promise<Probe> => {
              const stateBefore = k.tcpInfo().info?.state;
              const prev = last.get(local.port);
              const now = performance.now();
              last.set(local.port, now);
              const answers = await countAnswers(ctx, conn, async (seen) => {
                ctx.peer().sendSegment(conn.tuple, craft(kind, conn));
                // the first answer (waiting at most what the spacing leaves), then a little longer for any second one
                await ctx.waitUntil(() => seen() > 0, { timeoutMs: Math.max(150, spacing - 50), everyMs: 10 });
                await ctx.sleep(100);
              });
              const p: Probe = { kind, local: local.port, peerPort: conn.tuple.local.port, stateBefore, sincePreviousMs: prev === undefined ? null : Math.round(now - prev), answersSeenLive: answers, stateAfter: k.tcpInfo().info?.state, peerReset: conn.resetReason };
              if (kind === 'ack') {
                const r = await k.recv(100, { timeoutMs: 200 });
                p.injectedRead = r.ret > 0 ? r.data.toString() : '';
              }
              return p;
            }),
          );
          out.push(...round);
        }
        for (const { k } of conns) k.closeNow();
        return { trials: out };
      })
    ).trials as Probe[];
    const rate = await ctx.variant('rate-limit', { burst: ctx.int('burst') }, async () => {
      const { k, conn, local } = await kernelConnects(ctx, 81);
      await ctx.sleep(Math.max(spacing, ratelimit + 100));
      const t0 = performance.now();
      const answers = await countAnswers(ctx, conn, async () => {
        for (let i = 0; i < ctx.int('burst'); i++) {
          ctx.peer().sendSegment(conn.tuple, { seq: (conn.tcb.sndNxt + 1000 + i) as never, flags: { ...NO_FLAGS, rst: true } });
          await ctx.sleep(20);
        }
        await ctx.sleep(100);
      });
      return { sent: ctx.int('burst'), spanMs: Math.round(performance.now() - t0 - 100), answersSeenLive: answers, local: local.port, stateAfter: k.tcpInfo().info?.state };
    });
    const onWire = (variant: string, local: number, peerPort: number): TupleOnWire => ctx.onWire(variant, { address: ctx.addr.host4, port: local }, { address: ctx.addr.peer4, port: peerPort });
    // each probe's answers, counted in the capture
    const answersOf = new Map<Probe, { probe: FlowSegment | null; acks: FlowSegment[] }>();
    for (const p of probes) {
      const { probes: sent, acks } = challengeAcks(onWire('probes', p.local, p.peerPort), (s) => isProbe(p.kind, s));
      answersOf.set(p, { probe: sent[0] ?? null, acks });
    }
    const answers = (p: Probe): number => answersOf.get(p)!.acks.length;
    const burst = challengeAcks(onWire('rate-limit', rate.local as number, 81), (s) => isProbe('rst', s));

    const alive = (p: Probe): boolean => p.stateAfter === 'ESTABLISHED' && !p.peerReset;
    const conditions = (p: Probe): Trial['requires'] => [
      requires('the connection was ESTABLISHED before the probe', p.stateBefore === 'ESTABLISHED', p.stateBefore ?? 'no socket'),
      requires('the probe is in the capture', answersOf.get(p)!.probe !== null, answersOf.get(p)!.probe ? `#${answersOf.get(p)!.probe!.number}` : 'not found'),
      requires(
        `no earlier probe on this connection within tcp_invalid_ratelimit (${ratelimit} ms)`,
        p.sincePreviousMs === null || p.sincePreviousMs > ratelimit,
        p.sincePreviousMs === null ? 'the first probe' : `${p.sincePreviousMs} ms after the previous one`,
      ),
    ];
    const of = (kind: Kind): Probe[] => probes.filter((p) => p.kind === kind);
    const answered = (kind: Kind): string => `${of(kind).filter((p) => answers(p) >= 1).length}/${of(kind).length} answered with a challenge ACK, ${of(kind).filter(alive).length} still ESTABLISHED`;
    ctx.judge('T12', { trials: of('rst').map((p) => ({ requires: conditions(p), agrees: answers(p) >= 1 && alive(p) })), evidence: `in-window RST 1000 past RCV.NXT: ${answered('rst')}` });
    ctx.judge('T13', { trials: of('syn').map((p) => ({ requires: conditions(p), agrees: answers(p) >= 1 && alive(p) })), evidence: `SYN on the established four-tuple: ${answered('syn')}` });
    const change = (variant: string, name: string): string => `${name} ${signed(ctx.counterChange(variant, name))}`;
    ctx.judge('T14', {
      trials: of('ack').map((p) => ({ requires: conditions(p), agrees: answers(p) >= 1 && p.injectedRead === '' && alive(p) })),
      evidence: `ACK 100000 beyond SND.NXT carrying "evil": ${answered('ack')}; the application read ${[...new Set(of('ack').map((p) => JSON.stringify(p.injectedRead)))].join('/')}; ${change('probes', 'TcpExt.TCPChallengeACK')}`,
    });
    const rstFates = [...new Set(of('rst').map((p) => (!alive(p) ? 'resets the connection' : answers(p) >= 1 ? 'answers with an ACK and keeps the connection' : 'ignores it silently')))];
    ctx.answer('q1', {
      answer: rstFates[0] ?? '',
      why: `measured on ${of('rst').length} connections: ${answered('rst')}${rstFates[0] === 'answers with an ACK and keeps the connection' ? ' (RFC 5961 §3: the challenge ACK lets a real peer resend its RST at RCV.NXT)' : ''}`,
      frames: [ctx.framesWhere('probes', (s) => s.flags === 'RST' || s.marks.includes('challenge-ack'))],
      requires: [requires('every probe gave the same answer', rstFates.length === 1, rstFates.join(' / ')), requires('each connection was ESTABLISHED before the probe', of('rst').every((p) => p.stateBefore === 'ESTABLISHED'), of('rst').map((p) => p.stateBefore).join(','))],
    });
    ctx.print(`Lab 14 — ${this.title} (${n} connections, probes ${spacing} ms apart)`);
    ctx.print(`in-window RST             → ${answered('rst')}`);
    ctx.print(`SYN when established      → ${answered('syn')}`);
    ctx.print(`ACK beyond SND.NXT + data → ${answered('ack')}; data read: ${[...new Set(of('ack').map((p) => JSON.stringify(p.injectedRead)))].join('/')}`);
    ctx.print(
      `rate limit: ${burst.probes.length} in-window RSTs over ${rate.spanMs as number} ms drew ${burst.acks.length} challenge ACKs (in the capture) ` +
        `(tcp_invalid_ratelimit ${ratelimit} ms; ${change('rate-limit', 'TcpExt.TCPChallengeACK')}, ${change('rate-limit', 'TcpExt.TCPACKSkippedChallenge')})`,
    );
    ctx.print();
    ctx.concludeClaims();
  },
});
