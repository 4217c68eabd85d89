// Lab 11 — an old duplicate meets a new incarnation.
//
// Question: why does TIME_WAIT exist? The peer opens a connection to the kernel and sends
// "AAAA", "BBBB", "CCCC"; the network holds the first copy of "BBBB" back (the peer retransmits
// it, so the first incarnation completes). The incarnation ends without TIME_WAIT, a second one
// opens on the same four-tuple, and the held copy of "BBBB" finally arrives. Does the application
// reading the new connection get bytes that belonged to the old one?
import { defineLab, LabError, type Connection, type KernelSocket, type LabContext, type SegmentEventLike } from '../src/lab';

const CLAIMS = [
  {
    id: 'C13',
    text: 'A packet for the old incarnation may be consumed by a new socket bound to the same address, which may react incorrectly.',
    source: 'seed comments (Good Person, Mecki)',
  },
  {
    id: 'C14',
    text: 'TIME_WAIT exists so that delayed segments of an old connection are not taken for new data.',
    source: 'seed comments; RFC 9293 §3.4.1, §3.6.1',
  },
  { id: 'T8', text: 'With timestamps, PAWS rejects the old segment.', source: 'RFC 7323 §5' },
] as const;

/** Each variant has its own four-tuple: a TIME_WAIT left by one must not meet the next. */
interface Ports {
  kernel: number;
  peer: number;
}
const ISN1 = 1_000_000;
const NEW_DATA = 'NEW!';

type Skip = 'with-time-wait' | 'linger-abort' | 'no-tw-buckets' | 'peer-time-wait-short';

interface Incarnation2 {
  opened: boolean;
  kernelRead: string;
  oldSegmentSeq: number;
  newIsn: number;
  kernelIsnGrowth: number | null;
  replyToOld: string[];
  /** the kernel sent more in the first incarnation than its ISN grew: the old ACK can be in range */
  oldAckInside?: boolean;
}

async function readAll(k: KernelSocket, ms: number, want = Infinity): Promise<string> {
  let s = '';
  const until = performance.now() + ms;
  while (performance.now() < until && s.length < want) {
    const r = await k.recv(65536, { timeoutMs: Math.max(1, Math.round(until - performance.now())) });
    if (r.ret <= 0) break;
    s += r.data.toString('latin1');
  }
  return s;
}

/** A listener, one incarnation from the peer's fixed port carrying AAAA BBBB CCCC; the first BBBB is held back and recorded. */
async function firstIncarnation(ctx: LabContext, listener: KernelSocket, ports: Ports, skip: Skip, ts: boolean): Promise<{ held: SegmentEventLike; read: string; kernelIss: number; conn: Connection }> {
  const stack = ctx.peer();
  const tcb = { isn: ISN1, timestamps: ts, tsOffset: 5000, mslMs: skip === 'peer-time-wait-short' ? 50 : 30_000, rcvBuf: 4 << 20 };
  const rec = stack.record((e) => e.direction === 'out' && new TextDecoder().decode(e.tcp.payload) === 'BBBB');
  const drop = stack.addFilter({ direction: 'out', times: 1, match: (e) => new TextDecoder().decode(e.tcp.payload) === 'BBBB', action: 'drop' });
  const conn = stack.connect({ local: { address: ctx.addr.peer4, port: ports.peer }, remote: { address: ctx.addr.host4, port: ports.kernel }, tcb });
  const acc = await listener.accept(5000);
  if (!acc.socket) throw new LabError(`the first incarnation was not accepted (${acc.result.errno})`);
  const k = acc.socket;
  const kernelIss = conn.tcb.irs;
  // the kernel sends first: the ACK field of the peer's later segments then lies far into the
  // kernel's sequence space, further than its ISN for this four-tuple will grow (see the README)
  const x = ctx.int('kernel_bytes');
  await k.send(new Uint8Array(x));
  await ctx.waitUntil(() => conn.received >= x, { timeoutMs: 20_000 });
  for (const part of ['AAAA', 'BBBB', 'CCCC']) {
    conn.write(new TextEncoder().encode(part));
    await ctx.sleep(5);
  }
  const read = await readAll(k, 1500, 12); // the retransmitted BBBB fills the hole
  rec.stop();
  drop();
  const held = rec.segments[0];
  if (!held) throw new LabError('no BBBB segment was recorded');
  // end the first incarnation
  if (skip === 'linger-abort') {
    k.setOption('SO_LINGER', { onoff: true, seconds: 0 });
    await k.close();
  } else if (skip === 'peer-time-wait-short') {
    conn.end(); // the peer closes first and holds a TIME-WAIT of 2 × 50 ms
    await k.recv(10, { timeoutMs: 1000 });
    await k.close();
    await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(2000)]);
  } else {
    conn.onEnd(() => conn.end());
    await k.close(); // the kernel closes first: TIME_WAIT (or none, beyond tcp_max_tw_buckets)
  }
  await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(2000)]);
  await ctx.sleep(150);
  return { held, read, kernelIss, conn };
}

