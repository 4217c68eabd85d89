// Lab 12 — a new SYN on a four-tuple the kernel holds in TIME_WAIT.
//
// Question: the kernel server closed first and holds the four-tuple in TIME_WAIT; the same client
// port connects again. When does the TIME_WAIT socket let the new connection in, which initial
// sequence number does the kernel then pick, and what does it answer when it refuses? Each case
// is tried `trials` times, each on its own four-tuple.
import {
  defineLab,
  kernelServerTimeWait,
  newSynOnWire,
  requires,
  seqAdd,
  seqDiff,
  seqSpan,
  seqSub,
  type LabContext,
  type NewSynOnWire,
  type Precondition,
  type Trial,
  kOfN,
  distinct,
} from '../src/lab';

export default defineLab({
  id: '12',
  slug: 'syn-into-time-wait',
  title: 'A new SYN into TIME_WAIT',
  shows:
    'when a TIME_WAIT four-tuple accepts a new SYN (higher sequence number, or newer timestamp), the ISN the kernel then picks, and its ' +
    'answer otherwise',
  showsInDetail:
    'a new SYN on a four-tuple the kernel holds in TIME_WAIT: above the old space, below it, below it with a newer timestamp ' +
    "(TSvals compared in the capture); the kernel's answer read from the capture; the new ISN it picks",
  question:
    'A client reconnects on a four-tuple the kernel holds in TIME_WAIT: when is it let in, with which ISN, and what is the answer ' +
    'otherwise?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'seq_offset',
      kind: 'int',
      default: 100_000,
      min: 1,
      max: 1 << 30,
      help: "how far above (or below) the old sequence space the new SYN's ISN lies",
    },
    {
      name: 'first_close',
      kind: 'enum',
      default: 'kernel',
      choices: ['kernel', 'peer'],
      help: 'who closes the first connection first: the kernel (it holds TIME_WAIT) or the peer (then the kernel holds none)',
    },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'probes per case, each on its own four-tuple' },
    {
      name: 'ts_lead_ms',
      kind: 'int',
      default: 1000,
      min: -1_000_000,
      max: 1_000_000,
      unit: 'ms',
      help:
        "seq-below-newer-ts: how far the new SYN's timestamp clock runs ahead of the old connection's (negative enough, and " +
        'its timestamp is older: T10 cannot be tested)',
    },
  ],
  claims: [
    'T9', // Without timestamps, a TIME-WAIT socket lets in a new SYN whose sequence number is above any of
    //   the old incarnation (RFC 9293 permits it), and refuses one below it with an ACK of the old
    //   connection.
    'T10', // With timestamps, a new SYN whose timestamp is newer than the last one the TIME-WAIT socket saw
    //   is let in, whatever its sequence number.
  ],
  questions: [
    {
      id: 'q1',
      text:
        'The kernel holds a four-tuple in TIME_WAIT. The same client sends a new SYN whose sequence number is above everything ' +
        'the old connection used (no timestamps). Accepted or refused?',
      choices: ['accepted', 'refused'],
    },
    {
      id: 'q2',
      text: 'The same, but the SYN is below the old sequence space. What does the kernel answer?',
      choices: ['SYN-ACK', 'RST', 'an ACK of the old connection', 'nothing'],
    },
  ],
  recordSysctls: ['net.ipv4.tcp_timestamps', 'net.ipv4.tcp_rfc1337'],
  course: {
    order: 130,
    teaches: 'When a TIME_WAIT lets a new connection in on the same four-tuple, and what it answers when it does not.',
    look: "seq-below-no-ts.pcap: the kernel's answer to a SYN below the old sequence space.",
  },
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
      r.set(which, obs.trials);
    }
    const tw = (p: Probe): Precondition =>
      requires(
        'the kernel held the four-tuple in TIME_WAIT when the SYN came',
        p.timeWaitBefore,
        p.timeWaitBefore ? 'TIME_WAIT entry present' : `no TIME_WAIT entry (first_close=${ctx.str('first_close')})`,
      );
    // from the capture: the kernel's answer to the new SYN, and where that SYN lay
    const wire = new Map<Probe, NewSynOnWire>();
    for (const c of CASES)
      for (const p of r.get(c)!)
        wire.set(p, newSynOnWire(ctx.onWire(c, { address: ctx.addr.host, port: PORT }, { address: ctx.addr.peer, port: p.peerPort })));
    const w = (p: Probe): NewSynOnWire => wire.get(p)!;
    const letIn = (p: Probe): boolean => w(p).synAck !== null;
    const refused = (p: Probe): boolean => w(p).synAck === null && w(p).refusal !== null;
    // a refusal is an answer the capture shows (an ACK of the old connection), never a mere accept() timeout
    const answered = (p: Probe): Precondition =>
      requires(
        'the kernel answered the SYN (a SYN-ACK, or an ACK of the old connection, in the capture)',
        letIn(p) || refused(p),
        p.repliesToSyn.join(', ') || 'no answer',
      );
    const placed = (p: Probe, above: boolean): Precondition => {
      const x = w(p);
      return requires(
        `the new SYN lay ${above ? 'above' : 'below'} the old connection's sequence space (against the kernel's RCV.NXT, in the capture)`,
        x.synVsRcvNxt !== null && (above ? x.synVsRcvNxt > 0 : x.synVsRcvNxt < 0),
        x.syn === null
          ? 'no new SYN in the capture'
          : x.synVsRcvNxt === null
            ? `SYN #${x.syn}, but no ACK of the kernel before it`
            : `SYN #${x.syn} ${x.synVsRcvNxt} from the kernel's RCV.NXT`,
      );
    };
    const noTimestamps = (p: Probe): Precondition =>
      requires(
        "the old connection used no timestamps (the kernel's SYN-ACK)",
        w(p).oldTimestamps === false,
        w(p).oldTimestamps === null ? 'no SYN-ACK in the capture' : w(p).oldTimestamps ? 'on' : 'off',
      );
    const tally = (c: Case): string => {
      const ps = r.get(c)!;
      return `${kOfN(ps, letIn)} let in (SYN-ACK)`;
    };
    const above = r.get('seq-above')!;
    const belowNoTs = r.get('seq-below-no-ts')!;
    const refusedWith = distinct(belowNoTs.filter(refused).map((p) => (w(p).synAck === null && p.repliesToSyn[0]) || 'no answer'));
    ctx.judge('T9', {
      trials: [
        ...r
          .get('seq-above')!
          .map((p): Trial => ({ requires: [tw(p), noTimestamps(p), placed(p, true), answered(p)], agrees: letIn(p) && p.accepted })),
        ...r
          .get('seq-below-no-ts')!
          .map((p): Trial => ({ requires: [tw(p), noTimestamps(p), placed(p, false), answered(p)], agrees: refused(p) })),
      ],
      evidence:
        `no timestamps: a SYN ${ctx.int('seq_offset')} above the old space → ${tally('seq-above')}, ` +
        `accept() → ${kOfN(above, (p) => p.accepted)}; below it → ${kOfN(belowNoTs, refused)} refused with ${refusedWith || '—'}`,
    });
    ctx.judge('T10', {
      trials: r.get('seq-below-newer-ts')!.map((p): Trial => {
        const x = w(p);
        return {
          requires: [
            tw(p),
            requires(
              "the old connection used timestamps (the kernel's SYN-ACK)",
              x.oldTimestamps === true,
              x.oldTimestamps === null ? 'no SYN-ACK in the capture' : x.oldTimestamps ? 'on' : 'off',
            ),
            placed(p, false),
            requires(
              "the new SYN's timestamp was newer than the old connection's last (TSvals in the capture)",
              x.tsvalLead !== null && x.tsvalLead > 0,
              x.tsvalLead === null
                ? 'no TSval to compare'
                : `TSval ${x.tsvalLead > 0 ? '+' : ''}${x.tsvalLead} from the newest of the old connection`,
            ),
            answered(p),
          ],
          agrees: letIn(p) && p.accepted,
        };
      }),
      evidence:
        `timestamps on, a SYN below the old space with a newer timestamp (TSval ` +
        `+${distinct(r.get('seq-below-newer-ts')!.map((p) => w(p).tsvalLead))}) → ${tally('seq-below-newer-ts')}`,
    });
    const aboveAnswers = [...new Set(above.map((p) => (letIn(p) ? 'accepted' : 'refused')))];
    ctx.answer('q1', {
      answer: aboveAnswers[0] ?? '',
      why:
        `measured ${above.length} times: ${tally('seq-above')}; the kernel's new ISN was old SND.NXT ` +
        `+ ${distinct(above.map((p) => p.newIssMinusOldSndNxt).filter((x) => x !== null)) || '—'}`,
      frames: [ctx.framesWhere('seq-above', (s) => s.flags === 'SYN' || s.flags === 'SYN,ACK')],
      requires: [
        requires(
          'the four-tuple was in TIME_WAIT every time',
          above.every((p) => p.timeWaitBefore),
          kOfN(above, (p) => p.timeWaitBefore),
        ),
        requires('every probe gave the same answer', aboveAnswers.length === 1, aboveAnswers.join(' / ')),
      ],
    });
    const below = r.get('seq-below-no-ts')!;
    const belowAnswers = [
      ...new Set(
        below.map((p) =>
          letIn(p)
            ? 'SYN-ACK'
            : w(p).refusal !== null
              ? /RST/.test(p.repliesToSyn[0] ?? '')
                ? 'RST'
                : 'an ACK of the old connection'
              : 'nothing',
        ),
      ),
    ];
    ctx.answer('q2', {
      answer: belowAnswers[0] ?? '',
      why:
        `measured ${below.length} times: ${distinct(
          below.map((p) => p.repliesToSyn.join(', ') || 'no answer'),
          ' / ',
        )}` + (belowAnswers[0] === 'an ACK of the old connection' ? REACKED : ''),
      frames: [ctx.framesWhere('seq-below-no-ts', (s) => s.flags === 'SYN' || s.strayFrom !== undefined)],
      requires: [
        requires(
          'the four-tuple was in TIME_WAIT every time',
          below.every((p) => p.timeWaitBefore),
          kOfN(below, (p) => p.timeWaitBefore),
        ),
        requires('every probe gave the same answer', belowAnswers.length === 1, belowAnswers.join(' / ')),
      ],
    });
    ctx.print(`Lab 12 — ${this.title} (${n} probes per case)`);
    for (const c of CASES) {
      const ps = r.get(c)!;
      const x = ps[0]!;
      const isss = [...new Set(ps.map((p) => p.newIssMinusOldSndNxt).filter((v) => v !== null))];
      ctx.print(
        `${c.padEnd(20)} SYN at ${String(x.synSeqRelative).padStart(8)} from the old RCV.NXT → ${tally(c)}` +
          (isss.length ? `; the kernel's new ISN = old SND.NXT + ${isss.join('/')}` : '') +
          (ps.some((p) => !p.accepted)
            ? `; refused: ${distinct(
                ps.filter((p) => !p.accepted).map((p) => p.repliesToSyn.join(', ') || 'no answer'),
                ' / ',
              )}`
            : ''),
      );
    }
    ctx.print();
    ctx.concludeClaims();
  },
});

