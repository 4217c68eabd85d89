// Lab 13 — TIME_WAIT assassination.
//
// Question: the kernel holds a four-tuple in TIME_WAIT and an RST arrives for it. Does the entry
// die early (the "assassination" hazard of RFC 1337), can the port then be bound again without
// any flag, and does net.ipv4.tcp_rfc1337 stop it?
import { defineLab, kernelServerTimeWait, type LabContext } from '../src/lab';

const CLAIMS = [{ id: 'T11', text: 'An RST kills a TIME-WAIT socket unless tcp_rfc1337=1.', source: 'RFC 1337 hazard H1; man 7 tcp (tcp_rfc1337)' }] as const;

const PORT = 7200;

async function assassinate(ctx: LabContext, rfc1337: number, peerPort: number): Promise<Record<string, unknown>> {
  ctx.sysctl('net.ipv4.tcp_rfc1337', rfc1337);
  const tw = await kernelServerTimeWait(ctx, PORT, peerPort, { timestamps: false });
  tw.listener.closeNow(); // only the TIME_WAIT holds the port now
  const inWindow = ctx.str('rst') === 'in-window';
  const seq = inWindow ? tw.twRcvNxt : (tw.twRcvNxt + 10_000_000) >>> 0;
  const before = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === PORT)[0];
  ctx.peer().sendSegment({ local: { address: ctx.addr.peer4, port: peerPort }, remote: { address: ctx.addr.host4, port: PORT } }, { seq: seq as never, flags: { fin: false, syn: false, rst: true, psh: false, ack: false, urg: false, ece: false, cwr: false } });
  await ctx.sleep(200);
  const after = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === PORT)[0];
  const s = ctx.socket('ipv4', 'tcp');
  const bind = s.bind(ctx.addr.host4, PORT); // no SO_REUSEADDR
  s.closeNow();
  return {
    rfc1337,
    rst: ctx.str('rst'),
    timeWaitBefore: !!before,
    timerBeforeMs: before?.timerMs ?? null,
    timeWaitAfterRst: !!after,
    rebindWithoutFlags: bind.errno ?? 'OK',
  };
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
  ],
  claims: CLAIMS,
  async run(ctx) {
    const setting = Number(ctx.str('rfc1337'));
    const other = 1 - setting;
    const a = await ctx.variant(`rfc1337-${setting}`, { rfc1337: setting, rst: ctx.str('rst') }, () => assassinate(ctx, setting, 47000));
    const b = await ctx.variant(`rfc1337-${other}`, { rfc1337: other, rst: ctx.str('rst') }, () => assassinate(ctx, other, 47001));
    ctx.sysctl('net.ipv4.tcp_rfc1337', setting);
    const byValue = (v: number): Record<string, unknown> => (a.rfc1337 === v ? a : b);
    const off = byValue(0);
    const on = byValue(1);
    const inWindow = ctx.str('rst') === 'in-window';
    const valid = off.timeWaitBefore === true && on.timeWaitBefore === true;
    const holds = !off.timeWaitAfterRst && off.rebindWithoutFlags === 'OK' && on.timeWaitAfterRst === true;
    ctx.claim(
      'T11',
      !valid ? 'not tested' : !inWindow ? (off.timeWaitAfterRst ? 'not tested' : 'does not hold') : holds ? 'holds' : 'does not hold',
      `${ctx.str('rst')} RST: with tcp_rfc1337=0 the TIME_WAIT ${off.timeWaitAfterRst ? 'survived' : 'died'} (plain bind() → ${off.rebindWithoutFlags as string}); with tcp_rfc1337=1 it ${on.timeWaitAfterRst ? 'survived' : 'died'} (bind → ${on.rebindWithoutFlags as string})` +
        (!inWindow && off.timeWaitAfterRst ? ' — an RST outside the window kills nothing, so the rfc1337 switch is not exercised' : ''),
    );
    ctx.print(`Lab 13 — ${this.title} (${ctx.str('rst')} RST)`);
    for (const x of [off, on]) {
      ctx.print(`tcp_rfc1337=${x.rfc1337 as number}: TIME_WAIT before the RST (timer ${((x.timerBeforeMs as number) / 1000).toFixed(1)} s) → after: ${x.timeWaitAfterRst ? 'still there' : 'gone'}; bind() without SO_REUSEADDR → ${x.rebindWithoutFlags as string}`);
    }
    ctx.print();
    ctx.concludeClaims();
  },
});
