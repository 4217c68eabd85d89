// Lab 11 — an old duplicate meets a new incarnation.
//
// Question: why does TIME_WAIT exist? The peer opens a connection to the kernel and sends
// "AAAA", "BBBB", "CCCC"; the network holds the first copy of "BBBB" back (the peer retransmits
// it, so the first incarnation completes). The incarnation ends without TIME_WAIT, a second one
// opens on the same four-tuple, and the held copy of "BBBB" finally arrives. Does the application
// reading the new connection get bytes that belonged to the old one?
//
// What has to line up for the old segment to be accepted (each checked before any verdict):
//  - no timestamps on the new connection (PAWS would reject the old segment: T8, RFC 7323 §5);
//  - its sequence number lies in the new connection's receive window (isn=near puts the new ISN
//    just below it);
//  - its ACK field lies inside what the new connection has sent: Linux drops a segment whose ACK is
//    beyond SND.NXT, or further below SND.UNA than min(max_window, bytes_acked) (tcp_ack(),
//    RFC 5961 §5.2). The ACK field points into the kernel's *old* sequence space, and the kernel's
//    ISN for a four-tuple runs on a clock (RFC 6528): net/core/secure_seq.c adds
//    ktime_get_real_ns() >> 6 — the realtime clock, ~15.6 M per second — to a keyed hash. Two ways
//    to line them up (`isn_align`):
//      outrun: the lab measures the clock, and the first transfer (over a 64 KiB-MTU TUN, far
//              faster than the clock) goes on until the kernel is `ahead_ms` ahead of it;
//      clock:  in a twlab guest, whose realtime clock is its own, the lab sets that clock back
//              before the second SYN, by the time since the first one and `clock_back_ms` more,
//              so the new ISN lands just below the old one (and sets it forward again after).
//    In the second incarnation the kernel then sends until the old ACK lies inside what the peer
//    has acknowledged.
//
// C14's control keeps TIME_WAIT: the kernel must refuse the new SYN — an ACK of the old
// connection (or an RST) on the wire, and no SYN-ACK — read from the capture, never from accept()
// waiting in vain.
import {
  defineLab,
  LabError,
  requires,
  seqAdd,
  seqDiff,
  seqSpan,
  signed,
  type Connection,
  type KernelSocket,
  type LabContext,
  type Precondition,
  type SegmentEventLike,
  type Trial,
  newSynOnWire,
  type NewSynOnWire,
  distinct,
} from '../src/lab';

