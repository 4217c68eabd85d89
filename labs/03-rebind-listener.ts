// Lab 03 — a server restarts while its old connection is in TIME_WAIT.
//
// Question: the server closed a connection first (so the server side holds TIME_WAIT on its
// port), then the server process restarts and binds the port again. Which flags, on the old
// listener and on the new socket, let the new bind() succeed?
import { defineLab, LabError, requires, type Judgement, type KernelSocket, type LabContext, type Trial, kOfN, distinct } from '../src/lab';

export default defineLab({
  id: '03',
  slug: 'rebind-listener',
  title: 'Restarting a server while its old connection is in TIME_WAIT',
  shows: 'which SO_REUSEADDR / SO_REUSEPORT settings, old listener × new socket, let bind() take a port held by TIME_WAIT',
  showsInDetail:
    'a server restarts over its own TIME_WAIT: old listener flags × new socket flags, specific and wildcard address, each pass over the ' +
    'matrix a trial',
  question:
    'A server closed a connection first and restarts: which flags let the new socket bind the port its old connection holds in TIME_WAIT?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'addresses',
      kind: 'list',
      default: ['specific', 'wildcard'],
      choices: ['specific', 'wildcard'],
      help: 'bind to 192.0.2.1 (specific) and/or 0.0.0.0 (wildcard), old listener and new socket alike',
    },
    { name: 'base_port', kind: 'int', default: 8000, min: 1024, max: 60000, help: 'first port; each cell uses a fresh one' },
    {
      name: 'closer',
      kind: 'enum',
      default: 'server',
      choices: ['server', 'client'],
      help: 'who closes the old connection first: the server (its side holds TIME_WAIT) or the client (none on the server)',
    },
    { name: 'trials', kind: 'int', default: 3, min: 1, max: 20, help: 'passes over the 4 × 4 matrix per address' },
  ],
  claims: [
    'C4', // A socket in TIME_WAIT blocks bind() unless the new socket sets SO_REUSEADDR; the flag of the old
    //   socket is not looked at.
    'C17', // Without SO_REUSEADDR, a socket may bind the address and port of a socket in TIME_WAIT only if
    //   both set SO_REUSEPORT before binding.
  ],
  questions: [
    {
      id: 'q1',
      text:
        'A server closed its connection first, so that connection is in TIME_WAIT. Its listener had no SO_REUSEADDR; the ' +
        "restarted server's new socket sets SO_REUSEADDR and binds the same address and port. What does bind() return?",
      choices: ['OK', 'EADDRINUSE'],
    },
  ],
  recordSysctls: ['net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_max_tw_buckets'],
  course: {
    order: 80,
    teaches: 'Which socket flags let a restarted server bind the port its old connection holds in TIME_WAIT.',
    look: 'the matrix in the output: old listener flags × new socket flags.',
  },
  async run(ctx) {
    let port = ctx.int('base_port');
    const serverFirst = ctx.str('closer') === 'server';
    const n = ctx.int('trials');
    const cells: RebindCell[] = [];
    for (const address of ctx.list('addresses') as Array<'specific' | 'wildcard'>) {
      const obs = await ctx.variant(`${address}-address`, { address, closer: ctx.str('closer'), trials: n }, async () => {
        const here: RebindCell[] = [];
        for (let trial = 1; trial <= n; trial++) {
          for (const oldFlags of FLAGS) {
            for (const newFlags of FLAGS) {
              here.push(await restart(ctx, address, oldFlags, newFlags, port++, serverFirst, trial));
              ctx.progress(`${address}: ${here.length}/${16 * n} restarts`);
            }
          }
        }
        return { cells: here };
      });
      cells.push(...obs.cells);
    }
    const control = await ctx.variant('control-no-time-wait', {}, async () => ({
      cell: await restart(ctx, 'specific', 'none', 'none', port++, false, 1),
    }));
    const controlCell = control.cell;

    const j = rebindJudgements(cells, controlCell, n, ctx.str('closer'));
    ctx.judge('C4', j.C4);
    ctx.judge('C17', j.C17);

    const q1 = cells.filter((c) => c.address === 'specific' && c.oldListener === 'none' && c.newSocket === 'reuseaddr');
    const q1results = [...new Set(q1.map((c) => c.bind))];
    const q1both = results(cells.filter((c) => c.address === 'specific' && c.oldListener === 'reuseaddr' && c.newSocket === 'reuseaddr'));
    const oldFlagCounts =
      q1results[0] === 'EADDRINUSE' && q1both === 'OK' ? " (so the old socket's flag counts too, not only the new one's)" : '';
    ctx.answer('q1', {
      answer: q1results[0] ?? '',
      why:
        `measured in ${q1.length} restarts: bind() → ${q1results.join('/')}; when the old listener had SO_REUSEADDR too ` +
        `→ ${q1both}${oldFlagCounts}`,
      requires: [
        requires(
          'the old connection was in TIME_WAIT at each restart',
          q1.length > 0 && q1.every((c) => c.timeWait),
          `${kOfN(q1, (c) => c.timeWait)} with TIME_WAIT (closer=${ctx.str('closer')}, addresses=${ctx.list('addresses').join(',')})`,
        ),
        requires('every restart gave the same answer', q1results.length === 1, q1results.join(' / ')),
      ],
    });

    ctx.print(`Lab 03 — ${this.title}`);
    const closer = serverFirst ? 'server closed first (its side holds TIME_WAIT)' : 'client closed first (no TIME_WAIT on the server)';
    ctx.print(`The ${closer}, the server closed its listener, and a new socket binds the same port.`);
    ctx.print(
      "Rows: the old listener's flags (inherited by the TIME_WAIT socket); columns: the new socket's; cell: bind() result (+ listen()), " +
        'over every pass.',
    );
    for (const address of ctx.list('addresses')) {
      ctx.print();
      ctx.print(`${address === 'specific' ? ctx.addr.host : ctx.addr.any} (${address})`);
      ctx.print(`${'old \\ new'.padEnd(11)}${FLAGS.map((f) => f.padEnd(18)).join('')}`);
      for (const old of FLAGS) {
        const row = FLAGS.map((nf) => {
          const cs = cells.filter((x) => x.address === address && x.oldListener === old && x.newSocket === nf);
          const listen = [...new Set(cs.map((c) => c.listen).filter((l) => l && l !== 'OK'))];
          const txt = results(cs) + (listen.length ? ` (listen ${listen.join('/')})` : '');
          const missing = cs.filter((c) => !c.timeWait).length;
          return (txt + (missing ? ` (no TW ${missing}×)` : '')).padEnd(18);
        });
        ctx.print(`${old.padEnd(11)}${row.join('')}`);
      }
    }
    ctx.print();
    ctx.print(`Control (the client closed first, no TIME_WAIT on the server): a new socket without flags → bind ${controlCell.bind}`);
    ctx.print();
    ctx.concludeClaims();
  },
});

