// Lab 09 — simultaneous close.
//
// Question: both sides send a FIN before they see the other's. Which states do they pass, and who
// ends in TIME_WAIT? The peer's segments are delayed on the wire so the FINs really cross.
import { defineLab, kernelConnects } from '../src/lab';

const CLAIMS = [{ id: 'T6', text: 'In a simultaneous close both sides pass through CLOSING and both enter TIME-WAIT.', source: 'RFC 9293 §3.6 (figure 13)' }] as const;

export default defineLab({
  id: '09',
  slug: 'simultaneous-close',
  title: 'Simultaneous close: FINs that cross',
  shows: 'both ends in CLOSING, then both in TIME_WAIT; the crossing FINs in the capture',
  question: 'When both sides close at the same moment, which states do they pass and who holds TIME_WAIT?',
  params: [
    { name: 'fin_delay_ms', kind: 'int', default: 60, min: 10, max: 150, help: "how long the peer's FIN is held on the wire" },
    { name: 'ack_delay_ms', kind: 'int', default: 120, min: 20, max: 190, help: "how long the peer's later segments (its ACK of the kernel's FIN) are held; keep below the kernel's 200 ms RTO" },
  ],
  claims: CLAIMS,
  async run(ctx) {
    const finDelay = ctx.int('fin_delay_ms');
    const ackDelay = Math.max(ctx.int('ack_delay_ms'), finDelay + 20);
    const obs = await ctx.variant('crossing-fins', { fin_delay_ms: finDelay, ack_delay_ms: ackDelay }, async () => {
      const { k, conn, local } = await kernelConnects(ctx, 80);
      const stack = ctx.peer();
      const off = stack.addFilter({ direction: 'out', match: (e) => e.tuple.remote.port === local.port, action: (e) => ({ delayMs: e.tcp.flags.fin ? finDelay : ackDelay }) });
      const kernelStates: string[] = [];
      const sample = (): void => {
        const s = ctx.table((e) => e.local.port === local.port && e.remote.port === 80)[0]?.state;
        if (s && kernelStates[kernelStates.length - 1] !== s) kernelStates.push(s);
      };
      sample();
      conn.end(); // the peer's FIN: on the wire for fin_delay_ms
      await ctx.sleep(5);
      k.shutdown('SHUT_WR'); // the kernel's FIN crosses it
      const t0 = performance.now();
      while (performance.now() - t0 < ackDelay + 300) {
        sample();
        await ctx.sleep(5);
      }
      off();
      const tw = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === local.port)[0];
      await k.close();
      return { kernelStates, kernelTimeWait: !!tw, kernelTimerMs: tw?.timerMs ?? null, peerStates: conn.history.map((h) => h.state) };
    });
    const ks = obs.kernelStates as string[];
    const ps = obs.peerStates as string[];
    const t6 = ks.includes('CLOSING') && obs.kernelTimeWait === true && ps.includes('CLOSING') && ps[ps.length - 1] === 'TIME-WAIT';
    const sent = ctx.sentBy('crossing-fins', ctx.addr.host4);
    ctx.claim('T6', t6 ? 'holds' : 'does not hold', `kernel ${ks.join('→')}; peer ${ps.join('→')}; kernel retransmissions ${sent.retransmissions}`);
    ctx.print(`Lab 09 — ${this.title}`);
    ctx.print(`kernel: ${ks.join(' → ')}${obs.kernelTimeWait ? ` (TIME_WAIT timer ${((obs.kernelTimerMs as number) / 1000).toFixed(1)} s)` : ''}`);
    ctx.print(`peer  : ${ps.join(' → ')}`);
    ctx.print(`(the peer's FIN was held ${finDelay} ms and its later segments ${ackDelay} ms on the wire)`);
    ctx.print();
    ctx.concludeClaims();
  },
});
