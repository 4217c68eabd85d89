// The userspace stack against the real kernel over the TUN device, each scenario in a fresh
// namespace. Every scenario returns what both sides ended in and what the capture shows.
import { createHash, randomBytes } from 'node:crypto';
import { analyzeTcp, type DirectionSummary } from '../../src/capture/flows';
import { PcapWriter, readPcap } from '../../src/capture/pcap';
import { isWireError } from '../../src/wire/errors';
import { parseFrame } from '../../src/wire/frame';
import { KernelSocket } from '../../src/host/ksocket';
import { setupLabNetwork } from '../../src/host/netns';
import { ADDR } from '../../src/wire/address-plan';
import { findSockets, type SocketEntry } from '../../src/host/observe';
import { TunLink } from '../../src/host/tunlink';
import { seededRandom } from '../../src/stack/clock';
import { TcpStack, type Connection, type SegmentEvent } from '../../src/stack/stack';
import type { TcbConfig, TcbEvent, TcpState } from '../../src/stack/tcb';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface InteropResult {
  kernel: Record<string, unknown>;
  stack: { states: TcpState[]; final: TcpState; events: string[]; received: number; sha256: string; resetReason: string | null };
  /** socket table entries for the connection's four-tuple after the scenario */
  table: Array<Pick<SocketEntry, 'state' | 'timer' | 'timerMs'>>;
  capture: {
    frames: number;
    kernel: DirectionSummary | null;
    stack: DirectionSummary | null;
    pcap: string;
    /** each side's FINs by relative sequence number (one entry is one FIN, however often it was sent), read frame by frame */
    finAt: { kernel: number[]; stack: number[] };
    /** RST segments each side sent, read frame by frame */
    rst: { kernel: number; stack: number };
  };
  extra: Record<string, unknown>;
}

interface Env {
  link: TunLink;
  stack: TcpStack;
  pcap: PcapWriter;
}

async function withStack(
  input: Record<string, unknown>,
  tcb: Partial<TcbConfig>,
  fn: (env: Env) => Promise<Omit<InteropResult, 'capture'>>,
): Promise<InteropResult> {
  const net = await setupLabNetwork();
  const pcap = new PcapWriter(String(input.pcap));
  const link = new TunLink(net.tunFd, pcap);
  const stack = new TcpStack(link, { addresses: [ADDR.peer4, ADDR.peer4b, ADDR.peer6], tcb });
  try {
    const r = await fn({ link, stack, pcap });
    await sleep(50);
    stack.detach();
    link.close();
    pcap.close();
    const flows = analyzeTcp(readPcap(String(input.pcap)));
    const dirs = Object.entries(flows.directions);
    const kernelDir = dirs.find(([d]) => d.startsWith(`${ADDR.host4}:`) || d.startsWith(`[${ADDR.host6}]`))?.[1] ?? null;
    const stackDir = dirs.find(([d]) => d.startsWith(`${ADDR.peer4}:`) || d.startsWith(`[${ADDR.peer6}]`))?.[1] ?? null;
    return {
      ...r,
      capture: {
        frames: flows.segments.length,
        kernel: kernelDir,
        stack: stackDir,
        pcap: String(input.pcap),
        ...finsAndResets(String(input.pcap)),
      },
    };
  } finally {
    stack.detach();
  }
}

/** Each side's FINs (relative to its SYN's sequence number) and RSTs, from the frames themselves. */
function finsAndResets(pcap: string): Pick<InteropResult['capture'], 'finAt' | 'rst'> {
  const isn = new Map<string, number>();
  const fins = { kernel: new Set<number>(), stack: new Set<number>() };
  const rst = { kernel: 0, stack: 0 };
  for (const rec of readPcap(pcap).records) {
    const f = parseFrame(rec.data);
    if (isWireError(f) || f.kind !== 'tcp') continue;
    const side = f.ip.src === ADDR.host4 || f.ip.src === ADDR.host6 ? 'kernel' : 'stack';
    const from = `${f.ip.src} ${f.tcp.srcPort}`;
    if (f.tcp.flags.syn) isn.set(from, f.tcp.seq);
    if (f.tcp.flags.rst) rst[side]++;
    if (f.tcp.flags.fin && isn.has(from)) fins[side].add((f.tcp.seq + f.tcp.payload.length - isn.get(from)!) >>> 0);
  }
  return { finAt: { kernel: [...fins.kernel], stack: [...fins.stack] }, rst };
}