export default defineLab({
  id: '11',
  slug: 'old-duplicate',
  title: 'An old duplicate meets a new incarnation',
  shows: 'a delayed segment of an earlier connection read as new data when TIME_WAIT is skipped; what PAWS and the window check stop',
  showsInDetail:
    'two incarnations of one four-tuple: the peer\'s first copy of "BBBB" is held back, TIME_WAIT is skipped (`SO_LINGER {1,0}`, ' +
    "`tcp_max_tw_buckets=0`, the peer's own short TIME-WAIT), the second incarnation opens and the old copy arrives; controls keep " +
    "TIME_WAIT (the kernel's answer to their SYN read from the capture); runs with timestamps show PAWS. The old ACK is brought " +
    "inside the new connection by outrunning the kernel's ISN clock, or in a guest by setting its clock back (see below)",
  question:
    'If TIME_WAIT is skipped and the same four-tuple is reused, can a delayed segment of the old connection be read as data of the new ' +
    'one?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'timestamps',
      kind: 'bool',
      default: false,
      sysctl: 'net.ipv4.tcp_timestamps',
      help: 'TCP timestamps (kernel sysctl and peer): with them PAWS guards the new incarnation',
    },
    {
      name: 'isn',
      kind: 'enum',
      default: 'near',
      choices: ['near', 'far'],
      help: "the second incarnation's ISN: near (the old segment lands in the new window) or far",
    },
    {
      name: 'isn_align',
      kind: 'enum',
      default: 'auto',
      choices: ['auto', 'outrun', 'clock'],
      help:
        "how the old ACK is brought inside the new connection: outrun the kernel's ISN clock with a bulk transfer, or (in a " +
        "--kernel guest only) set the guest's realtime clock back; auto: clock in a guest, outrun elsewhere",
    },
    {
      name: 'kernel_bytes',
      kind: 'int',
      default: 512 << 20,
      min: 0,
      max: 2 ** 31,
      unit: 'bytes',
      help:
        'outrun: the most the kernel sends first (0: nothing, so the old ACK cannot fall inside the new connection); it stops ' +
        'once ahead of its ISN clock by ahead_ms',
    },
    {
      name: 'ahead_ms',
      kind: 'int',
      default: 3000,
      min: 0,
      max: 60_000,
      unit: 'ms',
      help: "outrun: how far the kernel's first transfer runs ahead of its own ISN clock (covers the steps up to the new SYN)",
    },
    {
      name: 'clock_back_ms',
      kind: 'int',
      default: 500,
      min: -10_000,
      max: 60_000,
      unit: 'ms',
      help: 'clock: how far below the old ISN the new one lands, in ISN-clock time (negative: above it, so the old ACK cannot fall inside)',
    },
    {
      name: 'mtu',
      kind: 'int',
      default: 65535,
      min: 1280,
      max: 65535,
      help:
        'the TUN MTU (the peer announces MSS = MTU − 40, − 60 over IPv6): a large one makes the bulk transfers ' +
        'far faster than the ISN clock',
    },
  ],
  claims: [
    'C13', // When a four-tuple is used again, the new connection may get data destined for the old one.
    'C14', // TIME_WAIT exists so that delayed segments of an old connection are not taken for new data.
    'T8', // With timestamps, PAWS rejects the old segment.
  ],
  questions: [
    {
      id: 'q1',
      text:
        'TIME_WAIT is skipped (SO_LINGER {1,0}) and the same four-tuple is reused at once. A delayed copy of the old "BBBB" ' +
        'arrives; the peer then sends "NEW!". What does the application read first from the new connection?',
      choices: ['"NEW!"', '"BBBB" (the old data)', 'nothing'],
    },
  ],
  recordSysctls: ['net.ipv4.tcp_max_tw_buckets', 'net.ipv4.tcp_rfc1337'],
  course: {
    order: 150,
    teaches: 'Why TIME_WAIT exists: what a delayed segment of an old connection does to a new one on the same four-tuple.',
    look: 'linger-abort.pcap: the STRAY segment in the second incarnation (marked in the .pcapng and the ladder).',
  },
  async run(ctx) {
    await ctx.setMtu(ctx.int('mtu'));
    const guestClock = ctx.realtimeClock() !== null;
    const align: Align = ctx.str('isn_align') === 'auto' ? (guestClock ? 'clock' : 'outrun') : ctx.str<Align>('isn_align');
    if (align === 'clock' && !guestClock)
      throw new LabError(
        "isn_align=clock needs a realtime clock the lab may set: only a --kernel guest's (twlab never sets the host's clock); use " +
          'isn_align=outrun',
      );
    const clock = await ctx.variant('isn-clock', {}, () => measureIsnClock(ctx, { kernel: 6999, peer: 44999 }));
    const ts = ctx.bool('timestamps');

    /** One variant: a listener on its own port, `runs` pairs of incarnations (each its own peer port), TIME_WAIT skipped as `skip` says. */
    const variant = async (
      name: keyof typeof VARIANT_INDEX,
      skip: Skip,
      runTs: boolean,
      runAlign: Align,
      runs: number,
    ): Promise<Outcome[]> => {
      const i = VARIANT_INDEX[name]!;
      const obs = await ctx.variant(name, { timestamps: runTs, isn: ctx.str('isn'), isn_align: runAlign }, async () => {
        const listener = ctx.socket(ctx.family, 'tcp');
        listener.setOption('SO_REUSEADDR', true);
        const b = listener.bind(ctx.addr.host, 7000 + i);
        if (b.ret < 0) throw new LabError(`listener bind: ${b.errno}`);
        const l = listener.listen(8);
        if (l.ret < 0) throw new LabError(`listener listen: ${l.errno}`);
        const maxTw = ctx.readSysctl('net.ipv4.tcp_max_tw_buckets');
        const tsSysctl = ctx.readSysctl('net.ipv4.tcp_timestamps');
        if (runTs !== ts) ctx.sysctl('net.ipv4.tcp_timestamps', runTs ? 1 : 0);
        if (skip === 'no-tw-buckets') ctx.sysctl('net.ipv4.tcp_max_tw_buckets', 0);
        // the control keeps its TIME_WAIT: the peer's RST to the TIME_WAIT's ACK would kill it otherwise (RFC 1337, lab 13)
        if (skip === 'with-time-wait') ctx.sysctl('net.ipv4.tcp_rfc1337', 1);
        try {
          const out: Outcome[] = [];
          for (let r = 0; r < runs; r++)
            out.push(
              await incarnations(ctx, listener, { kernel: 7000 + i, peer: 45000 + 100 * i + r }, skip, runTs, runAlign, clock.perSecond),
            );
          return { trials: out };
        } finally {
          if (skip === 'no-tw-buckets' && maxTw) ctx.sysctl('net.ipv4.tcp_max_tw_buckets', maxTw);
          if (skip === 'with-time-wait') ctx.sysctl('net.ipv4.tcp_rfc1337', 0);
          if (runTs !== ts && tsSysctl) ctx.sysctl('net.ipv4.tcp_timestamps', tsSysctl);
          listener.closeNow();
        }
      });
      return obs.trials;
    };
    // the control needs no aligned ACK: its new SYN must be refused, whatever the ISNs
    const control = await variant('with-time-wait', 'with-time-wait', ts, 'none', CONTROL_TRIALS);
    const skipped: Array<{ s: (typeof SKIPS)[number]; o: Outcome }> = [];
    for (const s of SKIPS) skipped.push({ s, o: (await variant(s, s, ts, align, 1))[0]! });
    // PAWS needs timestamps: without them in the main variants, more runs with them judge T8. PAWS
    // is checked before the ACK field (tcp_validate_incoming), so these need no aligned ACK.
    const pawsRuns = ts ? null : await variant('paws-with-timestamps', 'linger-abort', true, 'none', PAWS_TRIALS);

    // C13, a claim of possibility: each way of skipping TIME_WAIT is a trial; it needs TIME_WAIT
    // really gone, no PAWS on the new connection (the kernel's SYN-ACK without a timestamp, in the
    // capture), and the old segment aligned
    const c13 = ctx.judge('C13', {
      trials: skipped.map(({ s, o }): Trial => {
        const a = synAnswer(ctx, s, o);
        return {
          requires: [
            requires(
              'TIME_WAIT was skipped',
              !o.timeWaitBeforeSecond,
              o.timeWaitBeforeSecond ? 'a TIME_WAIT entry held the four-tuple' : 'no TIME_WAIT entry',
            ),
            requires(
              "PAWS could not guard the new connection (the kernel's SYN-ACK carried no timestamp)",
              a.newTimestamps === false,
              a.newTimestamps === null
                ? 'no SYN-ACK of the second incarnation in the capture'
                : `timestamps on (SYN-ACK #${a.synAck}): PAWS rejects the old segment (T8)`,
            ),
            ...alignment(o),
          ],
          agrees: oldRead(o),
        };
      }),
      evidence:
        skipped.map(({ s, o }) => `${s}: read ${JSON.stringify(o.kernelRead)}`).join('; ') +
        (align === 'clock'
          ? ` (ISNs aligned by setting the guest's clock back ${skipped.map(({ o }) => o.clockBackMs).join('/')} ms)`
          : ''),
    });

    // C14: without TIME_WAIT old bytes were taken (C13 showed it); with TIME_WAIT the kernel refused
    // the new SYN, on the wire: an ACK of the old connection (or an RST), and no SYN-ACK
    const corrupted = skipped.filter(({ o }) => !o.timeWaitBeforeSecond && alignment(o).every((p) => p.met) && oldRead(o));
    const controlAnswers = control.map((o) => ({ o, a: synAnswer(ctx, 'with-time-wait', o) }));
    ctx.judge('C14', {
      requires: [
        requires(
          'without TIME_WAIT an old segment was taken for new data',
          corrupted.length > 0,
          `${corrupted.length} of ${skipped.length} variants without TIME_WAIT read the old bytes (C13: ${c13.verdict})`,
        ),
      ],
      trials: controlAnswers.map(({ o, a }) => controlTrial(o.timeWaitBeforeSecond, a, ctx.str('isn'))),
      evidence:
        `with TIME_WAIT in place the kernel answered the new SYN ` +
        `with ${distinct(controlAnswers.map(({ a }) => synAnswerText(a)))}` +
        ` (accept() → ${distinct(control.map((o) => (o.opened ? 'a connection' : 'none')))}); without ` +
        `it ${corrupted.length}/${skipped.length} variants read old bytes`,
    });

    // T8: with timestamps the kernel's own counter says PAWS dropped the old segment, and the application did not read it
    const pawsTrials: Array<{ name: string; o: Outcome }> = pawsRuns
      ? pawsRuns.map((o) => ({ name: 'paws-with-timestamps', o }))
      : skipped.map(({ s, o }) => ({ name: s, o }));
    ctx.judge('T8', {
      trials: pawsTrials.map(({ name, o }) => pawsTrial(o, synAnswer(ctx, name, o))),
      evidence: pawsTrials
        .map(({ name, o }) => `${name}: read ${JSON.stringify(o.kernelRead)}, TcpExt.PAWSEstab ${signed(o.pawsEstab)}`)
        .join('; '),
    });

    const la = skipped.find(({ s }) => s === 'linger-abort')!.o;
    const stray = ctx.framesWhere('linger-abort', (s) => s.strayFrom !== undefined && s.len > 0);
    ctx.answer('q1', {
      answer: !la.opened
        ? ''
        : oldRead(la)
          ? '"BBBB" (the old data)'
          : la.kernelRead.startsWith(NEW_DATA)
            ? '"NEW!"'
            : la.kernelRead
              ? JSON.stringify(la.kernelRead)
              : 'nothing',
      why:
        `measured (linger-abort${ts ? ', timestamps on' : ', timestamps off'}): the application ` +
        `read ${JSON.stringify(la.kernelRead)}; the old segment is frame ${stray.numbers.join(', ') || '?'} of linger-abort.pcap`,
      frames: [stray],
      requires: alignment(la),
    });

    ctx.print(`Lab 11 — ${this.title}`);
    ctx.print(
      `the kernel's ISN for one four-tuple ` +
        `advanced ${clock.deltaIsn} in ${clock.deltaMs} ms: ${(clock.perSecond / 1e6).toFixed(2)} M per second (RFC 6528's clock)`,
    );
    const aligned = align === 'clock' ? "setting this guest's realtime clock back (the ISN clock follows it)" : 'outrunning the ISN clock';
    ctx.print(
      `timestamps ${ts ? 'on' : 'off'}, second ISN ${ctx.str('isn')} (first ${ISN1}); ISNs aligned by ${aligned}; ` +
        `the peer sent "AAAA" "BBBB" "CCCC" and then, in the new incarnation, ${JSON.stringify(NEW_DATA)}`,
    );
    const all: Array<[string, Outcome]> = [
      ...control.map((o): [string, Outcome] => ['with-time-wait', o]),
      ...skipped.map(({ s, o }): [string, Outcome] => [s, o]),
      ...(pawsRuns ?? []).map((o): [string, Outcome] => ['paws-with-timestamps', o]),
    ];
    for (const [name, o] of all) {
      const lead =
        o.oldAckLead === null
          ? ''
          : `; old ACK ${o.oldAckLead >= 0 ? `${mb(o.oldAckLead)} inside` : `${mb(-o.oldAckLead)} below`} the new connection`;
      const first =
        o.isnAlign === 'outrun'
          ? `first transfer ${mb(o.firstBytes)} in ${o.firstMs} ms`
          : o.isnAlign === 'clock'
            ? `clock set back ${o.clockBackMs} ms`
            : 'no alignment needed';
      const what = !o.opened
        ? 'the second incarnation could not open'
        : `the application read ${JSON.stringify(o.kernelRead)}${oldRead(o) ? '  ← old data taken for new' : ''}`;
      ctx.print(`${name.padEnd(22)} ${first}${lead}; ${what}`);
    }
    ctx.print();
    for (const { s, o } of skipped) {
      if (o.opened)
        ctx.conclude(
          `${s}: the application reading the new connection got ${JSON.stringify(o.kernelRead)}` +
            (oldRead(o) ? ` — the old incarnation's bytes, not the ${JSON.stringify(NEW_DATA)} the peer sent` : ''),
        );
    }
    ctx.concludeClaims();
  },
});

