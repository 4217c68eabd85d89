// Lab 04 — a client that closes first and reconnects from the same port.
//
// Question: a client binds a fixed local port, closes first (so its side holds TIME_WAIT on the
// four-tuple) and connects again. When may the new connection reuse that four-tuple, and what
// does connect() say when it may not? And what do two sockets bound to one address and port
// get when both connect to the same remote?
import {
  defineLab,
  kernelConnects,
  KnobMissingError,
  PATIENT_PEER,
  requires,
  signed,
  type KernelSocket,
  type LabContext,
  type Precondition,
  type Trial,
  distinct,
  sum,
} from '../src/lab';

export default defineLab({
  id: '04',
  slug: 'rebind-client',
  title: 'Reconnecting from the same port while TIME_WAIT holds the four-tuple',
  shows: 'connect() from a port whose old connection is in TIME_WAIT, with tcp_tw_reuse and timestamps; two sockets on one four-tuple',
  showsInDetail:
    "reconnecting from a fixed port over a TIME_WAIT four-tuple: explicit bind vs the kernel's own choice (`IP_LOCAL_PORT_RANGE`), " +
    "other remote port, `tcp_tw_reuse` 0/1 (the delay counted from the TIME_WAIT entry's first sighting); two sockets on one four-tuple",
  question: 'A client closed first and reconnects from the same local port: when may it, and what does connect() say when it may not?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'timestamps',
      kind: 'bool',
      default: true,
      sysctl: 'net.ipv4.tcp_timestamps',
      help: 'TCP timestamps: the kernel sysctl and the peer alike',
    },
    {
      name: 'tw_reuse',
      kind: 'enum',
      default: '2',
      choices: ['0', '1', '2'],
      sysctl: 'net.ipv4.tcp_tw_reuse',
      claims: [
        'T3', // For a connect() whose local port the kernel chooses, tcp_tw_reuse decides whether it may take
        //   over a four-tuple in TIME_WAIT (when timestamps make it safe and the TIME_WAIT is
        //   tcp_tw_reuse_delay old).
      ],
      help: '0 off, 1 on, 2 loopback only (the Linux default)',
    },
    {
      name: 'delay_ms',
      kind: 'int',
      default: 1100,
      min: 0,
      max: 60_000,
      help: 'wait between the TIME_WAIT entries and the reconnects (tcp_tw_reuse needs the TIME_WAIT tcp_tw_reuse_delay old)',
    },
    {
      name: 'local_port',
      kind: 'int',
      default: 41000,
      min: 1024,
      max: 60000,
      help: 'the fixed local port (a few dozen above it are used too)',
    },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'repetitions of each probe (each on its own local port)' },
  ],
  claims: [
    'C6', // connect() fails with EADDRINUSE when the five-tuple already exists.
    'T3', // For a connect() whose local port the kernel chooses, tcp_tw_reuse decides whether it may take
    //   over a four-tuple in TIME_WAIT (when timestamps make it safe and the TIME_WAIT is tcp_tw_reuse_delay
    //   old).
    'T16', // A connect() from an explicitly bound local port takes over a four-tuple in a timestamped
    //   TIME_WAIT whatever tcp_tw_reuse says: the sysctl is never consulted on that path.
  ],
  questions: [
    {
      id: 'q1',
      text:
        'Two sockets are bound to the same address and port (SO_REUSEADDR on both) and both connect() to the same remote ' +
        'address and port. What does the second connect() return?',
      choices: ['OK', 'EADDRINUSE', 'EADDRNOTAVAIL', 'ECONNREFUSED'],
    },
  ],
  recordSysctls: ['net.ipv4.tcp_tw_reuse_delay', 'net.ipv4.ip_local_port_range'],
  course: {
    order: 90,
    teaches: 'When a client may reconnect from the port of a connection in TIME_WAIT, and what connect() says when it may not.',
    look: 'same-remote.pcap: the second SYN on the very same four-tuple.',
  },
  async run(ctx) {
    const delay = ctx.int('delay_ms');
    const n = ctx.int('trials');
    let port = ctx.int('local_port');
    const scenario = async (remotePort: number, how: 'bind' | 'range'): Promise<Attempt & { local: number; timeWaitCreated: boolean }> => {
      const local = port++;
      const first = await firstConnection(ctx, local, how);
      await ctx.sleep(delay);
      return { local, timeWaitCreated: first.timeWait, ...(await reconnect(ctx, local, remotePort, how)) };
    };
    const same = await ctx.variant('same-remote', { how: 'bind' }, async () => ({ ...(await scenario(80, 'bind')) }));
    const other = await ctx.variant('other-remote-port', { how: 'bind' }, async () => ({ ...(await scenario(81, 'bind')) }));
    const range = await ctx.variant('kernel-port-choice', { how: 'IP_LOCAL_PORT_RANGE' }, async () => ({
      ...(await scenario(80, 'range')),
    }));
    const two = (
      await ctx.variant('two-sockets-one-tuple', { trials: n }, async () => {
        const stack = ctx.peer({ timestamps: ctx.bool('timestamps') });
        const listener = stack.listen(80);
        const trials = [];
        for (let i = 0; i < n; i++) {
          const local = port++;
          const a = ctx.socket(ctx.family, 'tcp');
          const b = ctx.socket(ctx.family, 'tcp');
          for (const s of [a, b]) s.setOption('SO_REUSEADDR', true);
          const bindA = a.bind(ctx.addr.host, local);
          const bindB = b.bind(ctx.addr.host, local);
          const connectA = await a.connect(ctx.addr.peer, 80);
          const firstState = ctx.table((e) => e.local.port === local && e.remote.port === 80)[0]?.state ?? null;
          const connectB = await b.connect(ctx.addr.peer, 80);
          for (const s of [a, b]) s.setOption('SO_LINGER', { onoff: true, seconds: 0 });
          await a.close();
          await b.close();
          trials.push({
            local,
            bindA: bindA.errno ?? 'OK',
            bindB: bindB.errno ?? 'OK',
            connectA: connectA.errno ?? 'OK',
            firstState,
            connectB: connectB.errno ?? 'OK',
          });
        }
        stack.unlisten(listener);
        return { trials };
      })
    ).trials;

    // T3: the same reconnect over a TIME_WAIT four-tuple with tcp_tw_reuse 0 and 1, by explicit bind
    // and by the kernel's own port choice; every first connection is made, then one wait, then
    // every reconnect (tcp_tw_reuse is read at connect time)
    const setting = ctx.str('tw_reuse');
    /** false where the system has no tcp_tw_reuse (another OS): the two passes are then alike */
    let twReuseKnob = true;
    const cells = (
      await ctx.variant('tw-reuse-compare', { trials: n }, async () => {
        const out: Cell[] = [];
        const plan: Array<Pick<Cell, 'how' | 'twReuse' | 'trial' | 'local' | 'first'>> = [];
        for (let trial = 1; trial <= n; trial++) {
          for (const twReuse of ['0', '1'] as const)
            for (const how of ['bind', 'range'] as const)
              plan.push({ how, twReuse, trial, local: port, first: await firstConnection(ctx, port++, how) });
        }
        await ctx.sleep(delay);
        try {
          for (const twReuse of ['0', '1'] as const) {
            if (ctx.sysctl('net.ipv4.tcp_tw_reuse', twReuse) === null) twReuseKnob = false;
            for (const p of plan.filter((x) => x.twReuse === twReuse)) {
              const delayMs = p.first.twSeenAt === null ? null : Math.round(performance.now() - p.first.twSeenAt);
              out.push({ ...p, delayMs, ...(await reconnect(ctx, p.local, 80, p.how)) });
            }
          }
        } finally {
          ctx.sysctl('net.ipv4.tcp_tw_reuse', setting);
        }
        return { cells: out };
      })
    ).cells;

    ctx.judge('C6', {
      trials: two.map((t) => c6Trial(t, ctx.addr.host)),
      evidence:
        `two sockets bound to one address and port (SO_REUSEADDR), both connecting ` +
        `to ${ctx.addr.peer}:80: the first ${distinct(two.map((t) => t.firstState ?? 'not in the table'))}, the second connect() ` +
        `→ ${distinct(two.map((t) => t.connectB))}`,
    });
    const delaySysctl = ctx.readSysctl('net.ipv4.tcp_tw_reuse_delay');
    const ts = ctx.bool('timestamps');
    const say = (how: 'bind' | 'range', tw: '0' | '1'): string =>
      distinct(cells.filter((c) => c.how === how && c.twReuse === tw).map((c) => c.connect));
    const passes = (how: 'bind' | 'range'): string =>
      twReuseKnob
        ? `${say(how, '0')} with tcp_tw_reuse=0, ${say(how, '1')} with 1`
        : `${say(how, '0')}, then ${say(how, '1')} (two passes alike: no tcp_tw_reuse on this system)`;
    const bindCells = cells.filter((c) => c.how === 'bind');
    const recycled = bindCells.some((c) => c.twRecycled === null) ? null : sum(bindCells, (c) => c.twRecycled!);
    const reuse = reuseTrials(cells, n, delaySysctl, ts);
    ctx.judge('T3', {
      trials: reuse.t3,
      evidence:
        `reconnect over a TIME_WAIT four-tuple from the kernel's own port choice (IP_LOCAL_PORT_RANGE of one ` +
        `port): ${passes('range')}; tcp_tw_reuse_delay ${delaySysctl === null ? 'does not exist on this kernel' : `${delaySysctl} ms`}`,
    });
    ctx.judge('T16', {
      trials: reuse.t16,
      evidence:
        `reconnect over a TIME_WAIT four-tuple from an explicitly bound ` +
        `port: ${passes('bind')} (TWRecycled ${signed(recycled)} over ${bindCells.length} reconnects)`,
    });

    const seconds = [...new Set(two.map((t) => t.connectB))];
    ctx.answer('q1', {
      answer: seconds[0] ?? '',
      why:
        `measured ${n} times: the first connect() → ${distinct(two.map((t) => t.connectA))}, the second ` +
        `→ ${seconds.join('/')}${seconds[0] === 'EADDRNOTAVAIL' ? ' (no free four-tuple: __inet_hash_connect says EADDRNOTAVAIL)' : ''}`,
      requires: [
        requires(
          'both binds and the first connect() succeeded',
          two.every((t) => t.bindA === 'OK' && t.bindB === 'OK' && t.connectA === 'OK'),
          two.map((t) => `${t.bindA}/${t.bindB}/${t.connectA}`).join(' '),
        ),
        requires('every trial gave the same answer', seconds.length === 1, seconds.join(' / ')),
      ],
    });

    const line = (name: string, r: Record<string, unknown>): void => {
      const over = `${r.twBefore ? 'over a TIME_WAIT four-tuple' : 'no TIME_WAIT'}${r.twRecycled ? `, TWRecycled +${r.twRecycled}` : ''}`;
      ctx.print(`${name.padEnd(34)} bind ${String(r.bind ?? '-').padEnd(10)} connect ${String(r.connect).padEnd(14)}${over}`);
    };
    ctx.print(`Lab 04 — ${this.title}`);
    ctx.print(
      `tcp_tw_reuse=${setting}, timestamps ${ts ? 'on' : 'off'}, ${delay} ms between the TIME_WAIT entries and the reconnects; ` +
        `tcp_tw_reuse_delay ${delaySysctl ?? 'not on this kernel'}`,
    );
    line('same local port, same remote', same);
    line('same local port, other remote port', other);
    line('IP_LOCAL_PORT_RANGE of one port', range);
    for (const how of ['bind', 'range'] as const) {
      for (const tw of ['0', '1'] as const) {
        const what = `${how === 'bind' ? 'explicit bind' : 'kernel port choice'}, tcp_tw_reuse=${tw}`;
        ctx.print(`${what.padEnd(34)} connect ${say(how, tw)} (${n} trials)`);
      }
    }
    ctx.print(
      `two sockets on one address and port → the same remote: first ` +
        `connect ${distinct(two.map((t) => t.connectA))}, second ${distinct(two.map((t) => t.connectB))} (${n} trials)`,
    );
    ctx.print();
    ctx.concludeClaims();
  },
});

