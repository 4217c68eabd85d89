// SEGMENT ARRIVES, sixth to eighth steps (RFC 9293 §3.10.7.4), the receive side: the URG bit,
// the segment text (in order to the receive queue, out of order to reassembly, RFC 5681 §4.2's
// ACK rules), and the FIN once RCV.NXT reaches it. SYN-SENT takes text and FIN that came on the
// SYN through the same steps (§3.10.7.3), and SYN-RECEIVED what it held back.
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from '../wire/seq';
import type { TcpRepr } from '../wire/tcp';
import { rst } from './segments';
import { enterTimeWait } from './timers';
import { RECEIVES_TEXT, type TcbVariables } from './variables';

/**
 * Sixth: URG. RCV.UP advances; the application hears of it (RFC 9293 §3.10.7.4, RFC 6093: the
 * pointer is the byte after the urgent data).
 */
export function urgent(t: TcbVariables, seg: TcpRepr, now: number): void {
  if (!seg.flags.urg || !RECEIVES_TEXT.has(t.state)) return;
  const up = seqAdd(seg.seq, seg.urgent);
  if (seqGt(up, t.rcvUp) && seqGt(up, t.rcvNxt)) {
    t.rcvUp = up;
    t.events.push({ kind: 'urgent', pointer: up, at: now });
  }
}

/**
 * Seventh: segment text. Trimmed to RCV.NXT and the window's right edge; in order it goes to
 * the receive queue (with whatever it releases from the reassembly queue), out of order into
 * the reassembly queue. A FIN is remembered at its sequence number (the eighth step takes it
 * once RCV.NXT gets there), so one that came ahead of missing data is not lost. Returns false
 * when the text reset the connection instead (new data after close()).
 */
export function text(t: TcbVariables, seg: TcpRepr, now: number, out: TcpRepr[]): boolean {
  let start = seg.flags.syn ? seqAdd(seg.seq, 1) : seg.seq;
  let data = seg.payload;
  const finAt = seg.flags.fin ? seqAdd(start, data.length) : null;
  if (!RECEIVES_TEXT.has(t.state)) {
    // after the peer's FIN (or in a state that takes none): nothing is taken, an ACK says where we are
    if (data.length > 0) t.ackNow = true;
    return true;
  }
  if (t.orphaned && data.length > 0 && seqGt(seqAdd(start, data.length), t.rcvNxt)) {
    // new data after close(): it would be lost, so say so (RFC 1122 §4.2.2.13; Linux answers <SEQ=SEG.ACK><CTL=RST>)
    out.push(rst(t, seg.ack, now));
    t.events.push({ kind: 'reset', reason: 'rst-sent', at: now });
    t.toClosed(now);
    return false;
  }
  if (data.length > t.rcvMss) t.rcvMss = Math.min(data.length, t.ownMss());
  if (seqLt(start, t.rcvNxt)) {
    data = data.subarray(Math.min(data.length, seqDiff(t.rcvNxt, start)));
    start = t.rcvNxt;
  }
  const room = Math.max(0, seqDiff(t.rcvAdvEdge, start));
  const trimmed = data.length > room;
  if (trimmed) data = data.subarray(0, room);
  // the FIN takes no buffer space: it counts up to the window's edge (as Linux takes it)
  if (finAt !== null && !trimmed && seqGe(finAt, t.rcvNxt) && seqLe(finAt, t.rcvAdvEdge)) t.ooo.finSeq = finAt;
  if (data.length === 0) {
    if (seg.payload.length > 0) t.ackNow = true; // all old or beyond the window: a duplicate ACK
    return true;
  }
  if (start !== t.rcvNxt) {
    // out of order: keep it, and a duplicate ACK at once (RFC 5681 §4.2) with SACK blocks
    t.ooo.insert(start, data);
    t.ackNow = true;
    return true;
  }
  const fillsHole = !t.ooo.empty;
  t.recvQ.push(data, true);
  t.rcvNxt = seqAdd(t.rcvNxt, data.length);
  let delivered = data.length;
  if (fillsHole) {
    for (const d of t.ooo.takeAt(t.rcvNxt)) {
      t.recvQ.push(d, true);
      t.rcvNxt = seqAdd(t.rcvNxt, d.length);
      delivered += d.length;
    }
  }
  t.events.push({ kind: 'data', bytes: delivered, at: now });
  // ACK at once when a hole was filled (RFC 5681 §4.2) or more than one full-sized segment is
  // unacknowledged (§4.2: at least every second one); else one ACK when the batch is done —
  // or, with delayed ACKs, after delayedAckMs
  if (fillsHole || !t.ooo.empty || seqDiff(t.rcvNxt, t.lastAckSent) > ackAfter(t)) t.ackNow = true;
  else {
    t.ackPending = true;
    if (t.cfg.delayedAck && !t.timers.has('delayed-ack')) t.timers.set('delayed-ack', now + t.cfg.delayedAckMs);
  }
  return true;
}

/**
 * Unacknowledged bytes beyond which an ACK goes at once: more than one full-sized segment
 * (RFC 5681 §4.2: at least every second one), or with batch coalescing, GRO's 64 KiB.
 */
function ackAfter(t: TcbVariables): number {
  if (t.cfg.delayedAck || t.cfg.ackCoalesce <= 0) return t.rcvMss;
  return Math.max(t.rcvMss, Math.min(t.cfg.ackCoalesce, Math.floor(t.cfg.rcvBuf / 4)));
}

/** Eighth: FIN, once RCV.NXT has reached it. */
export function finStep(t: TcbVariables, now: number): void {
  if (t.ooo.finSeq === null || t.ooo.finSeq !== t.rcvNxt || t.finReceived) return;
  t.ooo.finSeq = null;
  t.finReceived = true;
  t.rcvNxt = seqAdd(t.rcvNxt, 1);
  t.ackNow = true;
  switch (t.state) {
    case 'SYN-RECEIVED':
    case 'ESTABLISHED':
      t.setState('CLOSE-WAIT', now);
      break;
    case 'FIN-WAIT-1':
      if (t.finAcked()) enterTimeWait(t, now);
      else t.setState('CLOSING', now);
      break;
    case 'FIN-WAIT-2':
      enterTimeWait(t, now);
      break;
    default:
      break;
  }
  t.events.push({ kind: 'eof', at: now }); // after the state change: a reader seeing EOF sees CLOSE-WAIT
}
