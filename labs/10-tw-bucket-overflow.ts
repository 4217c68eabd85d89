// Lab 10 — more closing connections than TIME_WAIT buckets.
//
// Question: net.ipv4.tcp_max_tw_buckets caps the number of TIME_WAIT sockets. What happens to the
// connections beyond the cap: do they skip TIME_WAIT, does the kernel say so, and is their port
// free at once?
import { defineLab, kernelConnects } from '../src/lab';

const CLAIMS = [
  {
    id: 'T7',
    text: 'Beyond tcp_max_tw_buckets the kernel skips TIME_WAIT (and says so in a counter), and the port is free at once.',
    source: 'Documentation/networking/ip-sysctl.rst (tcp_max_tw_buckets)',
  },
] as const;

export default defineLab({
  id: '10',
  slug: 'tw-bucket-overflow',
  title: 'More closing connections than TIME_WAIT buckets',
  shows: 'connections closed beyond tcp_max_tw_buckets skip TIME_WAIT, the TCPTimeWaitOverflow counter counts them, their ports are free',
  question: 'When more connections close first than tcp_max_tw_buckets allows, what happens to the rest?',
  params: [
    { name: 'max_tw_buckets', kind: 'int', default: 0, min: 0, max: 1_000_000, sysctl: 'net.ipv4.tcp_max_tw_buckets', help: 'net.ipv4.tcp_max_tw_buckets in the lab namespace' },
    { name: 'connections', kind: 'int', default: 20, min: 1, max: 2000, help: 'connections the kernel closes first' },
  ],
  claims: CLAIMS,
  async run(ctx) {
    const max = ctx.int('max_tw_buckets');
    const n = ctx.int('connections');
    const obs = await ctx.variant('close-many', { max_tw_buckets: max, connections: n }, async () => {
      const ports: number[] = [];
      for (let i = 0; i < n; i++) {
        const { k, conn, local } = await kernelConnects(ctx, 80, { onAccept: (c) => c.onEnd(() => c.end()) });
        await k.close();
        await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(2000)]);
        ports.push(local.port);
        if (i % 10 === 9) ctx.progress(`${i + 1}/${n} connections closed`);
      }
      await ctx.sleep(200);
      const tw = ctx.table((e) => e.state === 'TIME_WAIT' && ports.includes(e.local.port));
      const withTw = new Set(tw.map((e) => e.local.port));
      // is a port whose connection skipped TIME_WAIT free for a plain bind() (no SO_REUSEADDR)?
      const skipped = ports.filter((p) => !withTw.has(p));
      const held = ports.filter((p) => withTw.has(p));
      const tryBind = (port: number | undefined): string | null => {
        if (port === undefined) return null;
        const s = ctx.socket('ipv4', 'tcp');
        const r = s.bind(ctx.addr.host4, port);
        s.closeNow();
        return r.errno ?? 'OK';
      };
      return { closed: ports.length, timeWaitEntries: tw.length, skipped: skipped.length, bindSkippedPort: tryBind(skipped[0]), bindHeldPort: tryBind(held[0]) };
    });
    const overflow = (obs.counters as Record<string, number>)['TcpExt.TCPTimeWaitOverflow'] ?? 0;
    const beyond = Math.max(0, n - max);
    ctx.claim(
      'T7',
      beyond === 0
        ? 'not tested'
        : (obs.timeWaitEntries as number) <= max && overflow >= beyond && obs.bindSkippedPort === 'OK'
          ? 'holds'
          : 'does not hold',
      beyond === 0
        ? `max_tw_buckets=${max} ≥ connections=${n}: nothing went beyond the limit`
        : `${n} connections closed first with tcp_max_tw_buckets=${max}: ${obs.timeWaitEntries as number} TIME_WAIT entries, TcpExt.TCPTimeWaitOverflow +${overflow}, a plain bind() to a skipped port → ${obs.bindSkippedPort as string}` +
            (obs.bindHeldPort ? `, to a port still in TIME_WAIT → ${obs.bindHeldPort as string}` : ''),
    );
    ctx.print(`Lab 10 — ${this.title}`);
    ctx.print(`tcp_max_tw_buckets=${max}, ${n} connections closed by the kernel first`);
    ctx.print(`TIME_WAIT entries: ${obs.timeWaitEntries as number}; skipped: ${obs.skipped as number}; TcpExt.TCPTimeWaitOverflow +${overflow}`);
    ctx.print(`bind() without SO_REUSEADDR to a skipped port: ${obs.bindSkippedPort ?? 'n/a'}${obs.bindHeldPort ? `; to a port in TIME_WAIT: ${obs.bindHeldPort as string}` : ''}`);
    ctx.print();
    ctx.concludeClaims();
  },
});
