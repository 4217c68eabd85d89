// Lab 10 — more closing connections than TIME_WAIT buckets.
//
// Question: net.ipv4.tcp_max_tw_buckets caps the number of TIME_WAIT sockets. What happens to the
// connections beyond the cap: do they skip TIME_WAIT, does the kernel say so, and is their port
// free at once? Measured with two caps (each a trial): the one given and a second one.
import { defineLab, kernelConnects, requires, signed, type LabContext, type Trial, distinct } from '../src/lab';

export default defineLab({
  id: '10',
  slug: 'tw-bucket-overflow',
  title: 'More closing connections than TIME_WAIT buckets',
  shows: 'connections closed beyond tcp_max_tw_buckets skip TIME_WAIT, the TCPTimeWaitOverflow counter counts them, their ports are free',
  showsInDetail: 'more connections closing first than `tcp_max_tw_buckets`, at two caps',
  question: 'When more connections close first than tcp_max_tw_buckets allows, what happens to the rest?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'max_tw_buckets',
      kind: 'int',
      default: 0,
      min: 0,
      max: 1_000_000,
      sysctl: 'net.ipv4.tcp_max_tw_buckets',
      help: 'net.ipv4.tcp_max_tw_buckets in the lab namespace (the first cap measured)',
    },
    {
      name: 'second_limit',
      kind: 'int',
      default: 8,
      min: 0,
      max: 1_000_000,
      help: 'a second cap, measured after the first (the same as the first: measured once)',
    },
    { name: 'connections', kind: 'int', default: 20, min: 1, max: 2000, help: 'connections the kernel closes first, per cap' },
  ],
  claims: [
    'T7', // Beyond tcp_max_tw_buckets the kernel skips TIME_WAIT (and says so in a counter), and the port is
    //   free at once.
  ],
  questions: [
    {
      id: 'q1',
      text:
        'tcp_max_tw_buckets is 0 and the kernel closes a batch of connections first. How many of them does the socket table show in ' +
        'TIME_WAIT?',
      choices: ['none', 'some', 'all of them'],
    },
  ],
  course: {
    order: 160,
    teaches: 'What happens to connections closing beyond tcp_max_tw_buckets.',
    look: 'the TIME_WAIT count and the TCPTimeWaitOverflow counter in the output.',
  },
  async run(ctx) {
    const n = ctx.int('connections');
    const limits = [...new Set([ctx.int('max_tw_buckets'), ctx.int('second_limit')])];
    const runs: Overflow[] = [];
    for (const limit of limits) {
      const variant = `close-many-limit-${limit}`;
      const obs = await ctx.variant(variant, { max_tw_buckets: limit, connections: n }, async () => ({
        ...(await closeMany(ctx, limit, n)),
      }));
      runs.push({ ...obs, overflowCounter: ctx.counterChange(variant, 'TcpExt.TCPTimeWaitOverflow') });
    }
    ctx.sysctl('net.ipv4.tcp_max_tw_buckets', ctx.int('max_tw_buckets'));
    const room = (r: Overflow): number => Math.max(0, r.limit - r.existingBefore);
    ctx.judge('T7', {
      trials: runs.map(
        (r): Trial => ({
          requires: [
            requires(
              'more connections closed first than there were free buckets',
              r.closed > room(r),
              `${r.closed} connections, tcp_max_tw_buckets=${r.limit} with ${r.existingBefore} TIME_WAIT entries already`,
            ),
            requires('every close completed both ways', r.completed === r.closed, `${r.completed}/${r.closed} peers reached CLOSED`),
            // a counter this kernel lacks is not a 0: the claim speaks of it
            requires('the kernel has the counter TcpExt.TCPTimeWaitOverflow', r.overflowCounter !== null, signed(r.overflowCounter)),
          ],
          agrees:
            r.timeWaitEntries <= room(r) &&
            r.overflowCounter !== null &&
            r.overflowCounter >= r.closed - room(r) &&
            r.bindSkipped.length > 0 &&
            r.bindSkipped.every((b) => b === 'OK'),
        }),
      ),
      evidence: runs
        .map(
          (r) =>
            `tcp_max_tw_buckets=${r.limit}: ${r.closed} closed, ${r.timeWaitEntries} TIME_WAIT entries, ` +
            `TcpExt.TCPTimeWaitOverflow ${signed(r.overflowCounter)}, plain bind() to the ${r.skipped} skipped ports ` +
            `→ ${distinct(r.bindSkipped) || 'n/a'}` +
            (r.bindHeld ? `, to a port still in TIME_WAIT → ${r.bindHeld}` : ''),
        )
        .join('; '),
    });
    const zero = runs.find((r) => r.limit === 0);
    ctx.answer('q1', {
      answer: !zero ? '' : zero.timeWaitEntries === 0 ? 'none' : zero.timeWaitEntries === zero.closed ? 'all of them' : 'some',
      why: zero
        ? `measured with tcp_max_tw_buckets=0: ${zero.closed} connections closed first left ${zero.timeWaitEntries} TIME_WAIT ` +
          `entries; TcpExt.TCPTimeWaitOverflow ${signed(zero.overflowCounter)}`
        : 'no run with tcp_max_tw_buckets=0',
      requires: [
        requires('a run with tcp_max_tw_buckets=0', !!zero, `caps ${runs.map((r) => r.limit).join(', ')}`),
        requires(
          'every close completed both ways',
          !!zero && zero.completed === zero.closed,
          zero ? `${zero.completed}/${zero.closed}` : 'n/a',
        ),
      ],
    });
    ctx.print(`Lab 10 — ${this.title}`);
    for (const r of runs) {
      ctx.print(`tcp_max_tw_buckets=${r.limit}, ${r.closed} connections closed by the kernel first`);
      ctx.print(
        `  TIME_WAIT entries: ${r.timeWaitEntries}; skipped: ${r.skipped}; TcpExt.TCPTimeWaitOverflow ${signed(r.overflowCounter)}`,
      );
      ctx.print(
        `  bind() without SO_REUSEADDR to a skipped ` +
          `port: ${distinct(r.bindSkipped) || 'n/a'}${r.bindHeld ? `; to a port in TIME_WAIT: ${r.bindHeld}` : ''}`,
      );
    }
    ctx.print();
    ctx.concludeClaims();
  },
});

