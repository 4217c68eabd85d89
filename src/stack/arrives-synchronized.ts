// SEGMENT ARRIVES in the synchronized states, SYN-RECEIVED to TIME-WAIT (RFC 9293 §3.10.7.4),
// step by step: first the sequence number (with PAWS, RFC 7323 §5), second RST and fourth SYN
// (RFC 5961's challenge ACKs), fifth the ACK field and the state changes it brings (SYN-RECEIVED
// to ESTABLISHED, FIN-WAIT-1 to FIN-WAIT-2, CLOSING to TIME-WAIT, LAST-ACK to CLOSED); then the
// receive side (arrives-text.ts). TIME-WAIT first meets Linux's own rules (tcp_minisocks.c).
import { seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt } from '../wire/seq';
import { segLen, type TcpRepr } from '../wire/tcp';
import { ackAdvance, sameAck, updateWindow } from './arrives-ack';
import { finStep, text, urgent } from './arrives-text';
import { pawsRejects, updateTsRecent } from './options';
import { ack, rst } from './segments';
import { armFinWait2, enterTimeWait } from './timers';
import type { TcbVariables } from './variables';

export function synchronizedArrives(t: TcbVariables, seg: TcpRepr, now: number, out: TcpRepr[]): void {
  if (t.state === 'SYN-RECEIVED' && seg.flags.syn && !seg.flags.ack && seg.seq === t.irs) {
    t.synDue = true; // the peer retransmitted its SYN: our SYN,ACK was lost
    return;
  }
  if (t.state === 'TIME-WAIT' && timeWaitArrives(t, seg, now, out)) return;
  const controlOnly = checkSequence(t, seg, now, out); // first
  if (controlOnly === null) return;
  if (seg.flags.rst) return checkRst(t, seg, now, out); // second
  // third (security) has nothing to check: twlab uses no compartments (RFC 9293 §3.10.7.4)
  if (seg.flags.syn && !simultaneousSynAck(t, seg) && !checkSyn(t, now, out)) return; // fourth
  if (!seg.flags.ack) return; // fifth: no ACK, no processing
  if (!checkAck(t, seg, now, out)) return;
  updateTsRecent(t, seg, now); // RFC 7323 §4.3: once the segment has passed the ACK check
  if (t.state === 'CLOSED' || t.state === 'TIME-WAIT' || t.state === 'CLOSING' || t.state === 'LAST-ACK') return;
  if (controlOnly) {
    // a zero window takes ACKs, URGs and RSTs only: text and FIN wait, the reply says the window is still shut
    urgent(t, seg, now);
    if (seg.payload.length > 0 || seg.flags.fin) t.ackNow = true;
    return;
  }
  urgent(t, seg, now); // sixth
  if (!text(t, seg, now, out)) return; // seventh (data after close() resets the connection)
  finStep(t, now); // eighth
}

/** SYN-RECEIVED after a simultaneous open: the peer's SYN,ACK acknowledges our SYN (figure 8). */
function simultaneousSynAck(t: TcbVariables, seg: TcpRepr): boolean {
  return t.state === 'SYN-RECEIVED' && !t.passive && seg.flags.syn && seg.flags.ack && seg.seq === t.irs;
}

/**
 * TIME-WAIT as Linux runs it (net/ipv4/tcp_minisocks.c): a retransmitted FIN is re-ACKed and
 * restarts 2·MSL (§3.10.7.4); anything else but an RST, a SYN or a bare ACK at RCV.NXT is
 * answered with an ACK, text never taken. Returns whether the segment was handled here.
 */
function timeWaitArrives(t: TcbVariables, seg: TcpRepr, now: number, out: TcpRepr[]): boolean {
  const f = seg.flags;
  if (f.rst || f.syn) return false;
  if (t.cfg.paws && pawsRejects(t, seg, now)) {
    replyAck(t, now, out);
    return true;
  }
  if (f.fin && seqAdd(seg.seq, segLen(seg)) === t.rcvNxt) {
    t.timers.set('time-wait', now + 2 * t.cfg.mslMs);
    t.events.push({ kind: 'time-wait-restart', at: now });
    replyAck(t, now, out);
    return true;
  }
  if (seg.seq !== t.rcvNxt || segLen(seg) > 0) replyAck(t, now, out);
  return true;
}

/**
 * First: is the segment acceptable (PAWS, then the four cases of §3.10.7.4)? An unacceptable
 * one draws an ACK (unless it is an RST) and is dropped: null. Otherwise whether only its
 * controls count (a zero window takes valid ACKs, URGs and RSTs at RCV.NXT).
 */
function checkSequence(t: TcbVariables, seg: TcpRepr, now: number, out: TcpRepr[]): boolean | null {
  if (t.cfg.paws && pawsRejects(t, seg, now)) {
    replyAck(t, now, out);
    return null;
  }
  if (simultaneousSynAck(t, seg)) return false;
  const len = segLen(seg);
  const wnd = Math.max(0, seqDiff(t.rcvAdvEdge, t.rcvNxt));
  const end = seqAdd(t.rcvNxt, wnd);
  let acceptable: boolean;
  if (len === 0) acceptable = wnd === 0 ? seg.seq === t.rcvNxt : seqInRange(seg.seq, t.rcvNxt, end);
  else if (wnd === 0) acceptable = false;
  else acceptable = seqInRange(seg.seq, t.rcvNxt, end) || seqInRange(seqAdd(seg.seq, len - 1), t.rcvNxt, end);
  if (acceptable) return false;
  if (wnd === 0 && seg.seq === t.rcvNxt) return true;
  if (!seg.flags.rst) replyAck(t, now, out);
  return null;
}

