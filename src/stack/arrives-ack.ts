// SEGMENT ARRIVES, the fifth step's work on the send side (RFC 9293 §3.10.7.4 "fifth, check the
// ACK field", once the ACK is found acceptable): SND.UNA advances and frees the send queue, the
// RTT is measured (RFC 6298, RFC 7323 §4.1), duplicate ACKs and SACK blocks feed loss recovery
// (RFC 5681 §3.2, RFC 6675), and SND.WND is updated from a newer segment. The checks that decide
// whether the ACK is acceptable, and the state changes it brings, are in arrives-synchronized.ts.
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from '../wire/seq';
import type { TcpRepr } from '../wire/tcp';
import { option } from './options';
import type { TcbVariables } from './variables';

/**
 * The ACK advanced SND.UNA: drop what it covers from the send queue, measure the RTT (from the
 * echoed timestamp, or the one timed segment — never a retransmitted one, Karn), and let loss
 * recovery and congestion control see it.
 */
export function ackAdvance(t: TcbVariables, seg: TcpRepr, now: number): void {
  const ack = seg.ack;
  const acked = seqDiff(ack, t.sndUna);
  const dataAcked = Math.max(0, Math.min(seqDiff(ack, t.sndBase), t.sendQ.length));
  t.sendQ.drop(dataAcked);
  t.sndBase = seqAdd(t.sndBase, dataAcked);
  t.sndUna = ack;
  t.sent.forget(ack);
  if (dataAcked) t.events.push({ kind: 'acked', bytes: dataAcked, at: now });
  // RTT (RFC 6298 §2, RFC 7323 §4.1). Only a valid sample ends the back-off (RFC 6298 §5, Karn):
  // an ACK of a retransmitted segment without timestamps says nothing about the path.
  const ts = t.tsEnabled ? option(seg.options, 'timestamps') : undefined;
  if (ts && ts.tsecr !== 0) t.rto.sample(((now + t.tsOffset) >>> 0) - ts.tsecr);
  else if (t.rttProbe && seqGe(ack, t.rttProbe.seq)) t.rto.sample(now - t.rttProbe.at);
  if (t.rttProbe && seqGe(ack, t.rttProbe.seq)) t.rttProbe = null;
  t.retries = 0;
  t.rtoUna = null;
  t.probeSent = false;
  t.timers.delete('tail-probe');
  if (t.state !== 'SYN-SENT' && t.state !== 'SYN-RECEIVED') {
    if (t.sackEnabled) learnSack(t, seg);
    const smss = t.effMss();
    const phase = t.recovery.phase;
    const r = t.recovery.onNewAck(ack, acked, smss);
    if (r === 'exit' && phase === 'fast-recovery') t.cc.onRecoveryEnd(seqDiff(t.sndNxt, t.sndUna), smss);
    else if (phase !== 'fast-recovery') t.cc.onAck(dataAcked || acked, smss);
    if (r === 'partial') {
      // NewReno (RFC 6582 §3.2 step 5): the segment now at SND.UNA is lost too, and goes at once
      if (!t.sackEnabled) t.forceRetransmit = true;
      const bytes = Math.min(smss, seqDiff(t.sndNxt, t.sndUna));
      t.events.push({ kind: 'retransmit', seq: t.sndUna, bytes, timer: false, at: now });
    }
    detectLoss(t, now);
  }
  // RFC 6298 §5.3: restart the timer while data is outstanding
  if (seqGt(t.sndNxt, t.sndUna)) t.timers.set('retransmit', now + t.rto.rtoMs);
  else t.timers.delete('retransmit');
}

/** An ACK that does not advance SND.UNA: maybe a duplicate ACK (RFC 5681 §2), maybe new SACK information. */
export function sameAck(t: TcbVariables, seg: TcpRepr, now: number): void {
  if (t.sackEnabled) learnSack(t, seg);
  const bare = seg.payload.length === 0 && !seg.flags.syn && !seg.flags.fin;
  const duplicate = seg.ack === t.sndUna && bare && seqGt(t.sndNxt, t.sndUna) && windowOf(t, seg) === t.sndWnd;
  if (duplicate && t.recovery.phase !== 'loss') t.recovery.onDuplicateAck();
  detectLoss(t, now);
}

/** Starts fast recovery when loss recovery sees DupThresh duplicate ACKs or as much SACKed (RFC 5681 §3.2, RFC 6675 §5). */
function detectLoss(t: TcbVariables, now: number): void {
  const smss = t.effMss();
  if (!t.recovery.lossDetected(t.sndUna, dupThresh(t), smss)) return;
  const flight = seqDiff(t.sndNxt, t.sndUna);
  t.cc.onFastRetransmit(flight, smss);
  t.recovery.enterFastRecovery(t.sndUna, t.sndNxt, smss);
  t.forceRetransmit = true;
  t.events.push({ kind: 'retransmit', seq: t.sndUna, bytes: Math.min(smss, flight), timer: false, at: now });
}

function learnSack(t: TcbVariables, seg: TcpRepr): void {
  const opt = option(seg.options, 'sack');
  if (opt) t.recovery.scoreboard.add(opt.blocks, seqGt(seg.ack, t.sndUna) ? seg.ack : t.sndUna, t.sndNxt);
}

/**
 * Duplicate ACKs (or SACKed segments) that mean loss: 3, or fewer when so little is in flight and
 * nothing new is waiting that three could never come — Early Retransmit (RFC 5827 §3.1).
 */
function dupThresh(t: TcbVariables): number {
  const unsent = t.unsent();
  const outstanding = Math.ceil(seqDiff(t.sndNxt, t.sndUna) / t.effMss());
  return outstanding >= 2 && outstanding < 4 && unsent <= 0 ? outstanding - 1 : 3;
}

/** SEG.WND in bytes: scaled, except on a SYN (RFC 7323 §2.2). */
function windowOf(t: TcbVariables, seg: TcpRepr): number {
  return seg.flags.syn ? seg.window : seg.window * 2 ** t.sndShift;
}

/** SND.WND from a segment that is newer than the last update (RFC 9293 §3.10.7.4, fifth); `force` for the SYN's. */
export function updateWindow(t: TcbVariables, seg: TcpRepr, force: boolean): void {
  if (!(force || seqLt(t.sndWl1, seg.seq) || (t.sndWl1 === seg.seq && seqLe(t.sndWl2, seg.ack)))) return;
  const was = t.sndWnd;
  t.sndWnd = windowOf(t, seg);
  t.sndWl1 = seg.seq;
  t.sndWl2 = seg.ack;
  if (t.sndWnd > t.maxSndWnd) t.maxSndWnd = t.sndWnd;
  if (t.sndWnd > 0 && was === 0) {
    t.timers.delete('persist');
    // what went out as probes into the shut window was not taken: it goes again from SND.UNA
    if (t.recovery.phase === 'loss') {
      t.recovery.highRxt = t.sndUna;
      t.forceRetransmit = true;
    } else if (t.finSeq !== null && t.sndUna === t.finSeq) {
      t.finResendDue = true; // our FIN alone is outstanding: the shut window dropped it (Linux < 6.10 does), it goes again now
    }
  }
}
