// Lab 06 — SO_LINGER {1,N}: a close() that waits.
//
// Question: with a linger time of N seconds, how long does close() block, what does it return,
// what goes on the wire when the time runs out with data still unsent, does that data still
// arrive, and how long is the TIME_WAIT that follows?
import { defineLab, kernelConnects, type LabContext } from '../src/lab';

const CLAIMS = [
  { id: 'C12', text: 'The linger time bounds how long the socket stays in TIME_WAIT.', source: 'seed comments (Mecki, for; user207421, against)' },
  { id: 'T4', text: 'When the linger timeout expires, the socket is closed forcefully and unsent data is lost.', source: 'seed §SO_REUSEADDR ("closed forcefully")' },
] as const;

const PORT = 80;

/** The peer stops reading with data queued in the kernel; close() with SO_LINGER {1,N}; the peer resumes after the timeout. */
async function stalledClose(ctx: LabContext, nonBlocking: boolean): Promise<Record<string, unknown>> {
  const linger = ctx.int('linger');
  const { k, conn, local } = await kernelConnects(ctx, PORT, { tcb: { rcvBuf: ctx.int('peer_window') }, onAccept: (c) => c.pauseReading() });
  conn.onEnd(() => conn.end());
  let queued = 0;
  for (;;) {
    const r = k.sendNow(new Uint8Array(Math.min(65536, ctx.int('unsent') - queued)));
    if (r.ret <= 0) break;
    queued += r.ret;
    if (queued >= ctx.int('unsent')) break;
  }
  await ctx.sleep(300); // the peer's window fills and shuts
  if (nonBlocking) k.setNonBlocking(true);
  k.setOption('SO_LINGER', { onoff: true, seconds: linger });
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 100);
  const closeStart = performance.now();
  const close = await k.close();
  clearInterval(ticker);
  const afterClose = ctx.table((e) => e.local.port === local.port && e.remote.port === PORT).map((e) => ({ state: e.state, timer: e.timer }));
  const framesAtClose = ctx.timeline.filter((e) => e.kind === 'frame').length;
  await ctx.sleep(1500); // what the orphan does after the timeout, before the peer resumes
  const framesWhileOrphan = ctx.timeline.filter((e) => e.kind === 'frame').length - framesAtClose;
  conn.resumeReading();
  const finished = await Promise.race([conn.waitFor('CLOSED').then(() => true), ctx.sleep(10_000).then(() => false)]);
  const tw = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === local.port)[0];
  return {
    linger,
    nonBlocking,
    queued,
    close: { ret: close.ret, errno: close.errno, elapsedMs: Math.round(close.elapsedMs) },
    closeWallMs: Math.round(performance.now() - closeStart),
    loopTicksDuringClose: ticks,
    kernelAfterClose: afterClose,
    framesWhileOrphan,
    peerReceived: conn.received,
    peerGotEverything: conn.received === queued,
    peerReset: conn.resetReason,
    peerStates: conn.history.map((h) => h.state),
    finished,
    timeWaitAfter: !!tw,
    timeWaitTimerMs: tw?.timerMs ?? null,
  };
}

