// Scenarios that run inside a fresh network namespace (see entry.ts). Each returns what it
// measured; the vitest files assert on it. Nothing here asserts or fakes a kernel result.
import { PcapWriter } from '../../src/capture/pcap';
import { KernelSocket } from '../../src/host/ksocket';
import { native } from '../../src/host/native';
import { setupLabNetwork } from '../../src/host/netns';
import { ADDR } from '../../src/wire/address-plan';
import { TunLink } from '../../src/host/tunlink';
import { isWireError } from '../../src/wire/errors';
import { emitTcpFrame, emitUdpFrame, parseFrame } from '../../src/wire/frame';
import { seq, seqAdd } from '../../src/wire/seq';
import { abort, closeWithQueuedData, halfClose, kernelClient, peerBehaviours, simultaneousClose, stackClient, zeroWindow } from './interop';
import { flags } from '../../src/wire/tcp';
import { packetCapture, socketDiag } from './capture-scenarios';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Scenario = (input: Record<string, unknown>) => Promise<unknown>;

/** Syscall results and errno names straight from the addon. */
const addonBasics: Scenario = async () => {
  await setupLabNetwork();
  const out: Record<string, unknown> = {};
  const a = KernelSocket.create('ipv4', 'tcp');
  out.setReuse = a.setOption('SO_REUSEADDR', true);
  out.getReuse = a.getOption('SO_REUSEADDR');
  out.setLinger = a.setOption('SO_LINGER', { onoff: true, seconds: 7 });
  out.getLinger = a.getOption('SO_LINGER');
  out.setNodelay = a.setOption('TCP_NODELAY', true);
  out.setPortRange = a.setOption('IP_LOCAL_PORT_RANGE', { lo: 40000, hi: 40010 });
  out.getPortRange = a.getOption('IP_LOCAL_PORT_RANGE');
  out.bindA = a.bind(ADDR.host4, 7001);
  out.listenA = a.listen(16);
  out.infoListening = a.tcpInfo().info?.state;
  out.localA = a.localAddress();
  const b = KernelSocket.create('ipv4', 'tcp');
  out.bindInUse = b.bind(ADDR.host4, 7001);
  out.bindNotAvail = b.bind('198.51.100.77', 7001); // documentation range, not assigned here
  b.closeNow();
  const u = KernelSocket.create('ipv4', 'udp');
  out.listenUdp = u.listen();
  out.membership = u.setOption('IP_ADD_MEMBERSHIP', { group: '224.1.2.3', iface: ADDR.host4 });
  u.closeNow();
  const six = KernelSocket.create('ipv6', 'tcp');
  out.v6only = six.setOption('IPV6_V6ONLY', true);
  out.bindV6 = six.bind(ADDR.host6, 7001);
  out.localV6 = six.localAddress();
  six.closeNow();
  out.badFd = native().bind(9999, Buffer.alloc(16));
  const c = KernelSocket.create('ipv4', 'tcp');
  out.connectRefused = await c.connect(ADDR.host4, 7002);
  await c.close();
  const d = KernelSocket.create('ipv4', 'tcp');
  const [conn, acc] = await Promise.all([d.connect(ADDR.host4, 7001), a.accept(2000)]);
  out.connect = conn;
  out.acceptPeer = acc.peer;
  out.infoEstablished = d.tcpInfo().info?.state;
  out.peerName = d.peerAddress();
  out.send = await d.send(Buffer.from('twlab'));
  out.recv = await acc.socket!.recv(100, { timeoutMs: 2000 });
  out.recvText = out.recv && (out.recv as { data: Buffer }).data.toString();
  out.recvTimeout = await acc.socket!.recv(100, { timeoutMs: 50 });
  out.shutdown = d.shutdown('SHUT_WR');
  out.recvEof = await acc.socket!.recv(100, { timeoutMs: 2000 });
  out.acceptTimeout = await a.accept(50).then((r) => r.result);
  await d.close();
  await acc.socket!.close();
  await a.close();
  return out;
};

/**
 * A kernel client connects over the TUN to a peer that completes the handshake by hand and
 * then never acknowledges anything: close() with SO_LINGER {1,N} must wait N seconds for the
 * ACK of its FIN, on a worker, while the event loop keeps ticking.
 */