export interface Attempt {
  /** the option that fixes the local port (bind, or IP_LOCAL_PORT_RANGE) took */
  setup: string;
  bind: string | null;
  connect: string;
  /** the local port the new connection got */
  localPort: number | null;
  twBefore: boolean;
  /** TcpExt.TWRecycled moved by the connect (null: the system has no such counter) */
  twRecycled: number | null;
}

export interface First {
  /** the kernel's connection used the port and left a TIME_WAIT on the four-tuple */
  timeWait: boolean;
  /** timestamps were negotiated (tcp_tw_reuse takes over only a timestamped TIME_WAIT) */
  timestamps: boolean;
  closedAt: number;
  /**
   * when the socket table first showed the TIME_WAIT entry (tcp_tw_reuse_delay counts from the kernel's entry into TIME_WAIT, which came
   * before)
   */
  twSeenAt: number | null;
  setup: string;
}

/** First connection from `local` to peer:80, closed by the kernel first: a TIME_WAIT on that four-tuple. */
async function firstConnection(ctx: LabContext, local: number, how: 'bind' | 'range'): Promise<First> {
  let setup = 'OK';
  let k: KernelSocket;
  let timestamps = false;
  try {
    const c = await kernelConnects(ctx, 80, {
      tcb: { ...PATIENT_PEER, timestamps: ctx.bool('timestamps') },
      onAccept: (x) => x.onEnd(() => x.end()),
      before: (s) => {
        setup = prepare(s, ctx.addr.host, local, how);
      },
    });
    k = c.k;
    timestamps = c.conn.tcb.tsEnabled;
  } catch (e) {
    return {
      timeWait: false,
      timestamps,
      closedAt: performance.now(),
      twSeenAt: null,
      setup: setup === 'OK' ? (e instanceof Error ? e.message : String(e)) : setup,
    };
  }
  await k.close();
  const closedAt = performance.now();
  // a port that could not be fixed leaves no TIME_WAIT on it to look for (the cell is not counted):
  // waiting for one would only age the other cells' TIME_WAITs (NetBSD's last 10 s)
  if (setup !== 'OK') return { timeWait: false, timestamps, closedAt, twSeenAt: null, setup };
  const twSeenAt = await ctx.waitUntil(
    () =>
      ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === local && e.remote.port === 80).length > 0 ? performance.now() : null,
    { timeoutMs: 3000, everyMs: 10 },
  );
  return { timeWait: twSeenAt !== null, timestamps, closedAt, twSeenAt, setup };
}