export default defineLab({
  id: '06',
  slug: 'linger-timeout',
  title: 'SO_LINGER {1,N}: a close() that waits',
  shows: 'how long a lingering close() blocks, what it returns, what the kernel does when the time runs out, and the TIME_WAIT after',
  question: 'With SO_LINGER {1,N}, how long does close() block, what happens to unsent data when N runs out, and how long is the TIME_WAIT?',
  params: [
    { name: 'linger', kind: 'int', default: 3, min: 1, max: 120, unit: 'seconds', help: 'the linger time N of SO_LINGER {1,N}' },
    { name: 'unsent', kind: 'int', default: 65536, min: 1, max: 4 << 20, unit: 'bytes', help: 'data queued for a peer that has stopped reading' },
    { name: 'peer_window', kind: 'int', default: 4096, min: 0, max: 1 << 20, unit: 'bytes', help: "the peer's receive buffer while it stalls" },
  ],
  claims: CLAIMS,
  recordSysctls: ['net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_orphan_retries'],
  async run(ctx) {
    const linger = ctx.int('linger');
    const acked = await ctx.variant('all-acknowledged', { linger }, async () => {
      const { k, conn, local } = await kernelConnects(ctx, PORT, { onAccept: (c) => c.onEnd(() => c.end()) });
      await k.send(new Uint8Array(10_000));
      await ctx.waitUntil(() => k.tcpInfo().info?.unacked === 0, { timeoutMs: 3000 });
      k.setOption('SO_LINGER', { onoff: true, seconds: linger });
      const close = await k.close();
      await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(3000)]);
      const tw = await ctx.waitUntil(() => ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === local.port)[0], { timeoutMs: 2000 });
      return { linger, close: { ret: close.ret, errno: close.errno, elapsedMs: Math.round(close.elapsedMs) }, timeWaitTimerMs: tw?.timerMs ?? null, peerReceived: conn.received };
    });
    const stalled = await ctx.variant('peer-stalls', { linger }, () => stalledClose(ctx, false));
    const nonBlocking = await ctx.variant('non-blocking', { linger }, () => stalledClose(ctx, true));

    const stalledSent = ctx.sentBy('peer-stalls', ctx.addr.host4);
    const twMs = acked.timeWaitTimerMs as number | null;
    ctx.claim(
      'C12',
      twMs === null ? 'not tested' : twMs <= linger * 1000 + 1000 ? 'holds' : 'does not hold',
      `with SO_LINGER {1,${linger}} the close() returned after ${(acked.close as { elapsedMs: number }).elapsedMs} ms and the TIME_WAIT timer read ${twMs === null ? 'n/a' : `${(twMs / 1000).toFixed(1)} s`}`,
    );
    const lost = stalledSent.rst > 0 || !stalled.peerGotEverything;
    ctx.claim(
      'T4',
      lost ? 'holds' : 'does not hold',
      `close() blocked ${(stalled.close as { elapsedMs: number }).elapsedMs} ms and returned ${(stalled.close as { ret: number }).ret}${(stalled.close as { errno: string | null }).errno ? ` (${(stalled.close as { errno: string }).errno})` : ''}; ` +
        `then the kernel kept the connection (${(stalled.kernelAfterClose as Array<{ state: string }>).map((e) => e.state).join(',') || 'no entry'}), sent ${stalledSent.rst} RST, ` +
        `and the peer, resuming later, received ${stalled.peerReceived as number} of ${stalled.queued as number} bytes${stalled.peerGotEverything ? ' — all of it' : ''}`,
    );

    ctx.print(`Lab 06 — ${this.title} (N = ${linger} s)`);
    ctx.print(`everything acknowledged : close() ${(acked.close as { elapsedMs: number }).elapsedMs} ms → ${(acked.close as { ret: number }).ret}; TIME_WAIT timer ${twMs === null ? 'n/a' : `${(twMs / 1000).toFixed(1)} s`}`);
    for (const [name, r] of [['peer stalls', stalled], ['non-blocking socket', nonBlocking]] as const) {
      const c = r.close as { ret: number; errno: string | null; elapsedMs: number };
      ctx.print(`${name.padEnd(24)}: close() blocked ${c.elapsedMs} ms → ${c.ret}${c.errno ? ` ${c.errno}` : ''} (the event loop ticked ${r.loopTicksDuringClose as number}× meanwhile)`);
      ctx.print(`${''.padEnd(26)}after it: kernel ${(r.kernelAfterClose as Array<{ state: string; timer: string }>).map((e) => `${e.state} (${e.timer} timer)`).join(', ') || 'no entry'}, ${r.framesWhileOrphan as number} frames in the next 1.5 s`);
      ctx.print(`${''.padEnd(26)}peer resumed: got ${r.peerReceived as number} of ${r.queued as number} bytes, ${r.peerReset ? `reset (${r.peerReset})` : (r.peerStates as string[]).slice(-2).join('→')}; TIME_WAIT after: ${r.timeWaitAfter ? 'yes' : 'no'}`);
    }
    ctx.print(`zero-window probes from the kernel in peer-stalls.pcap: ${stalledSent.windowProbes}`);
    ctx.print();
    ctx.concludeClaims();
  },
});
