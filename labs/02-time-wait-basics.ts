// Lab 02 — who enters TIME_WAIT, and for how long.
//
// Question: when a connection closes, which side keeps the four-tuple in TIME_WAIT, and for how
// long does Linux keep it? Does net.ipv4.tcp_fin_timeout change that, as is often said?
import { defineLab, kernelConnects, peerReaches, type LabContext, type SocketEntry } from '../src/lab';

const CLAIMS = [
  { id: 'T1', text: 'Only the side that closes first enters TIME-WAIT.', source: 'RFC 9293 §3.6 (figure 12)' },
  { id: 'T2', text: 'Linux keeps TIME_WAIT for 60 s, and tcp_fin_timeout does not change that.', source: 'man 7 tcp (tcp_fin_timeout); include/net/tcp.h TCP_TIMEWAIT_LEN' },
] as const;

const PORT = 80;

function timeWaitOf(ctx: LabContext, localPort: number): SocketEntry | undefined {
  return ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === localPort && e.remote.port === PORT)[0];
}

/** The kernel closes first: it should hold TIME_WAIT; returns the timer as first read, and the lifetime when waited out. */
async function kernelClosesFirst(ctx: LabContext, waitFull: boolean): Promise<Record<string, unknown>> {
  const { k, conn, local } = await kernelConnects(ctx, PORT, { onAccept: (c) => c.onEnd(() => c.end()) });
  const close = await k.close(); // FIN from the kernel
  const closedAt = performance.now();
  const tw = await ctx.waitUntil(() => timeWaitOf(ctx, local.port), { timeoutMs: 3000 });
  const peerClosed = await peerReaches(conn, 'CLOSED', 3000);
  let lifetimeMs: number | null = null;
  if (tw && waitFull) {
    const gone = await ctx.waitUntil(() => !timeWaitOf(ctx, local.port), {
      timeoutMs: tw.timerMs + 10_000,
      everyMs: 100,
      progress: (ms) => `TIME_WAIT of ${ctx.addr.host4}:${local.port}: ${Math.max(0, Math.round((tw.timerMs - ms) / 1000))} s left`,
    });
    if (gone) lifetimeMs = Math.round(performance.now() - closedAt);
  }
  return {
    close,
    kernelTimeWait: !!tw,
    timerAtEntryMs: tw?.timerMs ?? null,
    lifetimeMs,
    peerStates: conn.history.map((h) => h.state),
    peerEnteredTimeWait: conn.history.some((h) => h.state === 'TIME-WAIT'),
    peerClosed,
    finTimeout: Number(ctx.readSysctl('net.ipv4.tcp_fin_timeout')),
  };
}

/** The peer closes first: the peer should hold TIME-WAIT, the kernel pass LAST_ACK and let go. */
async function peerClosesFirst(ctx: LabContext): Promise<Record<string, unknown>> {
  const { k, conn, local } = await kernelConnects(ctx, PORT);
  conn.end(); // FIN from the peer
  const eof = await k.recv(100, { timeoutMs: 3000 }); // the kernel reads end-of-file …
  const close = await k.close(); // … and closes: FIN back
  const peerTimeWait = await peerReaches(conn, 'TIME-WAIT', 3000);
  await ctx.sleep(300);
  const kernelEntries = ctx.table((e) => e.local.port === local.port && e.remote.port === PORT).map((e) => e.state);
  return { eof: { ret: eof.ret, errno: eof.errno }, close, kernelEntries, kernelTimeWait: kernelEntries.includes('TIME_WAIT'), peerStates: conn.history.map((h) => h.state), peerEnteredTimeWait: peerTimeWait };
}

const near60 = (ms: number | null | undefined, slack: number): boolean => typeof ms === 'number' && Math.abs(ms - 60_000) <= slack;