type Flags = 'none' | 'reuseaddr' | 'reuseport' | 'both';
const FLAGS: readonly Flags[] = ['none', 'reuseaddr', 'reuseport', 'both'];

function setFlags(s: KernelSocket, f: Flags): void {
  if (f === 'reuseaddr' || f === 'both') s.setOption('SO_REUSEADDR', true);
  if (f === 'reuseport' || f === 'both') s.setOption('SO_REUSEPORT', true);
}

export interface RebindCell {
  address: 'specific' | 'wildcard';
  /** which pass over the matrix (each pass is one trial) */
  trial: number;
  oldListener: Flags;
  newSocket: Flags;
  port: number;
  /** the kernel's socket table showed the old connection in TIME_WAIT when the new bind ran */
  timeWait: boolean;
  bind: string;
  listen: string | null;
}

/** One restart: listener (old flags) → connection → the server closes first → listener closed → new socket binds. */
async function restart(
  ctx: LabContext,
  address: 'specific' | 'wildcard',
  oldFlags: Flags,
  newFlags: Flags,
  port: number,
  serverClosesFirst: boolean,
  trial: number,
): Promise<RebindCell> {
  const addr = address === 'specific' ? ctx.addr.host : ctx.addr.any;
  const listener = ctx.socket(ctx.family, 'tcp');
  setFlags(listener, oldFlags);
  const b = listener.bind(addr, port);
  if (b.ret < 0) throw new LabError(`the old listener could not bind ${addr}:${port}: ${b.errno}`);
  listener.listen(4);
  const conn = ctx.peer().connect({ local: { address: ctx.addr.peer }, remote: { address: ctx.addr.host, port } });
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
  const timeWait = !!(await ctx.waitUntil(() => ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === port).length > 0, {
    timeoutMs: serverClosesFirst ? 2000 : 200,
  }));
  const fresh = ctx.socket(ctx.family, 'tcp');
  setFlags(fresh, newFlags);
  const bind = fresh.bind(addr, port);
  const listen = bind.ret === 0 ? fresh.listen(4) : null;
  fresh.closeNow();
  return {
    address,
    trial,
    oldListener: oldFlags,
    newSocket: newFlags,
    port,
    timeWait,
    bind: bind.errno ?? 'OK',
    listen: listen ? (listen.errno ?? 'OK') : null,
  };
}

