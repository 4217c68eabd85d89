// Lab 03 — a server restarts while its old connection is in TIME_WAIT.
//
// Question: the server closed a connection first (so the server side holds TIME_WAIT on its
// port), then the server process restarts and binds the port again. Which flags, on the old
// listener and on the new socket, let the new bind() succeed?
import { defineLab, LabError, type KernelSocket, type LabContext } from '../src/lab';

const CLAIMS = [
  {
    id: 'C4',
    text: 'A socket in TIME_WAIT blocks bind() unless the new socket sets SO_REUSEADDR; the flag of the old socket is not looked at.',
    source: 'seed §SO_REUSEADDR (BSD)',
  },
  {
    id: 'C5',
    text: 'To bind the address and port of a socket in TIME_WAIT without SO_REUSEADDR, SO_REUSEPORT must have been set on both sockets.',
    source: 'seed §SO_REUSEPORT (BSD); seed §Linux >= 3.9',
  },
] as const;

type Flags = 'none' | 'reuseaddr' | 'reuseport' | 'both';
const FLAGS: readonly Flags[] = ['none', 'reuseaddr', 'reuseport', 'both'];

function setFlags(s: KernelSocket, f: Flags): void {
  if (f === 'reuseaddr' || f === 'both') s.setOption('SO_REUSEADDR', true);
  if (f === 'reuseport' || f === 'both') s.setOption('SO_REUSEPORT', true);
}

export interface RebindCell {
  address: 'specific' | 'wildcard';
  oldListener: Flags;
  newSocket: Flags;
  port: number;
  /** the kernel's socket table showed the old connection in TIME_WAIT when the new bind ran */
  timeWait: boolean;
  bind: string;
  listen: string | null;
}

/** One restart: listener (old flags) → connection → the server closes first → listener closed → new socket binds. */
async function restart(ctx: LabContext, address: 'specific' | 'wildcard', oldFlags: Flags, newFlags: Flags, port: number, serverClosesFirst = true): Promise<RebindCell> {
  const addr = address === 'specific' ? ctx.addr.host4 : '0.0.0.0';
  const listener = ctx.socket('ipv4', 'tcp');
  setFlags(listener, oldFlags);
  const b = listener.bind(addr, port);
  if (b.ret < 0) throw new LabError(`the old listener could not bind ${addr}:${port}: ${b.errno}`);
  listener.listen(4);
  const conn = ctx.peer().connect({ local: { address: ctx.addr.peer4 }, remote: { address: ctx.addr.host4, port } });
  const acc = await listener.accept(5000);
  if (!acc.socket) throw new LabError(`the old listener accepted nothing (${acc.result.errno})`);
  if (serverClosesFirst) {
    conn.onEnd(() => conn.end());
    await acc.socket.close(); // the server closes first: its side will hold TIME_WAIT
  } else {
    conn.end(); // control: the client closes first, the server only answers
    await acc.socket.recv(10, { timeoutMs: 2000 });
    await acc.socket.close();
  }
  await Promise.race([conn.waitFor(serverClosesFirst ? 'CLOSED' : 'TIME-WAIT'), ctx.sleep(3000)]);
  listener.closeNow(); // the server process "exits"
  const timeWait = !!(await ctx.waitUntil(() => ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === port).length > 0, { timeoutMs: serverClosesFirst ? 2000 : 200 }));
  const fresh = ctx.socket('ipv4', 'tcp');
  setFlags(fresh, newFlags);
  const bind = fresh.bind(addr, port);
  const listen = bind.ret === 0 ? fresh.listen(4) : null;
  fresh.closeNow();
  return { address, oldListener: oldFlags, newSocket: newFlags, port, timeWait, bind: bind.errno ?? 'OK', listen: listen ? (listen.errno ?? 'OK') : null };
}

const has = (f: Flags, x: 'reuseaddr' | 'reuseport'): boolean => f === x || f === 'both';

