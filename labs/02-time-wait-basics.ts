// Lab 02 — who enters TIME_WAIT, and for how long.
//
// Question: when a connection closes, which side keeps the four-tuple in TIME_WAIT, and for how
// long does Linux keep it? Does net.ipv4.tcp_fin_timeout change that, as is often said?
//
// Each close is repeated on `trials` connections (closed together, so waiting out one TIME_WAIT
// waits out all of them).
import {
  defineLab,
  finExchange,
  kernelConnects,
  PATIENT_PEER,
  peerReaches,
  requires,
  type LabContext,
  type Precondition,
  type Trial,
  distinct,
  count,
} from '../src/lab';

export default defineLab({
  id: '02',
  slug: 'time-wait-basics',
  title: 'Who enters TIME_WAIT, and for how long',
  shows: 'the side that closes first holds TIME_WAIT; its timer (60 s) read from the socket table, with tcp_fin_timeout changed',
  showsInDetail:
    'who enters TIME_WAIT (the side closing first) and its timer read from the socket table, also with `tcp_fin_timeout` changed; ' +
    'the entries watched until they go',
  question: 'When a connection closes, which side keeps the four-tuple in TIME_WAIT, for how long, and does tcp_fin_timeout change it?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'fin_timeout',
      kind: 'int',
      default: 60,
      min: 1,
      max: 600,
      unit: 'seconds',
      sysctl: 'net.ipv4.tcp_fin_timeout',
      claims: [
        'T2', // Linux keeps TIME_WAIT for 60 s, and tcp_fin_timeout does not change that.
      ],
      help: 'net.ipv4.tcp_fin_timeout in the lab namespace',
    },
    {
      name: 'wait',
      kind: 'enum',
      default: 'full',
      choices: ['full', 'none'],
      help: 'full: wait until the TIME_WAIT entries are gone (about a minute); none: stop once their timers are read',
    },
    {
      name: 'watch_s',
      kind: 'int',
      default: 75,
      min: 1,
      max: 600,
      unit: 'seconds',
      help: 'with wait=full, how long to watch for the entries to go',
    },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'connections closed per variant' },
  ],
  claims: [
    'T1', // Only the side that closes first enters TIME-WAIT.
    'T2', // Linux keeps TIME_WAIT for 60 s, and tcp_fin_timeout does not change that.
  ],
  questions: [
    {
      id: 'q1',
      text: 'The kernel closes a connection first; the peer closes after it. Which side keeps the four-tuple in TIME_WAIT?',
      choices: ['the kernel', 'the peer', 'both', 'neither'],
    },
    {
      id: 'q2',
      text: "tcp_fin_timeout is set to 5 seconds. How long does the kernel's TIME_WAIT timer then run?",
      choices: ['5 s', '60 s', '120 s'],
    },
  ],
  recordSysctls: ['net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_max_tw_buckets'],
  course: {
    order: 10,
    teaches: 'Which side of a closed connection waits in TIME_WAIT, for how long, and whether tcp_fin_timeout changes that.',
    look: 'kernel-closes-first.pcap: whose FIN comes first; the state timeline in the report: the TIME_WAIT band and its length.',
  },
  async run(ctx) {
    const waitFull = ctx.str('wait') === 'full';
    const finTimeout = ctx.int('fin_timeout');
    const n = ctx.int('trials');
    const a = (
      await ctx.variant('kernel-closes-first', { fin_timeout: finTimeout, trials: n }, async () => ({
        trials: await kernelClosesFirst(ctx, n, waitFull),
      }))
    ).trials;
    const b = (
      await ctx.variant('peer-closes-first', { fin_timeout: finTimeout, trials: n }, async () => ({
        trials: await peerClosesFirst(ctx, n),
      }))
    ).trials;
    // the same close with tcp_fin_timeout changed: does the TIME_WAIT timer follow it?
    const other = finTimeout === 5 ? 60 : 5;
    const c = (
      await ctx.variant('fin-timeout-changed', { fin_timeout: other, trials: n }, async () => {
        ctx.sysctl('net.ipv4.tcp_fin_timeout', other);
        try {
          return { trials: await kernelClosesFirst(ctx, n, false) };
        } finally {
          ctx.sysctl('net.ipv4.tcp_fin_timeout', finTimeout);
        }
      })
    ).trials;

    const notReset = (x: KernelCloser): Precondition[] => [
      requires(
        'the peer sent no RST on the four-tuple (an RST ends TIME_WAIT: lab 13)',
        !x.peerReset,
        x.peerReset ? 'the peer reset it' : 'no RST from the peer',
      ),
    ];
    // T1 is judged on the kernel's side: its socket table, and its close in the capture. What the
    // peer (our own TCP) did is a precondition only.
    const closeA = (x: KernelCloser) => finExchange(ctx.flows('kernel-closes-first').segments, { address: ctx.addr.host, port: x.local });
    const closeB = (x: PeerCloser) => finExchange(ctx.flows('peer-closes-first').segments, { address: ctx.addr.host, port: x.local });
    const finsCrossed = (x: KernelCloser): Trial['requires'] => {
      const f = closeA(x);
      return [
        requires('close() returned 0', x.close.ret === 0, `close() → ${x.close.ret}${x.close.errno ? ` ${x.close.errno}` : ''}`),
        requires(
          "the kernel closed first (in the capture, the peer's FIN acknowledges the kernel's) and acknowledged the peer's FIN",
          f.order === 'kernel first' && f.kernelAckedPeerFin,
          f.text,
        ),
        requires('the peer went LAST-ACK → CLOSED (our TCP did its part)', x.peerClosed, x.peerStates.join('→')),
        ...notReset(x),
      ];
    };
    const kernelGone = (x: PeerCloser): boolean => !x.kernelEntries.some((s) => s === 'CLOSE_WAIT' || s === 'LAST_ACK');
    ctx.judge('T1', {
      trials: [
        // the kernel closed first: its socket table must show the four-tuple in TIME_WAIT
        ...a.map((x): Trial => ({ requires: finsCrossed(x), agrees: x.kernelTimeWait })),
        // the peer closed first: the kernel passes CLOSE_WAIT and LAST_ACK, and never holds TIME_WAIT
        ...b.map((x): Trial => {
          const f = closeB(x);
          return {
            requires: [
              requires('the kernel read the peer’s FIN before it closed', x.eof, x.eof ? 'recv() → 0' : 'no end-of-file'),
              requires(
                "the peer closed first (in the capture, the kernel's FIN acknowledges the peer's) and acknowledged the kernel's FIN",
                f.order === 'peer first' && f.peerAckedKernelFin,
                f.text,
              ),
              requires(
                'the kernel left LAST_ACK within 300 ms (its close completed)',
                kernelGone(x),
                `kernel ${x.kernelStates.join('→') || 'no entry'}, then ${x.kernelEntries.join(', ') || 'none'}`,
              ),
              requires('the peer entered TIME-WAIT (our TCP did its part)', x.peerEnteredTimeWait, x.peerStates.join('→')),
            ],
            agrees: !x.kernelTimeWait,
          };
        }),
      ],
      evidence:
        `kernel closed first: kernel TIME_WAIT in ${count(a, (x) => x.kernelTimeWait)}/${n} (the socket table); ` +
        `peer closed first: the kernel went ${distinct(
          b.map((x) => x.kernelStates.join('→') || 'no entry'),
          ' / ',
        )}, TIME_WAIT in ${count(b, (x) => x.kernelTimeWait)}/${n}; ` +
        `the peer held TIME-WAIT in ${count(b, (x) => x.peerEnteredTimeWait)}/${n} ` +
        `and ${count(a, (x) => x.peerEnteredTimeWait)}/${n} (its own state, for comparison)`,
    });
    const watch = ctx.int('watch_s');
    const unwatched = a.filter((x) => x.kernelTimeWait && x.lifetimeMs === null);
    ctx.judge('T2', {
      // wait=full promises the lifetime: every entry must have been watched until it went
      requires: waitFull
        ? [
            requires(
              `every TIME_WAIT entry was watched until it went (watch ${watch} s)`,
              unwatched.length === 0,
              unwatched.length ? `${unwatched.length}/${a.length} still there after ${watch} s` : `all gone within ${watch} s`,
            ),
          ]
        : [],
      // a reading taken late (a busy machine) says nothing about the kernel: such trials are not counted
      trials: [...a, ...c].map(
        (x): Trial => ({
          requires: [
            ...notReset(x),
            requires(
              'the kernel held the four-tuple in TIME_WAIT (its timer read)',
              x.kernelTimeWait,
              x.kernelTimeWait ? `timer ${secs(x.timerAtEntryMs)}` : 'no TIME_WAIT entry',
            ),
            requires(
              `the timer was read within ${TIMER_SLACK_MS} ms of the close`,
              x.timerReadAfterMs !== null && x.timerReadAfterMs <= TIMER_SLACK_MS,
              `read ${x.timerReadAfterMs ?? '—'} ms after it`,
            ),
            ...(x.lifetimeMs === null
              ? []
              : [
                  requires(
                    `the entry was seen going to within ${GONE_SLACK_MS} ms`,
                    (x.goneWithinMs ?? Infinity) <= GONE_SLACK_MS,
                    `last seen ${x.goneWithinMs} ms before it was found gone`,
                  ),
                ]),
          ],
          agrees: near60(x.timerAtEntryMs, TIMER_SLACK_MS) && (x.lifetimeMs === null || near60(x.lifetimeMs, LIFETIME_SLACK_MS)),
        }),
      ),
      evidence:
        `TIME_WAIT timer at entry ${range(a.map((x) => x.timerAtEntryMs))} with tcp_fin_timeout=${finTimeout}, ` +
        `${range(c.map((x) => x.timerAtEntryMs))} with tcp_fin_timeout=${other}` +
        (waitFull ? `; the entries lived ${range(a.map((x) => x.lifetimeMs))} after close()` : '; (wait=none: lifetimes not waited out)'),
    });

    // the questions, answered by the trials
    const holder = (x: KernelCloser): string =>
      x.kernelTimeWait && x.peerEnteredTimeWait ? 'both' : x.kernelTimeWait ? 'the kernel' : x.peerEnteredTimeWait ? 'the peer' : 'neither';
    const holders = [...new Set(a.map(holder))];
    ctx.answer('q1', {
      answer: holders[0] ?? '',
      why:
        `measured on ${n} connections the kernel closed first: kernel in TIME_WAIT ` +
        `in ${count(a, (x) => x.kernelTimeWait)}/${n}, the peer ` +
        `in ${count(a, (x) => x.peerEnteredTimeWait)}/${n} (its states ${a[0]?.peerStates.join('→')})`,
      frames: [ctx.framesWhere('kernel-closes-first', (s) => s.flags.includes('FIN'))],
      requires: [requires('every connection gave the same answer', holders.length === 1, holders.join(' / '))],
    });
    const five = finTimeout === 5 ? a : other === 5 ? c : [];
    const timers = five.map((x) => x.timerAtEntryMs).filter((t): t is number => t !== null);
    const nearest = (ms: number): string =>
      ['5 s', '60 s', '120 s'].find((ch) => Math.abs(ms - Number.parseInt(ch, 10) * 1000) <= TIMER_SLACK_MS) ??
      `${Math.round(ms / 1000)} s`;
    const q2 = [...new Set(timers.map(nearest))];
    ctx.answer('q2', {
      answer: q2[0] ?? '',
      why:
        `measured with tcp_fin_timeout=5: the TIME_WAIT timer read ${range(timers)} right after the ` +
        `close${q2[0] === '60 s' ? " (TCP_TIMEWAIT_LEN, a constant: tcp_fin_timeout is FIN_WAIT_2's)" : ''}`,
      requires: [
        requires(
          'a variant ran with tcp_fin_timeout=5 and read its timers',
          timers.length > 0,
          `tcp_fin_timeout ${finTimeout} and ${other}`,
        ),
        requires(
          `the timers were read within ${TIMER_SLACK_MS} ms of the close`,
          five.every((x) => (x.timerReadAfterMs ?? Infinity) <= TIMER_SLACK_MS),
          `read ${five.map((x) => x.timerReadAfterMs ?? '—').join(', ')} ms after it`,
        ),
        requires('every timer gave the same answer', q2.length <= 1, q2.join(' / ')),
      ],
    });

    ctx.print(`Lab 02 — ${this.title} (${n} connections per variant)`);
    ctx.print(
      `kernel closes first : kernel TIME_WAIT in ${count(a, (x) => x.kernelTimeWait)}/${n}, timer at ` +
        `entry ${range(a.map((x) => x.timerAtEntryMs))}; peer ${a[0]?.peerStates.join(' → ')}`,
    );
    if (waitFull) ctx.print(`                      the TIME_WAIT entries vanished ${range(a.map((x) => x.lifetimeMs))} after close()`);
    ctx.print(
      `peer closes first   : kernel ${
        distinct(
          b.map((x) => x.kernelStates.join(' → ')),
          ' / ',
        ) || 'no entry'
      }, then ${
        distinct(
          b.flatMap((x) => x.kernelEntries),
          ', ',
        ) || 'no socket left'
      }; peer ${b[0]?.peerStates.join(' → ')}`,
    );
    ctx.print(`tcp_fin_timeout=${other}  : kernel TIME_WAIT timer ${range(c.map((x) => x.timerAtEntryMs))}`);
    ctx.print();
    ctx.concludeClaims();
  },
});