/** Each run has its own four-tuple: a TIME_WAIT left by one must not meet the next. */
interface Ports {
  kernel: number;
  peer: number;
}
const ISN1 = 1_000_000;
const NEW_DATA = 'NEW!';
const CHUNK = 4 << 20;
const ENC = new TextEncoder();
const DEC = new TextDecoder();
const PAWS_TRIALS = 3;
const CONTROL_TRIALS = 3;

type Skip = 'with-time-wait' | 'linger-abort' | 'no-tw-buckets' | 'peer-time-wait-short';
const SKIPS: readonly Exclude<Skip, 'with-time-wait'>[] = ['linger-abort', 'no-tw-buckets', 'peer-time-wait-short'];
type Align = 'outrun' | 'clock' | 'none';

export interface Outcome {
  peerPort: number;
  /**
   * how the old ACK was brought inside the new connection: outrunning the ISN clock, setting a guest's clock back, or not at all (not
   * needed)
   */
  isnAlign: Align;
  /** the guest's realtime clock was set back this much before the second SYN (clock), ms */
  clockBackMs: number | null;
  /** what the kernel's application read in the first incarnation */
  firstRead: string;
  /** bytes the kernel sent (and the peer received) before the peer's AAAA BBBB CCCC */
  firstBytes: number;
  firstMs: number;
  timeWaitBeforeSecond: boolean;
  /** the payloads of the peer's segments carrying AAAA BBBB CCCC, in order (BBBB must go alone to be held back) */
  peerSegments: string[];
  /** a segment of exactly "BBBB" was held back and recorded */
  heldRecorded: boolean;
  /** the second incarnation was accepted by the application (accept() returned a socket) */
  opened: boolean;
  /** timestamps negotiated on the new connection (the peer's view; the capture's is `kernelTsOnSynAck`) */
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
  /** TcpExt.PAWSEstab's change over the second incarnation; null when the kernel has no such counter */
  pawsEstab: number | null;
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

/**
 * The kernel's ISN clock for one four-tuple, measured: two connections on it 300 ms apart (the
 * peer aborts each, so no TIME_WAIT is left), ISN difference over time difference.
 */
async function measureIsnClock(ctx: LabContext, ports: Ports): Promise<{ perSecond: number; deltaIsn: number; deltaMs: number }> {
  const listener = ctx.socket(ctx.family, 'tcp');
  listener.setOption('SO_REUSEADDR', true);
  if (listener.bind(ctx.addr.host, ports.kernel).ret < 0)
    throw new LabError(`cannot bind ${ctx.addr.host}:${ports.kernel} for the ISN clock`);
  listener.listen(4);
  const samples: Array<{ isn: number; at: number }> = [];
  for (let i = 0; i < 2; i++) {
    if (i) await ctx.sleep(300);
    // when the kernel's SYN-ACK reached the peer (ms, performance clock)
    const synAck = ctx.peer().expect({ peerPort: ports.peer, syn: true, ack: true }, 10_000);
    const conn = ctx.peer().connect({
      local: { address: ctx.addr.peer, port: ports.peer },
      remote: { address: ctx.addr.host, port: ports.kernel },
      tcb: { isn: ISN1 + i * 1000 },
    });
    const acc = await listener.accept(5000);
    const seen = await synAck;
    if (!acc.socket || !seen.came) throw new LabError('the ISN clock could not be measured: a connection did not open');
    samples.push({ isn: conn.tcb.irs, at: seen.segment.at });
    conn.abort();
    acc.socket.closeNow();
    await ctx.sleep(20);
  }
  listener.closeNow();
  const deltaIsn = seqSpan(samples[0]!.isn, samples[1]!.isn);
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
  /** when the kernel's SYN-ACK reached the peer (performance clock): about when its ISN was taken */
  synAt: number;
  /** when the peer sent its SYN (performance clock): the kernel took its ISN after this, however busy the machine */
  synSentAt: number;
  bytes: number;
  ms: number;
}

/**
 * One incarnation from the peer's fixed port: when `outrun`, the kernel first runs ahead of its
 * ISN clock; then AAAA BBBB CCCC with the first BBBB held back and recorded.
 */
async function firstIncarnation(
  ctx: LabContext,
  listener: KernelSocket,
  ports: Ports,
  skip: Skip,
  ts: boolean,
  outrun: number | null,
): Promise<First> {
  const stack = ctx.peer();
  const tcb = {
    isn: ISN1,
    timestamps: ts,
    tsOffset: 5000,
    mslMs: skip === 'peer-time-wait-short' ? 50 : 30_000,
    rcvBuf: 4 << 20,
    mss: peerMss(ctx),
  };
  const synAck = stack.expect({ peerPort: ports.peer, syn: true, ack: true }, 10_000);
  const synSentAt = performance.now();
  const conn = stack.connect({
    local: { address: ctx.addr.peer, port: ports.peer },
    remote: { address: ctx.addr.host, port: ports.kernel },
    tcb,
  });
  const acc = await listener.accept(5000);
  if (!acc.socket) throw new LabError(`the first incarnation was not accepted (${acc.result.errno})`);
  const seen = await synAck;
  if (!seen.came) throw new LabError(`the kernel's SYN-ACK of the first incarnation did not reach the peer in ${seen.waitedMs} ms`);
  const synAt = seen.segment.at;
  const k = acc.socket;
  const kernelIss = conn.tcb.irs;
  const t0 = performance.now();
  let bytes = 0;
  if (outrun !== null) {
    // the kernel sends until its sequence numbers are `ahead_ms` of ISN-clock time ahead of the clock
    const cap = ctx.int('kernel_bytes');
    const aheadMs = ctx.int('ahead_ms');
    await ctx.bulk('first incarnation, kernel → peer', async () => {
      const sendingFrom = performance.now(); // a bulk step may first wait for a CPU slot
      while (bytes < cap && bytes < (outrun * (performance.now() - synAt + aheadMs)) / 1000) {
        // slower than the ISN clock, the transfer never gets ahead of it (a busy machine): stop
        // after 3 s of sending, and C13's precondition says so with the numbers
        const sendingMs = performance.now() - sendingFrom;
        if (sendingMs > 3000 && (bytes / sendingMs) * 1000 < outrun) break;
        const n = Math.min(CHUNK, cap - bytes);
        const r = await k.send(new Uint8Array(n));
        if (r.ret <= 0) throw new LabError(`the kernel's send() failed: ${r.errno}`);
        bytes += r.ret;
      }
      await ctx.waitUntil(() => conn.received >= bytes, { timeoutMs: 30_000 });
    });
  }
  const ms = performance.now() - t0;
  if (conn.received < bytes) throw new LabError(`the peer received ${conn.received} of the ${bytes} bytes the kernel sent within 30 s`);
  const rec = stack.record((e) => e.direction === 'out' && e.tuple.local.port === ports.peer && e.tcp.payload.length > 0);
  const drop = stack.addFilter({
    direction: 'out',
    times: 1,
    match: (e) => e.tuple.local.port === ports.peer && DEC.decode(e.tcp.payload) === 'BBBB',
    action: 'drop',
  });
  for (const part of ['AAAA', 'BBBB', 'CCCC']) {
    conn.write(ENC.encode(part));
    await ctx.sleep(5);
  }
  // the retransmitted BBBB fills the hole (after the peer's RTO); data left unread at close() would
  // make the kernel reset instead of closing (T15), and the control would have no TIME_WAIT
  const read = await readAll(k, 10_000, 12);
  rec.stop();
  drop();
  const peerSegments = rec.segments.map((e) => DEC.decode(e.tcp.payload));
  const held = rec.segments.find((e) => DEC.decode(e.tcp.payload) === 'BBBB') ?? null;
  await endFirst(ctx, k, conn, skip);
  return { conn, held, peerSegments, read, kernelIss, synAt, synSentAt, bytes, ms };
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
  await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(10_000)]);
  // still open after 10 s (a starved machine): the peer gives the four-tuple up (an RST; in the
  // control tcp_rfc1337=1 keeps the kernel's TIME_WAIT, and a trial without one is not counted)
  if (conn.state !== 'CLOSED' && conn.state !== 'TIME-WAIT') {
    ctx.note(`the first incarnation's peer was still ${conn.state} 10 s after the close: aborted`);
    conn.abort();
  }
  await ctx.sleep(150);
}

