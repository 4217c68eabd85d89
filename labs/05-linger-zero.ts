// Lab 05 — SO_LINGER {1,0}: the abortive close.
//
// Question: with SO_LINGER on and a linger time of zero, what does close() put on the wire, what
// happens to data not yet sent, is there a TIME_WAIT — and what if the process dies holding the
// socket instead of closing it? Each case is repeated on `trials` connections.
import {
  defineLab,
  kernelConnects,
  requires,
  type Connection,
  type KernelSocket,
  type LabContext,
  type Precondition,
  type SyscallResult,
  type Trial,
  kOfN,
  distinct,
  sum,
} from '../src/lab';

export default defineLab({
  id: '05',
  slug: 'linger-zero',
  title: 'SO_LINGER {1,0}: the abortive close',
  shows: 'close() with a zero linger time sends RST, drops unsent data and skips TIME_WAIT; also when the process is killed',
  showsInDetail: '`SO_LINGER {1,0}` (read back with `getsockopt`): idle, with data still in the send queue, and when the process is killed',
  question:
    'What does close() with SO_LINGER {1,0} put on the wire, what becomes of unsent data, and what if the process dies instead of closing?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'unsent',
      kind: 'int',
      default: 65536,
      min: 1,
      max: 4 << 20,
      unit: 'bytes',
      help: 'data the kernel is asked to send to a peer that has stopped reading',
    },
    {
      name: 'peer_window',
      kind: 'int',
      default: 4096,
      min: 0,
      max: 16 << 20,
      unit: 'bytes',
      help: "the peer's receive buffer in the unsent-data variant",
    },
    {
      name: 'trials',
      kind: 'int',
      default: 5,
      min: 1,
      max: 50,
      help: 'connections per variant (the killed-process variant: one process each)',
    },
    {
      name: 'linger_s',
      kind: 'int',
      default: 0,
      min: 0,
      max: 60,
      unit: 'seconds',
      help: 'the linger time set with SO_LINGER {1,N}: the claims are about N = 0 (another N leaves them not tested)',
    },
  ],
  claims: [
    'C11', // close() with SO_LINGER {1,0} sends RST instead of FIN, discards unsent data, and leaves no
    //   TIME_WAIT.
    'C16', // If the process dies without closing the socket, the system lingers nonetheless, ignoring
    //   SO_LINGER.
  ],
  questions: [
    {
      id: 'q1',
      text:
        'An idle, established connection; the application sets SO_LINGER {1,0} and calls close(). What does the kernel put on the ' +
        'wire?',
      choices: ['FIN', 'RST', 'nothing'],
    },
    { id: 'q2', text: 'Is the four-tuple in TIME_WAIT afterwards?', choices: ['yes', 'no'] },
  ],
  recordSysctls: ['net.ipv4.tcp_wmem'],
  course: {
    order: 40,
    teaches: 'What close() with SO_LINGER {1,0} puts on the wire, what becomes of unsent data, and whether anything waits afterwards.',
    look: 'established-idle.pcap: what goes where a FIN would be (the .pcapng says why in a packet comment).',
  },
  async run(ctx) {
    const n = ctx.int('trials');
    const idle = (
      await ctx.variant('established-idle', { linger: '1,0', trials: n }, async () => {
        const out: Outcome[] = [];
        for (let i = 0; i < n; i++) {
          const { k, conn, local } = await kernelConnects(ctx, PORT);
          const linger = setLinger(ctx, k);
          const stateBefore = stateOf(ctx, local.port);
          await k.close();
          out.push({ local: local.port, linger, stateBefore, ...(await outcome(ctx, conn, local.port)) });
        }
        return { trials: out };
      })
    ).trials;

    const unsent = (
      await ctx.variant('unsent-data', { linger: '1,0', unsent: ctx.int('unsent'), trials: n }, async () => {
        const out: Unsent[] = [];
        for (let i = 0; i < n; i++) {
          const { k, conn, local } = await kernelConnects(ctx, PORT, {
            tcb: { rcvBuf: ctx.int('peer_window') },
            onAccept: (c) => c.pauseReading(),
          });
          const linger = setLinger(ctx, k);
          // queue `unsent` bytes: the peer takes only its window, the rest waits in the kernel
          let queued = 0;
          const want = ctx.int('unsent');
          while (queued < want) {
            const r = k.sendNow(new Uint8Array(Math.min(65536, want - queued)));
            if (r.ret <= 0) break;
            queued += r.ret;
          }
          await ctx.sleep(300);
          const entry = ctx.table((e) => e.local.port === local.port && e.remote.port === PORT)[0];
          await k.close();
          const o = await outcome(ctx, conn, local.port);
          const peerGot = conn.received + conn.tcb.recvQ.length;
          out.push({
            local: local.port,
            linger,
            stateBefore: entry?.state ?? null,
            queued,
            sendQueueAtClose: entry?.txQueue ?? 0,
            peerGot,
            discarded: queued - peerGot,
            ...o,
          });
        }
        return { trials: out };
      })
    ).trials;

    const died = (
      await ctx.variant('process-killed', { linger: '1,0', trials: n }, async () => {
        const stack = ctx.peer();
        const listener = stack.listen(PORT);
        const out: Array<Outcome & { signal: string | null; connect: string }> = [];
        for (let i = 0; i < n; i++) {
          const accepted = new Promise<Connection>((r) => listener.onConnection(r));
          const helper = await ctx.helper();
          const id = await helper.socket(ctx.family, 'tcp');
          // set, then read back in the process that will die: what its socket really has
          const set = syscall(await helper.setLinger(id, true, ctx.int('linger_s')));
          const got = await helper.getLinger(id);
          const linger =
            set !== 'OK'
              ? `setsockopt ${set}`
              : got.value
                ? `{${got.value.onoff ? 1 : 0},${got.value.seconds}}`
                : `getsockopt ${got.errno ?? 'error'}`;
          const connect = syscall(await helper.connect(id, ctx.addr.peer, PORT));
          const local = (await helper.localAddress(id))?.port ?? 0;
          const conn = await Promise.race([accepted, ctx.sleep(3000).then(() => null)]);
          const stateBefore = stateOf(ctx, local);
          const signal = await helper.kill(); // SIGKILL: the process never calls close()
          if (!conn) {
            out.push({ local, linger, connect, signal, stateBefore, peerReset: null, peerStates: [], timeWait: false });
            continue;
          }
          out.push({ local, linger, connect, signal, stateBefore, ...(await outcome(ctx, conn, local)) });
        }
        stack.unlisten(listener);
        return { trials: out };
      })
    ).trials;

    const sent = (variant: string, o: Outcome): { rst: number; fin: number } => ctx.sentBy(variant, ctx.addr.host, o.local);
    const abortive = (s: { rst: number; fin: number }): boolean => s.rst >= 1 && s.fin === 0;
    const lingerSet = (o: Outcome): Precondition => requires('the socket had SO_LINGER {1,0}', o.linger === '{1,0}', o.linger);
    const established = (o: Outcome): Precondition =>
      requires('the connection was ESTABLISHED when it was let go', o.stateBefore === 'ESTABLISHED', o.stateBefore ?? 'no socket');
    const total = (variant: string, os: Outcome[]): string => {
      const s = os.map((o) => sent(variant, o));
      return `${sum(s, (x) => x.rst)} RST, ${sum(s, (x) => x.fin)} FIN, TIME_WAIT in ${kOfN(os, (o) => o.timeWait)}`;
    };
    ctx.judge('C11', {
      trials: [
        ...idle.map(
          (o): Trial => ({ requires: [lingerSet(o), established(o)], agrees: abortive(sent('established-idle', o)) && !o.timeWait }),
        ),
        ...unsent.map(
          (o): Trial => ({
            requires: [
              lingerSet(o),
              established(o),
              requires(
                'data was still in the send queue at close()',
                o.sendQueueAtClose > 0,
                `${o.sendQueueAtClose} bytes queued in the kernel (${o.queued} accepted by send(), peer window ${ctx.int('peer_window')})`,
              ),
            ],
            agrees: abortive(sent('unsent-data', o)) && !o.timeWait && o.discarded > 0,
          }),
        ),
      ],
      evidence:
        `idle: ${total('established-idle', idle)}; with data queued: ${total('unsent-data', unsent)}, ` +
        `${sum(unsent, (o) => o.queued)} bytes accepted by send(), ${sum(unsent, (o) => o.peerGot)} reached the peer`,
    });
    ctx.judge('C16', {
      trials: died.map(
        (o): Trial => ({
          requires: [
            lingerSet(o),
            requires(
              'the connection was established before the process died',
              o.connect === 'OK' && o.stateBefore === 'ESTABLISHED',
              `connect ${o.connect}, state ${o.stateBefore ?? 'none'}`,
            ),
            requires('the process died of SIGKILL without closing', o.signal === 'SIGKILL', o.signal ?? 'it had exited already'),
          ],
          // "lingers nonetheless": a graceful FIN despite SO_LINGER {1,0}
          agrees: sent('process-killed', o).fin >= 1 && sent('process-killed', o).rst === 0,
        }),
      ),
      evidence: `process killed with SIGKILL while holding a SO_LINGER {1,0} socket: ${total('process-killed', died)}; the peer ${distinct(
        died.map((o) => (o.peerReset ? `was reset (${o.peerReset})` : o.peerStates.join('→'))),
        ' / ',
      )}`,
    });

    const onWire = [
      ...new Set(
        idle
          .map((o) => sent('established-idle', o))
          .map((s) => (s.rst && !s.fin ? 'RST' : s.fin && !s.rst ? 'FIN' : s.fin || s.rst ? 'FIN and RST' : 'nothing')),
      ),
    ];
    const set = idle.map(lingerSet);
    ctx.answer('q1', {
      answer: onWire[0] ?? '',
      why:
        `measured on ${idle.length} connections: the kernel ` +
        `sent ${total('established-idle', idle)}${onWire[0] === 'RST' ? ' — an abortive close, no FIN handshake' : ''}`,
      frames: [
        ctx.framesWhere('established-idle', (s) => s.srcAddress === ctx.addr.host && (s.flags.includes('RST') || s.flags.includes('FIN'))),
      ],
      requires: [...set.slice(0, 1), requires('every connection gave the same answer', onWire.length === 1, onWire.join(' / '))],
    });
    const tw = [...new Set(idle.map((o) => (o.timeWait ? 'yes' : 'no')))];
    const atOnce = tw[0] === 'no' && onWire[0] === 'RST' ? ' — the RST ends the connection at once, nothing waits' : '';
    ctx.answer('q2', {
      answer: tw[0] ?? '',
      why: `the socket table after each close: TIME_WAIT in ${kOfN(idle, (o) => o.timeWait)}${atOnce}`,
      requires: [...set.slice(0, 1), requires('every connection gave the same answer', tw.length === 1, tw.join(' / '))],
    });

    ctx.print(`Lab 05 — ${this.title} (${n} connections per case)`);
    const row = (name: string, variant: string, os: Outcome[], extra = ''): void =>
      ctx.print(
        `${name.padEnd(20)} kernel sent ${total(variant, os)}; peer ${distinct(
          os.map((o) => (o.peerReset ? `reset (${o.peerReset})` : o.peerStates.join('→'))),
          ' / ',
        )}${extra}`,
      );
    row('established, idle', 'established-idle', idle);
    row(
      'data still queued',
      'unsent-data',
      unsent,
      `; ${sum(unsent, (o) => o.discarded)} of ${sum(unsent, (o) => o.queued)} bytes never reached the peer`,
    );
    row('process killed', 'process-killed', died);
    ctx.print();
    ctx.concludeClaims();
  },
});