const PORT = 80;
const TIMER_SLACK_MS = 1500;
const LIFETIME_SLACK_MS = 3000;
/** the watch for the entry's going polls every 100 ms; a longer gap (a busy machine) blurs the lifetime */
const GONE_SLACK_MS = 1000;

interface KernelCloser {
  local: number;
  close: { ret: number; errno: string | null };
  /** the peer went through LAST-ACK to CLOSED: both FINs crossed and were acknowledged */
  peerClosed: boolean;
  peerStates: string[];
  peerEnteredTimeWait: boolean;
  kernelTimeWait: boolean;
  timerAtEntryMs: number | null;
  /** close() to when that timer was read: how stale the reading can be */
  timerReadAfterMs: number | null;
  /** close() to the entry's disappearance, when waited out */
  lifetimeMs: number | null;
  /** the last sighting of the entry to the first look that found it gone: how precise lifetimeMs is */
  goneWithinMs: number | null;
  /** the peer sent an RST on the four-tuple (which ends TIME_WAIT) */
  peerReset: boolean;
}

interface PeerCloser {
  local: number;
  /** the kernel read end-of-file (the peer's FIN) before it closed */
  eof: boolean;
  close: { ret: number; errno: string | null };
  /** the kernel's states seen in the socket table from the peer's FIN on (CLOSE_WAIT, LAST_ACK, …) */
  kernelStates: string[];
  /** the kernel's entries for the four-tuple 300 ms after the close */
  kernelEntries: string[];
  kernelTimeWait: boolean;
  peerStates: string[];
  peerEnteredTimeWait: boolean;
}