/** near: the old BBBB (at ISN1+5) is exactly the first byte the new incarnation expects. */
const secondIsn = (ctx: LabContext): number => (ctx.str('isn') === 'near' ? ISN1 + 4 : seqAdd(ISN1, 2 ** 31));

type Second = Pick<
  Outcome,
  | 'opened'
  | 'timestamps'
  | 'kernelRead'
  | 'kernelIsnGrowth'
  | 'oldAckLead'
  | 'secondBytes'
  | 'secondReceived'
  | 'oldSeqOffset'
  | 'windowAtReplay'
  | 'clockBackMs'
>;

async function secondIncarnation(
  ctx: LabContext,
  listener: KernelSocket,
  ports: Ports,
  first: First,
  ts: boolean,
  align: Align,
): Promise<Second> {
  const stack = ctx.peer();
  // clock: the guest's realtime clock goes back by the time since the first SYN was sent (the ISN
  // was taken a little later, so this errs on the safe side, however late the SYN-ACK was seen) and
  // clock_back_ms more, so the new ISN lands that far below the old one (the kernel then sends
  // about that much before the old ACK lies inside); it goes forward again once the SYN is answered
  const clock = align === 'clock' ? ctx.realtimeClock() : null;
  // accept() says only whether the application got a connection; whether the kernel refused the
  // SYN is read from the capture (C14). A refusal (an ACK of the old connection) ends the wait early.
  let refusedAt: number | null = null;
  const off = stack.onSegment((e) => {
    if (e.direction === 'in' && e.tuple.local.port === ports.peer && !e.tcp.flags.syn) refusedAt ??= performance.now();
  });
  let clockBackMs: number | null = null;
  let conn: Connection;
  let acc: Awaited<ReturnType<KernelSocket['accept']>>;
  try {
    if (clock) {
      clockBackMs = Math.round((performance.now() - first.synSentAt + ctx.int('clock_back_ms')) * 10) / 10;
      const r = clock.shift(-clockBackMs);
      if (r.ret < 0) {
        clockBackMs = null;
        throw new LabError(`the guest's realtime clock could not be set: ${r.errno}`);
      }
    }
    conn = stack.connect({
      local: { address: ctx.addr.peer, port: ports.peer },
      remote: { address: ctx.addr.host, port: ports.kernel },
      tcb: { isn: secondIsn(ctx), timestamps: ts, tsOffset: 5000, rcvBuf: 4 << 20, mss: peerMss(ctx), synRetries: 1 },
    });
    const t0 = performance.now();
    for (;;) {
      acc = await listener.accept(100);
      if (acc.socket || performance.now() - t0 > 2500 || (refusedAt !== null && performance.now() - refusedAt > 200)) break;
    }
  } finally {
    off();
    // forward again by as much: the guest's clock keeps (near) the time it had
    if (clock && clockBackMs !== null) clock.shift(clockBackMs);
  }
  const none = {
    kernelIsnGrowth: null,
    oldAckLead: null,
    secondBytes: 0,
    secondReceived: 0,
    oldSeqOffset: null,
    windowAtReplay: null,
    kernelRead: '',
    timestamps: conn.tcb.tsEnabled,
    clockBackMs,
  };
  const held = first.held;
  if (!acc.socket) {
    conn.abort();
    return { opened: false, ...none };
  }
  const k = acc.socket;
  if (!held) {
    // nothing to replay: the new incarnation opened, and that is all this run can tell
    conn.abort();
    await k.close();
    return { opened: true, ...none };
  }
  const iss2 = conn.tcb.irs;
  const lead = seqDiff(held.tcp.ack, seqAdd(iss2, 1));
  // the kernel sends until the old ACK lies inside what the peer has acknowledged (a little beyond
  // it, far less than the peer's window: Linux accepts an old ACK down to SND.UNA − max_window);
  // not needed where PAWS is the question (align none)
  const secondBytes = align !== 'none' && lead > 0 ? lead + (64 << 10) : 0;
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
  // the kernel's RCV.NXT is the peer's SND.NXT; its window, the last the kernel advertised
  const oldSeqOffset = seqDiff(held.tcp.seq, conn.tcb.sndNxt);
  const windowAtReplay = conn.tcb.sndWnd;
  stack.replay(held); // the old BBBB arrives, byte for byte
  await ctx.sleep(100);
  conn.write(ENC.encode(NEW_DATA)); // what the new incarnation really sends
  const kernelRead = await readAll(k, 800, NEW_DATA.length);
  conn.abort();
  await k.close();
  return {
    opened: true,
    timestamps: conn.tcb.tsEnabled,
    kernelRead,
    kernelIsnGrowth: seqSpan(first.kernelIss, iss2),
    oldAckLead: lead,
    secondBytes,
    secondReceived: Math.min(conn.received, secondBytes),
    oldSeqOffset,
    windowAtReplay,
    clockBackMs,
  };
}

