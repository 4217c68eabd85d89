// Lab 11 — an old duplicate meets a new incarnation.
//
// Question: why does TIME_WAIT exist? The peer opens a connection to the kernel and sends
// "AAAA", "BBBB", "CCCC"; the network holds the first copy of "BBBB" back (the peer retransmits
// it, so the first incarnation completes). The incarnation ends without TIME_WAIT, a second one
// opens on the same four-tuple, and the held copy of "BBBB" finally arrives. Does the application
// reading the new connection get bytes that belonged to the old one?
//
// What has to line up for the old segment to be accepted (each checked before any verdict):
//  - its sequence number lies in the new connection's receive window (isn=near puts the new ISN
//    just below it);
//  - its ACK field lies inside what the new connection has sent: Linux drops a segment whose ACK is
//    beyond SND.NXT, or further below SND.UNA than min(max_window, bytes_acked) (tcp_ack(),
//    RFC 5961 §5.2). The ACK field points into the kernel's *old* sequence space, and the kernel's
//    ISN for a four-tuple runs on a clock (RFC 6528: a keyed hash plus ~15.6 M per second). So the
//    kernel first sends enough that its old sequence numbers run ahead of that clock: the lab
//    measures the clock, and the first transfer (over a 64 KiB-MTU TUN, far faster than the
//    clock) goes on until the kernel is `ahead_ms` ahead of it. In the second incarnation the
//    kernel then sends until the old ACK lies inside what the peer has acknowledged.
import { defineLab, LabError, requires, type Connection, type KernelSocket, type LabContext, type Precondition, type SegmentEventLike, type Trial } from '../src/lab';

/** Each variant has its own four-tuple: a TIME_WAIT left by one must not meet the next. */
interface Ports {
  kernel: number;
  peer: number;
}
const ISN1 = 1_000_000;
const NEW_DATA = 'NEW!';
const CHUNK = 4 << 20;
const ENC = new TextEncoder();

type Skip = 'with-time-wait' | 'linger-abort' | 'no-tw-buckets' | 'peer-time-wait-short';
const SKIPS: readonly Skip[] = ['linger-abort', 'no-tw-buckets', 'peer-time-wait-short'];