export default defineLab({
  id: '02',
  slug: 'time-wait-basics',
  title: 'Who enters TIME_WAIT, and for how long',
  shows: 'the side that closes first holds TIME_WAIT; its timer (60 s) read from the socket table, with tcp_fin_timeout changed',
  question: 'When a connection closes, which side keeps the four-tuple in TIME_WAIT, for how long, and does tcp_fin_timeout change it?',
  params: [
    { name: 'fin_timeout', kind: 'int', default: 60, min: 1, max: 600, unit: 'seconds', sysctl: 'net.ipv4.tcp_fin_timeout', help: 'net.ipv4.tcp_fin_timeout in the lab namespace' },
    { name: 'wait', kind: 'enum', default: 'full', choices: ['full', 'none'], help: 'full: wait until the TIME_WAIT entry is gone (about a minute); none: stop once its timer is read' },
  ],
  claims: CLAIMS,
  recordSysctls: ['net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_max_tw_buckets'],
  async run(ctx) {
    const waitFull = ctx.str('wait') === 'full';
    const finTimeout = ctx.int('fin_timeout');
    const a = await ctx.variant('kernel-closes-first', { fin_timeout: finTimeout }, () => kernelClosesFirst(ctx, waitFull));
    const b = await ctx.variant('peer-closes-first', { fin_timeout: finTimeout }, () => peerClosesFirst(ctx));
    // the same close with tcp_fin_timeout changed: does the TIME_WAIT timer follow it?
    const other = finTimeout === 60 ? 5 : 60;
    const c = await ctx.variant('fin-timeout-changed', { fin_timeout: other }, async () => {
      ctx.sysctl('net.ipv4.tcp_fin_timeout', other);
      try {
        return await kernelClosesFirst(ctx, false);
      } finally {
        ctx.sysctl('net.ipv4.tcp_fin_timeout', finTimeout);
      }
    });

    const t1 = a.kernelTimeWait === true && a.peerEnteredTimeWait === false && b.kernelTimeWait === false && b.peerEnteredTimeWait === true;
    ctx.claim(
      'T1',
      t1 ? 'holds' : 'does not hold',
      `kernel closed first: kernel TIME_WAIT ${a.kernelTimeWait ? 'yes' : 'no'}, peer ${(a.peerStates as string[]).join('→')}; peer closed first: kernel ${(b.kernelEntries as string[]).join(',') || 'no entry'}, peer ${(b.peerStates as string[]).join('→')}`,
    );
    const timers = [a.timerAtEntryMs as number | null, c.timerAtEntryMs as number | null];
    const t2 = timers.every((t) => near60(t, 1500)) && (a.lifetimeMs === null || near60(a.lifetimeMs as number, 3000));
    ctx.claim(
      'T2',
      t2 ? 'holds' : 'does not hold',
      `TIME_WAIT timer at entry ${fmt(timers[0])} with tcp_fin_timeout=${finTimeout}, ${fmt(timers[1])} with tcp_fin_timeout=${other}` +
        (a.lifetimeMs !== null ? `; the entry lived ${fmt(a.lifetimeMs as number)} after close()` : '; (wait=none: lifetime not waited out)'),
    );

    ctx.print(`Lab 02 — ${this.title}`);
    ctx.print(`kernel closes first : kernel ${a.kernelTimeWait ? `TIME_WAIT, timer ${fmt(a.timerAtEntryMs as number)}` : 'no TIME_WAIT'}; peer ${(a.peerStates as string[]).join(' → ')}`);
    if (a.lifetimeMs !== null) ctx.print(`                      the TIME_WAIT entry vanished ${fmt(a.lifetimeMs as number)} after close()`);
    ctx.print(`peer closes first   : kernel ${(b.kernelEntries as string[]).join(', ') || 'no socket left'}; peer ${(b.peerStates as string[]).join(' → ')}`);
    ctx.print(`tcp_fin_timeout=${other}  : kernel TIME_WAIT timer ${fmt(c.timerAtEntryMs as number)}`);
    ctx.print();
    ctx.concludeClaims();
  },
});

function fmt(ms: number | null | undefined): string {
  return typeof ms === 'number' ? `${(ms / 1000).toFixed(1)} s` : 'n/a';
}