function stackView(c: Connection, sha: ReturnType<typeof createHash>, events: TcbEvent[]): InteropResult['stack'] {
  return {
    states: c.history.map((h) => h.state),
    final: c.state,
    events: events.filter((e) => e.kind !== 'data' && e.kind !== 'acked' && e.kind !== 'state').map((e) => e.kind),
    received: c.received,
    sha256: sha.digest('hex'),
    resetReason: c.resetReason,
  };
}

function tableFor(localPort: number, remotePort: number): InteropResult['table'] {
  return findSockets({ port: localPort }, { port: remotePort }).map((e) => ({ state: e.state, timer: e.timer, timerMs: e.timerMs }));
}

/** Reads until EOF (or `limit` bytes), hashing what arrives. */
async function kernelReadAll(
  s: KernelSocket,
  limit = Number.MAX_SAFE_INTEGER,
): Promise<{ bytes: number; sha256: string; last: { ret: number; errno: string | null } }> {
  const h = createHash('sha256');
  let bytes = 0;
  for (;;) {
    const r = await s.recv(1 << 20, { timeoutMs: 20000 });
    if (r.ret <= 0) return { bytes, sha256: h.digest('hex'), last: { ret: r.ret, errno: r.errno } };
    h.update(r.data);
    bytes += r.ret;
    if (bytes >= limit) return { bytes, sha256: h.digest('hex'), last: { ret: r.ret, errno: r.errno } };
  }
}

const hash = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function watch(c: Connection): { events: TcbEvent[]; sha: ReturnType<typeof createHash> } {
  const events: TcbEvent[] = [];
  const sha = createHash('sha256');
  c.tcbEvents.on((e) => events.push(e));
  c.onData((d) => sha.update(d));
  return { events, sha };
}

function waitState(c: Connection, state: TcpState, ms = 10000): Promise<boolean> {
  return Promise.race([c.waitFor(state).then(() => true), sleep(ms).then(() => false)]);
}

/**
 * The kernel connects to the stack; both send `bytes` at once; the kernel closes first.
 * Options: timestamps/wscale on the stack's side; `loss` drops that share of segments arriving at
 * the stack (seeded).
 */
export async function kernelClient(input: Record<string, unknown>): Promise<InteropResult> {
  const bytes = Number(input.bytes ?? 1 << 20);
  const tcb: Partial<TcbConfig> = { timestamps: input.timestamps !== false, wscale: input.wscale === false ? null : 7 };
  return withStack(input, tcb, async ({ stack }) => {
    const fromKernel = randomBytes(bytes);
    const fromStack = randomBytes(bytes);
    const listener = stack.listen(80);
    if (input.loss) {
      const rnd = seededRandom(7);
      stack.addFilter({ direction: 'both', match: () => true, action: () => (rnd() < Number(input.loss) ? 'drop' : 'pass') });
    }
    let conn: Connection | null = null;
    let watched: ReturnType<typeof watch> | null = null;
    const accepted = new Promise<Connection>((resolve) =>
      listener.onConnection((c) => {
        conn = c;
        watched = watch(c);
        c.write(fromStack);
        c.onEnd(() => c.end()); // the kernel closed first: close after our data
        resolve(c);
      }),
    );
    const k = KernelSocket.create('ipv4', 'tcp');
    const connect = await k.connect(ADDR.peer4, 80);
    const local = k.localAddress()!;
    await accepted;
    const info = k.tcpInfo().info;
    const [sent, got] = await Promise.all([
      k.send(fromKernel).then(async (r) => {
        k.shutdown('SHUT_WR');
        return r;
      }),
      kernelReadAll(k),
    ]);
    const closedStack = await waitState(conn!, 'CLOSED');
    const close = await k.close();
    const table = tableFor(local.port, 80);
    return {
      kernel: {
        connect,
        sent: sent.ret,
        received: got.bytes,
        sha256: got.sha256,
        eof: got.last,
        close,
        options: info?.options,
        rcvMss: info?.rcvMss,
        sndMss: info?.sndMss,
        expect: { toStack: hash(fromKernel), toKernel: hash(fromStack) },
      },
      stack: stackView(conn!, watched!.sha, watched!.events),
      table,
      extra: {
        closedStack,
        retransmitsByStack: watched!.events.filter((e) => e.kind === 'retransmit').length,
        timeouts: watched!.events.filter((e) => e.kind === 'retransmit' && e.timer).length,
        rto: { srttMs: conn!.tcb.rto.srttMs, rttvarMs: conn!.tcb.rto.rttvarMs, rtoMs: conn!.tcb.rto.rtoMs },
        dropped: stack.stats.dropped,
      },
    };
  });
}