const lingerClose: Scenario = async (input) => {
  const lingerS = Number(input.linger ?? 3);
  const net = await setupLabNetwork();
  const link = new TunLink(net.tunFd);
  const peerIsn = seq(1_000_000);
  const seen: string[] = [];
  link.onFrame((frame) => {
    const s = parseFrame(frame);
    if (isWireError(s) || s.kind !== 'tcp') return;
    const f = s.tcp.flags;
    seen.push(`${f.syn ? 'S' : ''}${f.fin ? 'F' : ''}${f.rst ? 'R' : ''}${f.ack ? '.' : ''}`);
    if (f.syn && !f.ack) {
      link.send(
        emitTcpFrame(s.ip.dst, s.ip.src, {
          srcPort: s.tcp.dstPort,
          dstPort: s.tcp.srcPort,
          seq: peerIsn,
          ack: seqAdd(s.tcp.seq, 1),
          flags: flags('syn,ack'),
          window: 65535,
          urgent: 0,
          options: [{ kind: 'mss', value: 1460 }],
          payload: new Uint8Array(0),
        }),
      );
    }
  });
  const k = KernelSocket.create('ipv4', 'tcp');
  const connect = await k.connect(ADDR.peer4, 8080);
  const stateAfterConnect = k.tcpInfo().info?.state;
  const setLinger = k.setOption('SO_LINGER', { onoff: true, seconds: lingerS });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 100);
  const close = await k.close();
  clearInterval(timer);
  await sleep(50);
  link.close();
  return { connect, stateAfterConnect, setLinger, close, ticks, seen };
};

/** Frames the kernel writes appear on the TUN fd and in the capture; frames written in reach the kernel. */
const tunCapture: Scenario = async (input) => {
  const net = await setupLabNetwork();
  const pcap = new PcapWriter(String(input.pcap));
  const link = new TunLink(net.tunFd, pcap);
  const fromKernel: Array<{ kind: string; src: string; dst: string; dstPort?: number; payload?: string; checksumOk?: boolean | null }> = [];
  link.onFrame((frame) => {
    const s = parseFrame(frame);
    if (isWireError(s)) fromKernel.push({ kind: `error:${s.reason}`, src: '', dst: '' });
    else if (s.kind === 'udp')
      fromKernel.push({
        kind: 'udp',
        src: s.ip.src,
        dst: s.ip.dst,
        dstPort: s.udp.dstPort,
        payload: Buffer.from(s.udp.payload).toString(),
        checksumOk: s.udp.checksumOk,
      });
    else if (s.kind === 'tcp')
      fromKernel.push({ kind: 'tcp', src: s.ip.src, dst: s.ip.dst, dstPort: s.tcp.dstPort, checksumOk: s.tcp.checksumOk });
    else fromKernel.push({ kind: s.kind, src: s.ip.src, dst: s.ip.dst });
  });
  await sleep(300); // the namespace must stay quiet: nothing may arrive here
  const quietFrames = fromKernel.length;
  const u = KernelSocket.create('ipv4', 'udp');
  u.bind(ADDR.host4, 40001);
  await u.connect(ADDR.peer4, 9);
  const sent = u.sendNow(Buffer.from('from the kernel'));
  // the datagram is queued on the TUN when sendNow returns: poll() hands it over before it returns
  const beforePoll = fromKernel.length;
  link.poll();
  const polled = fromKernel.slice(beforePoll).map((f) => f.payload);
  const u6 = KernelSocket.create('ipv6', 'udp');
  await u6.connect(ADDR.peer6, 9);
  u6.sendNow(Buffer.from('v6 from the kernel'));
  const t = KernelSocket.create('ipv4', 'tcp', { nonBlocking: true });
  const syn = await t.connect(ADDR.peer4, 80);
  // the peer answers the UDP socket: a frame written into the TUN reaches the kernel socket
  link.send(emitUdpFrame(ADDR.peer4, ADDR.host4, { srcPort: 9, dstPort: 40001, payload: Buffer.from('from the peer') }));
  const received = await u.recv(100, { timeoutMs: 2000 });
  await sleep(200);
  t.closeNow();
  u.closeNow();
  u6.closeNow();
  link.close();
  pcap.close();
  return {
    quietFrames,
    sent,
    polled,
    syn,
    fromKernel,
    received: { ret: received.ret, errno: received.errno, text: received.data.toString() },
    captured: pcap.count,
    linkError: link.lastError,
  };
};

export const scenarios: Record<string, Scenario> = {
  'addon-basics': addonBasics,
  'linger-close': lingerClose,
  'tun-capture': tunCapture,
  'packet-capture': packetCapture,
  'socket-diag': socketDiag,
  'kernel-client': kernelClient,
  'stack-client': stackClient,
  'simultaneous-close': simultaneousClose,
  'close-with-queued-data': closeWithQueuedData,
  'half-close': halfClose,
  abort,
  'zero-window': zeroWindow,
  'peer-behaviours': peerBehaviours,
};
