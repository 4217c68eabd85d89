// Lab 04 — a client that closes first and reconnects from the same port.
//
// Question: a client binds a fixed local port, closes first (so its side holds TIME_WAIT on the
// four-tuple) and connects again. When may the new connection reuse that four-tuple, and what
// does connect() say when it may not? And what do two sockets bound to one address and port
// get when both connect to the same remote?
import { defineLab, kernelConnects, type KernelSocket, type LabContext } from '../src/lab';

const CLAIMS = [
  { id: 'C6', text: 'connect() fails with EADDRINUSE when the five-tuple already exists.', source: 'seed §"Connect() Returning EADDRINUSE?"' },
  {
    id: 'T3',
    text: 'tcp_tw_reuse governs whether a new outgoing connection may take over a four-tuple in TIME_WAIT (when timestamps make it safe).',
    source: 'Documentation/networking/ip-sysctl.rst (tcp_tw_reuse)',
  },
] as const;

interface Attempt {
  bind: string | null;
  connect: string;
  /** the local port the new connection got */
  localPort: number | null;
  twBefore: boolean;
  twRecycled: number;
}

/** First connection from `local` to peer:80, closed by the kernel first: a TIME_WAIT on that four-tuple. */
async function firstConnection(ctx: LabContext, local: number, how: 'bind' | 'range'): Promise<boolean> {
  const { k } = await kernelConnects(ctx, 80, {
    tcb: { timestamps: ctx.bool('timestamps') },
    onAccept: (c) => c.onEnd(() => c.end()),
    before: (s) => prepare(s, local, how),
  });
  await k.close();
  return !!(await ctx.waitUntil(() => ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === local && e.remote.port === 80).length > 0, { timeoutMs: 3000 }));
}

/** The local port, either by bind() (SO_REUSEADDR so a second bind may share it) or by a one-port IP_LOCAL_PORT_RANGE. */
function prepare(s: KernelSocket, local: number, how: 'bind' | 'range'): string | null {
  if (how === 'range') {
    s.setOption('IP_LOCAL_PORT_RANGE', { lo: local, hi: local });
    return null;
  }
  s.setOption('SO_REUSEADDR', true);
  const b = s.bind('192.0.2.1', local);
  return b.errno ?? 'OK';
}

/** A second connection from the same local port to peer:`remotePort`. */
async function reconnect(ctx: LabContext, local: number, remotePort: number, how: 'bind' | 'range'): Promise<Attempt> {
  const stack = ctx.peer({ timestamps: ctx.bool('timestamps') });
  const listener = stack.listen(remotePort, { tcb: { timestamps: ctx.bool('timestamps') } });
  const twBefore = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === local && e.remote.port === 80).length > 0;
  const before = ctx.counters()['TcpExt.TWRecycled'] ?? 0;
  const k = ctx.socket('ipv4', 'tcp');
  const bind = prepare(k, local, how);
  const c = await k.connect(ctx.addr.peer4, remotePort);
  const localPort = c.ret === 0 ? (k.localAddress()?.port ?? null) : null;
  const twRecycled = (ctx.counters()['TcpExt.TWRecycled'] ?? 0) - before;
  if (c.ret === 0) {
    k.setOption('SO_LINGER', { onoff: true, seconds: 0 }); // leave no new TIME_WAIT behind
  }
  await k.close();
  stack.unlisten(listener);
  return { bind, connect: c.errno ?? 'OK', localPort, twBefore, twRecycled };
}