interface Outcome {
  /** what the kernel's application read in the first incarnation */
  firstRead: string;
  /** bytes the kernel sent (and the peer received) before the peer's AAAA BBBB CCCC */
  firstBytes: number;
  firstMs: number;
  timeWaitBeforeSecond: boolean;
  /** the new SYN's sequence number minus the old incarnation's last (the peer's SND.NXT), signed */
  newSynVsOld: number;
  /** the payloads of the peer's segments carrying AAAA BBBB CCCC, in order (BBBB must go alone to be held back) */
  peerSegments: string[];
  /** a segment of exactly "BBBB" was held back and recorded */
  heldRecorded: boolean;
  opened: boolean;
  timestamps: boolean;
  kernelRead: string;
  /** the kernel's ISN grew by this between the incarnations (mod 2^32) */
  kernelIsnGrowth: number | null;
  /** the old segment's ACK field minus the new connection's first sequence number (signed) */
  oldAckLead: number | null;
  /** what the kernel sent in the second incarnation so the old ACK falls inside */
  secondBytes: number;
  /** of those, what the peer received (all of them, or the transfer stalled) */
  secondReceived: number;
  /** the old segment's sequence number minus the new connection's RCV.NXT, and the window then */
  oldSeqOffset: number | null;
  windowAtReplay: number | null;
  replyToOld: string[];
  pawsEstab: number;
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

/** When the kernel's SYN-ACK of `conn` reached the peer (ms, performance clock). */
function synAckSeen(ctx: LabContext, port: number): { at: Promise<number>; off: () => void } {
  let off = (): void => undefined;
  const at = new Promise<number>((resolve) => {
    off = ctx.peer().onSegment((e) => {
      if (e.direction === 'in' && e.tuple.local.port === port && e.tcp.flags.syn && e.tcp.flags.ack) resolve(e.at);
    });
  });
  return { at, off: () => off() };
}

/**
 * The kernel's ISN clock for one four-tuple, measured: two connections on it 300 ms apart (the
 * peer aborts each, so no TIME_WAIT is left), ISN difference over time difference.
 */
async function measureIsnClock(ctx: LabContext, ports: Ports): Promise<{ perSecond: number; deltaIsn: number; deltaMs: number }> {
  const listener = ctx.socket('ipv4', 'tcp');
  listener.setOption('SO_REUSEADDR', true);
  if (listener.bind(ctx.addr.host4, ports.kernel).ret < 0) throw new LabError(`cannot bind ${ctx.addr.host4}:${ports.kernel} for the ISN clock`);
  listener.listen(4);
  const samples: Array<{ isn: number; at: number }> = [];
  for (let i = 0; i < 2; i++) {
    if (i) await ctx.sleep(300);
    const seen = synAckSeen(ctx, ports.peer);
    const conn = ctx.peer().connect({ local: { address: ctx.addr.peer4, port: ports.peer }, remote: { address: ctx.addr.host4, port: ports.kernel }, tcb: { isn: ISN1 + i * 1000 } });
    const acc = await listener.accept(5000);
    const at = await Promise.race([seen.at, ctx.sleep(5000).then(() => NaN)]);
    seen.off();
    if (!acc.socket || Number.isNaN(at)) throw new LabError('the ISN clock could not be measured: a connection did not open');
    samples.push({ isn: conn.tcb.irs, at });
    conn.abort();
    acc.socket.closeNow();
    await ctx.sleep(20);
  }
  listener.closeNow();
  const deltaIsn = (samples[1]!.isn - samples[0]!.isn) >>> 0;
  const deltaMs = samples[1]!.at - samples[0]!.at;
  return { perSecond: (deltaIsn / deltaMs) * 1000, deltaIsn, deltaMs: Math.round(deltaMs * 10) / 10 };
}

interface First {
  conn: Connection;
  /** null when no segment carried "BBBB" alone (the evidence then says what the peer sent) */
  held: SegmentEventLike | null;
  peerSegments: string[];
  read: string;
  kernelIss: number;
  bytes: number;
  ms: number;
}

/** One incarnation from the peer's fixed port: the kernel runs ahead of its ISN clock, then AAAA BBBB CCCC with the first BBBB held back and recorded. */
async function firstIncarnation(ctx: LabContext, listener: KernelSocket, ports: Ports, skip: Skip, ts: boolean, isnPerSecond: number): Promise<First> {
  const stack = ctx.peer();
  const tcb = { isn: ISN1, timestamps: ts, tsOffset: 5000, mslMs: skip === 'peer-time-wait-short' ? 50 : 30_000, rcvBuf: 4 << 20, mss: ctx.int('mtu') - 40 };
  const seen = synAckSeen(ctx, ports.peer);
  const conn = stack.connect({ local: { address: ctx.addr.peer4, port: ports.peer }, remote: { address: ctx.addr.host4, port: ports.kernel }, tcb });
  const acc = await listener.accept(5000);
  if (!acc.socket) throw new LabError(`the first incarnation was not accepted (${acc.result.errno})`);
  const synAt = await seen.at;
  seen.off();
  const k = acc.socket;
  const kernelIss = conn.tcb.irs;
  // the kernel sends until its sequence numbers are `ahead_ms` of ISN-clock time ahead of the clock
  const cap = ctx.int('kernel_bytes');
  const aheadMs = ctx.int('ahead_ms');
  const t0 = performance.now();
  let bytes = 0;
  await ctx.bulk('first incarnation, kernel → peer', async () => {
    const sendingFrom = performance.now(); // a bulk step may first wait for a CPU slot
    while (bytes < cap && bytes < (isnPerSecond * (performance.now() - synAt + aheadMs)) / 1000) {
      // slower than the ISN clock, the transfer never gets ahead of it (a guest under TCG): stop
      // after 3 s of sending, and C13's precondition says so with the numbers
      const sendingMs = performance.now() - sendingFrom;
      if (sendingMs > 3000 && (bytes / sendingMs) * 1000 < isnPerSecond) break;
      const n = Math.min(CHUNK, cap - bytes);
      const r = await k.send(new Uint8Array(n));
      if (r.ret <= 0) throw new LabError(`the kernel's send() failed: ${r.errno}`);
      bytes += r.ret;
    }
    await ctx.waitUntil(() => conn.received >= bytes, { timeoutMs: 30_000 });
  });
  const ms = performance.now() - t0;
  if (conn.received < bytes) throw new LabError(`the peer received ${conn.received} of the ${bytes} bytes the kernel sent within 30 s`);
  const rec = stack.record((e) => e.direction === 'out' && e.tuple.local.port === ports.peer && e.tcp.payload.length > 0);
  const drop = stack.addFilter({ direction: 'out', times: 1, match: (e) => e.tuple.local.port === ports.peer && new TextDecoder().decode(e.tcp.payload) === 'BBBB', action: 'drop' });
  for (const part of ['AAAA', 'BBBB', 'CCCC']) {
    conn.write(ENC.encode(part));
    await ctx.sleep(5);
  }
  const read = await readAll(k, 1500, 12); // the retransmitted BBBB fills the hole
  rec.stop();
  drop();
  const peerSegments = rec.segments.map((e) => new TextDecoder().decode(e.tcp.payload));
  const held = rec.segments.find((e) => new TextDecoder().decode(e.tcp.payload) === 'BBBB') ?? null;
  await endFirst(ctx, k, conn, skip);
  return { conn, held, peerSegments, read, kernelIss, bytes, ms };
}

/** Ends the first incarnation the way the variant says: with TIME_WAIT, or skipping it. */
async function endFirst(ctx: LabContext, k: KernelSocket, conn: Connection, skip: Skip): Promise<void> {
  if (skip === 'linger-abort') {
    k.setOption('SO_LINGER', { onoff: true, seconds: 0 });
    await k.close();
  } else if (skip === 'peer-time-wait-short') {
    conn.end(); // the peer closes first and holds a TIME-WAIT of 2 × 50 ms
    await k.recv(10, { timeoutMs: 1000 });
    await k.close();
  } else {
    conn.onEnd(() => conn.end());
    await k.close(); // the kernel closes first: TIME_WAIT (or none, beyond tcp_max_tw_buckets)
  }
  await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(2000)]);
  await ctx.sleep(150);
}

