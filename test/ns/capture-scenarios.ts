// Scenarios for the packet-socket capture (src/host/capture.ts), run inside a fresh namespace.
import { PacketCapture, CaptureError, type CapturedFrame } from '../../src/host/capture';
import { wallUs } from '../../src/host/clock';
import { KernelSocket } from '../../src/host/ksocket';
import { native } from '../../src/host/native';
import { setupLabNetwork } from '../../src/host/netns';
import { ADDR } from '../../src/wire/address-plan';
import { TunLink } from '../../src/host/tunlink';
import { emitUdpFrame, parseFrame } from '../../src/wire/frame';
import { isWireError } from '../../src/wire/errors';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Frames in both directions as the packet socket sees them, with the kernel's stamps, beside the
 * times twlab read (kernel → peer) or wrote (peer → kernel) them on the TUN; a kernel frame sent
 * while the event loop was kept busy for `busyMs`; the errno of a packet socket on no device.
 */
export async function packetCapture(input: Record<string, unknown>): Promise<unknown> {
  const busyMs = Number(input.busyMs ?? 80);
  const net = await setupLabNetwork();
  const link = new TunLink(net.tunFd);
  const capture = new PacketCapture(net.tunName);
  const captured: Array<Omit<CapturedFrame, 'data'> & { what: string; kept: number }> = [];
  const describe = (data: Uint8Array): string => {
    const s = parseFrame(data);
    return isWireError(s) ? `error ${s.reason}` : s.kind === 'udp' ? `udp ${Buffer.from(s.udp.payload).toString()}` : s.kind;
  };
  capture.onFrame((f) =>
    captured.push({
      timeUs: f.timeUs,
      direction: f.direction,
      length: f.length,
      kept: f.data.length,
      what: f.data.length < f.length ? 'cut' : describe(f.data),
    }),
  );
  const readAt = new Map<string, number>();
  link.onFrame((frame) => readAt.set(describe(frame), wallUs()));
  const u = KernelSocket.create('ipv4', 'udp');
  u.bind(ADDR.host4, 40001);
  await u.connect(ADDR.peer4, 9);
  // the kernel sends while the loop is busy: nobody reads the TUN for busyMs
  const sentAt = wallUs();
  u.sendNow(Buffer.from('sent while busy'));
  const until = performance.now() + busyMs;
  while (performance.now() < until) {
    // busy
  }
  await sleep(50);
  const before = wallUs();
  link.send(emitUdpFrame(ADDR.peer4, ADDR.host4, { srcPort: 9, dstPort: 40001, payload: Buffer.from('from the peer') }));
  const after = wallUs();
  const received = await u.recv(100, { timeoutMs: 2000 });
  // a long frame cut to the snaplen keeps its length on the wire
  capture.setSnaplen(40);
  u.sendNow(Buffer.alloc(1000, 0x42));
  await sleep(50);
  const drained = captured.length;
  capture.drain();
  const cut = captured.slice(drained).find((c) => c.length === 1028) ?? captured.find((c) => c.length === 1028);
  const stats = native().packetStats(capture.fd);
  const noDevice = (() => {
    try {
      new PacketCapture('nosuchdev0');
      return null;
    } catch (e) {
      return e instanceof CaptureError ? { errno: e.errno, step: e.step } : String(e);
    }
  })();
  u.closeNow();
  capture.close();
  link.close();
  return {
    busyMs,
    sentAt,
    readAt: Object.fromEntries(readAt),
    before,
    after,
    captured,
    received: received.data.toString(),
    cut: cut ?? null,
    stats: { ret: stats.ret, drops: stats.drops },
    noDevice,
  };
}

/**
 * One four-tuple's socket read with an exact sock_diag lookup, beside the /proc table, through a
 * close on loopback: ESTABLISHED (with an inode), the closer's FIN_WAIT2 and TIME_WAIT (inode 0),
 * nothing on an unused four-tuple (the listener it would reach is not its socket).
 */
export async function socketDiag(): Promise<unknown> {
  const { execFileSync } = await import('node:child_process');
  const { socketAt } = await import('../../src/host/diag');
  const { socketTable } = await import('../../src/host/observe');
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  const l = KernelSocket.create('ipv4', 'tcp');
  l.bind('127.0.0.1', 9100);
  l.listen(4);
  const c = KernelSocket.create('ipv4', 'tcp');
  const [conn, acc] = await Promise.all([c.connect('127.0.0.1', 9100), l.accept(2000)]);
  const local = c.localAddress()!;
  const server = { address: '127.0.0.1', port: 9100 };
  const look = (): unknown => {
    const e = socketAt({ address: local.address, port: local.port }, server);
    return e && { state: e.state, timer: e.timer, inodeZero: e.inode === 0, timerMs: e.timerMs };
  };
  const fromProc = (): unknown => {
    const e = socketTable().find((x) => x.local.port === local.port && x.remote.port === 9100);
    return e && { state: e.state, timer: e.timer, inodeZero: e.inode === 0 };
  };
  const established = { diag: look(), proc: fromProc() };
  await c.close(); // FIN from the client; the server ACKs: FIN_WAIT2
  await sleep(50);
  const finWait2 = { diag: look(), proc: fromProc() };
  await acc.socket!.close(); // the server's FIN: TIME_WAIT
  await sleep(50);
  const timeWait = { diag: look(), proc: fromProc() };
  const unused = socketAt({ address: '127.0.0.1', port: 9999 }, server);
  const v6 = socketAt({ address: '::1', port: 9999 }, { address: '::1', port: 9100 });
  l.closeNow();
  return { connect: conn.ret, established, finWait2, timeWait, unused, v6 };
}