async function secondIncarnation(ctx: LabContext, listener: KernelSocket, ports: Ports, held: SegmentEventLike, kernelIss1: number, ts: boolean): Promise<Incarnation2> {
  const stack = ctx.peer();
  const near = ctx.str('isn') === 'near';
  // near: the old BBBB (at ISN1+5) is exactly the first byte the new incarnation expects
  const newIsn = near ? ISN1 + 4 : (ISN1 + 2 ** 31) >>> 0;
  const conn = stack.connect({
    local: { address: ctx.addr.peer4, port: ports.peer },
    remote: { address: ctx.addr.host4, port: ports.kernel },
    tcb: { isn: newIsn, timestamps: ts, tsOffset: 5000, rcvBuf: 4 << 20, synRetries: 1 },
  });
  const acc = await listener.accept(2500);
  if (!acc.socket) {
    conn.abort();
    return { opened: false, kernelRead: '', oldSegmentSeq: held.tcp.seq, newIsn, kernelIsnGrowth: null, replyToOld: [] };
  }
  const k = acc.socket;
  // Linux takes an old ACK only within min(max_window, bytes_acked) below SND.UNA (RFC 5961
  // §5.2, tcp_ack()): the kernel sends until the old segment's ACK field, X bytes into the old
  // space, lies inside what the peer has acknowledged in the new one
  const growth = (conn.tcb.irs - kernelIss1) >>> 0;
  const x = ctx.int('kernel_bytes');
  const s = x > growth ? x - growth + (256 << 10) : 0;
  if (s > 0) {
    await k.send(new Uint8Array(s));
    await ctx.waitUntil(() => conn.received >= s, { timeoutMs: 20_000 });
  }
  const replies: string[] = [];
  const off = stack.onSegment((e) => {
    if (e.direction === 'in' && e.tuple.local.port === ports.peer) replies.push(`${e.tcp.flags.ack ? 'ACK' : ''}${e.tcp.flags.rst ? ' RST' : ''} ack=${(e.tcp.ack - newIsn) >>> 0}`);
  });
  stack.replay(held); // the old BBBB arrives, byte for byte
  await ctx.sleep(100);
  off();
  conn.write(new TextEncoder().encode(NEW_DATA)); // what the new incarnation really sends
  const kernelRead = await readAll(k, 800);
  const kernelIss2 = conn.tcb.irs;
  conn.abort();
  await k.close();
  return { opened: true, kernelRead, oldSegmentSeq: held.tcp.seq, newIsn, kernelIsnGrowth: (kernelIss2 - kernelIss1) >>> 0, replyToOld: replies, oldAckInside: x > growth };
}