/** The TIME_WAIT entry of a connection, if the socket table has one (its timer may be unknown: NetBSD's table has none). */
const twEntry = (ctx: LabContext, localPort: number): { timerMs: number | null } | null =>
  ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === localPort && e.remote.port === PORT)[0] ?? null;

/** `n` connections, the kernel closes each first (all at once); their TIME_WAIT timers, and lifetimes when waited out. */
async function kernelClosesFirst(ctx: LabContext, n: number, waitFull: boolean): Promise<KernelCloser[]> {
  // an RST from the peer ends the kernel's TIME_WAIT (tcp_rfc1337=0, lab 13): a slow peer sends one
  // when its FIN retransmission crosses the kernel's ACK (seen in a guest under TCG)
  const peerResets = new Set<number>();
  const offRst = ctx.peer().onSegment((e) => {
    if (e.direction === 'out' && e.tcp.flags.rst && e.tuple.local.port === PORT) peerResets.add(e.tuple.remote.port);
  });
  const conns = [];
  for (let i = 0; i < n; i++) conns.push(await kernelConnects(ctx, PORT, { onAccept: (c) => c.onEnd(() => c.end()), tcb: PATIENT_PEER }));
  const closes = await Promise.all(conns.map((c) => c.k.close())); // FIN from the kernel, on every connection
  const closedAt = performance.now();
  // every entry's timer is read as soon as it appears, all at once (one after the other, the
  // last would be read seconds late on a slow machine)
  const timers = await Promise.all(
    conns.map(({ local }) =>
      ctx.waitUntil(
        () => {
          const e = twEntry(ctx, local.port);
          return e === null ? null : { ms: e.timerMs, after: Math.round(performance.now() - closedAt) };
        },
        { timeoutMs: 3000, everyMs: 20 },
      ),
    ),
  );
  const out: KernelCloser[] = [];
  for (const [i, { conn, local }] of conns.entries()) {
    const timer = timers[i] ?? null;
    const peerClosed = await peerReaches(conn, 'CLOSED', 3000);
    const states = conn.history.map((h) => h.state);
    out.push({
      local: local.port,
      close: { ret: closes[i]!.ret, errno: closes[i]!.errno },
      peerClosed: peerClosed && states.includes('LAST-ACK'),
      peerStates: states,
      peerEnteredTimeWait: states.includes('TIME-WAIT'),
      kernelTimeWait: timer !== null,
      timerAtEntryMs: timer?.ms ?? null,
      timerReadAfterMs: timer?.after ?? null,
      lifetimeMs: null,
      goneWithinMs: null,
      peerReset: false,
    });
  }
  if (waitFull) {
    const watchMs = ctx.int('watch_s') * 1000;
    const pending = new Set(out.filter((o) => o.kernelTimeWait));
    const longest = Math.max(0, ...out.map((o) => o.timerAtEntryMs ?? 0));
    const lastSeen = new Map<KernelCloser, number>();
    await ctx.waitUntil(
      () => {
        const now = performance.now();
        for (const o of pending) {
          if (twEntry(ctx, o.local) !== null) {
            lastSeen.set(o, now);
            continue;
          }
          o.lifetimeMs = Math.round(now - closedAt);
          o.goneWithinMs = Math.round(now - (lastSeen.get(o) ?? closedAt));
          pending.delete(o);
        }
        return pending.size === 0;
      },
      {
        timeoutMs: watchMs,
        everyMs: 100,
        progress: (ms) =>
          `${pending.size} TIME_WAIT entries: ` +
          `about ${Math.max(0, Math.round((longest - ms) / 1000))} s left (watching up to ${watchMs / 1000} s)`,
      },
    );
  }
  offRst();
  for (const o of out) o.peerReset = peerResets.has(o.local);
  return out;
}