/** Two incarnations on one four-tuple, the first ended as `skip` says; the old BBBB replayed into the second. */
async function incarnations(
  ctx: LabContext,
  listener: KernelSocket,
  ports: Ports,
  skip: Skip,
  ts: boolean,
  align: Align,
  isnPerSecond: number,
): Promise<Outcome> {
  const first = await firstIncarnation(ctx, listener, ports, skip, ts, align === 'outrun' ? isnPerSecond : null);
  const timeWaitBeforeSecond = ctx.table((e) => e.state === 'TIME_WAIT' && e.remote.port === ports.peer).length > 0;
  const before = ctx.counters();
  const second = await secondIncarnation(ctx, listener, ports, first, ts, align);
  const pawsEstab = ctx.counterChange(before, 'TcpExt.PAWSEstab');
  return {
    peerPort: ports.peer,
    isnAlign: align,
    firstRead: first.read,
    firstBytes: first.bytes,
    firstMs: Math.round(first.ms),
    timeWaitBeforeSecond,
    peerSegments: first.peerSegments,
    heldRecorded: first.held !== null,
    pawsEstab,
    ...second,
  };
}

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

/** What must have held for the replayed segment to be a fair test of the new connection. */
function alignment(o: Outcome, opts: { ack: boolean } = { ack: true }): Precondition[] {
  const how =
    o.isnAlign === 'clock'
      ? `the guest's clock was set back ${o.clockBackMs} ms before the second SYN`
      : `it had sent ${mb(o.firstBytes)} first (in ${o.firstMs} ms)`;
  return [
    // the peer sends AAAA, BBBB, CCCC 5 ms apart; on a slow machine (a guest under TCG) they may leave as other segments
    requires(
      'the old "BBBB" left the peer as a segment of its own, held back',
      o.heldRecorded,
      `the peer's segments: ${o.peerSegments.map((p) => JSON.stringify(p)).join(', ') || 'none'}`,
    ),
    requires('the second incarnation opened', o.opened, o.opened ? 'accepted' : 'the new SYN was refused'),
    ...(opts.ack
      ? [
          requires(
            "the old segment's ACK fell inside the new connection",
            o.oldAckLead !== null && o.oldAckLead >= 0 && o.secondReceived >= o.secondBytes,
            o.oldAckLead === null
              ? 'no second incarnation'
              : o.oldAckLead < 0
                ? `it lies ${mb(-o.oldAckLead)} below the new ISN: the kernel's ISN ` +
                  `grew ${mb(o.kernelIsnGrowth ?? 0)} between the incarnations; ${how}`
                : o.secondReceived < o.secondBytes
                  ? `the peer received only ${o.secondReceived} of the ${o.secondBytes} bytes of the second transfer`
                  : `${mb(o.oldAckLead)} past the new ISN, inside the ${mb(o.secondBytes)} the kernel then sent (its ISN ` +
                    `grew ${mb(o.kernelIsnGrowth ?? 0)}; ${how})`,
          ),
        ]
      : []),
    requires(
      "the old segment's sequence number fell inside the new receive window",
      o.oldSeqOffset !== null && o.windowAtReplay !== null && o.oldSeqOffset >= 0 && o.oldSeqOffset < o.windowAtReplay,
      o.oldSeqOffset === null ? 'no second incarnation' : `${o.oldSeqOffset} bytes from RCV.NXT, window ${o.windowAtReplay}`,
    ),
    // what the application read decides the claims: a read that found nothing in time decides nothing
    requires(
      "the application read the new connection's first bytes",
      !o.opened || o.kernelRead.length >= NEW_DATA.length,
      o.opened ? `read ${JSON.stringify(o.kernelRead)}` : 'no second incarnation',
    ),
  ];
}

