// Lab 12 — a new SYN on a four-tuple the kernel holds in TIME_WAIT.
//
// Question: the kernel server closed first and holds the four-tuple in TIME_WAIT; the same client
// port connects again. When does the TIME_WAIT socket let the new connection in, which initial
// sequence number does the kernel then pick, and what does it answer when it refuses?
import { defineLab, kernelServerTimeWait, type LabContext } from '../src/lab';

const CLAIMS = [
  {
    id: 'T9',
    text: 'A TIME-WAIT socket may accept a new SYN whose sequence number is larger than any of the old incarnation.',
    source: 'RFC 9293 §3.10.7.4 (MAY-2); RFC 1122 §4.2.2.13',
  },
  { id: 'T10', text: 'With timestamps, a newer timestamp suffices, whatever the sequence number.', source: 'RFC 6191' },
] as const;

type Case = 'seq-above' | 'seq-below-no-ts' | 'seq-below-newer-ts';
const PORT = 7100;

async function synIntoTimeWait(ctx: LabContext, which: Case, peerPort: number): Promise<Record<string, unknown>> {
  const ts = which === 'seq-below-newer-ts';
  const isn1 = 2_000_000;
  const first = await kernelServerTimeWait(ctx, PORT, peerPort, { isn: isn1, timestamps: ts, tsOffset: 9000 });
  const offset = ctx.int('seq_offset');
  const isn2 = which === 'seq-above' ? (first.twRcvNxt + offset) >>> 0 : (isn1 - offset) >>> 0;
  const replies: string[] = [];
  const stack = ctx.peer();
  const off = stack.onSegment((e) => {
    if (e.direction === 'in' && e.tuple.local.port === peerPort) {
      const f = e.tcp.flags;
      replies.push(`${[f.syn && 'SYN', f.rst && 'RST', f.ack && 'ACK'].filter(Boolean).join(',')} ack=${f.ack ? ((e.tcp.ack - first.twRcvNxt) | 0) : '-'}`);
    }
  });
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
    timeWaitBefore: first.timeWait,
    synSeqRelative: (isn2 - first.twRcvNxt) | 0,
    accepted,
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
  params: [{ name: 'seq_offset', kind: 'int', default: 100_000, min: 1, max: 1 << 30, help: "how far above (or below) the old sequence space the new SYN's ISN lies" }],
  claims: CLAIMS,
  recordSysctls: ['net.ipv4.tcp_timestamps', 'net.ipv4.tcp_rfc1337'],
  async run(ctx) {
    const r: Record<Case, Record<string, unknown>> = {} as Record<Case, Record<string, unknown>>;
    let peerPort = 46000;
    for (const which of ['seq-above', 'seq-below-no-ts', 'seq-below-newer-ts'] as const) {
      r[which] = await ctx.variant(which, {}, () => synIntoTimeWait(ctx, which, peerPort++));
    }
    const ok = (c: Case): boolean => r[c].timeWaitBefore === true;
    ctx.claim(
      'T9',
      !ok('seq-above') ? 'not tested' : r['seq-above'].accepted && !r['seq-below-no-ts'].accepted ? 'holds' : 'does not hold',
      `no timestamps: a SYN ${ctx.int('seq_offset')} above the old space → ${r['seq-above'].accepted ? 'accepted' : 'refused'}; below it → ${r['seq-below-no-ts'].accepted ? 'accepted' : `refused (${(r['seq-below-no-ts'].repliesToSyn as string[])[0] ?? 'no answer'})`}`,
    );
    ctx.claim(
      'T10',
      !ok('seq-below-newer-ts') ? 'not tested' : r['seq-below-newer-ts'].accepted ? 'holds' : 'does not hold',
      `timestamps on, a SYN below the old space but with a newer timestamp → ${r['seq-below-newer-ts'].accepted ? 'accepted' : 'refused'}`,
    );
    ctx.print(`Lab 12 — ${this.title}`);
    for (const c of ['seq-above', 'seq-below-no-ts', 'seq-below-newer-ts'] as const) {
      const x = r[c];
      const iss = x.newIssMinusOldSndNxt as number | null;
      ctx.print(
        `${c.padEnd(20)} SYN at ${String(x.synSeqRelative).padStart(8)} from the old RCV.NXT → ${x.accepted ? `accepted; the kernel's new ISN = old SND.NXT + ${iss}` : `refused: ${(x.repliesToSyn as string[]).join(', ') || 'no answer'}`}`,
      );
    }
    ctx.print();
    ctx.concludeClaims();
  },
});