/** near: the old BBBB (at ISN1+5) is exactly the first byte the new incarnation expects. */
const secondIsn = (ctx: LabContext): number => (ctx.str('isn') === 'near' ? ISN1 + 4 : (ISN1 + 2 ** 31) >>> 0);

async function secondIncarnation(
  ctx: LabContext,
  listener: KernelSocket,
  ports: Ports,
  first: First,
  ts: boolean,
): Promise<Omit<Outcome, 'firstRead' | 'firstBytes' | 'firstMs' | 'timeWaitBeforeSecond' | 'pawsEstab' | 'newSynVsOld' | 'peerSegments' | 'heldRecorded'>> {
  const stack = ctx.peer();
  const newIsn = secondIsn(ctx);
  const conn = stack.connect({
    local: { address: ctx.addr.peer4, port: ports.peer },
    remote: { address: ctx.addr.host4, port: ports.kernel },
    tcb: { isn: newIsn, timestamps: ts, tsOffset: 5000, rcvBuf: 4 << 20, mss: ctx.int('mtu') - 40, synRetries: 1 },
  });
  const acc = await listener.accept(2500);
  const none = { kernelIsnGrowth: null, oldAckLead: null, secondBytes: 0, secondReceived: 0, oldSeqOffset: null, windowAtReplay: null, replyToOld: [], kernelRead: '', timestamps: conn.tcb.tsEnabled };
  const held = first.held;
  if (!acc.socket) {
    conn.abort();
    return { opened: false, ...none };
  }
  const k = acc.socket;
  if (!held) {
    // nothing to replay: the new incarnation opened, and that is all this variant can tell
    conn.abort();
    await k.close();
    return { opened: true, ...none };
  }
  const iss2 = conn.tcb.irs;
  const lead = (held.tcp.ack - ((iss2 + 1) >>> 0)) | 0;
  // the kernel sends until the old ACK lies inside what the peer has acknowledged (a little beyond
  // it, far less than the peer's window: Linux accepts an old ACK down to SND.UNA − max_window)
  const secondBytes = lead > 0 ? lead + (64 << 10) : 0;
  if (secondBytes > 0) {
    await ctx.bulk('second incarnation, kernel → peer', async () => {
      for (let sent = 0; sent < secondBytes; ) {
        const r = await k.send(new Uint8Array(Math.min(CHUNK, secondBytes - sent)));
        if (r.ret <= 0) throw new LabError(`the kernel's send() failed: ${r.errno}`);
        sent += r.ret;
      }
      await ctx.waitUntil(() => conn.received >= secondBytes, { timeoutMs: 30_000 });
    });
  }
  const replies: string[] = [];
  const off = stack.onSegment((e) => {
    if (e.direction === 'in' && e.tuple.local.port === ports.peer) replies.push(`${e.tcp.flags.ack ? 'ACK' : ''}${e.tcp.flags.rst ? ' RST' : ''} ack=${(e.tcp.ack - newIsn) >>> 0}`);
  });
  // the kernel's RCV.NXT is the peer's SND.NXT; its window, the last the kernel advertised
  const oldSeqOffset = (held.tcp.seq - conn.tcb.sndNxt) | 0;
  const windowAtReplay = conn.tcb.sndWnd;
  stack.replay(held); // the old BBBB arrives, byte for byte
  await ctx.sleep(100);
  off();
  conn.write(ENC.encode(NEW_DATA)); // what the new incarnation really sends
  const kernelRead = await readAll(k, 800);
  conn.abort();
  await k.close();
  return {
    opened: true,
    timestamps: conn.tcb.tsEnabled,
    kernelRead,
    kernelIsnGrowth: (iss2 - first.kernelIss) >>> 0,
    oldAckLead: lead,
    secondBytes,
    secondReceived: Math.min(conn.received, secondBytes),
    oldSeqOffset,
    windowAtReplay,
    replyToOld: replies,
  };
}

