// A process under another uid (started by uidhelper.ts with setpriv) that opens kernel sockets
// on request: Linux checks SO_REUSEPORT sharing against the socket owner's uid (socket(7)).
// Protocol: one JSON request per stdin line, one JSON reply per stdout line.
import * as readline from 'node:readline';
import { KernelSocket } from './ksocket';
import type { RemoteBind } from './uidhelper';

type BindRequest = RemoteBind & { op: 'bind' };
type Request = BindRequest | { op: 'listen'; id: number } | { op: 'close'; id: number } | { op: 'whoami' };

const sockets = new Map<number, KernelSocket>();

function handle(req: Request): unknown {
  switch (req.op) {
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
rl.on('line', (line) => {
  let reply: unknown;
  try {
    reply = { ok: true, ...(handle(JSON.parse(line) as Request) as object) };
  } catch (e) {
    reply = { ok: false, error: (e as Error).message };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
});
rl.on('close', () => process.exit(0));
process.stdout.write(JSON.stringify({ ok: true, ready: true, uid: process.geteuid?.() }) + '\n');
