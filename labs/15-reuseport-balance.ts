// Lab 15 — SO_REUSEPORT load balancing.
//
// Question: several kernel sockets share one port with SO_REUSEPORT. How evenly does Linux spread
// incoming connections and datagrams over them, what happens to connections queued on a listener
// that closes, and may a socket of another user join the group?
import { defineLab, emitUdpFrame, requires, type Connection, type KernelSocket, type LabContext, type Trial } from '../src/lab';

const TCP_PORT = 7300;
const UDP_PORT = 7400;

/** "Evenly" is judged by Pearson's χ² test against a uniform spread: rejected below this p-value. */
export const ALPHA = 0.001;
/** χ² is trustworthy only with this many expected per socket (Cochran's rule). */
export const MIN_EXPECTED = 5;

/** Pearson's chi-square against a uniform spread, its p-value, and the mean each socket should get. */
export function evenness(counts: number[]): { chiSquare: number; df: number; pValue: number; expected: number; min: number; max: number } {
  const total = counts.reduce((a, b) => a + b, 0);
  const mean = total / counts.length;
  const chiSquare = mean > 0 ? counts.reduce((s, c) => s + (c - mean) ** 2 / mean, 0) : 0;
  const df = counts.length - 1;
  return { chiSquare: Math.round(chiSquare * 100) / 100, df, pValue: chiSquarePValue(chiSquare, df), expected: mean, min: Math.min(...counts), max: Math.max(...counts) };
}

/** P(X ≥ x) for X ~ χ²(df): the regularized upper incomplete gamma Q(df/2, x/2). */
export function chiSquarePValue(x: number, df: number): number {
  if (x <= 0) return 1;
  return upperGammaQ(df / 2, x / 2);
}

function logGamma(z: number): number {
  // Lanczos approximation (g = 7, n = 9)
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - logGamma(1 - z);
  z -= 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

function upperGammaQ(a: number, x: number): number {
  const front = Math.exp(-x + a * Math.log(x) - logGamma(a));
  if (x < a + 1) {
    // series for P, then Q = 1 − P
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 1000 && Math.abs(term) > Math.abs(sum) * 1e-15; n++) {
      term *= x / (a + n);
      sum += term;
    }
    return Math.max(0, 1 - front * sum);
  }
  // continued fraction for Q (Lentz)
  let b = x + 1 - a;
  let c = 1 / 1e-300;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.min(1, front * h);
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
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'binds tried by a socket of ours and by one of another user, each' },
  ],
  claims: ['C10', 'C9'],
  questions: [
    { id: 'q1', text: 'Four listeners of one user share a port with SO_REUSEPORT. A socket of another user sets SO_REUSEPORT and binds the same address and port. What does its bind() return?', choices: ['OK', 'EADDRINUSE', 'EPERM'] },
  ],
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
      const accepted = await ctx.cpuHeavy(`${total} connections`, async () => {
        for (let i = 0; i < total; i++) conns.push(stack.connect({ local: { address: ctx.addr.peer4 }, remote: { address: ctx.addr.host4, port: TCP_PORT } }));
        await ctx.waitUntil(() => conns.every((c) => c.state === 'ESTABLISHED'), { timeoutMs: 20_000, progress: () => `${conns.filter((c) => c.state === 'ESTABLISHED').length}/${total} connected` });
        return Promise.all(listeners.map(drainAccepts));
      });
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
      // the same-user rule, live: more sockets of ours join; sockets of nobody's may not
      const sameUidBinds: string[] = [];
      const otherUidBinds: string[] = [];
      let helperError: string | null = null;
      const helper = await ctx.otherUid().catch((e: Error) => {
        helperError = e.message;
        return null;
      });
      for (let i = 0; i < ctx.int('trials'); i++) {
        const mine = ctx.socket('ipv4', 'tcp');
        mine.setOption('SO_REUSEPORT', true);
        sameUidBinds.push(mine.bind(ctx.addr.host4, TCP_PORT).errno ?? 'OK');
        mine.closeNow();
        if (helper) {
          const r = await helper.bind({ family: 'ipv4', proto: 'tcp', reuseaddr: false, reuseport: true, v6only: null, address: ctx.addr.host4, port: TCP_PORT });
          otherUidBinds.push(r.bind.errno ?? 'OK');
          await helper.close(r.id);
        }
      }
      for (const l of listeners.slice(1)) l.closeNow();
      return { counts, ...evenness(counts), queuedWhenClosed: queued.length, resetWhenListenerClosed: reset, acceptedByOthersAfter: acceptedAfter, sameUidBinds, otherUidBinds, helperError };
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

    type Spread = { counts: number[]; chiSquare: number; df: number; pValue: number; expected: number };
    const spreadTrial = (what: string, x: Spread, sent: number): Trial => ({
      requires: [
        requires(`every ${what} reached a socket`, x.counts.reduce((a, b) => a + b, 0) === sent, `${x.counts.reduce((a, b) => a + b, 0)} of ${sent}`),
        requires(`at least ${MIN_EXPECTED} ${what}s expected per socket (for the χ² test)`, x.expected >= MIN_EXPECTED, `${x.expected.toFixed(1)} per socket`),
      ],
      agrees: x.pValue >= ALPHA,
    });
    const t = tcp as unknown as Spread;
    const u = udp as unknown as Spread;
    const p = (x: number): string => (x < 1e-4 ? x.toExponential(1) : x.toFixed(3));
    ctx.judge('C10', {
      trials: [spreadTrial('connection', t, total), spreadTrial('datagram', u, total)],
      evidence: `uniform spread rejected when χ² p < ${ALPHA}: ${total} connections over ${n} listeners ${t.counts.join('/')} (χ²=${t.chiSquare}, df ${t.df}, p=${p(t.pValue)}); ${total} datagrams ${u.counts.join('/')} (χ²=${u.chiSquare}, p=${p(u.pValue)})`,
    });
    const same = tcp.sameUidBinds as string[];
    const other = tcp.otherUidBinds as string[];
    ctx.judge('C9', {
      trials: same.map((mine, i): Trial => ({
        requires: [
          requires('a process of another user (uid 65534) was running in the namespace', tcp.helperError === null, (tcp.helperError as string | null) ?? 'uid 65534'),
          requires('a socket of the same user could join the group', mine === 'OK', `bind → ${mine}`),
        ],
        agrees: other[i] === 'EADDRINUSE',
      })),
      evidence: `another socket of ours with SO_REUSEPORT → ${[...new Set(same)].join('/')}; one of uid 65534 → ${[...new Set(other)].join('/') || 'not measured'}`,
    });

    const others = [...new Set(other)];
    ctx.answer('q1', {
      answer: others[0] ?? '',
      why: `measured ${other.length} times: another socket of ours → ${[...new Set(same)].join('/')}, one of uid 65534 → ${others.join('/') || 'not measured'}`,
      requires: [
        requires('a process of another user was running', tcp.helperError === null, (tcp.helperError as string | null) ?? 'uid 65534'),
        requires('every try gave the same answer', others.length === 1, others.join(' / ')),
      ],
    });
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