const oldRead = (o: Outcome): boolean => o.kernelRead.startsWith('BBBB');

/**
 * One C14 control, judged from the kernel's side: with TIME_WAIT in place (and no timestamps, and
 * a SYN below the old sequence space) the kernel must refuse the new SYN on the wire — an ACK of
 * the old connection or an RST, and no SYN-ACK. A SYN the kernel did not answer decides nothing.
 */
export function controlTrial(timeWaitBeforeSecond: boolean, a: NewSynOnWire, isn: string): Trial {
  return {
    requires: [
      requires(
        'the control kept its TIME_WAIT until the new SYN',
        timeWaitBeforeSecond,
        timeWaitBeforeSecond ? 'TIME_WAIT entry present' : 'no TIME_WAIT entry',
      ),
      // with timestamps a newer one lets the SYN in whatever its sequence number (T10, lab 12): PAWS is the guard then, not TIME_WAIT
      requires(
        "the old connection used no timestamps (the kernel's first SYN-ACK, in the capture)",
        a.oldTimestamps === false,
        a.oldTimestamps === null ? 'no SYN-ACK in the capture' : a.oldTimestamps ? 'timestamps on' : 'off',
      ),
      // a SYN above the old sequence space may take over a TIME_WAIT (RFC 9293 §3.10.7.4, lab 12)
      requires(
        "the control's new SYN lay below the old connection's sequence space (in the capture)",
        a.synVsRcvNxt !== null && a.synVsRcvNxt < 0,
        a.syn === null
          ? 'no second SYN in the capture'
          : a.synVsRcvNxt === null
            ? `SYN #${a.syn}, but no ACK of the kernel before it`
            : `SYN #${a.syn} ${a.synVsRcvNxt} from the kernel's RCV.NXT (isn=${isn})`,
      ),
      requires(
        'the kernel answered the SYN (in the capture)',
        a.synAck !== null || a.refusal !== null,
        a.syn === null ? 'no SYN' : `no answer from the kernel after SYN #${a.syn}`,
      ),
    ],
    agrees: a.synAck === null && a.refusal !== null,
  };
}

