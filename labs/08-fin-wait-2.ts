// Lab 08 — FIN_WAIT_2 and tcp_fin_timeout.
//
// Question: the kernel has sent its FIN and had it acknowledged, but the peer never sends its own.
// How long does the kernel wait in FIN_WAIT_2 — when the application still holds the socket
// (shutdown) and when it has let go (close) — and what happens to data the peer sends late?
// Each way is tried on `trials` connections at once.
import {
  defineLab,
  kernelConnects,
  requires,
  type KernelClient,
  type LabContext,
  type Precondition,
  type Trial,
  kOfN,
  distinct,
  sum,
} from '../src/lab';

export default defineLab({
  id: '08',
  slug: 'fin-wait-2',
  title: 'FIN_WAIT_2: waiting for a FIN that does not come',
  shows: 'an orphaned FIN_WAIT_2 lives tcp_fin_timeout seconds, a shutdown() one lives on; late data is read, or answered with RST',
  showsInDetail: 'FIN_WAIT_2 after `close()` (orphaned) vs `shutdown(SHUT_WR)`; late data from the peer',
  question:
    'The peer acknowledges our FIN but never sends its own: how long does Linux wait, with and without the application holding the socket?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'fin_timeout',
      kind: 'int',
      default: 5,
      min: 1,
      max: 120,
      unit: 'seconds',
      sysctl: 'net.ipv4.tcp_fin_timeout',
      help: 'net.ipv4.tcp_fin_timeout',
    },
    {
      name: 'peer_fin',
      kind: 'enum',
      default: 'never',
      choices: ['never', 'at-once'],
      help: 'the peer never sends its FIN (the lab’s case), or answers the kernel’s FIN with its own at once',
    },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'connections per variant, half-closed at the same time' },
  ],
  claims: [
    'T5', // An orphaned FIN_WAIT_2 socket lives tcp_fin_timeout seconds; one the application still holds does
    //   not time out.
  ],
  questions: [
    {
      id: 'q1',
      text:
        "The application called close(); the kernel's FIN was acknowledged but the peer never sends its own. How long does the " +
        'kernel keep the socket in FIN_WAIT_2?',
      choices: ['tcp_fin_timeout', 'TIME_WAIT (60 s)', 'forever'],
    },
  ],
  course: {
    order: 30,
    teaches: "How long a half-closed connection waits for the peer's FIN, with and without the application holding the socket.",
    look: "closed-orphaned.pcap: what the kernel answers when the peer's data comes late.",
  },
  async run(ctx) {
    const n = ctx.int('trials');
    const orphan = (
      await ctx.variant('closed-orphaned', { how: 'close()', trials: n }, async () => ({ trials: await halfClose(ctx, n, 'close') }))
    ).trials;
    const held = (
      await ctx.variant('shutdown-kept-open', { how: 'shutdown(SHUT_WR)', trials: n }, async () => ({
        trials: await halfClose(ctx, n, 'shutdown'),
      }))
    ).trials;
    const ft = ctx.int('fin_timeout') * 1000;
    const waited = (h: HalfClosed): Precondition[] => [
      requires(
        'the kernel sat in FIN_WAIT2 (its FIN acknowledged)',
        h.fw2Timer !== null,
        h.fw2Timer ? `FIN_WAIT2, ${h.fw2Timer.kind} timer` : 'FIN_WAIT2 never seen',
      ),
      requires(
        'the peer sent no FIN while the kernel waited',
        !h.peerStatesDuringWatch.includes('LAST-ACK') && !h.peerStatesDuringWatch.includes('CLOSED'),
        `peer ${h.peerStatesDuringWatch.join('→')}`,
      ),
    ];
    /** how long each orphaned FIN_WAIT2 lived, `never` where it outlived the watch */
    const orphanLifetimes = (never: string): string =>
      distinct(orphan.map((h) => (h.lifetimeMs === null ? never : `${(h.lifetimeMs / 1000).toFixed(1)} s`)));
    ctx.judge('T5', {
      trials: [
        ...orphan.map(
          (h): Trial => ({
            requires: [
              ...waited(h),
              // a watch slowed by a busy machine blurs the lifetime: such trials are not counted
              ...(h.lifetimeMs === null
                ? []
                : [
                    requires(
                      'the entry was seen going to within 1 s',
                      (h.goneWithinMs ?? Infinity) <= 1000,
                      `last seen ${h.goneWithinMs} ms before it was found gone`,
                    ),
                  ]),
            ],
            agrees: h.lifetimeMs !== null && Math.abs(h.lifetimeMs - ft) <= SLACK_MS,
          }),
        ),
        ...held.map((h): Trial => ({ requires: waited(h), agrees: h.stillAfterWatch?.startsWith('FIN_WAIT2') === true })),
      ],
      evidence:
        `after close(): FIN_WAIT2 gone after ${orphanLifetimes('never (within the watch)')} with tcp_fin_timeout=${ft / 1000}; ` +
        `after shutdown(): ${kOfN(held, (h) => h.stillAfterWatch?.startsWith('FIN_WAIT2'))} still FIN_WAIT2 ${ft / 1000 + 3} s later`,
    });
    const fw2 = [
      ...new Set(
        orphan.map((h) =>
          h.lifetimeMs === null
            ? 'forever'
            : Math.abs(h.lifetimeMs - ft) <= SLACK_MS
              ? 'tcp_fin_timeout'
              : Math.abs(h.lifetimeMs - 60_000) <= SLACK_MS
                ? 'TIME_WAIT (60 s)'
                : `${(h.lifetimeMs / 1000).toFixed(1)} s`,
        ),
      ),
    ];
    ctx.answer('q1', {
      answer: fw2[0] ?? '',
      why:
        `measured with tcp_fin_timeout=${ft / 1000} s: the orphaned FIN_WAIT2 sockets went ` +
        `after ${distinct(orphan.map((h) => (h.lifetimeMs === null ? '—' : `${(h.lifetimeMs / 1000).toFixed(1)} s`)))}; a socket ` +
        `the application still held (shutdown) stayed`,
      requires: [
        requires(
          'the kernel sat in FIN_WAIT2 with no FIN from the peer',
          orphan.every((h) => h.fw2Timer !== null && !h.peerStatesDuringWatch.includes('LAST-ACK')),
          `peer_fin=${ctx.str('peer_fin')}`,
        ),
        requires(
          'each entry was seen going to within 1 s',
          orphan.every((h) => h.lifetimeMs === null || (h.goneWithinMs ?? Infinity) <= 1000),
          orphan.map((h) => h.goneWithinMs ?? '—').join(', ') + ' ms',
        ),
        requires('every connection gave the same answer', fw2.length === 1, fw2.join(' / ')),
      ],
    });
    const orphanRst = sum(orphan, (h) => ctx.sentBy('closed-orphaned', ctx.addr.host, h.local).rst);
    ctx.print(`Lab 08 — ${this.title} (tcp_fin_timeout ${ft / 1000} s, ${n} connections per variant)`);
    ctx.print(
      `close()   : FIN_WAIT2 with a ${orphan[0]?.fw2Timer?.kind ?? '?'} timer; gone ` +
        `after ${orphanLifetimes('—')}; ` +
        `late data from the peers → ${orphanRst} RST from the kernel`,
    );
    const lateRead = distinct(
      held.map((h) => JSON.stringify('readByApplication' in h.lateData ? h.lateData.readByApplication : undefined)),
      ' / ',
    );
    ctx.print(
      `shutdown(): ${kOfN(held, (h) => h.stillAfterWatch)} still there after ${ft / 1000 + 3} s; ` +
        `late data read by the application: ${lateRead}`,
    );
    ctx.print();
    ctx.concludeClaims();
  },
});

