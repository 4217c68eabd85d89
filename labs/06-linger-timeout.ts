// Lab 06 — SO_LINGER {1,N}: a close() that waits.
//
// Question: with a linger time of N seconds, how long does close() block, what does it return,
// what goes on the wire when the time runs out with data still unsent, does that data still
// arrive, and how long is the TIME_WAIT that follows? Each case runs on `trials` connections at
// once (each lingering close() blocks a worker thread, never the event loop).
import {
  defineLab,
  endpointText,
  kernelConnects,
  requires,
  type Connection,
  type KernelClient,
  type LabContext,
  type Precondition,
  type Trial,
  kOfN,
  distinct,
  sum,
} from '../src/lab';

export default defineLab({
  id: '06',
  slug: 'linger-timeout',
  title: 'SO_LINGER {1,N}: a close() that waits',
  shows: 'how long a lingering close() blocks, what it returns, what the kernel does when the time runs out, and the TIME_WAIT after',
  showsInDetail:
    '`SO_LINGER {1,N}`: how long `close()` blocks (also non-blocking), what happens when N runs out with data unsent, the TIME_WAIT after',
  question:
    'With SO_LINGER {1,N}, how long does close() block, what happens to unsent data when N runs out, and how long is the TIME_WAIT?',
  families: ['ipv4', 'ipv6'],
  params: [
    { name: 'linger', kind: 'int', default: 3, min: 1, max: 120, unit: 'seconds', help: 'the linger time N of SO_LINGER {1,N}' },
    {
      name: 'unsent',
      kind: 'int',
      default: 65536,
      min: 1,
      max: 4 << 20,
      unit: 'bytes',
      help: 'data queued for a peer that has stopped reading',
    },
    {
      name: 'peer_window',
      kind: 'int',
      default: 4096,
      min: 0,
      max: 16 << 20,
      unit: 'bytes',
      help: "the peer's receive buffer while it stalls (as large as `unsent`: nothing is left unsent)",
    },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 12, help: 'connections per variant, closed at the same time' },
  ],
  claims: [
    'C12', // The linger time bounds how long the socket stays in TIME_WAIT.
    'C18', // When the linger time runs out with data unsent, the socket is closed forcefully and the unsent
    //   data is lost.
  ],
  questions: [
    {
      id: 'q1',
      text:
        'SO_LINGER {1,N}; the peer has stopped reading, so data stays unsent. close() blocks N seconds. When the time runs ' +
        'out, what becomes of the unsent data?',
      choices: ['dropped, with an RST', 'delivered later by the kernel', 'returned to the application'],
    },
  ],
  recordSysctls: ['net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_orphan_retries'],
  course: {
    order: 50,
    teaches: 'How long close() with SO_LINGER {1,N} blocks, and what becomes of unsent data when N runs out.',
    look: "peer-stalls.pcap: zero windows, the kernel's probes, and what crosses after close() returned.",
  },
  async run(ctx) {
    const linger = ctx.int('linger');
    const n = ctx.int('trials');
    const acked = (
      await ctx.variant('all-acknowledged', { linger, trials: n }, async () => {
        const out = [];
        for (let i = 0; i < n; i++) {
          const { k, conn, local } = await kernelConnects(ctx, PORT, { onAccept: (c) => c.onEnd(() => c.end()) });
          await k.send(new Uint8Array(10_000));
          // nothing left in the kernel's send queue (the socket table's tx queue: unacknowledged bytes)
          const allAcked = !!(await ctx.waitUntil(
            () => ctx.table((e) => e.local.port === local.port && e.remote.port === PORT)[0]?.txQueue === 0,
            { timeoutMs: 3000 },
          ));
          const set = k.setOption('SO_LINGER', { onoff: true, seconds: linger });
          const close = await k.close();
          await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(3000)]);
          const closedAt = performance.now() - close.elapsedMs;
          const tw = await ctx.waitUntil(() => ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === local.port)[0], {
            timeoutMs: 2000,
          });
          // where the table has no timers (NetBSD), how long TIME_WAIT lasts is watched instead, past the bound the claim names
          const timeWaitWatch = tw && tw.timerMs === null ? await watchTimeWait(ctx, local.port, closedAt, linger * 1000 + 2000) : null;
          out.push({
            local: local.port,
            allAcked,
            linger: set.ret < 0 ? (set.errno ?? 'error') : 'OK',
            close: { ret: close.ret, errno: close.errno, elapsedMs: Math.round(close.elapsedMs) },
            timeWaitTimerMs: tw?.timerMs ?? null,
            timeWaitWatch,
            peerReceived: conn.received,
          });
        }
        return { trials: out };
      })
    ).trials;
    const stalled = await ctx.variant('peer-stalls', { linger, trials: n }, async () => ({ ...(await stalledCloses(ctx, n, false)) }));
    const nonBlocking = await ctx.variant('non-blocking', { linger, trials: n }, async () => ({ ...(await stalledCloses(ctx, n, true)) }));

    const lingerSet = (linger: string): Precondition => requires('setsockopt(SO_LINGER, {1,N}) succeeded', linger === 'OK', linger);
    const bound = linger * 1000 + 1000;
    const watched = acked.some((t) => t.timeWaitWatch) ? ` (no timers in this table: watched up to ${linger + 2} s after close())` : '';
    ctx.judge('C12', {
      trials: acked.map((t): Trial => {
        const within = timeWaitWithin(t, bound);
        return {
          requires: [
            lingerSet(t.linger),
            requires('everything sent was acknowledged before close()', t.allAcked, t.allAcked ? 'unacked 0' : 'data still unacknowledged'),
            requires('the socket entered TIME_WAIT', t.timeWaitTimerMs !== null || t.timeWaitWatch !== null, within.text),
            ...(t.timeWaitWatch
              ? [
                  requires(
                    `the socket table showed the entry gone by ${bound / 1000} s after close(), or still there later`,
                    within.decided,
                    within.text,
                  ),
                ]
              : []),
          ],
          agrees: within.agrees,
        };
      }),
      evidence:
        `with SO_LINGER {1,${linger}} close() returned after ${Math.max(...acked.map((t) => t.close.elapsedMs))} ms at most ` +
        `and the TIME_WAIT entries showed ${distinct(acked.map((t) => timeWaitWithin(t, bound).text))}${watched}`,
    });
    const stalledTrials = [
      ...(stalled.trials as Stalled[]).map((t) => ({ t, v: 'peer-stalls' })),
      ...(nonBlocking.trials as Stalled[]).map((t) => ({ t, v: 'non-blocking' })),
    ];
    const onWire = ({ t, v }: { t: Stalled; v: string }) => kernelSent(ctx, v, t.local, t.queued);
    const blockedS = distinct(stalledTrials.map(({ t }) => Math.round(t.close.elapsedMs / 100) / 10));
    const returned = distinct(stalledTrials.map(({ t }) => t.close.ret));
    const kept = distinct(
      stalledTrials.map(({ t }) => t.afterClose?.state ?? 'no entry'),
      ',',
    );
    const allThenFin = kOfN(stalledTrials, (x) => onWire(x).finAfterAll && onWire(x).bytes >= x.t.queued);
    const bytesSent = distinct(
      stalledTrials.map((x) => `${onWire(x).bytes}/${x.t.queued}`),
      ', ',
    );
    const peersGotAll = kOfN(stalledTrials, ({ t }) => t.peerGotEverything);
    ctx.judge('C18', {
      trials: stalledTrials.map((x): Trial => {
        const { t } = x;
        const w = onWire(x);
        return {
          requires: [
            lingerSet(t.linger),
            requires(
              `close() blocked until the linger time (${linger} s) ran out`,
              t.close.elapsedMs >= linger * 1000 - 50,
              `${t.close.elapsedMs} ms → ${t.close.ret}${t.close.errno ? ` ${t.close.errno}` : ''}`,
            ),
            requires(
              'data was still unsent when it ran out',
              (t.afterClose?.sendQueue ?? 0) > 0,
              t.afterClose ? `${t.afterClose.sendQueue} bytes in the send queue, ${t.afterClose.state}` : 'no socket left',
            ),
            requires('the kernel ended its side on the wire (a FIN or an RST in the capture)', w.fin || w.rst > 0, w.text),
            requires(
              `the connection ended within ${FINISH_WATCH_MS / 1000} s of the peer reading again (our TCP did its part)`,
              t.finished,
              t.finished
                ? `peer ${t.peerStates.slice(-2).join('→')}`
                : `peer still ${t.peerStates[t.peerStates.length - 1] ?? '?'}, ${t.peerReceived} of ${t.queued} bytes`,
            ),
          ],
          // judged on the kernel's segments: forcefully closed (an RST), or the data never sent
          agrees: w.rst > 0 || w.bytes < t.queued,
        };
      }),
      evidence:
        `close() blocked ${blockedS} s and returned ${returned}; ` +
        `the kernel kept the connections (${kept}), and on the wire it sent ${sum(stalledTrials, (x) => onWire(x).rst)} RST, ` +
        `all the queued bytes and then its FIN in ${allThenFin} (${bytesSent} bytes); ` +
        `the peers, resuming later, received everything in ${peersGotAll}`,
    });

    const fate = (t: Stalled, v: string): string =>
      ctx.sentBy(v, ctx.addr.host, t.local).rst > 0
        ? 'dropped, with an RST'
        : t.peerGotEverything
          ? 'delivered later by the kernel'
          : 'lost without an RST';
    const fates = [...new Set(stalledTrials.map(({ t, v }) => fate(t, v)))];
    ctx.answer('q1', {
      answer: fates[0] ?? '',
      why:
        `measured on ${stalledTrials.length} connections: close() returned ${returned} after ${linger} s` +
        `${fates[0] === 'delivered later by the kernel' ? ', the orphan kept the data' : ''}, ` +
        `and the peers received everything in ${peersGotAll} once they read again`,
      frames: [ctx.framesWhere('peer-stalls', (s) => s.marks.includes('window-probe') || s.flags.includes('FIN'))],
      requires: [
        requires(
          'data was still unsent when the linger time ran out',
          stalledTrials.every(({ t }) => (t.afterClose?.sendQueue ?? 0) > 0),
          stalledTrials.map(({ t }) => t.afterClose?.sendQueue ?? 0).join(', ') + ' bytes queued',
        ),
        requires('every connection gave the same answer', fates.length === 1, fates.join(' / ')),
      ],
    });

    ctx.print(`Lab 06 — ${this.title} (N = ${linger} s, ${n} connections per variant)`);
    ctx.print(
      `everything acknowledged : close() ${Math.max(...acked.map((t) => t.close.elapsedMs))} ms at most ` +
        `→ ${distinct(acked.map((t) => t.close.ret))}; ` +
        `TIME_WAIT ${distinct(acked.map((t) => timeWaitWithin(t, linger * 1000 + 1000).text))}`,
    );
    for (const [name, r] of [
      ['peer stalls', stalled],
      ['non-blocking socket', nonBlocking],
    ] as const) {
      const ts = r.trials;
      const blocked = [...new Set(ts.map((t) => `${t.close.elapsedMs} ms`))].slice(0, 3).join(', ');
      ctx.print(
        `${name.padEnd(24)}: close() blocked ${blocked}… → ${distinct(ts.map((t) => t.close.ret))} ` +
          `(the event loop ticked ${r.loopTicksDuringClose}× meanwhile)`,
      );
      ctx.print(
        `${''.padEnd(26)}after it: kernel ${distinct(
          ts.map((t) => (t.afterClose ? `${t.afterClose.state} (${t.afterClose.timer} timer)` : 'no entry')),
          ', ',
        )}, ${r.framesWhileOrphan} frames in the next 1.5 s`,
      );
      ctx.print(
        `${''.padEnd(26)}peers resumed: all bytes arrived in ${kOfN(ts, (t) => t.peerGotEverything)}; ${distinct(
          ts.map((t) => (t.peerReset ? `reset (${t.peerReset})` : t.peerStates.slice(-2).join('→'))),
          ' / ',
        )}; TIME_WAIT after: ${kOfN(ts, (t) => t.timeWaitAfter)}`,
      );
    }
    ctx.print(`zero-window probes from the kernel in peer-stalls.pcap: ${ctx.sentBy('peer-stalls', ctx.addr.host).windowProbes}`);
    ctx.print();
    ctx.concludeClaims();
  },
});

