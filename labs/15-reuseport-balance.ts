// Lab 15 — SO_REUSEPORT load balancing.
//
// Question: several kernel sockets share one port with SO_REUSEPORT. How evenly does Linux spread
// incoming connections and datagrams over them, what happens to connections queued on a listener
// that closes, and may a socket of another user join the group?
import { defineLab, emitUdpFrame, type Connection, type KernelSocket, type LabContext } from '../src/lab';

const CLAIMS = [
  { id: 'C10', text: 'Linux distributes incoming connections and datagrams evenly across SO_REUSEPORT sockets.', source: 'seed §Linux >= 3.9' },
  { id: 'C9', text: 'Sockets can share a port through SO_REUSEPORT only if they belong to the same effective user ID.', source: 'seed §Linux >= 3.9; man 7 socket' },
] as const;

const TCP_PORT = 7300;
const UDP_PORT = 7400;

/** Pearson's chi-square against a uniform spread, and whether every count is within ±50 % of the mean. */
export function evenness(counts: number[]): { chiSquare: number; df: number; within50: boolean; min: number; max: number } {
  const total = counts.reduce((a, b) => a + b, 0);
  const mean = total / counts.length;
  const chiSquare = counts.reduce((s, c) => s + (c - mean) ** 2 / mean, 0);
  return { chiSquare: Math.round(chiSquare * 100) / 100, df: counts.length - 1, within50: counts.every((c) => c >= 0.5 * mean && c <= 1.5 * mean), min: Math.min(...counts), max: Math.max(...counts) };
}

function histogram(ctx: LabContext, title: string, counts: number[]): void {
  const max = Math.max(...counts, 1);
  ctx.print(title);
  counts.forEach((c, i) => ctx.print(`  socket ${i + 1}  ${String(c).padStart(5)}  ${'█'.repeat(Math.round((40 * c) / max))}`));
}

async function drainAccepts(l: KernelSocket): Promise<KernelSocket[]> {
  const out: KernelSocket[] = [];
  for (;;) {
    const r = await l.accept(30);
    if (!r.socket) return out;
    out.push(r.socket);
  }
}