/**
 * The stack connects to a kernel listener; both send `bytes`; the stack closes first and ends in
 * TIME-WAIT. With `dropFirstFinAck`, the stack's first ACK of the kernel's FIN is lost: the
 * kernel retransmits its FIN and the stack, in TIME-WAIT, acknowledges it again.
 */
export async function stackClient(input: Record<string, unknown>): Promise<InteropResult> {
  const bytes = Number(input.bytes ?? 1 << 20);
  const tcb: Partial<TcbConfig> = { timestamps: input.timestamps !== false, wscale: input.wscale === false ? null : 7, mslMs: 2000 };
  return withStack(input, tcb, async ({ stack }) => {
    const fromKernel = randomBytes(bytes);
    const fromStack = randomBytes(bytes);
    const listener = KernelSocket.create(input.ipv6 ? 'ipv6' : 'ipv4', 'tcp');
    listener.bind(input.ipv6 ? ADDR.host6 : ADDR.host4, 8080);
    listener.listen(8);
    const conn = stack.connect({
      local: { address: input.ipv6 ? ADDR.peer6 : ADDR.peer4 },
      remote: { address: input.ipv6 ? ADDR.host6 : ADDR.host4, port: 8080 },
    });
    const w = watch(conn);
    if (input.dropFirstFinAck) {
      stack.addFilter({
        direction: 'out',
        times: 1,
        match: (e) => e.tcp.flags.ack && !e.tcp.flags.fin && e.tcp.payload.length === 0 && conn.tcb.finReceived,
        action: 'drop',
      });
    }
    const acc = await listener.accept(5000);
    const k = acc.socket!;
    const info = k.tcpInfo().info;
    conn.write(fromStack);
    conn.end(); // the stack closes first, after its data
    const [sent, got] = await Promise.all([k.send(fromKernel), kernelReadAll(k)]);
    const stateAfterEof = k.tcpInfo().info?.state;
    const close = await k.close();
    const inTimeWait = await waitState(conn, 'TIME-WAIT');
    await sleep(input.dropFirstFinAck ? 1500 : 100); // the kernel's FIN retransmission needs an RTO
    const table = tableFor(8080, conn.tuple.local.port);
    const stateBeforeExpiry = conn.state;
    const closedAfter2Msl = await waitState(conn, 'CLOSED', 6000);
    listener.closeNow();
    return {
      kernel: {
        sent: sent.ret,
        received: got.bytes,
        sha256: got.sha256,
        stateAfterEof,
        close,
        options: info?.options,
        expect: { toStack: hash(fromKernel), toKernel: hash(fromStack) },
      },
      stack: stackView(conn, w.sha, w.events),
      table,
      extra: {
        inTimeWait,
        stateBeforeExpiry,
        closedAfter2Msl,
        timeWaitRestarts: w.events.filter((e) => e.kind === 'time-wait-restart').length,
      },
    };
  });
}

/**
 * Both sides send FIN before seeing the other's, in an order nothing can race: everything the
 * stack sends after end() is held on the wire (its TCB thinks it went) until the kernel's FIN has
 * reached the stack; then the stack's FIN is let through, and its ACK of the kernel's FIN only
 * once the kernel is in CLOSING. Both pass through CLOSING into TIME-WAIT.
 */