const PORT = 80;
const FINISH_WATCH_MS = 20_000;

interface Stalled {
  local: number;
  linger: string;
  queued: number;
  close: { ret: number; errno: string | null; elapsedMs: number };
  /** the kernel's view of the socket right after close() returned (it lives on as an orphan) */
  afterClose: { state: string; timer: string; sendQueue: number } | null;
  peerReceived: number;
  peerGotEverything: boolean;
  peerReset: string | null;
  peerStates: string[];
  /** the connection ended (FINs or RST) after the peer resumed reading, within the watch */
  finished: boolean;
  timeWaitAfter: boolean;
}

/**
 * `n` peers stop reading with data queued in the kernel; close() with SO_LINGER {1,N} on all at once; the peers resume after the timeout.
 */
async function stalledCloses(
  ctx: LabContext,
  n: number,
  nonBlocking: boolean,
): Promise<{ trials: Stalled[]; loopTicksDuringClose: number; framesWhileOrphan: number }> {
  const linger = ctx.int('linger');
  const conns: Array<KernelClient & { queued: number; linger: string }> = [];
  for (let i = 0; i < n; i++) {
    const c = await kernelConnects(ctx, PORT, { tcb: { rcvBuf: ctx.int('peer_window') }, onAccept: (x) => x.pauseReading() });
    c.conn.onEnd(() => c.conn.end());
    let queued = 0;
    for (;;) {
      const r = c.k.sendNow(new Uint8Array(Math.min(65536, ctx.int('unsent') - queued)));
      if (r.ret <= 0) break;
      queued += r.ret;
      if (queued >= ctx.int('unsent')) break;
    }
    conns.push({ ...c, queued, linger: 'OK' });
  }
  await ctx.sleep(300); // the peers' windows fill and shut
  for (const c of conns) {
    if (nonBlocking) c.k.setNonBlocking(true);
    const r = c.k.setOption('SO_LINGER', { onoff: true, seconds: linger });
    c.linger = r.ret < 0 ? (r.errno ?? 'error') : 'OK';
  }
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 100);
  const closes = await Promise.all(conns.map((c) => c.k.close()));
  clearInterval(ticker);
  const after = conns.map(
    (c) =>
      ctx
        .table((e) => e.local.port === c.local.port && e.remote.port === PORT)
        .map((e) => ({ state: e.state, timer: e.timer, sendQueue: e.txQueue }))[0] ?? null,
  );
  const framesAtClose = ctx.timeline.filter((e) => e.kind === 'frame').length;
  await ctx.sleep(1500); // what the orphans do after the timeout, before the peers resume
  const framesWhileOrphan = ctx.timeline.filter((e) => e.kind === 'frame').length - framesAtClose;
  for (const c of conns) c.conn.resumeReading();
  const ended = (conn: Connection): Promise<boolean> =>
    Promise.race([conn.waitFor('CLOSED').then(() => true), ctx.sleep(FINISH_WATCH_MS).then(() => false)]);
  const finished = await Promise.all(conns.map((c) => ended(c.conn)));
  const trials = conns.map(
    (c, i): Stalled => ({
      local: c.local.port,
      linger: c.linger,
      queued: c.queued,
      close: { ret: closes[i]!.ret, errno: closes[i]!.errno, elapsedMs: Math.round(closes[i]!.elapsedMs) },
      afterClose: after[i]!,
      peerReceived: c.conn.received,
      peerGotEverything: c.conn.received === c.queued,
      peerReset: c.conn.resetReason,
      peerStates: c.conn.history.map((h) => h.state),
      finished: finished[i]!,
      timeWaitAfter: ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === c.local.port).length > 0,
    }),
  );
  return { trials, loopTicksDuringClose: ticks, framesWhileOrphan };
}

