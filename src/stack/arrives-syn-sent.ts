// SEGMENT ARRIVES in SYN-SENT (RFC 9293 §3.10.7.3): the ACK must acknowledge our SYN, an RST
// that does refuses the connection, and the peer's SYN either completes the handshake
// (ESTABLISHED) or, with no ACK of ours, starts a simultaneous open (SYN-RECEIVED, §3.5 figure 8).
import { seqGt, seqLe } from '../wire/seq';
import type { TcpRepr } from '../wire/tcp';
import { ackAdvance, updateWindow } from './arrives-ack';
import { finStep, text, urgent } from './arrives-text';
import { learnSyn } from './options';
import { rst } from './segments';
import type { TcbVariables } from './variables';

export function synSentArrives(t: TcbVariables, seg: TcpRepr, now: number, out: TcpRepr[]): void {
  const f = seg.flags;
  // first: the ACK must acknowledge our SYN
  if (f.ack && (seqLe(seg.ack, t.iss) || seqGt(seg.ack, t.sndNxt))) {
    if (!f.rst) out.push(rst(t, seg.ack, now));
    return;
  }
  const ackOk = f.ack && seqLe(t.sndUna, seg.ack) && seqLe(seg.ack, t.sndNxt);
  // second: RST
  if (f.rst) {
    if (ackOk) {
      t.events.push({ kind: 'reset', reason: 'refused', at: now });
      t.toClosed(now);
    }
    return;
  }
  // fourth: SYN
  if (!f.syn) return;
  learnSyn(t, seg, now);
  if (ackOk) ackAdvance(t, seg, now);
  if (seqGt(t.sndUna, t.iss)) {
    updateWindow(t, seg, true);
    t.setState('ESTABLISHED', now);
    t.ackNow = true;
    // other controls or text: on from the sixth step (urgent, text, FIN)
    urgent(t, seg, now);
    text(t, seg, now, out);
    finStep(t, now);
  } else {
    // simultaneous open (§3.5, figure 8): text and controls wait for ESTABLISHED
    t.setState('SYN-RECEIVED', now);
    t.synDue = true;
    if (seg.payload.length > 0 || f.fin) t.synText = seg;
  }
}
