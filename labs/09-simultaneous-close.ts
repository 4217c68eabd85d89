// Lab 09 — simultaneous close.
//
// Question: both sides send a FIN before they see the other's. Which states do they pass, and who
// ends in TIME_WAIT? The peer's segments are delayed on the wire so the FINs really cross; the
// capture shows whether they did (neither FIN acknowledges the other), and only then is the
// claim judged. Repeated on `trials` connections.
import { defineLab, finExchange, kernelConnects, requires, type LabContext, type Trial, kOfN, distinct, count } from '../src/lab';

export default defineLab({
  id: '09',
  slug: 'simultaneous-close',
  title: 'Simultaneous close: FINs that cross',
  shows: 'both ends in CLOSING, then both in TIME_WAIT; the crossing FINs in the capture',
  showsInDetail:
    "FINs that cross (the peer's segments are held on the wire; the capture shows neither FIN acknowledges the other): both sides " +
    'through CLOSING into TIME_WAIT',
  question: 'When both sides close at the same moment, which states do they pass and who holds TIME_WAIT?',
  families: ['ipv4', 'ipv6'],
  params: [
    { name: 'fin_delay_ms', kind: 'int', default: 60, min: 10, max: 150, help: "how long the peer's FIN is held on the wire" },
    {
      name: 'ack_delay_ms',
      kind: 'int',
      default: 120,
      min: 20,
      max: 190,
      help: "how long the peer's later segments (its ACK of the kernel's FIN) are held; keep below the kernel's 200 ms RTO",
    },
    {
      name: 'stagger_ms',
      kind: 'int',
      default: 5,
      min: 0,
      max: 1000,
      help: "how long after the peer's FIN the kernel shuts down (beyond fin_delay_ms the FINs no longer cross)",
    },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'simultaneous closes, each on its own connection' },
  ],
  claims: [
    'T6', // In a simultaneous close both sides pass through CLOSING and both enter TIME-WAIT.
  ],
  questions: [
    {
      id: 'q1',
      text: "Both sides send a FIN before they see the other's. Which states does the kernel pass after ESTABLISHED?",
      choices: [
        statePath(['FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT']),
        statePath(['FIN_WAIT1', 'CLOSING', 'TIME_WAIT']),
        statePath(['FIN_WAIT1', 'TIME_WAIT']),
        statePath(['CLOSE_WAIT', 'LAST_ACK']),
      ],
    },
  ],
  course: {
    order: 20,
    teaches: 'What happens when both sides close at the same moment: the states each passes, and who waits in TIME_WAIT.',
    look: 'crossing-fins.pcap: the two FINs, and what each one acknowledges.',
  },
  async run(ctx) {
    const finDelay = ctx.int('fin_delay_ms');
    const ackDelay = Math.max(ctx.int('ack_delay_ms'), finDelay + 20);
    const closingMs = ackDelay - finDelay;
    const sawOrCouldSee = (c: Crossing): boolean => c.kernelStates.includes('CLOSING') || c.maxSampleGapMs <= closingMs / 2;
    const n = ctx.int('trials');
    const trials = (
      await ctx.variant(
        'crossing-fins',
        { fin_delay_ms: finDelay, ack_delay_ms: ackDelay, stagger_ms: ctx.int('stagger_ms'), trials: n },
        async () => {
          const out: Crossing[] = [];
          for (let i = 0; i < n; i++) out.push(await crossingFins(ctx, finDelay, ackDelay));
          return { trials: out };
        },
      )
    ).trials;
    // from the capture: each side's FIN, and whether it acknowledged the other's (then they did not
    // cross); and whether the kernel acknowledged the peer's FIN afterwards
    const close = (c: Crossing) => finExchange(ctx.flows('crossing-fins').segments, { address: ctx.addr.host, port: c.local });
    const crossed = (c: Crossing): { ok: boolean; measured: string } => {
      const f = close(c);
      return { ok: f.order === 'crossed', measured: f.text };
    };
    // CLOSING is the kernel between the peer's FIN and the peer's ACK of its own FIN. A stack that
    // takes its input on a thread of its own (NetBSD's rump kernel, under load) may take both at
    // once, and then no look at the table can catch it; its ACK of the peer's FIN sent before the
    // peer's ACK left shows it had the FIN alone first (on the wire, the kernel's side)
    const tookFinFirst = (c: Crossing): { ok: boolean; measured: string } => {
      const f = close(c);
      const ok =
        c.kernelStates.includes('CLOSING') ||
        (f.kernelAckOfPeerFin !== null && (f.peerAckOfKernelFin === null || f.kernelAckOfPeerFin < f.peerAckOfKernelFin));
      return {
        ok,
        measured:
          `the kernel's ACK of the peer's ` +
          `FIN ${f.kernelAckOfPeerFin === null ? 'absent' : `#${f.kernelAckOfPeerFin}`}, the peer's ACK of the kernel's ` +
          `FIN ${f.peerAckOfKernelFin === null ? 'absent' : `#${f.peerAckOfKernelFin}`}`,
      };
    };
    const peerWent = (c: Crossing): boolean => c.peerStates.includes('CLOSING') && c.peerStates[c.peerStates.length - 1] === 'TIME-WAIT';
    ctx.judge('T6', {
      trials: trials.map((c): Trial => {
        const x = crossed(c);
        const first = tookFinFirst(c);
        return {
          requires: [
            requires('the FINs crossed (neither acknowledges the other, in the capture)', x.ok, x.measured),
            requires(
              "the kernel had the peer's FIN before the peer's ACK (it acknowledged the FIN first, in the capture), or CLOSING was seen",
              first.ok,
              first.measured,
            ),
            // CLOSING lasts from the peer's FIN to its ACK (ack_delay − fin_delay): looks further apart
            // could miss it, so not seeing it counts only when the table was read often enough
            requires(
              `CLOSING was seen, or the socket table was read at least every ${closingMs / 2} ms`,
              sawOrCouldSee(c),
              `longest gap ${c.maxSampleGapMs} ms`,
            ),
            requires('the peer passed CLOSING into TIME-WAIT (our TCP did its part)', peerWent(c), c.peerStates.join('→')),
          ],
          // the kernel's side: its socket table (CLOSING, then TIME_WAIT) and its ACK of the peer's
          // FIN on the wire; the peer's own states are a precondition above
          agrees: c.kernelStates.includes('CLOSING') && c.kernelTimeWait && close(c).kernelAckedPeerFin,
        };
      }),
      evidence:
        `kernel ${distinct(
          trials.map((c) => c.kernelStates.join('→')),
          ' / ',
        )} (the socket table), ` +
        `the peer's FIN acknowledged by the kernel in ${kOfN(trials, (c) => close(c).kernelAckedPeerFin)} (the capture); ` +
        `peer ${distinct(
          trials.map((c) => c.peerStates.join('→')),
          ' / ',
        )}; kernel retransmissions ${ctx.sentBy('crossing-fins', ctx.addr.host).retransmissions}`,
    });
    const paths = [
      ...new Set(trials.filter((c) => crossed(c).ok).map((c) => statePath(c.kernelStates.filter((s) => s !== 'ESTABLISHED')))),
    ];
    ctx.answer('q1', {
      answer: paths[0] ?? '',
      why: `sampled from the socket table in ${trials.length} closes: ${distinct(
        trials.map((c) => c.kernelStates.join(' → ')),
        ' / ',
      )}; the crossing FINs are in the capture`,
      frames: [ctx.framesWhere('crossing-fins', (s) => s.flags.includes('FIN'))],
      requires: [
        requires(
          'the FINs crossed in every close',
          trials.every((c) => crossed(c).ok),
          kOfN(trials, (c) => crossed(c).ok),
        ),
        requires(
          `CLOSING was seen, or the socket table was read at least every ${closingMs / 2} ms`,
          trials.every(sawOrCouldSee),
          `longest gaps ${trials.map((c) => c.maxSampleGapMs).join(', ')} ms`,
        ),
        requires('every close gave the same answer', paths.length === 1, paths.join(' / ')),
      ],
    });
    const first = trials[0]!;
    ctx.print(`Lab 09 — ${this.title} (${n} closes)`);
    const timer =
      first.kernelTimeWait && first.kernelTimerMs !== null ? ` (TIME_WAIT timer ${(first.kernelTimerMs / 1000).toFixed(1)} s)` : '';
    ctx.print(`kernel: ${first.kernelStates.join(' → ')}${timer}`);
    ctx.print(`peer  : ${first.peerStates.join(' → ')}`);
    ctx.print(
      `(the peer's FIN was held ${finDelay} ms and its later segments ${ackDelay} ms on the wire; the kernel shut ` +
        `down ${ctx.int('stagger_ms')} ms after the peer's FIN left)`,
    );
    ctx.print(
      `FINs crossed in ${count(trials, (c) => crossed(c).ok)}/${n}; both ends through CLOSING into TIME_WAIT ` +
        `in ${count(trials, (c) => c.kernelStates.includes('CLOSING') && c.kernelTimeWait && c.peerStates.includes('CLOSING'))}/${n}`,
    );
    ctx.print();
    ctx.concludeClaims();
  },
});