interface Overflow {
  limit: number;
  /** TIME_WAIT entries of this namespace before the variant (they count against the cap too) */
  existingBefore: number;
  closed: number;
  /** connections whose close completed both ways (the peer reached CLOSED) */
  completed: number;
  timeWaitEntries: number;
  skipped: number;
  /** a plain bind() (no SO_REUSEADDR) to each port whose connection skipped TIME_WAIT, and to one that kept it */
  bindSkipped: string[];
  bindHeld: string | null;
  /** TcpExt.TCPTimeWaitOverflow's change over the variant; null when this kernel has no such counter */
  overflowCounter: number | null;
}

async function closeMany(ctx: LabContext, limit: number, n: number): Promise<Omit<Overflow, 'overflowCounter'>> {
  ctx.sysctl('net.ipv4.tcp_max_tw_buckets', limit);
  const existingBefore = ctx.table((e) => e.state === 'TIME_WAIT').length;
  const ports: number[] = [];
  let completed = 0;
  for (let i = 0; i < n; i++) {
    const { k, conn, local } = await kernelConnects(ctx, 80, { onAccept: (c) => c.onEnd(() => c.end()) });
    await k.close();
    if (await Promise.race([conn.waitFor('CLOSED').then(() => true), ctx.sleep(2000).then(() => false)])) completed++;
    ports.push(local.port);
    if (i % 10 === 9) ctx.progress(`tcp_max_tw_buckets=${limit}: ${i + 1}/${n} connections closed`);
  }
  await ctx.sleep(200);
  const withTw = new Set(ctx.table((e) => e.state === 'TIME_WAIT' && ports.includes(e.local.port)).map((e) => e.local.port));
  const tryBind = (port: number): string => {
    const s = ctx.socket(ctx.family, 'tcp');
    const r = s.bind(ctx.addr.host, port);
    s.closeNow();
    return r.errno ?? 'OK';
  };
  const skipped = ports.filter((p) => !withTw.has(p));
  const held = ports.find((p) => withTw.has(p));
  return {
    limit,
    existingBefore,
    closed: ports.length,
    completed,
    timeWaitEntries: withTw.size,
    skipped: skipped.length,
    bindSkipped: skipped.map(tryBind),
    bindHeld: held === undefined ? null : tryBind(held),
  };
}