const has = (f: Flags, x: 'reuseaddr' | 'reuseport'): boolean => f === x || f === 'both';
const results = (cs: readonly RebindCell[]): string => distinct(cs.map((c) => c.bind));

/**
 * C4 and C17 from the restarts. One trial per pass over the matrix: the cells a claim speaks of must
 * each have had the old connection in TIME_WAIT when the new bind() ran; the pass agrees when no
 * cell contradicts the claim. Both claims need the control: with no TIME_WAIT on the server (the
 * client closed first), a new socket without flags binds the port — else a refusal in the matrix
 * could be something other than the TIME_WAIT (the old listener still bound, say).
 */
export function rebindJudgements(
  cells: readonly RebindCell[],
  control: RebindCell,
  n: number,
  closer: string,
): { C4: Judgement; C17: Judgement } {
  const controlOk = requires(
    'the control: with no TIME_WAIT on the server (the client closed first), a new socket without flags binds the port',
    !control.timeWait && control.bind === 'OK',
    `${control.timeWait ? 'a TIME_WAIT entry was there' : 'no TIME_WAIT entry'}, bind → ${control.bind}`,
  );
  const passes = (select: (c: RebindCell) => boolean, predict: (c: RebindCell) => boolean): Trial[] =>
    Array.from({ length: n }, (_, i) => {
      const cs = cells.filter((c) => c.trial === i + 1 && select(c));
      const noTw = cs.filter((c) => !c.timeWait);
      return {
        requires: [
          requires(
            'the old connection was in TIME_WAIT when the new bind() ran',
            cs.length > 0 && noTw.length === 0,
            noTw.length ? `no TIME_WAIT entry in ${noTw.length}/${cs.length} cells (closer=${closer})` : `${cs.length} cells`,
          ),
        ],
        agrees: cs.every((c) => (c.bind === 'OK') === predict(c)),
      };
    });
  // C4: no SO_REUSEPORT anywhere; the seed predicts OK exactly when the new socket sets SO_REUSEADDR
  const c4 = (c: RebindCell): boolean => !has(c.oldListener, 'reuseport') && !has(c.newSocket, 'reuseport');
  const byOld = (old: 'none' | 'reuseaddr'): string =>
    results(cells.filter((c) => c4(c) && c.oldListener === old && c.newSocket === 'reuseaddr'));
  // C17: no SO_REUSEADDR anywhere; OK exactly when both set SO_REUSEPORT
  const c17 = (c: RebindCell): boolean => !has(c.oldListener, 'reuseaddr') && !has(c.newSocket, 'reuseaddr');
  const both = cells.filter((c) => c17(c) && c.oldListener === 'reuseport' && c.newSocket === 'reuseport');
  const one = cells.filter((c) => c17(c) && (c.oldListener === 'reuseport') !== (c.newSocket === 'reuseport'));
  const withoutTimeWait = `without a TIME_WAIT (control) → ${control.bind}`;
  return {
    C4: {
      requires: [controlOk],
      trials: passes(c4, (c) => has(c.newSocket, 'reuseaddr')),
      evidence:
        `new socket with SO_REUSEADDR: bind → ${byOld('none')} when the old listener had no ` +
        `flag, ${byOld('reuseaddr')} when it had SO_REUSEADDR; ${withoutTimeWait}`,
    },
    C17: {
      requires: [controlOk],
      trials: passes(c17, (c) => has(c.oldListener, 'reuseport') && has(c.newSocket, 'reuseport')),
      evidence: `SO_REUSEPORT on both → ${results(both)}; on one of them → ${results(one)}; ${withoutTimeWait}`,
    },
  };
}
