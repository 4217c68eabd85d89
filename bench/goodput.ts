// Bulk goodput of the userspace stack over the TUN device, beside baselines measured in the same
// run: kernel↔kernel TCP over loopback, and the TUN's raw frame rate (kernel UDP into the TUN,
// read by TunLink with no TCP at all). Runs inside a fresh namespace (bench/run.ts starts it).
import { setupLabNetwork, ADDR } from '../src/host/netns';
import { KernelSocket } from '../src/host/ksocket';
import { TunLink } from '../src/host/tunlink';
import { TcpStack, type Connection } from '../src/stack/stack';

const MB = 1 << 20;
const BYTES = Number(process.env.TWLAB_BENCH_MB ?? 20) * MB;

interface Figure {
  name: string;
  mbps: number;
  pps: number;
}

async function kernelLoopback(): Promise<Figure> {
  const l = KernelSocket.create('ipv4', 'tcp');
  l.bind(ADDR.host4, 9000);
  l.listen();
  const c = KernelSocket.create('ipv4', 'tcp');
  const [, acc] = await Promise.all([c.connect(ADDR.host4, 9000), l.accept(5000)]);
  const s = acc.socket!;
  const t0 = performance.now();
  const data = Buffer.alloc(BYTES, 7);
  const sending = c.send(data);
  let got = 0;
  while (got < BYTES) got += Math.max(0, (await s.recv(4 * MB)).ret);
  await sending;
  const secs = (performance.now() - t0) / 1000;
  c.closeNow();
  s.closeNow();
  l.closeNow();
  return { name: 'baseline: kernel → kernel TCP over lo', mbps: BYTES / MB / secs, pps: NaN };
}

async function tunRaw(link: TunLink): Promise<Figure> {
  const u = KernelSocket.create('ipv4', 'udp');
  await u.connect(ADDR.peer4, 9);
  const payload = Buffer.alloc(1448, 1);
  const n = Math.floor(BYTES / payload.length);
  let frames = 0;
  const off = link.onFrame(() => frames++);
  const t0 = performance.now();
  // in batches the TUN queue (500 frames) can hold, each read before the next: UDP into a full
  // queue is dropped silently, which would measure nothing
  for (let sent = 0; sent < n; ) {
    const batch = Math.min(256, n - sent);
    for (let i = 0; i < batch; i++) u.sendNow(payload);
    sent += batch;
    while (frames < sent - 8 && performance.now() - t0 < 30000) await new Promise((r) => setImmediate(r));
  }
  const secs = (performance.now() - t0) / 1000;
  off();
  u.closeNow();
  return { name: 'baseline: kernel UDP → TUN → TunLink (no TCP)', mbps: (frames * payload.length) / MB / secs, pps: frames / secs };
}

async function stackTransfer(stack: TcpStack, link: TunLink, direction: 'kernel→stack' | 'stack→kernel'): Promise<Figure> {
  const port = direction === 'kernel→stack' ? 80 : 81;
  const listener = stack.listen(port);
  const accepted = new Promise<Connection>((r) => listener.onConnection(r));
  const k = KernelSocket.create('ipv4', 'tcp');
  await k.connect(ADDR.peer4, port);
  const conn = await accepted;
  let packets = 0;
  const off = link.tap(() => packets++);
  const t0 = performance.now();
  if (direction === 'kernel→stack') {
    let got = 0;
    const done = new Promise<void>((r) => conn.onData((d) => ((got += d.length) >= BYTES ? r() : undefined)));
    await k.send(Buffer.alloc(BYTES, 3));
    await done;
  } else {
    conn.write(new Uint8Array(BYTES));
    let got = 0;
    while (got < BYTES) got += Math.max(0, (await k.recv(4 * MB)).ret);
  }
  const secs = (performance.now() - t0) / 1000;
  off();
  conn.abort();
  k.closeNow();
  stack.unlisten(listener);
  return { name: `stack: ${direction}`, mbps: BYTES / MB / secs, pps: packets / secs };
}

async function main(): Promise<void> {
  const net = await setupLabNetwork();
  const link = new TunLink(net.tunFd);
  const stack = new TcpStack(link, { addresses: [ADDR.peer4] });
  const figures: Figure[] = [];
  figures.push(await kernelLoopback());
  figures.push(await tunRaw(link));
  figures.push(await stackTransfer(stack, link, 'kernel→stack'));
  figures.push(await stackTransfer(stack, link, 'stack→kernel'));
  stack.detach();
  link.close();
  const raw = figures[1]!.mbps;
  console.log(`\nBulk goodput over the TUN device, ${BYTES / MB} MB per transfer (in a fresh namespace)`);
  for (const f of figures) {
    const pps = Number.isNaN(f.pps) ? '' : `${f.pps.toFixed(0).padStart(9)} packets/s`;
    const ratio = f.name.startsWith('stack') ? `  (${((100 * f.mbps) / raw).toFixed(0)} % of the raw TUN rate)` : '';
    console.log(`${f.name.padEnd(48)} ${f.mbps.toFixed(1).padStart(8)} MB/s ${pps}${ratio}`);
  }
  process.exit(0);
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