/** `n` connections, the peer closes each first: the peer should hold TIME-WAIT, the kernel pass LAST_ACK and let go. */
async function peerClosesFirst(ctx: LabContext, n: number): Promise<PeerCloser[]> {
  const out: PeerCloser[] = [];
  for (let i = 0; i < n; i++) {
    const { k, conn, local } = await kernelConnects(ctx, PORT);
    const kernelStates: string[] = [];
    const look = (): string[] => {
      const states = ctx.table((e) => e.local.port === local.port && e.remote.port === PORT).map((e) => e.state);
      for (const st of states) if (kernelStates[kernelStates.length - 1] !== st) kernelStates.push(st);
      return states;
    };
    conn.end(); // FIN from the peer
    const eof = await k.recv(100, { timeoutMs: 3000 }); // the kernel reads end-of-file …
    look(); // CLOSE_WAIT
    const close = await k.close(); // … and closes: FIN back
    look();
    const peerTimeWait = await peerReaches(conn, 'TIME-WAIT', 3000);
    // the kernel's side: watched for 300 ms after the close (a TIME_WAIT would show up here)
    for (const t0 = performance.now(); performance.now() - t0 < 300; await ctx.sleep(20)) look();
    const kernelEntries = look();
    out.push({
      local: local.port,
      eof: eof.ret === 0,
      close: { ret: close.ret, errno: close.errno },
      kernelStates,
      kernelEntries,
      kernelTimeWait: kernelStates.includes('TIME_WAIT'),
      peerStates: conn.history.map((h) => h.state),
      peerEnteredTimeWait: peerTimeWait,
    });
  }
  return out;
}

const near60 = (ms: number | null, slack: number): boolean => ms !== null && Math.abs(ms - 60_000) <= slack;
const secs = (ms: number | null | undefined): string => (typeof ms === 'number' ? `${(ms / 1000).toFixed(1)} s` : 'n/a');
const range = (xs: Array<number | null>): string => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length === 0 ? 'n/a' : Math.min(...v) === Math.max(...v) ? secs(v[0]) : `${secs(Math.min(...v))}–${secs(Math.max(...v))}`;
};
