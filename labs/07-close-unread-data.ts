// Lab 07 — closing with received data still unread.
//
// Question: the peer sent data the application never read, and the application closes. Does
// the kernel send FIN, or RST — and does SO_LINGER change that?
import { defineLab, kernelConnects, type LabContext } from '../src/lab';

const CLAIMS = [
  {
    id: 'C15',
    text: 'close() with received data still unread sends RST, not FIN, whatever SO_LINGER says.',
    source: 'RFC 9293 §3.10.4; RFC 2525 §2.17; net/ipv4/tcp.c (tcp_close: data_was_unread)',
  },
] as const;

type Linger = 'off' | 'on' | 'zero';

async function closeWithUnread(ctx: LabContext, linger: Linger): Promise<Record<string, unknown>> {
  const { k, conn, local } = await kernelConnects(ctx, 80);
  conn.write(new Uint8Array(ctx.int('unread')));
  const arrived = await ctx.waitUntil(() => (k.tcpInfo().ret === 0 && ctx.table((e) => e.local.port === local.port && e.rxQueue >= ctx.int('unread')).length > 0) || false, { timeoutMs: 3000 });
  if (linger === 'on') k.setOption('SO_LINGER', { onoff: true, seconds: 5 });
  if (linger === 'zero') k.setOption('SO_LINGER', { onoff: true, seconds: 0 });
  const close = await k.close();
  await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(2000)]);
  return {
    linger,
    unreadAtClose: !!arrived,
    close: { ret: close.ret, errno: close.errno, elapsedMs: Math.round(close.elapsedMs) },
    peerReset: conn.resetReason,
    peerStates: conn.history.map((h) => h.state),
    timeWait: ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === local.port).length > 0,
  };
}

export default defineLab({
  id: '07',
  slug: 'close-unread-data',
  title: 'Closing with received data unread',
  shows: 'close() with unread data in the receive queue answers with RST, with SO_LINGER off, {1,5} or {1,0}',
  question: 'The application closes a socket whose receive queue still holds data: FIN or RST, and does SO_LINGER matter?',
  params: [{ name: 'unread', kind: 'int', default: 100, min: 1, max: 1 << 20, unit: 'bytes', help: 'bytes the peer sends that the application never reads' }],
  claims: CLAIMS,
  async run(ctx) {
    const results: Record<Linger, Record<string, unknown>> = {} as Record<Linger, Record<string, unknown>>;
    const sent: Record<Linger, { rst: number; fin: number }> = {} as Record<Linger, { rst: number; fin: number }>;
    for (const linger of ['off', 'on', 'zero'] as const) {
      const name = `linger-${linger}`;
      results[linger] = await ctx.variant(name, { linger: linger === 'off' ? 'off' : linger === 'on' ? '1,5' : '1,0', unread: ctx.int('unread') }, () => closeWithUnread(ctx, linger));
      sent[linger] = ctx.sentBy(name, ctx.addr.host4);
    }
    const all = (['off', 'on', 'zero'] as const).every((l) => sent[l].rst >= 1 && sent[l].fin === 0 && results[l].unreadAtClose);
    ctx.claim(
      'C15',
      all ? 'holds' : 'does not hold',
      (['off', 'on', 'zero'] as const).map((l) => `SO_LINGER ${l}: ${sent[l].rst} RST, ${sent[l].fin} FIN, close() ${(results[l].close as { elapsedMs: number }).elapsedMs} ms`).join('; ') +
        ` (TcpExt.TCPAbortOnClose +${(results.off.counters as Record<string, number>)['TcpExt.TCPAbortOnClose'] ?? 0} with linger off)`,
    );
    ctx.print(`Lab 07 — ${this.title} (${ctx.int('unread')} bytes unread)`);
    for (const l of ['off', 'on', 'zero'] as const) {
      const r = results[l];
      ctx.print(`SO_LINGER ${(l === 'off' ? 'off' : l === 'on' ? '{1,5}' : '{1,0}').padEnd(6)}: kernel sent ${sent[l].rst} RST, ${sent[l].fin} FIN; close() took ${(r.close as { elapsedMs: number }).elapsedMs} ms; peer ${r.peerReset ? `reset (${r.peerReset})` : (r.peerStates as string[]).join('→')}; TIME_WAIT ${r.timeWait ? 'yes' : 'no'}`);
    }
    ctx.print();
    ctx.concludeClaims();
  },
});