export async function simultaneousClose(input: Record<string, unknown>): Promise<InteropResult> {
  return withStack(input, { mslMs: 1000 }, async ({ stack }) => {
    const listener = KernelSocket.create('ipv4', 'tcp');
    listener.bind(ADDR.host4, 8080);
    listener.listen(8);
    const conn = stack.connect({ local: { address: ADDR.peer4 }, remote: { address: ADDR.host4, port: 8080 } });
    const w = watch(conn);
    const k = (await listener.accept(5000)).socket!;
    await waitState(conn, 'ESTABLISHED');
    const held: SegmentEvent[] = [];
    const openGate = stack.addFilter({
      direction: 'out',
      match: () => true,
      action: (e) => {
        held.push({ ...e, frame: e.frame.slice() });
        return 'drop';
      },
    });
    conn.end(); // FIN-WAIT-1; the FIN is held
    const finHeld = await waitFor(() => held.some((e) => e.tcp.flags.fin));
    k.shutdown('SHUT_WR'); // the kernel's FIN crosses ours
    const stackGotFin = await waitFor(() => conn.tcb.finReceived && held.some((e) => !e.tcp.flags.fin));
    const stackMid = conn.state;
    const kernelBefore = k.tcpInfo().info?.state; // nothing of ours has reached it
    openGate();
    const fins = held.filter((e) => e.tcp.flags.fin);
    const rest = held.filter((e) => !e.tcp.flags.fin);
    for (const e of fins) stack.replay(e);
    const kernelClosing = await waitFor(() => k.tcpInfo().info?.state === 'CLOSING');
    const kernelMid = k.tcpInfo().info?.state;
    for (const e of rest) stack.replay(e); // now the ACK of its FIN
    const timeWait = await waitState(conn, 'TIME-WAIT');
    const table = tableFor(8080, conn.tuple.local.port);
    await k.close();
    listener.closeNow();
    return {
      kernel: { kernelBefore, kernelClosing, kernelMid },
      stack: stackView(conn, w.sha, w.events),
      table,
      extra: { finHeld, stackGotFin, stackMid, timeWait },
    };
  });
}

/**
 * The stack closes with data still queued behind the kernel's shut window, and the kernel's FIN
 * crosses: the stack is in FIN-WAIT-1 from close() on (RFC 9293 §3.10.4, as Linux), so the FIN
 * takes it to CLOSING and, once its own FIN (after all the data) is acknowledged, to TIME-WAIT.
 * Nothing races: the kernel reads nothing until the stack has taken its FIN.
 */
export async function closeWithQueuedData(input: Record<string, unknown>): Promise<InteropResult> {
  const bytes = Number(input.bytes ?? 256 * 1024);
  return withStack(input, { mslMs: 1000 }, async ({ stack }) => {
    const data = randomBytes(bytes);
    const listener = KernelSocket.create('ipv4', 'tcp');
    listener.setOption('SO_RCVBUF', 4096); // a small receive buffer: its window shuts long before `bytes` arrive
    listener.bind(ADDR.host4, 8080);
    listener.listen(8);
    const conn = stack.connect({ local: { address: ADDR.peer4 }, remote: { address: ADDR.host4, port: 8080 } });
    const w = watch(conn);
    const k = (await listener.accept(5000)).socket!;
    conn.write(data);
    const unsent = (): number => conn.tcb.sendQ.length - ((conn.tcb.sndNxt - conn.tcb.sndBase) >>> 0);
    const shut = await waitFor(() => conn.tcb.sndWnd === 0 && unsent() > 0, 10000);
    conn.close();
    const afterClose = { state: conn.state, unsent: unsent(), finSent: conn.tcb.finSeq !== null };
    let atKernelFin: { unsent: number; finSent: boolean } | null = null;
    conn.onState((_from, to) => {
      if (to === 'CLOSING') atKernelFin = { unsent: unsent(), finSent: conn.tcb.finSeq !== null };
    });
    k.shutdown('SHUT_WR'); // the kernel's FIN crosses the stack's, which waits behind the data
    const closing = await waitState(conn, 'CLOSING');
    const kernelFinAcked = await waitFor(() => k.tcpInfo().info?.state === 'FIN_WAIT2');
    const got = await kernelReadAll(k); // now the window opens: the data, then the stack's FIN (end of file)
    const timeWait = await waitState(conn, 'TIME-WAIT');
    await k.close();
    const table = tableFor(8080, conn.tuple.local.port);
    listener.closeNow();
    return {
      kernel: { received: got.bytes, sha256: got.sha256, eof: got.last, kernelFinAcked, expect: hash(data) },
      stack: stackView(conn, w.sha, w.events),
      table,
      extra: { shut, afterClose, atKernelFin, closing, timeWait },
    };
  });
}