/** What must have held for the replayed segment to be a fair test of the new connection. */
function alignment(o: Outcome): Precondition[] {
  const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
  return [
    // the peer sends AAAA, BBBB, CCCC 5 ms apart; on a slow machine (a guest under TCG) they may leave as other segments
    requires('the old "BBBB" left the peer as a segment of its own, held back', o.heldRecorded, `the peer's segments: ${o.peerSegments.map((p) => JSON.stringify(p)).join(', ') || 'none'}`),
    requires('the second incarnation opened', o.opened, o.opened ? 'accepted' : 'the new SYN was refused'),
    requires(
      "the old segment's ACK fell inside the new connection",
      o.oldAckLead !== null && o.oldAckLead >= 0 && o.secondReceived >= o.secondBytes,
      o.oldAckLead === null
        ? 'no second incarnation'
        : o.oldAckLead < 0
          ? `it lies ${mb(-o.oldAckLead)} below the new ISN: the kernel's ISN grew ${mb(o.kernelIsnGrowth ?? 0)} between the incarnations, more than the ${mb(o.firstBytes)} it sent first (in ${Math.round(o.firstMs)} ms)`
          : o.secondReceived < o.secondBytes
            ? `the peer received only ${o.secondReceived} of the ${o.secondBytes} bytes of the second transfer`
            : `${mb(o.oldAckLead)} past the new ISN, inside the ${mb(o.secondBytes)} the kernel then sent (its ISN grew ${mb(o.kernelIsnGrowth ?? 0)}, it had sent ${mb(o.firstBytes)} first)`,
    ),
    requires(
      "the old segment's sequence number fell inside the new receive window",
      o.oldSeqOffset !== null && o.windowAtReplay !== null && o.oldSeqOffset >= 0 && o.oldSeqOffset < o.windowAtReplay,
      o.oldSeqOffset === null ? 'no second incarnation' : `${o.oldSeqOffset} bytes from RCV.NXT, window ${o.windowAtReplay}`,
    ),
    // what the application read decides the claims: a read that found nothing in time decides nothing
    requires('the application read the new connection\'s first bytes', !o.opened || o.kernelRead.length >= NEW_DATA.length, o.opened ? `read ${JSON.stringify(o.kernelRead)}` : 'no second incarnation'),
  ];
}

const oldRead = (o: Outcome): boolean => o.kernelRead.startsWith('BBBB');