/**
 * How long a TIME_WAIT entry lasted, read from the socket table: when it was last seen there and when first seen gone (null: still there),
 * ms after close().
 */
interface TimeWaitWatch {
  lastSeenMs: number;
  goneMs: number | null;
}

/** Watches a TIME_WAIT entry in the socket table until it goes, or until `limitMs` after close(). */
async function watchTimeWait(ctx: LabContext, port: number, closedAt: number, limitMs: number): Promise<TimeWaitWatch> {
  let lastSeenMs = 0;
  const gone = await ctx.waitUntil(
    () => {
      const at = performance.now() - closedAt;
      if (ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === port).length === 0) return { at };
      lastSeenMs = at;
      return null;
    },
    { timeoutMs: Math.max(0, limitMs - (performance.now() - closedAt)), everyMs: 50 },
  );
  return { lastSeenMs: Math.round(lastSeenMs), goneMs: gone === null ? null : Math.round(gone.at) };
}

/**
 * C12's reading of one TIME_WAIT: its timer (Linux's table) or, where the table has no timers
 * (NetBSD), the watch — which decides only when the table was read on both sides of the bound.
 */
function timeWaitWithin(
  t: { timeWaitTimerMs: number | null; timeWaitWatch: TimeWaitWatch | null },
  boundMs: number,
): { decided: boolean; agrees: boolean; text: string } {
  if (t.timeWaitTimerMs !== null)
    return { decided: true, agrees: t.timeWaitTimerMs <= boundMs, text: `timer ${(t.timeWaitTimerMs / 1000).toFixed(1)} s` };
  const w = t.timeWaitWatch;
  if (!w) return { decided: false, agrees: false, text: 'no TIME_WAIT entry' };
  const text =
    w.goneMs === null
      ? `still in the table ${(w.lastSeenMs / 1000).toFixed(1)} s after close()`
      : `seen ${(w.lastSeenMs / 1000).toFixed(1)} s, gone ${(w.goneMs / 1000).toFixed(1)} s after close()`;
  if (w.goneMs !== null && w.goneMs <= boundMs) return { decided: true, agrees: true, text };
  return { decided: w.lastSeenMs > boundMs, agrees: false, text };
}

/**
 * What the kernel put on the wire for one connection (its segments in the variant's capture): the
 * data bytes its sequence numbers cover, whether its FIN followed all `queued` bytes, its RSTs.
 */
function kernelSent(
  ctx: LabContext,
  variant: string,
  port: number,
  queued: number,
): { bytes: number; fin: boolean; finAfterAll: boolean; rst: number; text: string } {
  const end = endpointText({ address: ctx.addr.host, port });
  const mine = ctx.flows(variant).segments.filter((s) => s.src === end);
  const bytes = Math.max(0, ...mine.filter((s) => s.len > 0).map((s) => s.relSeq + s.len - 1));
  const fin = mine.find((s) => (s.flagBits & 1) !== 0);
  const rst = mine.filter((s) => (s.flagBits & 4) !== 0).length;
  const finText = fin ? `#${fin.number} at relative seq ${fin.relSeq + fin.len}` : 'none';
  return {
    bytes,
    fin: !!fin,
    // a FIN may ride on the last data segment: it sits after that segment's bytes
    finAfterAll: !!fin && fin.relSeq + fin.len === queued + 1,
    rst,
    text: `the kernel's segments cover ${bytes} of ${queued} bytes; FIN ${finText}; ${rst} RST`,
  };
}
