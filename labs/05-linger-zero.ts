// Lab 05 — SO_LINGER {1,0}: the abortive close.
//
// Question: with SO_LINGER on and a linger time of zero, what does close() put on the wire, what
// happens to data not yet sent, is there a TIME_WAIT — and what if the process dies holding the
// socket instead of closing it?
import { defineLab, kernelConnects, type Connection, type LabContext } from '../src/lab';

const CLAIMS = [
  {
    id: 'C11',
    text: 'close() with SO_LINGER {1,0} sends RST instead of FIN, discards unsent data, and leaves no TIME_WAIT.',
    source: 'seed §SO_REUSEADDR ("disabling lingering"); man 7 socket (SO_LINGER)',
  },
  {
    id: 'C16',
    text: 'If the process dies without closing the socket, the system lingers nonetheless, ignoring SO_LINGER.',
    source: 'seed §SO_REUSEADDR (BSD)',
  },
] as const;

const PORT = 80;

interface Outcome extends Record<string, unknown> {
  peerReset: string | null;
  peerStates: string[];
  timeWait: boolean;
}

async function outcome(ctx: LabContext, conn: Connection, localPort: number): Promise<Outcome> {
  await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(3000)]);
  await ctx.sleep(200);
  return {
    peerReset: conn.resetReason,
    peerStates: conn.history.map((h) => h.state),
    timeWait: ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === localPort).length > 0,
  };
}

export default defineLab({
  id: '05',
  slug: 'linger-zero',
  title: 'SO_LINGER {1,0}: the abortive close',
  shows: 'close() with a zero linger time sends RST, drops unsent data and skips TIME_WAIT; also when the process is killed',
  question: 'What does close() with SO_LINGER {1,0} put on the wire, what becomes of unsent data, and what if the process dies instead of closing?',
  params: [
    { name: 'unsent', kind: 'int', default: 65536, min: 1, max: 4 << 20, unit: 'bytes', help: 'data the kernel is asked to send to a peer that has stopped reading' },
    { name: 'peer_window', kind: 'int', default: 4096, min: 0, max: 1 << 20, unit: 'bytes', help: "the peer's receive buffer in the unsent-data variant" },
  ],
  claims: CLAIMS,
  recordSysctls: ['net.ipv4.tcp_wmem'],
  async run(ctx) {
    const idle = await ctx.variant('established-idle', { linger: '1,0' }, async () => {
      const { k, conn, local } = await kernelConnects(ctx, PORT);
      const set = k.setOption('SO_LINGER', { onoff: true, seconds: 0 });
      const close = await k.close();
      return { setsockopt: set, close, ...(await outcome(ctx, conn, local.port)) };
    });

    const unsent = await ctx.variant('unsent-data', { linger: '1,0', unsent: ctx.int('unsent') }, async () => {
      const { k, conn, local } = await kernelConnects(ctx, PORT, { tcb: { rcvBuf: ctx.int('peer_window') }, onAccept: (c) => c.pauseReading() });
      k.setOption('SO_LINGER', { onoff: true, seconds: 0 });
      // queue `unsent` bytes: the peer takes only its window, the rest waits in the kernel
      let queued = 0;
      const want = ctx.int('unsent');
      while (queued < want) {
        const r = k.sendNow(new Uint8Array(Math.min(65536, want - queued)));
        if (r.ret <= 0) break;
        queued += r.ret;
      }
      await ctx.sleep(300);
      const before = k.tcpInfo().info;
      const close = await k.close();
      const o = await outcome(ctx, conn, local.port);
      const peerGot = conn.received + conn.tcb.recvQ.length;
      return { queued, unackedBeforeClose: before?.unacked ?? null, close, peerGot, discarded: queued - peerGot, ...o };
    });

    const died = await ctx.variant('process-killed', { linger: '1,0' }, async () => {
      const stack = ctx.peer();
      const listener = stack.listen(PORT);
      const accepted = new Promise<Connection>((r) => listener.onConnection(r));
      const helper = await ctx.helper();
      const id = await helper.socket('ipv4', 'tcp');
      const set = await helper.setLinger(id, true, 0);
      const connect = await helper.connect(id, ctx.addr.peer4, PORT);
      const local = await helper.localAddress(id);
      const conn = await accepted;
      stack.unlisten(listener);
      await helper.kill(); // SIGKILL: the process never calls close()
      return { helperPid: helper.pid, setsockopt: set, connect, ...(await outcome(ctx, conn, local?.port ?? 0)) };
    });

    const sent = {
      idle: ctx.sentBy('established-idle', ctx.addr.host4),
      unsent: ctx.sentBy('unsent-data', ctx.addr.host4),
      died: ctx.sentBy('process-killed', ctx.addr.host4),
    };
    const abortive = (s: { rst: number; fin: number }): boolean => s.rst >= 1 && s.fin === 0;
    const c11 = abortive(sent.idle) && abortive(sent.unsent) && !idle.timeWait && !unsent.timeWait && (unsent.discarded as number) > 0;
    ctx.claim(
      'C11',
      c11 ? 'holds' : 'does not hold',
      `idle: ${sent.idle.rst} RST, ${sent.idle.fin} FIN, TIME_WAIT ${idle.timeWait ? 'yes' : 'no'}; with data queued: ${sent.unsent.rst} RST, ${sent.unsent.fin} FIN, ` +
        `${unsent.queued as number} bytes accepted by send(), ${unsent.peerGot as number} reached the peer, ${unsent.discarded as number} discarded`,
    );
    ctx.claim(
      'C16',
      abortive(sent.died) ? 'differs by OS' : sent.died.fin >= 1 ? 'holds' : 'does not hold',
      `process killed with SIGKILL while holding a SO_LINGER {1,0} socket: ${sent.died.rst} RST, ${sent.died.fin} FIN from the kernel; the peer ${died.peerReset ? `was reset (${died.peerReset})` : `went ${(died.peerStates as string[]).join('→')}`}`,
    );

    ctx.print(`Lab 05 — ${this.title}`);
    const row = (name: string, s: { rst: number; fin: number }, o: Outcome, extra = ''): void =>
      ctx.print(`${name.padEnd(20)} kernel sent ${s.rst} RST, ${s.fin} FIN; peer ${o.peerReset ? `reset (${o.peerReset})` : o.peerStates.join('→')}; TIME_WAIT ${o.timeWait ? 'yes' : 'no'}${extra}`);
    row('established, idle', sent.idle, idle as Outcome);
    row('data still queued', sent.unsent, unsent as Outcome, `; ${unsent.discarded as number} of ${unsent.queued as number} bytes never reached the peer`);
    row('process killed', sent.died, died as Outcome);
    ctx.print();
    ctx.concludeClaims();
  },
});