/** The kernel connects to a stack listener on `port`; `onAccept` runs as the stack accepts. */
async function kernelConnects(stack: TcpStack, port: number, onAccept: (c: Connection) => void = () => undefined) {
  const listener = stack.listen(port);
  const accepted = new Promise<Connection>((r) =>
    listener.onConnection((c) => {
      onAccept(c);
      r(c);
    }),
  );
  const k = KernelSocket.create('ipv4', 'tcp');
  await k.connect(ADDR.peer4, port);
  const conn = await accepted;
  return { k, conn, w: watch(conn), local: k.localAddress()! };
}

/** The kernel half-closes (shutdown SHUT_WR) and keeps reading while the stack sends `bytes`. */
export async function halfClose(input: Record<string, unknown>): Promise<InteropResult> {
  const bytes = Number(input.bytes ?? 1 << 20);
  return withStack(input, {}, async ({ stack }) => {
    const data = randomBytes(bytes);
    const { k, conn, w, local } = await kernelConnects(stack, 80);
    k.shutdown('SHUT_WR');
    await waitState(conn, 'CLOSE-WAIT');
    const kernelAfterShutdown = k.tcpInfo().info?.state;
    conn.write(data); // data still flows the other way
    conn.end();
    const got = await kernelReadAll(k);
    await waitState(conn, 'CLOSED');
    await k.close();
    return {
      kernel: { kernelAfterShutdown, received: got.bytes, sha256: got.sha256, eof: got.last, expect: hash(data) },
      stack: stackView(conn, w.sha, w.events),
      table: tableFor(local.port, 80),
      extra: {},
    };
  });
}

/** An abort: by the stack (RST), or by the kernel (SO_LINGER {1,0} then close). */
export async function abort(input: Record<string, unknown>): Promise<InteropResult> {
  return withStack(input, {}, async ({ stack }) => {
    const { k, conn, w, local } = await kernelConnects(stack, 80);
    let kernel: Record<string, unknown>;
    if (input.by === 'stack') {
      conn.abort();
      const r = await k.recv(100, { timeoutMs: 3000 });
      kernel = { recv: { ret: r.ret, errno: r.errno }, stateAfter: k.tcpInfo().info?.state };
      await k.close();
    } else {
      k.setOption('SO_LINGER', { onoff: true, seconds: 0 });
      const close = await k.close();
      const closed = await waitState(conn, 'CLOSED', 3000);
      kernel = { close, stackClosed: closed };
    }
    await sleep(50);
    return { kernel, stack: stackView(conn, w.sha, w.events), table: tableFor(local.port, 80), extra: {} };
  });
}