/** The local port, either by bind() (SO_REUSEADDR so a second bind may share it) or by a one-port IP_LOCAL_PORT_RANGE; OK or the errno. */
function prepare(s: KernelSocket, host: string, local: number, how: 'bind' | 'range'): string {
  if (how === 'range') {
    // IP_LOCAL_PORT_RANGE came in Linux 6.3 (some distributions backport it): where it is missing
    // this setsockopt fails, and the cells say so
    // another OS's stack has no such option at all (KnobMissingError): the cells say so too
    try {
      const r = s.setOption('IP_LOCAL_PORT_RANGE', { lo: local, hi: local });
      return r.errno ? `IP_LOCAL_PORT_RANGE ${r.errno}` : 'OK';
    } catch (e) {
      if (e instanceof KnobMissingError) return `IP_LOCAL_PORT_RANGE missing (${e.message})`;
      throw e;
    }
  }
  s.setOption('SO_REUSEADDR', true);
  const b = s.bind(host, local);
  return b.errno ? `bind ${b.errno}` : 'OK';
}

/** A second connection from the same local port to peer:`remotePort`. */
async function reconnect(ctx: LabContext, local: number, remotePort: number, how: 'bind' | 'range'): Promise<Attempt> {
  const stack = ctx.peer({ timestamps: ctx.bool('timestamps') });
  const listener = stack.listen(remotePort, { tcb: { ...PATIENT_PEER, timestamps: ctx.bool('timestamps') } });
  const twBefore = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === local && e.remote.port === 80).length > 0;
  const before = ctx.counters();
  const k = ctx.socket(ctx.family, 'tcp');
  const setup = prepare(k, ctx.addr.host, local, how);
  const bind = how === 'bind' ? setup.replace(/^bind /, '') : null;
  const c = await k.connect(ctx.addr.peer, remotePort);
  const localPort = c.ret === 0 ? (k.localAddress()?.port ?? null) : null;
  const twRecycled = ctx.counterChange(before, 'TcpExt.TWRecycled');
  if (c.ret === 0) {
    k.setOption('SO_LINGER', { onoff: true, seconds: 0 }); // leave no new TIME_WAIT behind
  }
  await k.close();
  stack.unlisten(listener);
  return { setup, bind, connect: c.errno ?? 'OK', localPort, twBefore, twRecycled };
}