const PORT = 80;
const SLACK_MS = 1500;

interface HalfClosed {
  local: number;
  how: 'shutdown' | 'close';
  /** FIN_WAIT2 seen in the socket table, with its timer */
  fw2Timer: { kind: string; ms: number | null } | null;
  /** the peer's states while the kernel waited (it must not have sent its FIN) */
  peerStatesDuringWatch: string[];
  lifetimeMs: number | null;
  /** the last sighting of the entry to the first look that found it gone: how precise lifetimeMs is */
  goneWithinMs: number | null;
  stillAfterWatch: string | null;
  lateData: { readByApplication: string } | { peerReset: string | null };
  peerStates: string[];
}

const entry = (ctx: LabContext, port: number): { state: string; timer: string; timerMs: number | null } | undefined =>
  ctx
    .table((e) => e.local.port === port && e.remote.port === PORT && e.state !== 'LISTEN')
    .map((e) => ({ state: e.state, timer: e.timer, timerMs: e.timerMs }))[0];

async function halfClose(ctx: LabContext, n: number, how: 'shutdown' | 'close'): Promise<HalfClosed[]> {
  const finTimeout = ctx.int('fin_timeout');
  const peerFin = ctx.str('peer_fin') === 'at-once';
  const conns: KernelClient[] = [];
  for (let i = 0; i < n; i++)
    conns.push(await kernelConnects(ctx, PORT, { onAccept: (c) => (peerFin ? c.onEnd(() => c.end()) : undefined) }));
  const t0 = performance.now();
  await Promise.all(conns.map(async (c) => (how === 'shutdown' ? c.k.shutdown('SHUT_WR') : c.k.close())));
  const fw2 = await Promise.all(
    conns.map((c) =>
      ctx.waitUntil(() => (entry(ctx, c.local.port)?.state === 'FIN_WAIT2' ? entry(ctx, c.local.port) : null), {
        timeoutMs: 3000,
        everyMs: 10,
      }),
    ),
  );
  // watch them for tcp_fin_timeout + 3 s
  const lifetime = new Map<number, number>();
  const lastSeen = new Map<number, number>();
  const goneWithin = new Map<number, number>();
  await ctx.waitUntil(
    () => {
      const now = performance.now();
      for (const c of conns) {
        const port = c.local.port;
        if (lifetime.has(port)) continue;
        if (entry(ctx, port)) lastSeen.set(port, now);
        else {
          lifetime.set(port, Math.round(now - t0));
          goneWithin.set(port, Math.round(now - (lastSeen.get(port) ?? t0)));
        }
      }
      return lifetime.size === conns.length;
    },
    {
      timeoutMs: (finTimeout + 3) * 1000,
      everyMs: 100,
      progress: (ms) => `${how}: FIN_WAIT_2 for ${(ms / 1000).toFixed(0)} s (tcp_fin_timeout ${finTimeout} s)`,
    },
  );
  const still = conns.map((c) => entry(ctx, c.local.port));
  const peerDuring = conns.map((c) => c.conn.history.map((h) => h.state));
  // the peers send data late, then close
  for (const c of conns) c.conn.write(new TextEncoder().encode('late data'));
  await ctx.sleep(300);
  const out: HalfClosed[] = [];
  for (const [i, c] of conns.entries()) {
    let late: HalfClosed['lateData'] = { peerReset: c.conn.resetReason };
    if (how === 'shutdown') {
      const r = await c.k.recv(100, { timeoutMs: 1000 });
      late = { readByApplication: r.ret > 0 ? r.data.toString() : `recv → ${r.ret} ${r.errno ?? ''}`.trim() };
    }
    c.conn.end();
    await Promise.race([c.conn.waitFor('CLOSED'), ctx.sleep(2000)]);
    if (how === 'shutdown') await c.k.close();
    out.push({
      local: c.local.port,
      how,
      fw2Timer: fw2[i] ? { kind: fw2[i]!.timer, ms: fw2[i]!.timerMs } : null,
      peerStatesDuringWatch: peerDuring[i]!,
      lifetimeMs: lifetime.get(c.local.port) ?? null,
      goneWithinMs: goneWithin.get(c.local.port) ?? null,
      stillAfterWatch: still[i] ? `${still[i]!.state} (${still[i]!.timer} timer)` : null,
      lateData: late,
      peerStates: c.conn.history.map((h) => h.state),
    });
  }
  return out;
}
