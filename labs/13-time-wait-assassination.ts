// Lab 13 — TIME_WAIT assassination.
//
// Question: the kernel holds a four-tuple in TIME_WAIT and an RST arrives for it. Does the entry
// die early (the "assassination" hazard of RFC 1337), can the port then be bound again without
// any flag, and does net.ipv4.tcp_rfc1337 stop it? Each setting is tried `trials` times, each on
// its own port (the plain bind() afterwards must meet only that TIME_WAIT).
import { defineLab, kernelServerTimeWait, NO_FLAGS, requires, type LabContext, type Trial } from '../src/lab';

const PORT = 7200;

interface Assassination {
  rfc1337: number;
  port: number;
  timeWaitBefore: boolean;
  timerBeforeMs: number | null;
  /** the RST's sequence number minus the TIME_WAIT's RCV.NXT */
  rstOffset: number;
  timeWaitAfterRst: boolean;
  rebindWithoutFlags: string;
}

async function assassinate(ctx: LabContext, rfc1337: number, port: number, peerPort: number): Promise<Assassination> {
  const tw = await kernelServerTimeWait(ctx, port, peerPort, { timestamps: false });
  tw.listener.closeNow(); // only the TIME_WAIT holds the port now
  const rstOffset = ctx.str('rst') === 'in-window' ? 0 : 10_000_000;
  const before = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === port)[0];
  ctx.peer().sendSegment({ local: { address: ctx.addr.peer4, port: peerPort }, remote: { address: ctx.addr.host4, port } }, { seq: ((tw.twRcvNxt + rstOffset) >>> 0) as never, flags: { ...NO_FLAGS, rst: true } });
  await ctx.sleep(200);
  const after = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === port)[0];
  const s = ctx.socket('ipv4', 'tcp');
  const bind = s.bind(ctx.addr.host4, port); // no SO_REUSEADDR
  s.closeNow();
  return { rfc1337, port, timeWaitBefore: !!before, timerBeforeMs: before?.timerMs ?? null, rstOffset, timeWaitAfterRst: !!after, rebindWithoutFlags: bind.errno ?? 'OK' };
}

export default defineLab({
  id: '13',
  slug: 'time-wait-assassination',
  title: 'TIME_WAIT assassination by RST',
  shows: 'an RST for a TIME_WAIT four-tuple kills the entry early (the port is free at once) unless tcp_rfc1337=1',
  question: 'An RST arrives for a four-tuple in TIME_WAIT: does the entry die early, and does tcp_rfc1337 stop it?',
  params: [
    { name: 'rfc1337', kind: 'enum', default: '0', choices: ['0', '1'], sysctl: 'net.ipv4.tcp_rfc1337', help: 'net.ipv4.tcp_rfc1337 (the other value is measured too, for comparison)' },
    { name: 'rst', kind: 'enum', default: 'in-window', choices: ['in-window', 'out-of-window'], help: "the RST's sequence number: at the TIME_WAIT's RCV.NXT, or 10,000,000 beyond" },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'RSTs per tcp_rfc1337 value, each into its own TIME_WAIT' },
  ],
  claims: ['T11'],
  questions: [
    { id: 'q1', text: 'The kernel holds a four-tuple in TIME_WAIT (tcp_rfc1337=0) and an RST arrives for it, in the window. What happens to the TIME_WAIT?', choices: ['it ends at once', 'it stays until its timer runs out'] },
  ],
  async run(ctx) {
    const setting = Number(ctx.str('rfc1337'));
    const n = ctx.int('trials');
    const runs: Assassination[] = [];
    let i = 0;
    for (const value of [setting, 1 - setting]) {
      const obs = await ctx.variant(`rfc1337-${value}`, { rfc1337: value, rst: ctx.str('rst'), trials: n }, async () => {
        ctx.sysctl('net.ipv4.tcp_rfc1337', value);
        const out: Assassination[] = [];
        for (let t = 0; t < n; t++, i++) out.push(await assassinate(ctx, value, PORT + i, 47000 + i));
        return { trials: out };
      });
      runs.push(...(obs.trials as Assassination[]));
    }
    ctx.sysctl('net.ipv4.tcp_rfc1337', setting);
    const off = runs.filter((r) => r.rfc1337 === 0);
    const on = runs.filter((r) => r.rfc1337 === 1);
    ctx.judge('T11', {
      trials: runs.map((r): Trial => ({
        requires: [
          requires('the kernel held the four-tuple in TIME_WAIT when the RST came', r.timeWaitBefore, r.timeWaitBefore ? `timer ${((r.timerBeforeMs ?? 0) / 1000).toFixed(1)} s` : 'no TIME_WAIT entry'),
          requires("the RST's sequence number was the TIME_WAIT's RCV.NXT (in the window)", r.rstOffset === 0, `${r.rstOffset} beyond RCV.NXT`),
        ],
        agrees: r.rfc1337 === 0 ? !r.timeWaitAfterRst && r.rebindWithoutFlags === 'OK' : r.timeWaitAfterRst,
      })),
      evidence:
        `${ctx.str('rst')} RST: with tcp_rfc1337=0 the TIME_WAIT died in ${off.filter((r) => !r.timeWaitAfterRst).length}/${off.length} (plain bind() → ${[...new Set(off.map((r) => r.rebindWithoutFlags))].join('/')}); ` +
        `with tcp_rfc1337=1 it survived in ${on.filter((r) => r.timeWaitAfterRst).length}/${on.length} (bind → ${[...new Set(on.map((r) => r.rebindWithoutFlags))].join('/')})`,
    });
    const fates = [...new Set(off.map((x) => (x.timeWaitAfterRst ? 'it stays until its timer runs out' : 'it ends at once')))];
    ctx.answer('q1', {
      answer: fates[0] ?? '',
      why: `measured ${off.length} times with tcp_rfc1337=0: the entry was gone after the RST in ${off.filter((x) => !x.timeWaitAfterRst).length}/${off.length}, and a plain bind() of the port → ${[...new Set(off.map((x) => x.rebindWithoutFlags))].join('/')}`,
      frames: [ctx.framesWhere('rfc1337-0', (s) => s.flags.includes('RST'))],
      requires: [
        requires('the RST was in the window, into a TIME_WAIT', off.every((x) => x.timeWaitBefore && x.rstOffset === 0), `rst=${ctx.str('rst')}`),
        requires('every trial gave the same answer', fates.length === 1, fates.join(' / ')),
      ],
    });
    ctx.print(`Lab 13 — ${this.title} (${ctx.str('rst')} RST, ${n} per setting)`);
    for (const [v, xs] of [[0, off], [1, on]] as const) {
      ctx.print(
        `tcp_rfc1337=${v}: TIME_WAIT before the RST in ${xs.filter((r) => r.timeWaitBefore).length}/${xs.length} → still there after it in ${xs.filter((r) => r.timeWaitAfterRst).length}/${xs.length}; ` +
          `bind() without SO_REUSEADDR → ${[...new Set(xs.map((r) => r.rebindWithoutFlags))].join('/')}`,
      );
    }
    ctx.print();
    ctx.concludeClaims();
  },
});