type Case = 'seq-above' | 'seq-below-no-ts' | 'seq-below-newer-ts';
const CASES: readonly Case[] = ['seq-above', 'seq-below-no-ts', 'seq-below-newer-ts'];
const PORT = 7100;
/** why the kernel answers a SYN below the old space with an ACK */
const REACKED = ' (ack relative to the old RCV.NXT: the TIME_WAIT re-acknowledges the old connection)';

interface Probe {
  peerPort: number;
  timeWaitBefore: boolean;
  synSeqRelative: number;
  /** the application got the new connection (accept() returned a socket) */
  accepted: boolean;
  newIssMinusOldSndNxt: number | null;
  repliesToSyn: string[];
  timeWaitAfter: boolean;
}

async function synIntoTimeWait(ctx: LabContext, which: Case, peerPort: number): Promise<Probe> {
  const ts = which === 'seq-below-newer-ts';
  const isn1 = 2_000_000;
  const first = await kernelServerTimeWait(
    ctx,
    PORT,
    peerPort,
    { isn: isn1, timestamps: ts, tsOffset: 9000 },
    ctx.str('first_close') === 'kernel' ? 'kernel' : 'peer',
  );
  const offset = ctx.int('seq_offset');
  const isn2 = which === 'seq-above' ? seqAdd(first.twRcvNxt, offset) : seqSub(isn1, offset);
  const replies: string[] = [];
  const stack = ctx.peer();
  const off = stack.onSegment((e) => {
    if (e.direction === 'in' && e.tuple.local.port === peerPort) {
      const f = e.tcp.flags;
      const names = [f.syn && 'SYN', f.rst && 'RST', f.ack && 'ACK'].filter(Boolean).join(',');
      replies.push(`${names} ack=${f.ack ? seqDiff(e.tcp.ack, first.twRcvNxt) : '-'}`);
    }
  });
  const timeWaitBefore = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === PORT && e.remote.port === peerPort).length > 0;
  const conn = stack.connect({
    local: { address: ctx.addr.peer, port: peerPort },
    remote: { address: ctx.addr.host, port: PORT },
    tcb: { isn: isn2, timestamps: ts, tsOffset: ctx.int('ts_lead_ms') + 9000, synRetries: 0 },
  });
  // accept() only says whether the application got a connection; whether the kernel let the SYN in
  // is read from the capture after the variant (its SYN-ACK, or its ACK of the old connection)
  // a refusal (an answer without SYN) ends the wait soon; a SYN-ACK'd connection is waited for
  let refusedAt: number | null = null;
  const offRefusal = stack.onSegment((e) => {
    if (e.direction === 'in' && e.tuple.local.port === peerPort && !e.tcp.flags.syn) refusedAt ??= performance.now();
  });
  let acc = await first.listener.accept(100);
  for (
    const t0 = performance.now();
    !acc.socket && performance.now() - t0 < 3000 && !(refusedAt !== null && performance.now() - refusedAt > 200);
  )
    acc = await first.listener.accept(100);
  offRefusal();
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
    synSeqRelative: seqDiff(isn2, first.twRcvNxt),
    accepted,
    // Linux takes the new ISN from the old space: tw_snd_nxt + 65535 + 2 (tcp_timewait_state_process)
    newIssMinusOldSndNxt: newIss === null ? null : seqSpan(first.twSndNxt, newIss),
    repliesToSyn: replies.slice(0, 4),
    timeWaitAfter,
  };
}
