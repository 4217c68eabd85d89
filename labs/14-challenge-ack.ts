// Lab 14 — blind-attack defences on an established connection (RFC 5961).
//
// Question: what does the kernel answer to an RST that is in the window but not exactly at
// RCV.NXT, a SYN on an established four-tuple, and an ACK for data it never sent — and how are
// those answers (challenge ACKs) rate-limited?
import { defineLab, kernelConnects, type Connection, type LabContext } from '../src/lab';

const CLAIMS = [
  { id: 'T12', text: 'An RST inside the window but not at RCV.NXT draws a challenge ACK instead of a reset.', source: 'RFC 5961 §3' },
  { id: 'T13', text: 'A SYN on an established four-tuple draws a challenge ACK.', source: 'RFC 5961 §4' },
  { id: 'T14', text: 'An ACK beyond SND.NXT is dropped and answered with an ACK.', source: 'RFC 5961 §5' },
] as const;

const NO = { fin: false, syn: false, rst: false, psh: false, ack: false, urg: false, ece: false, cwr: false };

interface Probe {
  answers: number;
  stateAfter: string | undefined;
  peerReset: string | null;
}

/** Sends one crafted segment on the connection's four-tuple; counts the kernel's bare ACKs of RCV.NXT in the next 150 ms. */
async function probe(ctx: LabContext, conn: Connection, k: { tcpInfo(): { info: { state: string } | null } }, craft: (c: Connection) => Parameters<ReturnType<LabContext['peer']>['sendSegment']>[1]): Promise<Probe> {
  const stack = ctx.peer();
  let answers = 0;
  const off = stack.onSegment((e) => {
    if (e.direction === 'in' && e.tuple.local.port === conn.tuple.local.port && e.tuple.remote.port === conn.tuple.remote.port && e.tcp.flags.ack && !e.tcp.flags.rst && e.tcp.payload.length === 0 && e.tcp.ack === conn.tcb.sndNxt) answers++;
  });
  stack.sendSegment(conn.tuple, craft(conn));
  await ctx.sleep(150);
  off();
  return { answers, stateAfter: k.tcpInfo().info?.state, peerReset: conn.resetReason };
}

export default defineLab({
  id: '14',
  slug: 'challenge-ack',
  title: 'Challenge ACKs: blind-attack defences',
  shows: 'an in-window RST, a SYN and an ACK beyond SND.NXT each draw a challenge ACK; a burst shows the per-socket rate limit',
  question: 'How does Linux answer segments a blind attacker would send on an established connection, and how often?',
  params: [
    { name: 'invalid_ratelimit', kind: 'int', default: 500, min: 0, max: 10_000, unit: 'ms', sysctl: 'net.ipv4.tcp_invalid_ratelimit', help: 'net.ipv4.tcp_invalid_ratelimit: at most one challenge ACK per socket per this many ms' },
    { name: 'burst', kind: 'int', default: 50, min: 1, max: 2000, help: 'in-window RSTs sent, one every 20 ms, to see the rate limit' },
  ],
  claims: CLAIMS,
  recordSysctls: ['net.ipv4.tcp_challenge_ack_limit'],
  async run(ctx) {
    const gap = ctx.int('invalid_ratelimit') + 100; // space the single probes beyond the rate limit
    const obs = await ctx.variant('probes', {}, async () => {
      const { k, conn } = await kernelConnects(ctx, 80);
      await ctx.sleep(gap);
      const rst = await probe(ctx, conn, k, (c) => ({ seq: (c.tcb.sndNxt + 1000) as never, flags: { ...NO, rst: true } }));
      await ctx.sleep(gap);
      const syn = await probe(ctx, conn, k, (c) => ({ seq: (c.tcb.sndNxt + 5000) as never, flags: { ...NO, syn: true }, window: 1000 }));
      await ctx.sleep(gap);
      const ack = await probe(ctx, conn, k, (c) => ({ seq: c.tcb.sndNxt, ack: (c.tcb.rcvNxt + 100_000) as never, flags: { ...NO, ack: true, psh: true }, window: 1000, payload: new TextEncoder().encode('evil') }));
      const injected = await k.recv(100, { timeoutMs: 200 });
      await ctx.sleep(gap);
      return { rst, syn, ack, injectedBytesRead: injected.ret > 0 ? injected.data.toString() : '' };
    });
    const rate = await ctx.variant('rate-limit', { burst: ctx.int('burst') }, async () => {
      const { k, conn } = await kernelConnects(ctx, 81);
      await ctx.sleep(gap);
      const stack = ctx.peer();
      let answers = 0;
      const off = stack.onSegment((e) => {
        if (e.direction === 'in' && e.tuple.local.port === conn.tuple.local.port && e.tcp.flags.ack && e.tcp.payload.length === 0 && e.tcp.ack === conn.tcb.sndNxt) answers++;
      });
      const t0 = performance.now();
      for (let i = 0; i < ctx.int('burst'); i++) {
        stack.sendSegment(conn.tuple, { seq: (conn.tcb.sndNxt + 1000 + i) as never, flags: { ...NO, rst: true } });
        await ctx.sleep(20);
      }
      const spanMs = Math.round(performance.now() - t0);
      await ctx.sleep(100);
      off();
      return { sent: ctx.int('burst'), spanMs, challengeAcks: answers, stateAfter: k.tcpInfo().info?.state };
    });
    const p = obs as unknown as { rst: Probe; syn: Probe; ack: Probe; injectedBytesRead: string; counters: Record<string, number> };
    const alive = (x: Probe): boolean => x.stateAfter === 'ESTABLISHED' && !x.peerReset;
    ctx.claim('T12', p.rst.answers >= 1 && alive(p.rst) ? 'holds' : 'does not hold', `in-window RST 1000 past RCV.NXT: ${p.rst.answers} challenge ACK, connection ${p.rst.stateAfter}`);
    ctx.claim('T13', p.syn.answers >= 1 && alive(p.syn) ? 'holds' : 'does not hold', `SYN on the established four-tuple: ${p.syn.answers} challenge ACK, connection ${p.syn.stateAfter}`);
    ctx.claim(
      'T14',
      p.ack.answers >= 1 && p.injectedBytesRead === '' && alive(p.ack) ? 'holds' : 'does not hold',
      `ACK 100000 beyond SND.NXT carrying "evil": ${p.ack.answers} ACK in answer; the application read ${JSON.stringify(p.injectedBytesRead)}; TcpExt.TCPChallengeACK +${p.counters['TcpExt.TCPChallengeACK'] ?? 0}`,
    );
    const rc = rate.counters as Record<string, number>;
    ctx.print(`Lab 14 — ${this.title}`);
    ctx.print(`in-window RST            → ${p.rst.answers} challenge ACK; still ${p.rst.stateAfter}`);
    ctx.print(`SYN when established     → ${p.syn.answers} challenge ACK; still ${p.syn.stateAfter}`);
    ctx.print(`ACK beyond SND.NXT + data → ${p.ack.answers} ACK; data read: ${JSON.stringify(p.injectedBytesRead)}`);
    ctx.print(
      `rate limit: ${rate.sent as number} in-window RSTs over ${rate.spanMs as number} ms drew ${rate.challengeAcks as number} challenge ACKs ` +
        `(tcp_invalid_ratelimit ${ctx.int('invalid_ratelimit')} ms; TcpExt.TCPChallengeACK +${rc['TcpExt.TCPChallengeACK'] ?? 0}, TCPACKSkippedChallenge +${rc['TcpExt.TCPACKSkippedChallenge'] ?? 0})`,
    );
    ctx.print();
    ctx.concludeClaims();
  },
});