export default defineLab({
  id: '15',
  slug: 'reuseport-balance',
  title: 'SO_REUSEPORT: sharing one port, balancing the load',
  shows: 'how connections and datagrams spread over SO_REUSEPORT sockets, what a closing listener does to its queue, and the same-user rule',
  question: 'Several sockets share a port with SO_REUSEPORT: how evenly does Linux spread the load, and who may join?',
  params: [
    { name: 'listeners', kind: 'int', default: 4, min: 2, max: 64, help: 'sockets sharing the port' },
    { name: 'connections', kind: 'int', default: 400, min: 10, max: 20_000, help: 'connections (and datagrams) the peer sends, each from its own source port' },
  ],
  claims: CLAIMS,
  recordSysctls: ['net.ipv4.tcp_migrate_req', 'net.core.somaxconn'],
  async run(ctx) {
    const n = ctx.int('listeners');
    const total = ctx.int('connections');
    const stack = ctx.peer();

    const tcp = await ctx.variant('tcp-connections', { listeners: n, connections: total }, async () => {
      const listeners = Array.from({ length: n }, () => {
        const l = ctx.socket('ipv4', 'tcp', { timeline: false });
        l.setOption('SO_REUSEPORT', true);
        l.bind(ctx.addr.host4, TCP_PORT);
        l.listen(4096);
        return l;
      });
      const conns: Connection[] = [];
      for (let i = 0; i < total; i++) conns.push(stack.connect({ local: { address: ctx.addr.peer4 }, remote: { address: ctx.addr.host4, port: TCP_PORT } }));
      await ctx.waitUntil(() => conns.every((c) => c.state === 'ESTABLISHED'), { timeoutMs: 20_000, progress: () => `${conns.filter((c) => c.state === 'ESTABLISHED').length}/${total} connected` });
      const accepted = await Promise.all(listeners.map(drainAccepts));
      const counts = accepted.map((a) => a.length);
      for (const a of accepted) for (const s of a) s.closeNow();
      for (const c of conns) c.abort();
      // a second batch stays queued; then the first listener closes
      const queued: Connection[] = [];
      for (let i = 0; i < Math.min(100, total); i++) queued.push(stack.connect({ local: { address: ctx.addr.peer4 }, remote: { address: ctx.addr.host4, port: TCP_PORT } }));
      await ctx.waitUntil(() => queued.every((c) => c.state === 'ESTABLISHED'), { timeoutMs: 10_000 });
      listeners[0]!.closeNow();
      await ctx.sleep(300);
      const reset = queued.filter((c) => c.resetReason === 'rst-received').length;
      const survivors = await Promise.all(listeners.slice(1).map(drainAccepts));
      const acceptedAfter = survivors.reduce((s, a) => s + a.length, 0);
      for (const a of survivors) for (const s of a) s.closeNow();
      for (const c of queued) if (c.state !== 'CLOSED') c.abort();
      // the same-user rule, live: one more socket of ours joins; one of nobody's may not
      const mine = ctx.socket('ipv4', 'tcp');
      mine.setOption('SO_REUSEPORT', true);
      const mineBind = mine.bind(ctx.addr.host4, TCP_PORT).errno ?? 'OK';
      mine.closeNow();
      let otherBind: string;
      try {
        const helper = await ctx.otherUid();
        otherBind = (await helper.bind({ family: 'ipv4', proto: 'tcp', reuseaddr: false, reuseport: true, v6only: null, address: ctx.addr.host4, port: TCP_PORT })).bind.errno ?? 'OK';
      } catch (e) {
        otherBind = `not measured (${(e as Error).message})`;
      }
      for (const l of listeners.slice(1)) l.closeNow();
      return { counts, ...evenness(counts), queuedWhenClosed: queued.length, resetWhenListenerClosed: reset, acceptedByOthersAfter: acceptedAfter, sameUidBind: mineBind, otherUidBind: otherBind };
    });

    const udp = await ctx.variant('udp-datagrams', { sockets: n, datagrams: total }, async () => {
      const socks = Array.from({ length: n }, () => {
        const s = ctx.socket('ipv4', 'udp', { timeline: false });
        s.setOption('SO_REUSEPORT', true);
        s.bind(ctx.addr.host4, UDP_PORT);
        return s;
      });
      for (let i = 0; i < total; i++) {
        ctx.link.send(emitUdpFrame(ctx.addr.peer4, ctx.addr.host4, { srcPort: 20000 + i, dstPort: UDP_PORT, payload: new Uint8Array(8) }));
        if (i % 100 === 99) await ctx.sleep(1);
      }
      await ctx.sleep(200);
      const counts = await Promise.all(
        socks.map(async (s) => {
          let c = 0;
          while ((await s.recv(64, { timeoutMs: 0 })).ret > 0) c++;
          return c;
        }),
      );
      for (const s of socks) s.closeNow();
      return { counts, ...evenness(counts) };
    });

    const tcpEven = tcp.within50 === true;
    const udpEven = udp.within50 === true;
    ctx.claim(
      'C10',
      tcpEven && udpEven ? 'holds' : 'does not hold',
      `${total} connections over ${n} listeners: ${(tcp.counts as number[]).join('/')} (χ²=${tcp.chiSquare as number}, df ${n - 1}); ${total} datagrams: ${(udp.counts as number[]).join('/')} (χ²=${udp.chiSquare as number})`,
    );
    ctx.claim(
      'C9',
      tcp.sameUidBind === 'OK' && tcp.otherUidBind === 'EADDRINUSE' ? 'holds' : String(tcp.otherUidBind).startsWith('not measured') ? 'not tested' : 'does not hold',
      `another socket of ours with SO_REUSEPORT → ${tcp.sameUidBind as string}; one of uid 65534 → ${tcp.otherUidBind as string}`,
    );

    ctx.print(`Lab 15 — ${this.title}`);
    histogram(ctx, `TCP: ${total} connections over ${n} listeners (each from its own source port)`, tcp.counts as number[]);
    histogram(ctx, `UDP: ${total} datagrams over ${n} sockets`, udp.counts as number[]);
    ctx.print(
      `a listener closed with ${tcp.queuedWhenClosed as number} connections queued across the group: ${tcp.resetWhenListenerClosed as number} were reset; the others accepted ${tcp.acceptedByOthersAfter as number} (net.ipv4.tcp_migrate_req=${ctx.readSysctl('net.ipv4.tcp_migrate_req') ?? '?'})`,
    );
    ctx.print();
    ctx.concludeClaims();
  },
});