/** One T8 trial: timestamps on the new connection (the kernel's SYN-ACK), the kernel's own PAWS counter, and what the application read. */
export function pawsTrial(o: Outcome, a: NewSynOnWire): Trial {
  return {
    requires: [
      requires(
        "timestamps were on the new connection (the kernel's SYN-ACK carried one)",
        a.newTimestamps === true,
        a.newTimestamps === null ? 'no SYN-ACK of the second incarnation in the capture' : a.newTimestamps ? 'on' : 'off',
      ),
      // a counter the kernel does not have is not a 0
      requires('the kernel counts TcpExt.PAWSEstab', o.pawsEstab !== null, o.pawsEstab === null ? signed(null) : 'present'),
      ...alignment(o, { ack: false }),
    ],
    agrees: !oldRead(o) && (o.pawsEstab ?? 0) > 0,
  };
}

const synAnswer = (ctx: LabContext, variant: string, o: Outcome): NewSynOnWire =>
  newSynOnWire(
    ctx.onWire(variant, { address: ctx.addr.host, port: 7000 + kernelPortOf(variant) }, { address: ctx.addr.peer, port: o.peerPort }),
  );

/** The kernel's answer to a new SYN, as the evidence says it. */
const synAnswerText = (a: NewSynOnWire): string =>
  a.synAck !== null ? `a SYN-ACK (#${a.synAck})` : a.refusal !== null ? 'an ACK of the old connection' : 'nothing';

/** Each variant's listener has its own port (7000 + index). */
const VARIANT_INDEX: Record<string, number> = {
  'with-time-wait': 0,
  'linger-abort': 1,
  'no-tw-buckets': 2,
  'peer-time-wait-short': 3,
  'paws-with-timestamps': 4,
};
const kernelPortOf = (variant: string): number => VARIANT_INDEX[variant]!;

/** The peer's MSS: the TUN's MTU less the IP and TCP headers (20 + 20 over IPv4, 40 + 20 over IPv6; RFC 8200 §5). */
function peerMss(ctx: LabContext): number {
  return ctx.int('mtu') - (ctx.family === 'ipv6' ? 60 : 40);
}
