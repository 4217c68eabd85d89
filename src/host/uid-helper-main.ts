// A process under another uid (started by uidhelper.ts with setpriv) that opens kernel sockets
// on request: Linux checks SO_REUSEPORT sharing against the socket owner's uid (socket(7)).
// Protocol: one JSON request per stdin line, one JSON reply per stdout line.
import * as readline from 'node:readline';
import { KernelSocket } from './ksocket';
import type { RemoteBind } from './uidhelper';

type BindRequest = RemoteBind & { op: 'bind' };
type Request =
  | BindRequest
  | { op: 'listen'; id: number }
  | { op: 'close'; id: number }
  | { op: 'whoami' }
  | { op: 'socket'; family: RemoteBind['family']; proto: RemoteBind['proto'] }
  | { op: 'linger'; id: number; onoff: boolean; seconds: number }
  | { op: 'getlinger'; id: number }
  | { op: 'connect'; id: number; address: string; port: number }
  | { op: 'send'; id: number; bytes: number }
  | { op: 'local'; id: number };

const sockets = new Map<number, KernelSocket>();

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'socket': {
      const s = KernelSocket.create(req.family, req.proto);
      sockets.set(s.fd, s);
      return { id: s.fd };
    }
    case 'linger':
      return {
        result: sockets.get(req.id)?.setOption('SO_LINGER', { onoff: req.onoff, seconds: req.seconds }) ?? { ret: -1, errno: 'EBADF' },
      };
    case 'getlinger': {
      const g = sockets.get(req.id)?.getOption('SO_LINGER');
      return { result: g ? { ret: g.ret, errno: g.errno } : { ret: -1, errno: 'EBADF' }, value: g?.value ?? null };
    }
    case 'connect':
      return { result: (await sockets.get(req.id)?.connect(req.address, req.port)) ?? { ret: -1, errno: 'EBADF' } };
    case 'send':
      return { result: sockets.get(req.id)?.sendNow(new Uint8Array(req.bytes)) ?? { ret: -1, errno: 'EBADF' } };
    case 'local':
      return { address: sockets.get(req.id)?.localAddress() ?? null };
    case 'whoami':
      return { uid: process.getuid?.(), euid: process.geteuid?.() };
    case 'bind': {
      const s = KernelSocket.create(req.family, req.proto);
      sockets.set(s.fd, s);
      if (req.reuseaddr) s.setOption('SO_REUSEADDR', true);
      if (req.reuseport) s.setOption('SO_REUSEPORT', true);
      if (req.v6only !== null) s.setOption('IPV6_V6ONLY', req.v6only);
      return { id: s.fd, bind: s.bind(req.address, req.port) };
    }
    case 'listen':
      return { listen: sockets.get(req.id)?.listen() ?? { ret: -1, errno: 'EBADF' } };
    case 'close': {
      const s = sockets.get(req.id);
      sockets.delete(req.id);
      return { close: s ? s.closeNow() : { ret: -1, errno: 'EBADF' } };
    }
  }
}

const rl = readline.createInterface({ input: process.stdin });
// requests are answered in order, one at a time
let queue = Promise.resolve();
rl.on('line', (line) => {
  queue = queue.then(async () => {
    let reply: unknown;
    try {
      reply = { ok: true, ...((await handle(JSON.parse(line) as Request)) as object) };
    } catch (e) {
      reply = { ok: false, error: (e as Error).message };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  });
});
rl.on('close', () => process.exit(0));
process.stdout.write(JSON.stringify({ ok: true, ready: true, uid: process.geteuid?.() }) + '\n');
