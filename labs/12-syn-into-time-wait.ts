// Lab 12 — a new SYN on a four-tuple the kernel holds in TIME_WAIT.
//
// Question: the kernel server closed first and holds the four-tuple in TIME_WAIT; the same client
// port connects again. When does the TIME_WAIT socket let the new connection in, which initial
// sequence number does the kernel then pick, and what does it answer when it refuses? Each case
// is tried `trials` times, each on its own four-tuple.
import { defineLab, kernelServerTimeWait, requires, type LabContext, type Precondition, type Trial } from '../src/lab';

type Case = 'seq-above' | 'seq-below-no-ts' | 'seq-below-newer-ts';
const CASES: readonly Case[] = ['seq-above', 'seq-below-no-ts', 'seq-below-newer-ts'];
const PORT = 7100;

interface Probe {
  peerPort: number;
  timeWaitBefore: boolean;
  /** timestamps were on in the old connection */
  oldTimestamps: boolean;
  synSeqRelative: number;
  accepted: boolean;
  /** the kernel answered the SYN with an ACK of the old connection (a refusal), not a SYN-ACK */
  refusedWithAck: boolean;
  newIssMinusOldSndNxt: number | null;
  repliesToSyn: string[];
  timeWaitAfter: boolean;
}

async function synIntoTimeWait(ctx: LabContext, which: Case, peerPort: number): Promise<Probe> {
  const ts = which === 'seq-below-newer-ts';
  const isn1 = 2_000_000;
  const first = await kernelServerTimeWait(ctx, PORT, peerPort, { isn: isn1, timestamps: ts, tsOffset: 9000 }, ctx.str('first_close') === 'kernel' ? 'kernel' : 'peer');
  const offset = ctx.int('seq_offset');
  const isn2 = which === 'seq-above' ? (first.twRcvNxt + offset) >>> 0 : (isn1 - offset) >>> 0;
  const replies: string[] = [];
  let refusedWithAck = false;
  const stack = ctx.peer();
  const off = stack.onSegment((e) => {
    if (e.direction === 'in' && e.tuple.local.port === peerPort) {
      const f = e.tcp.flags;
      if (f.ack && !f.syn && !f.rst && e.tcp.ack === first.twRcvNxt) refusedWithAck = true;
      replies.push(`${[f.syn && 'SYN', f.rst && 'RST', f.ack && 'ACK'].filter(Boolean).join(',')} ack=${f.ack ? (e.tcp.ack - first.twRcvNxt) | 0 : '-'}`);
    }
  });
  const timeWaitBefore = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === PORT && e.remote.port === peerPort).length > 0;
  const conn = stack.connect({ local: { address: ctx.addr.peer4, port: peerPort }, remote: { address: ctx.addr.host4, port: PORT }, tcb: { isn: isn2, timestamps: ts, tsOffset: 9000, synRetries: 0 } });
  const acc = await first.listener.accept(1500);
  off();
  const accepted = !!acc.socket;
  const newIss = accepted ? conn.tcb.irs : null;
  const timeWaitAfter = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === PORT && e.remote.port === peerPort).length > 0;
  if (acc.socket) {
    acc.socket.setOption('SO_LINGER', { onoff: true, seconds: 0 });
    await acc.socket.close();
  }
  conn.abort();
  first.listener.closeNow();
  return {
    peerPort,
    timeWaitBefore,
    oldTimestamps: first.conn.tcb.tsEnabled,
    synSeqRelative: (isn2 - first.twRcvNxt) | 0,
    accepted,
    refusedWithAck: !accepted && refusedWithAck,
    // Linux takes the new ISN from the old space: tw_snd_nxt + 65535 + 2 (tcp_timewait_state_process)
    newIssMinusOldSndNxt: newIss === null ? null : (newIss - first.twSndNxt) >>> 0,
    repliesToSyn: replies.slice(0, 4),
    timeWaitAfter,
  };
}