export default defineLab({
  id: '03',
  slug: 'rebind-listener',
  title: 'Restarting a server while its old connection is in TIME_WAIT',
  shows: 'which SO_REUSEADDR / SO_REUSEPORT settings, old listener × new socket, let bind() take a port held by TIME_WAIT',
  question: "A server closed a connection first and restarts: which flags let the new socket bind the port its old connection holds in TIME_WAIT?",
  params: [
    { name: 'addresses', kind: 'list', default: ['specific', 'wildcard'], choices: ['specific', 'wildcard'], help: 'bind to 192.0.2.1 (specific) and/or 0.0.0.0 (wildcard), old listener and new socket alike' },
    { name: 'base_port', kind: 'int', default: 8000, min: 1024, max: 60000, help: 'first port; each cell uses a fresh one' },
  ],
  claims: CLAIMS,
  recordSysctls: ['net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_max_tw_buckets'],
  async run(ctx) {
    let port = ctx.int('base_port');
    const cells: RebindCell[] = [];
    for (const address of ctx.list('addresses') as Array<'specific' | 'wildcard'>) {
      const obs = await ctx.variant(`${address}-address`, { address }, async () => {
        const here: RebindCell[] = [];
        for (const oldFlags of FLAGS) {
          for (const newFlags of FLAGS) {
            here.push(await restart(ctx, address, oldFlags, newFlags, port++));
            ctx.progress(`${address}: ${here.length}/16 restarts`);
          }
        }
        return { cells: here };
      });
      cells.push(...(obs.cells as RebindCell[]));
    }
    const control = await ctx.variant('control-no-time-wait', {}, async () => ({ cell: await restart(ctx, 'specific', 'none', 'none', port++, false) }));
    const controlCell = control.cell as RebindCell;

    const withTw = cells.filter((c) => c.timeWait);
    const missingTw = cells.length - withTw.length;
    // C4: no SO_REUSEPORT anywhere; the seed predicts OK exactly when the new socket sets SO_REUSEADDR
    const c4 = withTw.filter((c) => !has(c.oldListener, 'reuseport') && !has(c.newSocket, 'reuseport'));
    const c4bad = c4.filter((c) => (c.bind === 'OK') !== has(c.newSocket, 'reuseaddr'));
    const byOld = (old: 'none' | 'reuseaddr'): string => c4.filter((c) => c.oldListener === old && c.newSocket === 'reuseaddr').map((c) => c.bind).join('/');
    ctx.claim(
      'C4',
      c4.length === 0 ? 'not tested' : c4bad.length ? 'differs by OS' : 'holds',
      c4.length === 0
        ? 'no cell without SO_REUSEPORT had its TIME_WAIT in place'
        : `new socket with SO_REUSEADDR: bind → ${byOld('none')} when the old listener had no flag, ${byOld('reuseaddr')} when it had SO_REUSEADDR (${c4bad.length}/${c4.length} cells differ from the seed)`,
    );
    // C5: no SO_REUSEADDR anywhere; OK exactly when both set SO_REUSEPORT
    const c5 = withTw.filter((c) => !has(c.oldListener, 'reuseaddr') && !has(c.newSocket, 'reuseaddr'));
    const c5bad = c5.filter((c) => (c.bind === 'OK') !== (has(c.oldListener, 'reuseport') && has(c.newSocket, 'reuseport')));
    ctx.claim(
      'C5',
      c5.length === 0 ? 'not tested' : c5bad.length ? 'does not hold' : 'holds',
      c5.length === 0
        ? 'no cell without SO_REUSEADDR had its TIME_WAIT in place'
        : c5bad.length
          ? `${c5bad.length}/${c5.length} cells differ, e.g. old ${c5bad[0]!.oldListener}, new ${c5bad[0]!.newSocket} → ${c5bad[0]!.bind}`
          : `${c5.length} cells: bind succeeded exactly when both set SO_REUSEPORT (old ${c5.filter((c) => c.bind === 'OK').map((c) => c.oldListener).join(',')})`,
    );

    ctx.print(`Lab 03 — ${this.title}`);
    ctx.print('The server closed first (its side holds TIME_WAIT), closed its listener, and a new socket binds the same port.');
    ctx.print("Rows: the old listener's flags (inherited by the TIME_WAIT socket); columns: the new socket's; cell: bind() result (+ listen()).");
    for (const address of ctx.list('addresses')) {
      ctx.print();
      ctx.print(`${address === 'specific' ? ctx.addr.host4 : '0.0.0.0'} (${address})`);
      ctx.print(`${'old \\ new'.padEnd(11)}${FLAGS.map((f) => f.padEnd(18)).join('')}`);
      for (const old of FLAGS) {
        const row = FLAGS.map((nf) => {
          const c = cells.find((x) => x.address === address && x.oldListener === old && x.newSocket === nf)!;
          const txt = c.bind === 'OK' ? `OK${c.listen && c.listen !== 'OK' ? ` (listen ${c.listen})` : ''}` : c.bind === 'EADDRINUSE' ? 'EADDRINUSE' : c.bind;
          return (txt + (c.timeWait ? '' : ' (no TW!)')).padEnd(18);
        });
        ctx.print(`${old.padEnd(11)}${row.join('')}`);
      }
    }
    ctx.print();
    ctx.print(`Control (the client closed first, no TIME_WAIT on the server): a new socket without flags → bind ${controlCell.bind}`);
    if (missingTw) ctx.print(`(${missingTw} cells had no TIME_WAIT entry when the new bind ran; they are left out of the verdicts)`);
    ctx.print();
    ctx.concludeClaims();
  },
});