/** Second: RST (RFC 5961 §3.2: only an exact match resets; in the window, a challenge ACK). */
function checkRst(t: TcbVariables, seg: TcpRepr, now: number, out: TcpRepr[]): void {
  if (t.state === 'TIME-WAIT' && t.cfg.rfc1337) return; // no assassination (RFC 1337 §3)
  if (seg.seq !== t.rcvNxt) {
    challengeAck(t, 'rst', now, out);
    return;
  }
  if (t.state === 'SYN-RECEIVED') {
    if (t.passive) {
      t.toClosed(now); // back to LISTEN: the listener lives on in the stack
      return;
    }
    t.events.push({ kind: 'reset', reason: 'refused', at: now }); // came from SYN-SENT: refused
    t.toClosed(now);
    return;
  }
  t.events.push({ kind: 'reset', reason: 'rst-received', at: now });
  t.toClosed(now);
}

/** Fourth: a SYN in a synchronized state (RFC 5961 §4: a challenge ACK). Returns whether processing goes on. */
function checkSyn(t: TcbVariables, now: number, out: TcpRepr[]): boolean {
  if (t.state === 'SYN-RECEIVED' && t.passive) {
    t.toClosed(now); // back to LISTEN
    return false;
  }
  challengeAck(t, 'syn', now, out);
  return false;
}

/** Fifth: the ACK field. Returns whether processing goes on. */
function checkAck(t: TcbVariables, seg: TcpRepr, now: number, out: TcpRepr[]): boolean {
  if (t.state === 'SYN-RECEIVED') {
    if (!(seqLt(t.sndUna, seg.ack) && seqLe(seg.ack, t.sndNxt))) {
      out.push(rst(t, seg.ack, now));
      return false;
    }
    const simultaneous = simultaneousSynAck(t, seg);
    updateWindow(t, seg, true);
    ackAdvance(t, seg, now);
    t.setState('ESTABLISHED', now);
    if (t.finQueued) t.setState('FIN-WAIT-1', now); // CLOSE was called in SYN-RECEIVED
    if (simultaneous) {
      t.ackNow = true;
      return false;
    }
    if (t.synText) {
      const held = t.synText;
      t.synText = null;
      text(t, held, now, out);
      finStep(t, now);
    }
  }
  // RFC 5961 §5.2: acceptable only within SND.UNA − MAX.SND.WND ≤ SEG.ACK ≤ SND.NXT
  if (seqGt(seg.ack, t.sndNxt)) {
    challengeAck(t, 'ack', now, out);
    return false;
  }
  if (seqLt(seg.ack, seqAdd(t.sndUna, -Math.max(t.maxSndWnd, 1)))) {
    challengeAck(t, 'ack', now, out);
    return false;
  }
  t.lastAckAt = now;
  const finWasAcked = t.finAcked();
  // an old ACK (below SND.UNA) updates nothing, whatever its SEQ (§3.10.7.4: only SND.UNA ≤ SEG.ACK ≤ SND.NXT updates the window)
  const mayUpdateWindow = seqGe(seg.ack, t.sndUna);
  if (seqGt(seg.ack, t.sndUna)) ackAdvance(t, seg, now);
  else sameAck(t, seg, now);
  if (mayUpdateWindow) updateWindow(t, seg, false);
  const finAcked = t.finAcked();
  switch (t.state) {
    case 'FIN-WAIT-1':
      if (finAcked) {
        t.setState('FIN-WAIT-2', now);
        if (t.orphaned) armFinWait2(t, now);
      }
      return true;
    case 'CLOSING':
      if (finAcked) enterTimeWait(t, now);
      return false;
    case 'LAST-ACK':
      if (finAcked && !finWasAcked) t.toClosed(now);
      return false;
    default:
      return true;
  }
}

/** A challenge ACK (RFC 5961 §3–5), at most challengeAckLimit of them (§7). */
function challengeAck(t: TcbVariables, reason: 'rst' | 'syn' | 'ack', now: number, out: TcpRepr[]): void {
  const limit = t.cfg.challengeAckLimit;
  if (limit) {
    const w = t.challengeWindow;
    if (now - w.start >= limit.perMs) {
      w.start = now;
      w.count = 0;
    }
    if (w.count >= limit.count) {
      t.events.push({ kind: 'challenge-ack-limited', reason, at: now });
      return;
    }
    w.count++;
  }
  t.events.push({ kind: 'challenge-ack', reason, at: now });
  replyAck(t, now, out);
}

/** An ACK in reply to the segment at hand (or, while ACKs are held, one owed: it goes as soon as they are released). */
function replyAck(t: TcbVariables, now: number, out: TcpRepr[]): void {
  if (t.holdAcks) {
    t.ackNow = true;
    return;
  }
  out.push(ack(t, now));
}