export default defineLab({
  id: '11',
  slug: 'old-duplicate',
  title: 'An old duplicate meets a new incarnation',
  shows: 'a delayed segment of an earlier connection read as new data when TIME_WAIT is skipped; what PAWS and the window check stop',
  question: 'If TIME_WAIT is skipped and the same four-tuple is reused, can a delayed segment of the old connection be read as data of the new one?',
  params: [
    { name: 'timestamps', kind: 'bool', default: false, sysctl: 'net.ipv4.tcp_timestamps', help: 'TCP timestamps (kernel sysctl and peer): with them PAWS guards the new incarnation' },
    { name: 'isn', kind: 'enum', default: 'near', choices: ['near', 'far'], help: "the second incarnation's ISN: near (the old segment lands in the new window) or far" },
    { name: 'kernel_bytes', kind: 'int', default: 24 << 20, min: 0, max: 256 << 20, unit: 'bytes', help: 'what the kernel sends first in each incarnation, so an old ACK can fall inside the new one (0: none)' },
  ],
  claims: CLAIMS,
  recordSysctls: ['net.ipv4.tcp_max_tw_buckets', 'net.ipv4.tcp_rfc1337'],
  async run(ctx) {
    const results: Record<Skip, (Incarnation2 & { firstRead: string }) | null> = { 'with-time-wait': null, 'linger-abort': null, 'no-tw-buckets': null, 'peer-time-wait-short': null };
    /** One variant: a listener on its own port, two incarnations, TIME_WAIT skipped as `skip` says. */
    const variant = async (name: string, skip: Skip, i: number, ts: boolean): Promise<Incarnation2 & { firstRead: string }> => {
      const ports: Ports = { kernel: 7000 + i, peer: 45000 + i };
      const obs = await ctx.variant(name, { timestamps: ts, isn: ctx.str('isn') }, async () => {
        const listener = ctx.socket('ipv4', 'tcp');
        listener.setOption('SO_REUSEADDR', true);
        const b = listener.bind(ctx.addr.host4, ports.kernel);
        if (b.ret < 0) throw new LabError(`listener bind: ${b.errno}`);
        listener.listen(8);
        const maxTw = ctx.readSysctl('net.ipv4.tcp_max_tw_buckets');
        const tsSysctl = ctx.readSysctl('net.ipv4.tcp_timestamps');
        if (ts !== ctx.bool('timestamps')) ctx.sysctl('net.ipv4.tcp_timestamps', ts ? 1 : 0);
        if (skip === 'no-tw-buckets') ctx.sysctl('net.ipv4.tcp_max_tw_buckets', 0);
        // the control keeps its TIME_WAIT: the peer's RST to the TIME_WAIT's ACK would kill it otherwise (RFC 1337, lab 13)
        if (skip === 'with-time-wait') ctx.sysctl('net.ipv4.tcp_rfc1337', 1);
        try {
          const first = await firstIncarnation(ctx, listener, ports, skip, ts);
          const timeWait = ctx.table((e) => e.state === 'TIME_WAIT' && e.remote.port === ports.peer).length > 0;
          const second = await secondIncarnation(ctx, listener, ports, first.held, first.kernelIss, ts);
          return { firstRead: first.read, timeWaitBeforeSecond: timeWait, ...second };
        } finally {
          if (skip === 'no-tw-buckets' && maxTw) ctx.sysctl('net.ipv4.tcp_max_tw_buckets', maxTw);
          if (skip === 'with-time-wait') ctx.sysctl('net.ipv4.tcp_rfc1337', 0);
          if (ts !== ctx.bool('timestamps') && tsSysctl) ctx.sysctl('net.ipv4.tcp_timestamps', tsSysctl);
          listener.closeNow();
        }
      });
      return obs as unknown as Incarnation2 & { firstRead: string };
    };
    const ts = ctx.bool('timestamps');
    for (const [i, skip] of (Object.keys(results) as Skip[]).entries()) results[skip] = await variant(skip, skip, i, ts);
    // PAWS needs timestamps: without them in the main variants, one more run with them judges T8
    const pawsRun = ts ? null : await variant('paws-with-timestamps', 'linger-abort', 4, true);
    const skipped = (['linger-abort', 'no-tw-buckets', 'peer-time-wait-short'] as const).map((s) => ({ s, r: results[s]! }));
    const corrupted = skipped.filter(({ r }) => r.opened && r.kernelRead.startsWith('BBBB'));
    const control = results['with-time-wait']!;
    const counters = (s: Skip): Record<string, number> => (ctx.variants.find((v) => v.name === s)?.observations.counters ?? {}) as Record<string, number>;
    const paws = skipped.reduce((n, { s }) => n + (counters(s)['TcpExt.PAWSEstab'] ?? 0), 0);

    ctx.claim(
      'C13',
      corrupted.length ? 'holds' : 'does not hold',
      corrupted.length
        ? `${corrupted.map((c) => c.s).join(', ')}: the application read ${JSON.stringify(corrupted[0]!.r.kernelRead)} from the new connection — the old "BBBB" in place of ${JSON.stringify(NEW_DATA)}`
        : `no variant delivered the old bytes (read: ${skipped.map(({ s, r }) => `${s} ${JSON.stringify(r.kernelRead)}`).join('; ')})`,
    );
    ctx.claim(
      'C14',
      control.opened || corrupted.length === 0 ? (corrupted.length === 0 ? 'not tested' : 'does not hold') : 'holds',
      control.opened
        ? `with TIME_WAIT in place the second incarnation still opened and read ${JSON.stringify(control.kernelRead)}`
        : `with TIME_WAIT in place the second incarnation could not open (its SYN met the old TIME_WAIT); without it ${corrupted.length}/${skipped.length} variants read old bytes` +
            (corrupted.length === 0 ? ' — none here, so what TIME_WAIT prevents was not shown (try timestamps=off isn=near)' : ''),
    );
    const rejected = skipped.filter(({ r }) => r.opened && !r.kernelRead.startsWith('BBBB'));
    const opened = skipped.filter(({ r }) => r.opened);
    if (pawsRun) {
      const pawsCount = counters('paws-with-timestamps' as Skip)['TcpExt.PAWSEstab'] ?? 0;
      ctx.claim(
        'T8',
        !pawsRun.opened ? 'not tested' : !pawsRun.kernelRead.startsWith('BBBB') && pawsCount > 0 ? 'holds' : 'does not hold',
        `the same abort-and-reopen with timestamps on: the application read ${JSON.stringify(pawsRun.kernelRead)}; TcpExt.PAWSEstab +${pawsCount}`,
      );
    } else {
      ctx.claim(
        'T8',
        opened.length === 0 ? 'not tested' : rejected.length === opened.length && paws > 0 ? 'holds' : 'does not hold',
        `timestamps on: the old segment was rejected in ${rejected.length} of ${opened.length} reopened connections; TcpExt.PAWSEstab +${paws}`,
      );
    }

    ctx.print(`Lab 11 — ${this.title}`);
    ctx.print(`timestamps ${ts ? 'on' : 'off'}, second ISN ${ctx.str('isn')} (first ${ISN1}); the peer sent "AAAA" "BBBB" "CCCC" and then, in the new incarnation, ${JSON.stringify(NEW_DATA)}`);
    for (const [s, r] of Object.entries(results) as Array<[Skip, Incarnation2 & { firstRead: string }]>) {
      const what = !r.opened
        ? 'the second incarnation could not open'
        : `the application read ${JSON.stringify(r.kernelRead)}${r.kernelRead.startsWith('BBBB') ? '  ← old data taken for new' : ''}` +
          (r.oldAckInside === false ? ` (the kernel's ISN grew by ${r.kernelIsnGrowth}, more than the ${ctx.int('kernel_bytes')} bytes it sent first: the old ACK could not fall inside the new connection — raise kernel_bytes)` : '');
      ctx.print(`${s.padEnd(22)} ${what}; replies to the old segment: ${r.replyToOld.join(', ') || 'none'}`);
    }
    if (pawsRun) ctx.print(`${'paws-with-timestamps'.padEnd(22)} (the same as linger-abort, timestamps on) the application read ${JSON.stringify(pawsRun.kernelRead)}`);
    const growth = skipped.find(({ r }) => r.kernelIsnGrowth !== null)?.r.kernelIsnGrowth;
    if (growth) ctx.print(`the kernel's ISN for the same four-tuple grew by ${growth} between incarnations (RFC 6528: a keyed hash plus a clock)`);
    ctx.print();
    for (const { s, r } of skipped) {
      if (r.opened) ctx.conclude(`${s}: the application reading the new connection got ${JSON.stringify(r.kernelRead)}${r.kernelRead.startsWith('BBBB') ? ` — the old incarnation's bytes, not the ${JSON.stringify(NEW_DATA)} the peer sent` : ''}`);
    }
    ctx.concludeClaims();
  },
});
