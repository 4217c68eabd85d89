// Sending: what goes out when the TCB is asked what is due — our SYN (or SYN,ACK), what loss
// recovery says is lost (RFC 6675 NextSeg), new data within the peer's window and the congestion
// window with the sender's SWS avoidance (RFC 9293 §3.8.6.2.1), the FIN after the data, and an
// ACK that is owed. Loss recovery (recovery.ts) says what is lost and how much is in the
// network, congestion control (congestion.ts) sizes the window; this builds the segments.
import { seqAdd, seqDiff, seqGt, seqLe, seqLt, type SeqNumber } from '../wire/seq';
import type { TcpRepr } from '../wire/tcp';
import { synOptions } from './options';
import { ack, EMPTY, flagsOf, sackBlocks, segment } from './segments';
import { SENDS_DATA, SYNCHRONIZED, TS_OPTION_BYTES, type TcbVariables } from './variables';

/** Everything sending owes at `now` (timers have been run): SYN, retransmissions, data, FIN, a pending ACK. */
export function output(t: TcbVariables, now: number, out: TcpRepr[]): void {
  if (t.synDue) sendSyn(t, now, out);
  if (SENDS_DATA.has(t.state)) transmit(t, now, out);
  const ackOwed = t.ackNow || (t.ackPending && !t.cfg.delayedAck);
  if (ackOwed && !t.holdAcks && SYNCHRONIZED.has(t.state) && t.state !== 'SYN-RECEIVED') out.push(ack(t, now));
}

/** Our SYN (active OPEN) or SYN,ACK (passive OPEN, or after a simultaneous open), new or again. */
function sendSyn(t: TcbVariables, now: number, out: TcpRepr[]): void {
  t.synDue = false;
  const synack = t.state === 'SYN-RECEIVED';
  const syn = segment(t, flagsOf({ syn: true, ack: synack }), t.iss, EMPTY, now, null, synOptions(t, now));
  if (!synack) t.synWindow = syn.window;
  out.push(syn);
  if (seqLe(t.sndNxt, t.iss)) t.sndNxt = seqAdd(t.iss, 1);
  if (!t.timers.has('retransmit')) t.timers.set('retransmit', now + t.rto.rtoMs);
  if (!t.rttProbe && t.retries === 0) t.rttProbe = { seq: t.sndNxt, at: now };
}

/** The payload room of a segment carrying the options every segment would now carry. */
function segmentRoom(t: TcbVariables, sack: Array<[SeqNumber, SeqNumber]> | null): number {
  return t.payloadRoom((t.tsEnabled ? TS_OPTION_BYTES : 0) + (sack ? 4 + 8 * sack.length : 0));
}

/**
 * One data (and/or FIN) segment from `from`: payload from the send queue up to `maxLen` and
 * the payload room, and the FIN when `finOk` and the data ends where the FIN goes. Returns the
 * sequence number after it (`from` when there was nothing to send).
 */
export function dataSegment(t: TcbVariables, from: SeqNumber, maxLen: number, finOk: boolean, now: number, out: TcpRepr[]): SeqNumber {
  const sack = sackBlocks(t);
  const offset = seqDiff(from, t.sndBase);
  const dataEnd = seqAdd(t.sndBase, t.sendQ.length);
  const n = Math.max(0, Math.min(maxLen, t.sendQ.length - offset, segmentRoom(t, sack)));
  const end = seqAdd(from, n);
  const fin = finOk && end === dataEnd && (t.finQueued || t.finSeq !== null);
  if (n === 0 && !fin) return from;
  const psh = n > 0 && end === dataEnd;
  out.push(segment(t, flagsOf({ ack: true, psh, fin }), from, t.sendQ.view(offset, n), now, sack));
  if (fin && t.finSeq === null) t.finSeq = dataEnd; // the state changed when CLOSE was called
  if (!t.timers.has('retransmit')) t.timers.set('retransmit', now + t.rto.rtoMs);
  return seqAdd(end, fin ? 1 : 0);
}

/** New data (or the FIN) from SND.NXT: SND.NXT moves past it, and its end is noted for retransmissions. */
export function sendNew(t: TcbVariables, maxLen: number, now: number, out: TcpRepr[]): SeqNumber {
  const end = dataSegment(t, t.sndNxt, maxLen, true, now, out);
  t.sndNxt = end;
  t.sent.note(end);
  return end;
}

/**
 * Sends what may go: first what loss recovery says is lost (RFC 6675 NextSeg), then new data
 * within the peer's window and the congestion window, avoiding silly segments (RFC 9293
 * §3.8.6.2.1), then the FIN.
 */
function transmit(t: TcbVariables, now: number, out: TcpRepr[]): void {
  const smss = t.effMss();
  const rec = t.recovery;
  // 1. retransmissions
  for (;;) {
    const r = rec.nextRetransmission(t.sndUna);
    if (!r) break;
    const force = t.forceRetransmit;
    if (!force && t.cc.cwnd - rec.pipe(t.sndUna, t.sndNxt, smss) < smss) return;
    // the peer's window bounds retransmissions too, except SND.UNA's segment (a probe of a shrunk window, as Linux sends it)
    const wndEnd = seqAdd(t.sndUna, t.sndWnd);
    let end = r.end;
    const segEnd = t.sent.endOf(r.from);
    if (segEnd !== null && seqLt(segEnd, end)) end = segEnd;
    if (r.from !== t.sndUna) {
      if (!seqLt(r.from, wndEnd)) return;
      if (seqGt(end, wndEnd)) end = wndEnd;
    }
    const sent = dataSegment(t, r.from, seqDiff(end, r.from), t.finSeq !== null && seqLt(t.finSeq, end), now, out);
    t.forceRetransmit = false;
    if (t.rttProbe && seqLt(r.from, t.rttProbe.seq)) t.rttProbe = null; // Karn
    rec.retransmitted(sent);
    if (sent === r.from) break; // nothing could go (no room): do not spin
  }
  t.forceRetransmit = false;
  // … or the FIN sent into a window that was shut
  if (t.finResendDue) {
    t.finResendDue = false;
    if (t.finSeq !== null && t.sndUna === t.finSeq) {
      t.events.push({ kind: 'retransmit', seq: t.finSeq, bytes: 1, timer: false, at: now });
      t.rttProbe = null; // Karn
      dataSegment(t, t.finSeq, 0, true, now, out);
    }
  }
  // 2. new data
  for (;;) {
    const unsent = t.unsent();
    if (unsent <= 0) break;
    const usable = t.usableWindow();
    const probe = t.probeNew;
    const room = probe ? smss : t.cc.cwnd - rec.pipe(t.sndUna, t.sndNxt, smss);
    const segMax = segmentRoom(t, sackBlocks(t));
    const n = Math.min(unsent, usable, room, segMax);
    // sender SWS avoidance: a full segment, or all that is queued, or half the largest window the peer offered
    const sendable = n > 0 && (n >= segMax || n === unsent || (n === Math.min(unsent, usable) && n >= t.maxSndWnd / 2));
    if (!sendable) break;
    t.probeNew = false;
    const end = sendNew(t, n, now, out);
    if (!t.rttProbe) t.rttProbe = { seq: end, at: now };
  }
  t.probeNew = false;
  // 3. a FIN after all the data, which needs no window
  if (t.finQueued && t.finSeq === null && t.unsent() <= 0) sendNew(t, 0, now, out);
}
