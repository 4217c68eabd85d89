// Kernel-to-kernel connections on loopback in a fresh namespace, captured by `tcpdump -w` (not by
// twlab): the captures `twlab show --summary` must explain as anyone's capture. Started by
// test/show.test.ts as `setpriv --pdeathsig KILL -- unshare --net -- node kernel-captures.js <dir>`;
// prints the capture's path and the ports of each scenario as JSON on the last line.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { KernelSocket } from '../../src/host/ksocket';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const LO = '127.0.0.1';

async function pair(
  port: number,
  clientOpts: (c: KernelSocket) => void = () => undefined,
): Promise<{ l: KernelSocket; c: KernelSocket; s: KernelSocket }> {
  const l = KernelSocket.create('ipv4', 'tcp');
  l.setOption('SO_REUSEADDR', true);
  l.bind(LO, port);
  l.listen(8);
  const c = KernelSocket.create('ipv4', 'tcp');
  clientOpts(c);
  const [conn, acc] = await Promise.all([c.connect(LO, port), l.accept(3000)]);
  if (conn.ret < 0 || !acc.socket) throw new Error(`connect to ${port}: ${conn.errno ?? acc.result.errno}`);
  return { l, c, s: acc.socket };
}

async function main(): Promise<void> {
  const dir = process.argv[2]!;
  const file = path.join(dir, `loopback${process.argv[3] === 'nano' ? '-ns' : ''}.pcap`);
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  const args = [
    '-i',
    'lo',
    '-U',
    '--immediate-mode',
    '-n',
    '-w',
    file,
    ...(process.argv[3] === 'nano' ? ['--time-stamp-precision=nano'] : []),
    'tcp',
  ];
  const dump = spawn('tcpdump', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    dump.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/listening on/.test(err)) resolve();
    });
    dump.on('exit', (code) => reject(new Error(`tcpdump exited (${code}): ${err.trim()}`)));
  });
  // 1. orderly close, the client first: the client holds TIME_WAIT
  {
    const { l, c, s } = await pair(9001);
    await c.send(Buffer.from('hello'));
    await s.recv(100, { timeoutMs: 1000 });
    await c.close();
    await s.recv(100, { timeoutMs: 1000 }); // EOF
    await s.close();
    l.closeNow();
  }
  // 2. abortive close: SO_LINGER {1,0} on an idle connection
  {
    const { l, c, s } = await pair(9002);
    c.setOption('SO_LINGER', { onoff: true, seconds: 0 });
    await c.close();
    await sleep(50);
    s.closeNow();
    l.closeNow();
  }
  // 3. nothing listening: the SYN is answered with RST
  {
    const c = KernelSocket.create('ipv4', 'tcp');
    await c.connect(LO, 9003);
    c.closeNow();
  }
  // 4. the server closes with the client's data unread
  {
    const { l, c, s } = await pair(9004);
    await c.send(Buffer.from('never read'));
    await sleep(50);
    await s.close();
    await sleep(50);
    c.closeNow();
    l.closeNow();
  }
  // 5. the client closes first, then reconnects from the same port over its own TIME_WAIT
  {
    const bindFixed = (c: KernelSocket): void => {
      c.setOption('SO_REUSEADDR', true);
      c.bind(LO, 45005);
    };
    const first = await pair(9005, bindFixed);
    await first.c.close();
    await first.s.recv(100, { timeoutMs: 1000 });
    await first.s.close();
    await sleep(1100); // timestamps must be a second old (tcp_tw_reuse_delay)
    const again = KernelSocket.create('ipv4', 'tcp');
    bindFixed(again);
    const r = await again.connect(LO, 9005);
    const acc = await first.l.accept(1000);
    if (r.ret === 0) {
      again.setOption('SO_LINGER', { onoff: true, seconds: 0 });
      await again.close();
    }
    acc.socket?.closeNow();
    first.l.closeNow();
  }
  await sleep(200);
  dump.kill('SIGINT');
  await new Promise((r) => dump.on('exit', r));
  process.stdout.write(JSON.stringify({ file, ports: { orderly: 9001, abort: 9002, refused: 9003, unread: 9004, reuse: 9005 } }) + '\n');
  process.exit(0);
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