export default defineLab({
  id: '04',
  slug: 'rebind-client',
  title: 'Reconnecting from the same port while TIME_WAIT holds the four-tuple',
  shows: 'connect() from a port whose old connection is in TIME_WAIT, with tcp_tw_reuse and timestamps; two sockets on one four-tuple',
  question: 'A client closed first and reconnects from the same local port: when may it, and what does connect() say when it may not?',
  params: [
    { name: 'timestamps', kind: 'bool', default: true, sysctl: 'net.ipv4.tcp_timestamps', help: 'TCP timestamps: the kernel sysctl and the peer alike' },
    { name: 'tw_reuse', kind: 'enum', default: '2', choices: ['0', '1', '2'], sysctl: 'net.ipv4.tcp_tw_reuse', help: '0 off, 1 on, 2 loopback only (the Linux default)' },
    { name: 'delay_ms', kind: 'int', default: 1100, min: 0, max: 60_000, help: 'wait between the close and the reconnect (tcp_tw_reuse needs the old timestamp 1 s old)' },
    { name: 'local_port', kind: 'int', default: 41000, min: 1024, max: 60000, help: 'the fixed local port (a few above it are used too)' },
  ],
  claims: CLAIMS,
  recordSysctls: ['net.ipv4.tcp_tw_reuse_delay', 'net.ipv4.ip_local_port_range'],
  async run(ctx) {
    const delay = ctx.int('delay_ms');
    let port = ctx.int('local_port');
    const scenario = async (remotePort: number, how: 'bind' | 'range'): Promise<Attempt & { local: number; timeWaitCreated: boolean }> => {
      const local = port++;
      const tw = await firstConnection(ctx, local, how);
      await ctx.sleep(delay);
      return { local, timeWaitCreated: tw, ...(await reconnect(ctx, local, remotePort, how)) };
    };
    const same = await ctx.variant('same-remote', { how: 'bind' }, async () => ({ ...(await scenario(80, 'bind')) }));
    const other = await ctx.variant('other-remote-port', { how: 'bind' }, async () => ({ ...(await scenario(81, 'bind')) }));
    const range = await ctx.variant('kernel-port-choice', { how: 'IP_LOCAL_PORT_RANGE' }, async () => ({ ...(await scenario(80, 'range')) }));
    const two = await ctx.variant('two-sockets-one-tuple', {}, async () => {
      const local = port++;
      const a = ctx.socket('ipv4', 'tcp');
      const b = ctx.socket('ipv4', 'tcp');
      const stack = ctx.peer({ timestamps: ctx.bool('timestamps') });
      const listener = stack.listen(80);
      for (const s of [a, b]) s.setOption('SO_REUSEADDR', true);
      const bindA = a.bind(ctx.addr.host4, local);
      const bindB = b.bind(ctx.addr.host4, local);
      const connectA = await a.connect(ctx.addr.peer4, 80);
      const connectB = await b.connect(ctx.addr.peer4, 80);
      for (const s of [a, b]) s.setOption('SO_LINGER', { onoff: true, seconds: 0 });
      await a.close();
      await b.close();
      stack.unlisten(listener);
      return { local, bindA: bindA.errno ?? 'OK', bindB: bindB.errno ?? 'OK', connectA: connectA.errno ?? 'OK', connectB: connectB.errno ?? 'OK' };
    });
    // T3: the same reconnects with tcp_tw_reuse off and on, by explicit bind and by the kernel's own port choice
    const setting = ctx.str('tw_reuse');
    const compare = await ctx.variant('tw-reuse-compare', {}, async () => {
      const out: Record<string, unknown> = {};
      try {
        for (const value of ['0', '1']) {
          ctx.sysctl('net.ipv4.tcp_tw_reuse', value);
          for (const how of ['bind', 'range'] as const) out[`${how} tw_reuse=${value}`] = { ...(await scenario(80, how)) };
        }
      } finally {
        ctx.sysctl('net.ipv4.tcp_tw_reuse', setting);
      }
      return out;
    });
    const connectB = two.connectB as string;
    ctx.claim(
      'C6',
      connectB === 'EADDRINUSE' ? 'holds' : 'differs by OS',
      `two sockets bound to ${ctx.addr.host4}:${two.local as number} (SO_REUSEADDR, bind ${two.bindA as string}/${two.bindB as string}): the first connect() → ${two.connectA as string}, the second to the same remote → ${connectB}`,
    );
    const got = (key: string): Attempt => compare[key] as Attempt;
    const ts = ctx.bool('timestamps');
    const cells = ['bind tw_reuse=0', 'bind tw_reuse=1', 'range tw_reuse=0', 'range tw_reuse=1'].map((k) => ({ key: k, ...got(k) }));
    // tcp_tw_reuse governs the takeover if, on both paths, it happens exactly with tw_reuse=1 (and timestamps on)
    const follows = cells.filter((c) => (c.connect === 'OK') === (c.key.endsWith('=1') && ts));
    ctx.claim(
      'T3',
      cells.some((c) => !c.twBefore) ? 'not tested' : follows.length === cells.length ? 'holds' : 'does not hold',
      `timestamps ${ts ? 'on' : 'off'}, reconnect over the TIME_WAIT four-tuple: explicit bind → ${got('bind tw_reuse=0').connect} with tcp_tw_reuse=0, ${got('bind tw_reuse=1').connect} with 1; ` +
        `kernel's port choice → ${got('range tw_reuse=0').connect} with 0, ${got('range tw_reuse=1').connect} with 1` +
        (follows.length === cells.length ? '' : ' (an explicitly bound socket takes over a timestamped TIME_WAIT whatever tcp_tw_reuse says: tcp_twsk_unique() checks the sysctl only for the kernel-chosen port)'),
    );

    const line = (name: string, r: Record<string, unknown>): void =>
      ctx.print(`${name.padEnd(34)} bind ${String(r.bind ?? '-').padEnd(10)} connect ${String(r.connect).padEnd(14)}${r.twBefore ? 'over a TIME_WAIT four-tuple' : 'no TIME_WAIT'}${(r.twRecycled as number) ? `, TWRecycled +${r.twRecycled as number}` : ''}`);
    ctx.print(`Lab 04 — ${this.title}`);
    ctx.print(`tcp_tw_reuse=${setting}, timestamps ${ts ? 'on' : 'off'}, ${delay} ms between the close and the reconnect`);
    line('same local port, same remote', same);
    line('same local port, other remote port', other);
    line('IP_LOCAL_PORT_RANGE of one port', range);
    for (const c of cells) line(`${c.key.startsWith('bind') ? 'explicit bind' : 'kernel port choice'}, tcp_tw_reuse=${c.key.slice(-1)}`, c as unknown as Record<string, unknown>);
    ctx.print(`two sockets on ${ctx.addr.host4}:${two.local as number} → the same remote: first connect ${two.connectA as string}, second ${connectB}`);
    ctx.print();
    ctx.concludeClaims();
  },
});