export interface Cell extends Attempt {
  how: 'bind' | 'range';
  twReuse: '0' | '1';
  trial: number;
  local: number;
  first: First;
  /** from when the first connection's TIME_WAIT entry was first seen to the reconnect (null: never seen) */
  delayMs: number | null;
}

/**
 * T3 and T16, one trial per pass over the reconnects (tcp_tw_reuse 0 and 1 on each path). T3, the
 * kernel's own port choice: the takeover happens exactly with tcp_tw_reuse=1, once the TIME_WAIT
 * is tcp_tw_reuse_delay old (counted from when its entry was first seen: the kernel's clock starts
 * at its entry into TIME_WAIT, before that). T16, an explicit bind: the takeover happens whatever
 * tcp_tw_reuse says, with no delay either (tcp_twsk_unique() gets no twp on that path).
 * `delaySysctl` is net.ipv4.tcp_tw_reuse_delay as read (null: this kernel has none, and then
 * tcp_twsk_unique() waits a second from the TIME_WAIT's last timestamp, which came with its entry).
 */
export function reuseTrials(
  cells: readonly Cell[],
  n: number,
  delaySysctl: string | null,
  timestamps: boolean,
): { t3: Trial[]; t16: Trial[] } {
  const reuseDelay = delaySysctl === null ? 1000 : Number(delaySysctl);
  const delayWhat =
    delaySysctl === null
      ? 'the reconnect came at least 1000 ms after the TIME_WAIT entry was first seen (this kernel has no ' +
        "net.ipv4.tcp_tw_reuse_delay: its tcp_twsk_unique() waits a second from the TIME_WAIT's last timestamp)"
      : `the reconnect came at least tcp_tw_reuse_delay (${reuseDelay} ms) after the TIME_WAIT entry was first seen`;
  const pass = (how: 'bind' | 'range', i: number, needDelay: boolean): { cells: Cell[]; requires: Precondition[] } => {
    const cs = cells.filter((c) => c.trial === i + 1 && c.how === how);
    const worst = (test: (c: Cell) => boolean): Cell | undefined => cs.find((c) => !test(c));
    const noSetup = worst((c) => c.first.setup === 'OK' && c.setup === 'OK');
    const noTw = worst((c) => c.twBefore);
    const noTs = worst((c) => c.first.timestamps);
    const early = worst((c) => c.delayMs !== null && c.delayMs >= reuseDelay);
    return {
      cells: cs,
      requires: [
        requires(
          how === 'bind' ? 'the local port could be bound' : 'the local port could be fixed with IP_LOCAL_PORT_RANGE',
          cs.length === 2 && !noSetup,
          noSetup ? (noSetup.first.setup !== 'OK' ? noSetup.first.setup : noSetup.setup) : `${cs.length} cells, OK`,
        ),
        requires(
          'the four-tuple was in TIME_WAIT when connect() ran',
          !noTw,
          noTw ? `no TIME_WAIT on local port ${noTw.local}` : 'in both cells',
        ),
        requires(
          'the old connection used timestamps',
          !noTs,
          noTs ? `no timestamps on local port ${noTs.local} (timestamps=${timestamps ? 'on' : 'off'})` : 'in both cells',
        ),
        ...(needDelay
          ? [
              requires(
                delayWhat,
                !early,
                early
                  ? early.delayMs === null
                    ? 'the TIME_WAIT entry was never seen'
                    : `${early.delayMs} ms`
                  : `${Math.min(...cs.map((c) => c.delayMs ?? 0))} ms or more`,
              ),
            ]
          : []),
      ],
    };
  };
  return {
    t3: Array.from({ length: n }, (_, i): Trial => {
      const p = pass('range', i, true);
      return { requires: p.requires, agrees: p.cells.every((c) => (c.connect === 'OK') === (c.twReuse === '1')) };
    }),
    t16: Array.from({ length: n }, (_, i): Trial => {
      const p = pass('bind', i, false);
      return { requires: p.requires, agrees: p.cells.every((c) => c.connect === 'OK') };
    }),
  };
}