export default defineLab({
  id: '12',
  slug: 'syn-into-time-wait',
  title: 'A new SYN into TIME_WAIT',
  shows: 'when a TIME_WAIT four-tuple accepts a new SYN (higher sequence number, or newer timestamp), the ISN the kernel then picks, and its answer otherwise',
  question: 'A client reconnects on a four-tuple the kernel holds in TIME_WAIT: when is it let in, with which ISN, and what is the answer otherwise?',
  params: [
    { name: 'seq_offset', kind: 'int', default: 100_000, min: 1, max: 1 << 30, help: "how far above (or below) the old sequence space the new SYN's ISN lies" },
    { name: 'first_close', kind: 'enum', default: 'kernel', choices: ['kernel', 'peer'], help: 'who closes the first connection first: the kernel (it holds TIME_WAIT) or the peer (then the kernel holds none)' },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'probes per case, each on its own four-tuple' },
  ],
  claims: ['T9', 'T10'],
  questions: [
    { id: 'q1', text: 'The kernel holds a four-tuple in TIME_WAIT. The same client sends a new SYN whose sequence number is above everything the old connection used (no timestamps). Accepted or refused?', choices: ['accepted', 'refused'] },
    { id: 'q2', text: 'The same, but the SYN is below the old sequence space. What does the kernel answer?', choices: ['SYN-ACK', 'RST', 'an ACK of the old connection', 'nothing'] },
  ],
  recordSysctls: ['net.ipv4.tcp_timestamps', 'net.ipv4.tcp_rfc1337'],
  async run(ctx) {
    const n = ctx.int('trials');
    const r = new Map<Case, Probe[]>();
    let peerPort = 46000;
    for (const which of CASES) {
      const obs = await ctx.variant(which, { trials: n }, async () => {
        const out: Probe[] = [];
        for (let i = 0; i < n; i++) out.push(await synIntoTimeWait(ctx, which, peerPort++));
        return { trials: out };
      });
      r.set(which, obs.trials as Probe[]);
    }
    const tw = (p: Probe): Precondition => requires('the kernel held the four-tuple in TIME_WAIT when the SYN came', p.timeWaitBefore, p.timeWaitBefore ? 'TIME_WAIT entry present' : `no TIME_WAIT entry (first_close=${ctx.str('first_close')})`);
    // a refusal is an answer the capture shows (an ACK of the old connection), never a mere accept() timeout
    const answered = (p: Probe): Precondition => requires('the kernel answered the SYN (SYN-ACK, or an ACK of the old connection)', p.accepted || p.refusedWithAck, p.repliesToSyn.join(', ') || 'no answer');
    const tally = (c: Case): string => {
      const ps = r.get(c)!;
      return `${ps.filter((p) => p.accepted).length}/${ps.length} accepted`;
    };
    ctx.judge('T9', {
      trials: [
        ...r.get('seq-above')!.map((p): Trial => ({ requires: [tw(p), answered(p)], agrees: p.accepted })),
        ...r.get('seq-below-no-ts')!.map((p): Trial => ({ requires: [tw(p), answered(p)], agrees: !p.accepted })),
      ],
      evidence: `no timestamps: a SYN ${ctx.int('seq_offset')} above the old space → ${tally('seq-above')}; below it → ${tally('seq-below-no-ts')} (refused with ${[...new Set(r.get('seq-below-no-ts')!.filter((p) => !p.accepted).map((p) => p.repliesToSyn[0] ?? 'no answer'))].join('/') || '—'})`,
    });
    ctx.judge('T10', {
      trials: r.get('seq-below-newer-ts')!.map((p): Trial => ({
        requires: [tw(p), requires('the old connection used timestamps', p.oldTimestamps, p.oldTimestamps ? 'on' : 'off'), answered(p)],
        agrees: p.accepted,
      })),
      evidence: `timestamps on, a SYN below the old space but with a newer timestamp → ${tally('seq-below-newer-ts')}`,
    });
    const above = r.get('seq-above')!;
    const aboveAnswers = [...new Set(above.map((p) => (p.accepted ? 'accepted' : 'refused')))];
    ctx.answer('q1', {
      answer: aboveAnswers[0] ?? '',
      why: `measured ${above.length} times: ${tally('seq-above')}; the kernel's new ISN was old SND.NXT + ${[...new Set(above.map((p) => p.newIssMinusOldSndNxt).filter((x) => x !== null))].join('/') || '—'}`,
      frames: [ctx.framesWhere('seq-above', (s) => s.flags === 'SYN' || s.flags === 'SYN,ACK')],
      requires: [requires('the four-tuple was in TIME_WAIT every time', above.every((p) => p.timeWaitBefore), `${above.filter((p) => p.timeWaitBefore).length}/${above.length}`), requires('every probe gave the same answer', aboveAnswers.length === 1, aboveAnswers.join(' / '))],
    });
    const below = r.get('seq-below-no-ts')!;
    const belowAnswers = [...new Set(below.map((p) => (p.accepted ? 'SYN-ACK' : p.refusedWithAck ? 'an ACK of the old connection' : /RST/.test(p.repliesToSyn[0] ?? '') ? 'RST' : p.repliesToSyn.length ? p.repliesToSyn[0]! : 'nothing')))];
    ctx.answer('q2', {
      answer: belowAnswers[0] ?? '',
      why: `measured ${below.length} times: ${[...new Set(below.map((p) => p.repliesToSyn.join(', ') || 'no answer'))].join(' / ')}${belowAnswers[0] === 'an ACK of the old connection' ? ' (ack relative to the old RCV.NXT: the TIME_WAIT re-acknowledges the old connection)' : ''}`,
      frames: [ctx.framesWhere('seq-below-no-ts', (s) => s.flags === 'SYN' || s.strayFrom !== undefined)],
      requires: [requires('the four-tuple was in TIME_WAIT every time', below.every((p) => p.timeWaitBefore), `${below.filter((p) => p.timeWaitBefore).length}/${below.length}`), requires('every probe gave the same answer', belowAnswers.length === 1, belowAnswers.join(' / '))],
    });
    ctx.print(`Lab 12 — ${this.title} (${n} probes per case)`);
    for (const c of CASES) {
      const ps = r.get(c)!;
      const x = ps[0]!;
      const isss = [...new Set(ps.map((p) => p.newIssMinusOldSndNxt).filter((v) => v !== null))];
      ctx.print(
        `${c.padEnd(20)} SYN at ${String(x.synSeqRelative).padStart(8)} from the old RCV.NXT → ${tally(c)}` +
          (isss.length ? `; the kernel's new ISN = old SND.NXT + ${isss.join('/')}` : '') +
          (ps.some((p) => !p.accepted) ? `; refused: ${[...new Set(ps.filter((p) => !p.accepted).map((p) => p.repliesToSyn.join(', ') || 'no answer'))].join(' / ')}` : ''),
      );
    }
    ctx.print();
    ctx.concludeClaims();
  },
});