export default defineLab({
  id: '11',
  slug: 'old-duplicate',
  title: 'An old duplicate meets a new incarnation',
  shows: 'a delayed segment of an earlier connection read as new data when TIME_WAIT is skipped; what PAWS and the window check stop',
  question: 'If TIME_WAIT is skipped and the same four-tuple is reused, can a delayed segment of the old connection be read as data of the new one?',
  params: [
    { name: 'timestamps', kind: 'bool', default: false, sysctl: 'net.ipv4.tcp_timestamps', help: 'TCP timestamps (kernel sysctl and peer): with them PAWS guards the new incarnation' },
    { name: 'isn', kind: 'enum', default: 'near', choices: ['near', 'far'], help: "the second incarnation's ISN: near (the old segment lands in the new window) or far" },
    {
      name: 'kernel_bytes',
      kind: 'int',
      default: 512 << 20,
      min: 0,
      max: 2 ** 31,
      unit: 'bytes',
      help: 'the most the kernel sends first (0: nothing, so the old ACK cannot fall inside the new connection); it stops once ahead of its ISN clock by ahead_ms',
    },
    { name: 'ahead_ms', kind: 'int', default: 3000, min: 0, max: 60_000, unit: 'ms', help: "how far the kernel's first transfer runs ahead of its own ISN clock (covers the steps up to the new SYN)" },
    { name: 'mtu', kind: 'int', default: 65535, min: 1280, max: 65535, help: 'the TUN MTU (the peer announces MSS = MTU − 40): a large one makes the bulk transfers far faster than the ISN clock' },
  ],
  claims: ['C13', 'C14', 'T8'],
  questions: [
    { id: 'q1', text: 'TIME_WAIT is skipped (SO_LINGER {1,0}) and the same four-tuple is reused at once. A delayed copy of the old "BBBB" arrives; the peer then sends "NEW!". What does the application read first from the new connection?', choices: ['"NEW!"', '"BBBB" (the old data)', 'nothing'] },
  ],
  recordSysctls: ['net.ipv4.tcp_max_tw_buckets', 'net.ipv4.tcp_rfc1337'],
  async run(ctx) {
    await ctx.setMtu(ctx.int('mtu'));
    const clock = (await ctx.variant('isn-clock', {}, async () => ({ ...(await measureIsnClock(ctx, { kernel: 6999, peer: 44999 })) }))) as unknown as { perSecond: number; deltaIsn: number; deltaMs: number };
    const results = new Map<Skip | 'paws-with-timestamps', Outcome>();
    /** One variant: a listener on its own port, two incarnations, TIME_WAIT skipped as `skip` says. */
    const variant = async (name: Skip | 'paws-with-timestamps', skip: Skip, i: number, ts: boolean): Promise<Outcome> => {
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
          const first = await firstIncarnation(ctx, listener, ports, skip, ts, clock.perSecond);
          const timeWaitBeforeSecond = ctx.table((e) => e.state === 'TIME_WAIT' && e.remote.port === ports.peer).length > 0;
          const before = ctx.counters()['TcpExt.PAWSEstab'] ?? 0;
          const second = await secondIncarnation(ctx, listener, ports, first, ts);
          const pawsEstab = (ctx.counters()['TcpExt.PAWSEstab'] ?? 0) - before;
          const newSynVsOld = (secondIsn(ctx) - first.conn.tcb.sndNxt) | 0;
          const o: Outcome = { firstRead: first.read, firstBytes: first.bytes, firstMs: Math.round(first.ms), timeWaitBeforeSecond, newSynVsOld, peerSegments: first.peerSegments, heldRecorded: first.held !== null, pawsEstab, ...second };
          return o as unknown as Record<string, unknown>;
        } finally {
          if (skip === 'no-tw-buckets' && maxTw) ctx.sysctl('net.ipv4.tcp_max_tw_buckets', maxTw);
          if (skip === 'with-time-wait') ctx.sysctl('net.ipv4.tcp_rfc1337', 0);
          if (ts !== ctx.bool('timestamps') && tsSysctl) ctx.sysctl('net.ipv4.tcp_timestamps', tsSysctl);
          listener.closeNow();
        }
      });
      const o = obs as unknown as Outcome;
      results.set(name, o);
      return o;
    };
    const ts = ctx.bool('timestamps');
    const control = await variant('with-time-wait', 'with-time-wait', 0, ts);
    for (const [i, skip] of SKIPS.entries()) await variant(skip, skip, i + 1, ts);
    // PAWS needs timestamps: without them in the main variants, one more run with them judges T8
    const pawsRun = ts ? null : await variant('paws-with-timestamps', 'linger-abort', 4, true);
    const skipped = SKIPS.map((s) => ({ s, o: results.get(s)! }));

    // C13: each way of skipping TIME_WAIT is a trial; it needs TIME_WAIT really gone and the old segment aligned
    const c13 = ctx.judge('C13', {
      trials: skipped.map(({ o }) => ({ requires: [requires('TIME_WAIT was skipped', !o.timeWaitBeforeSecond, o.timeWaitBeforeSecond ? 'a TIME_WAIT entry held the four-tuple' : 'no TIME_WAIT entry'), ...alignment(o)], agrees: oldRead(o) })),
      evidence: skipped.map(({ s, o }) => `${s}: read ${JSON.stringify(o.kernelRead)}`).join('; ') + (ts ? ' (timestamps on)' : ''),
    });
    const corrupted = skipped.filter(({ o }) => !o.timeWaitBeforeSecond && alignment(o).every((p) => p.met) && oldRead(o));
    ctx.judge('C14', {
      requires: [
        requires('the control kept its TIME_WAIT until the new SYN', control.timeWaitBeforeSecond, control.timeWaitBeforeSecond ? 'TIME_WAIT entry present' : 'no TIME_WAIT entry'),
        requires(
          'without TIME_WAIT an old segment was taken for new data',
          corrupted.length > 0,
          `${corrupted.length} of ${skipped.length} variants without TIME_WAIT read the old bytes (C13: ${c13.verdict})`,
        ),
        // a SYN above the old sequence space may take over a TIME_WAIT (RFC 9293 §3.10.7.4, lab 12)
        requires("the control's new SYN lay below the old connection's sequence space", control.newSynVsOld < 0, `${control.newSynVsOld} from the old SND.NXT (isn=${ctx.str('isn')})`),
      ],
      agrees: !control.opened,
      evidence: control.opened
        ? `with TIME_WAIT in place the second incarnation still opened and read ${JSON.stringify(control.kernelRead)}`
        : `with TIME_WAIT in place the second incarnation could not open (its SYN met the old TIME_WAIT); without it ${corrupted.length}/${skipped.length} variants read old bytes`,
    });
    const pawsTrials: Array<{ name: string; o: Outcome }> = pawsRun ? [{ name: 'paws-with-timestamps', o: pawsRun }] : skipped.map(({ s, o }) => ({ name: s, o }));
    ctx.judge('T8', {
      trials: pawsTrials.map(({ o }): Trial => ({ requires: [requires('timestamps were negotiated', o.timestamps, o.timestamps ? 'on' : 'off'), ...alignment(o)], agrees: !oldRead(o) && o.pawsEstab > 0 })),
      evidence: pawsTrials.map(({ name, o }) => `${name}: read ${JSON.stringify(o.kernelRead)}, TcpExt.PAWSEstab +${o.pawsEstab}`).join('; '),
    });

    const la = results.get('linger-abort')!;
    const stray = ctx.framesWhere('linger-abort', (s) => s.strayFrom !== undefined && s.len > 0);
    ctx.answer('q1', {
      answer: !la.opened ? '' : oldRead(la) ? '"BBBB" (the old data)' : la.kernelRead.startsWith(NEW_DATA) ? '"NEW!"' : la.kernelRead ? JSON.stringify(la.kernelRead) : 'nothing',
      why: `measured (linger-abort${ts ? ', timestamps on' : ', timestamps off'}): the application read ${JSON.stringify(la.kernelRead)}; the old segment is frame ${stray.numbers.join(', ') || '?'} of linger-abort.pcap`,
      frames: [stray],
      requires: alignment(la),
    });

    ctx.print(`Lab 11 — ${this.title}`);
    ctx.print(`the kernel's ISN for one four-tuple advanced ${clock.deltaIsn} in ${clock.deltaMs} ms: ${(clock.perSecond / 1e6).toFixed(2)} M per second (RFC 6528's clock)`);
    ctx.print(`timestamps ${ts ? 'on' : 'off'}, second ISN ${ctx.str('isn')} (first ${ISN1}); the peer sent "AAAA" "BBBB" "CCCC" and then, in the new incarnation, ${JSON.stringify(NEW_DATA)}`);
    for (const [name, o] of results) {
      const lead = o.oldAckLead === null ? '' : `; old ACK ${o.oldAckLead >= 0 ? `${(o.oldAckLead / 1e6).toFixed(1)} MB inside` : `${(-o.oldAckLead / 1e6).toFixed(1)} MB below`} the new connection`;
      const what = !o.opened ? 'the second incarnation could not open' : `the application read ${JSON.stringify(o.kernelRead)}${oldRead(o) ? '  ← old data taken for new' : ''}`;
      ctx.print(`${name.padEnd(22)} first transfer ${(o.firstBytes / 1e6).toFixed(1)} MB in ${o.firstMs} ms${lead}; ${what}`);
    }
    ctx.print();
    for (const { s, o } of skipped) {
      if (o.opened) ctx.conclude(`${s}: the application reading the new connection got ${JSON.stringify(o.kernelRead)}${oldRead(o) ? ` — the old incarnation's bytes, not the ${JSON.stringify(NEW_DATA)} the peer sent` : ''}`);
    }
    ctx.concludeClaims();
  },
});
