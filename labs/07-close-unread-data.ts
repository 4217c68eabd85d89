// Lab 07 — closing with received data still unread.
//
// Question: the peer sent data the application never read, and the application closes. Does
// the kernel send FIN, or RST — and does SO_LINGER change that? Each setting is tried on
// `trials` connections.
import { defineLab, kernelConnects, requires, signed, type LabContext, type Trial, kOfN, distinct, sum } from '../src/lab';

export default defineLab({
  id: '07',
  slug: 'close-unread-data',
  title: 'Closing with received data unread',
  shows: 'close() with unread data in the receive queue answers with RST, with SO_LINGER off, {1,5} or {1,0}',
  showsInDetail: '`close()` with unread received data, with `SO_LINGER` off, `{1,5}`, `{1,0}`',
  question: 'The application closes a socket whose receive queue still holds data: FIN or RST, and does SO_LINGER matter?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'unread',
      kind: 'int',
      default: 100,
      min: 0,
      max: 1 << 20,
      unit: 'bytes',
      help: 'bytes the peer sends that the application never reads (0: none, the close is then orderly)',
    },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'connections per SO_LINGER setting' },
  ],
  claims: [
    'T15', // close() with received data still unread sends RST, not FIN, whatever SO_LINGER says.
  ],
  questions: [
    {
      id: 'q1',
      text: 'The peer sent 100 bytes the application never read. The application calls close() (no SO_LINGER). What does the kernel send?',
      choices: ['FIN', 'RST'],
    },
  ],
  course: {
    order: 70,
    teaches: 'What closing with received data unread puts on the wire, and whether SO_LINGER changes it.',
    look: "linger-off.pcap: the peer's data acknowledged, then the kernel's last segment.",
  },
  async run(ctx) {
    const n = ctx.int('trials');
    const results = new Map<Linger, Close[]>();
    for (const linger of LINGERS) {
      const obs = await ctx.variant(`linger-${linger}`, { linger: label(linger), unread: ctx.int('unread'), trials: n }, async () => {
        const out: Close[] = [];
        for (let i = 0; i < n; i++) out.push(await closeWithUnread(ctx, linger));
        return { trials: out };
      });
      results.set(linger, obs.trials);
    }
    const sent = (c: Close): { rst: number; fin: number } => ctx.sentBy(`linger-${c.linger}`, ctx.addr.host, c.local);
    const all = LINGERS.flatMap((l) => results.get(l)!);
    const aborts = ctx.counterChange('linger-off', 'TcpExt.TCPAbortOnClose');
    ctx.judge('T15', {
      trials: all.map(
        (c): Trial => ({
          requires: [
            requires(
              'data was unread in the receive queue at close()',
              c.unreadAtClose > 0,
              `${c.unreadAtClose} bytes unread (the peer sent ${ctx.int('unread')})`,
            ),
            ...(c.linger === 'off'
              ? []
              : [requires(`setsockopt(SO_LINGER, ${label(c.linger)}) succeeded`, c.setsockopt === 'OK', c.setsockopt)]),
          ],
          agrees: sent(c).rst >= 1 && sent(c).fin === 0,
        }),
      ),
      evidence:
        LINGERS.map((l) => {
          const cs = results.get(l)!;
          return `SO_LINGER ${label(l)}: ${sum(cs, (c) => sent(c).rst)} RST, ${sum(cs, (c) => sent(c).fin)} FIN over ${cs.length} closes`;
        }).join('; ') + ` (TcpExt.TCPAbortOnClose ${signed(aborts)} with linger off)`,
    });
    const off = results.get('off')!;
    const kinds = [
      ...new Set(
        off.map((c) =>
          sent(c).rst >= 1 && sent(c).fin === 0
            ? 'RST'
            : sent(c).fin >= 1 && sent(c).rst === 0
              ? 'FIN'
              : `${sent(c).fin} FIN, ${sent(c).rst} RST`,
        ),
      ),
    ];
    const sentOff = `${sum(off, (c) => sent(c).rst)} RST, ${sum(off, (c) => sent(c).fin)} FIN`;
    const why = kinds[0] === 'RST' ? ' (tcp_close(): data_was_unread → RST, RFC 2525 §2.17)' : '';
    ctx.answer('q1', {
      answer: kinds[0] ?? '',
      why: `measured on ${off.length} connections with ${ctx.int('unread')} bytes unread: ${sentOff}${why}`,
      frames: [
        ctx.framesWhere('linger-off', (s) => s.srcAddress === ctx.addr.host && (s.flags.includes('RST') || s.flags.includes('FIN'))),
      ],
      requires: [
        requires(
          'data was unread at close()',
          off.every((c) => c.unreadAtClose > 0),
          off.map((c) => c.unreadAtClose).join(', ') + ' bytes',
        ),
        requires('every connection gave the same answer', kinds.length === 1, kinds.join(' / ')),
      ],
    });
    ctx.print(`Lab 07 — ${this.title} (${ctx.int('unread')} bytes unread, ${n} connections per setting)`);
    for (const l of LINGERS) {
      const cs = results.get(l)!;
      ctx.print(
        `SO_LINGER ${label(l).padEnd(6)}: kernel sent ${sum(cs, (c) => sent(c).rst)} RST, ${sum(cs, (c) => sent(c).fin)} FIN; ` +
          `close() took ${Math.max(...cs.map((c) => c.close.elapsedMs))} ms at most; ` +
          `peer ${distinct(
            cs.map((c) => (c.peerReset ? `reset (${c.peerReset})` : c.peerStates.join('→'))),
            ' / ',
          )}; TIME_WAIT in ${kOfN(cs, (c) => c.timeWait)}`,
      );
    }
    ctx.print();
    ctx.concludeClaims();
  },
});

type Linger = 'off' | 'on' | 'zero';
const LINGERS: readonly Linger[] = ['off', 'on', 'zero'];
const label = (l: Linger): string => (l === 'off' ? 'off' : l === 'on' ? '{1,5}' : '{1,0}');

interface Close {
  local: number;
  linger: Linger;
  /** setsockopt(SO_LINGER) when the setting asks for it */
  setsockopt: string;
  /** bytes in the kernel's receive queue when close() ran */
  unreadAtClose: number;
  close: { ret: number; errno: string | null; elapsedMs: number };
  peerReset: string | null;
  peerStates: string[];
  timeWait: boolean;
}

async function closeWithUnread(ctx: LabContext, linger: Linger): Promise<Close> {
  const { k, conn, local } = await kernelConnects(ctx, 80);
  const unread = ctx.int('unread');
  if (unread > 0) conn.write(new Uint8Array(unread));
  const queue = (): number => ctx.table((e) => e.local.port === local.port && e.remote.port === 80)[0]?.rxQueue ?? 0;
  await ctx.waitUntil(() => queue() >= unread, { timeoutMs: 3000 });
  const set = linger === 'off' ? null : k.setOption('SO_LINGER', { onoff: true, seconds: linger === 'on' ? 5 : 0 });
  const unreadAtClose = queue();
  const close = await k.close();
  await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(2000)]);
  return {
    local: local.port,
    linger,
    setsockopt: set === null ? 'not set' : set.ret < 0 ? (set.errno ?? 'error') : 'OK',
    unreadAtClose,
    close: { ret: close.ret, errno: close.errno, elapsedMs: Math.round(close.elapsedMs) },
    peerReset: conn.resetReason,
    peerStates: conn.history.map((h) => h.state),
    timeWait: ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === local.port).length > 0,
  };
}