const PORT = 80;

interface Outcome {
  local: number;
  /** SO_LINGER as read back with getsockopt after setting it, e.g. "{1,0}" (or the errno) */
  linger: string;
  /** the kernel's state just before it let go of the socket */
  stateBefore: string | null;
  peerReset: string | null;
  peerStates: string[];
  timeWait: boolean;
}

interface Unsent extends Outcome {
  queued: number;
  /** bytes still in the kernel's send queue (sent but unacknowledged, or unsent) when close() ran */
  sendQueueAtClose: number;
  peerGot: number;
  discarded: number;
}

const syscall = (r: SyscallResult): string => (r.ret < 0 ? (r.errno ?? 'error') : 'OK');

/** Sets SO_LINGER {1, linger_s} and reads it back: what the socket really has. */
function setLinger(ctx: LabContext, k: KernelSocket): string {
  const set = k.setOption('SO_LINGER', { onoff: true, seconds: ctx.int('linger_s') });
  if (set.ret < 0) return `setsockopt ${set.errno}`;
  const got = k.getOption('SO_LINGER');
  return got.value ? `{${got.value.onoff ? 1 : 0},${got.value.seconds}}` : `getsockopt ${got.errno}`;
}

async function outcome(
  ctx: LabContext,
  conn: Connection,
  localPort: number,
): Promise<Pick<Outcome, 'peerReset' | 'peerStates' | 'timeWait'>> {
  await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(3000)]);
  await ctx.sleep(200);
  return {
    peerReset: conn.resetReason,
    peerStates: conn.history.map((h) => h.state),
    timeWait: ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === localPort).length > 0,
  };
}

const stateOf = (ctx: LabContext, port: number): string | null =>
  ctx.table((e) => e.local.port === port && e.remote.port === PORT)[0]?.state ?? null;