export interface TwoSockets {
  local: number;
  bindA: string;
  bindB: string;
  connectA: string;
  /** the first connection's state in the socket table right after its connect() */
  firstState: string | null;
  connectB: string;
}

/** The errnos that speak of the five-tuple: another errno (ECONNREFUSED, ETIMEDOUT, …) says nothing of it. */
const ADDRESS_ERRNOS = ['EADDRINUSE', 'EADDRNOTAVAIL'];

/** C6, one trial: two sockets on one address and port connect to one remote; the second connect() should fail with EADDRINUSE. */
export function c6Trial(t: TwoSockets, host: string): Trial {
  return {
    requires: [
      requires(
        'both sockets were bound to one address and port',
        t.bindA === 'OK' && t.bindB === 'OK',
        `bind ${t.bindA}/${t.bindB} on ${host}:${t.local}`,
      ),
      requires(
        'the first connect() succeeded and the socket table shows it ESTABLISHED',
        t.connectA === 'OK' && t.firstState === 'ESTABLISHED',
        `connect → ${t.connectA}, ${t.firstState ?? 'not in the table'}`,
      ),
      requires(
        'the second connect() failed for its address (EADDRINUSE or EADDRNOTAVAIL) or succeeded',
        t.connectB === 'OK' || ADDRESS_ERRNOS.includes(t.connectB),
        `connect → ${t.connectB}`,
      ),
    ],
    agrees: t.connectB === 'EADDRINUSE',
  };
}