/** The stack stops reading: its window closes, the kernel probes, then the stack reads again. */
export async function zeroWindow(input: Record<string, unknown>): Promise<InteropResult> {
  const bytes = Number(input.bytes ?? 1 << 20);
  const stallMs = Number(input.stallMs ?? 1500);
  return withStack(input, { rcvBuf: 64 * 1024 }, async ({ stack }) => {
    const data = randomBytes(bytes);
    const { k, conn, w } = await kernelConnects(stack, 80, (c) => c.pauseReading());
    const sending = k.send(data);
    await sleep(stallMs);
    const stalled = {
      stackQueued: conn.tcb.recvQ.length,
      kernelUnacked: k.tcpInfo().info?.unacked,
      kernelProbes: k.tcpInfo().info?.probes,
      timer: tableFor(k.localAddress()!.port, 80)[0]?.timer,
    };
    conn.resumeReading();
    const sent = await sending;
    k.shutdown('SHUT_WR');
    await waitState(conn, 'CLOSE-WAIT');
    conn.end();
    await waitState(conn, 'CLOSED');
    await k.close();
    return {
      kernel: { sent: sent.ret, sendMs: sent.elapsedMs, expect: hash(data) },
      stack: stackView(conn, w.sha, w.events),
      table: [],
      extra: stalled,
    };
  });
}

/**
 * The peer behaviours a lab can script, against the kernel: keep-alive probes the kernel answers;
 * urgent data the kernel sends with MSG_OOB, seen by the peer; close() with unread data resets
 * (the kernel reads ECONNRESET); data arriving after close() draws an RST.
 */
export async function peerBehaviours(input: Record<string, unknown>): Promise<InteropResult> {
  return withStack(input, {}, async ({ stack }) => {
    // keep-alive: a probe after 200 ms of silence, then every 400 ms while unanswered, 3 allowed. The kernel
    // answers such out-of-window ACKs at most once per 500 ms (tcp_invalid_ratelimit), so the probe 200 ms
    // after an answer goes unanswered and the next, 400 ms later, is answered: the count never reaches 3,
    // however late our timers run (a late timer only makes the gap since the last answer longer)
    const ka = await kernelConnects(stack, 80, (c) => c.setKeepAlive({ idleMs: 200, intervalMs: 400, probes: 3 }));
    await sleep(1300);
    const keepalive = { probes: ka.w.events.filter((e) => e.kind === 'keepalive').length, state: ka.conn.state };
    // urgent data: one byte after "abc" with MSG_OOB
    const pointers: number[] = [];
    ka.conn.onUrgent((p) => pointers.push((p - ka.conn.tcb.irs - 1) >>> 0));
    await ka.k.send(new TextEncoder().encode('abc'));
    await ka.k.send(new TextEncoder().encode('!'), 1 /* MSG_OOB */);
    await waitFor(() => pointers.length > 0); // Nagle may hold "!" until "abc" is acknowledged: wait for it, not for a fixed time
    ka.conn.abort();
    await ka.k.close();
    // close() with unread data: RST, ECONNRESET
    const unread = await kernelConnects(stack, 81, (c) => c.pauseReading());
    await unread.k.send(new Uint8Array(1000));
    await waitFor(() => unread.conn.tcb.recvQ.length === 1000);
    unread.conn.close();
    const afterUnread = await unread.k.recv(100, { timeoutMs: 2000 });
    await unread.k.close();
    // data after close(): the peer's FIN, then the kernel still writes: RST
    const late = await kernelConnects(stack, 82);
    late.conn.close();
    await late.k.recv(100, { timeoutMs: 2000 }); // end of file
    await late.k.send(new TextEncoder().encode('late'));
    await waitState(late.conn, 'CLOSED', 2000);
    await sleep(20);
    const lateState = late.k.tcpInfo().info?.state; // reset: CLOSE (a recv would still read end of file)
    const afterLate = await late.k.send(new TextEncoder().encode('more'));
    await late.k.close();
    return {
      kernel: {
        afterUnread: { ret: afterUnread.ret, errno: afterUnread.errno },
        lateState,
        afterLate: { ret: afterLate.ret, errno: afterLate.errno },
      },
      stack: stackView(unread.conn, unread.w.sha, unread.w.events),
      table: [],
      extra: {
        keepalive,
        urgentPointers: pointers,
        lateReset: late.conn.resetReason,
        lateStates: late.conn.history.map((h) => h.state),
        unreadStates: unread.conn.history.map((h) => h.state),
      },
    };
  });
}

async function waitFor(cond: () => boolean, ms = 10000): Promise<boolean> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(5);
  return cond();
}