interface Crossing {
  local: number;
  kernelStates: string[];
  kernelTimeWait: boolean;
  kernelTimerMs: number | null;
  peerStates: string[];
  /** the longest gap between two looks at the socket table while the FINs crossed */
  maxSampleGapMs: number;
}

async function crossingFins(ctx: LabContext, finDelay: number, ackDelay: number): Promise<Crossing> {
  const { k, conn, local } = await kernelConnects(ctx, 80);
  const stack = ctx.peer();
  const off = stack.addFilter({
    direction: 'out',
    match: (e) => e.tuple.remote.port === local.port,
    action: (e) => ({ delayMs: e.tcp.flags.fin ? finDelay : ackDelay }),
  });
  const kernelStates: string[] = [];
  const sample = (): void => {
    const s = ctx.table((e) => e.local.port === local.port && e.remote.port === 80)[0]?.state;
    if (s && kernelStates[kernelStates.length - 1] !== s) kernelStates.push(s);
  };
  sample();
  conn.end(); // the peer's FIN: on the wire for fin_delay_ms
  await ctx.sleep(ctx.int('stagger_ms'));
  k.shutdown('SHUT_WR'); // the kernel's FIN crosses it
  const t0 = performance.now();
  let lastLook = t0;
  let maxGap = 0;
  while (performance.now() - t0 < Math.max(ackDelay, finDelay) + 300) {
    sample();
    const now = performance.now();
    maxGap = Math.max(maxGap, now - lastLook);
    lastLook = now;
    await ctx.sleep(5);
  }
  off();
  const tw = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === local.port)[0];
  await k.close();
  return {
    local: local.port,
    kernelStates,
    kernelTimeWait: !!tw,
    kernelTimerMs: tw?.timerMs ?? null,
    peerStates: conn.history.map((h) => h.state),
    maxSampleGapMs: Math.round(maxGap),
  };
}

/** States as the question's choices and the answer name them: "FIN_WAIT1 → CLOSING → TIME_WAIT". */
function statePath(states: readonly string[]): string {
  return states.join(' → ');
}
