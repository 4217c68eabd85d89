// Timeouts (RFC 9293 §3.10.8) and the timers of closing: retransmission (RFC 6298, with the
// back-off and go-back-N of RFC 5681 §3.1 / RFC 6675 §5.1), the tail loss probe (RFC 8985 §7),
// persist (zero-window probes, RFC 9293 §3.8.6.1), delayed ACK, keep-alive (§3.8.4), 2·MSL in
// TIME-WAIT, and Linux's FIN-WAIT-2 timeout for orphaned connections.
import { seqAdd, seqDiff, seqGt } from '../wire/seq';
import type { TcpRepr } from '../wire/tcp';
import { dataSegment, sendNew } from './output';
import { ACK, EMPTY, RST_ACK, segment } from './segments';
import { SYNCHRONIZED, type TcbVariables } from './variables';

/** The earliest timer deadline, or null. */
export function nextDeadline(t: TcbVariables): number | null {
  let min: number | null = null;
  for (const at of t.timers.values()) if (min === null || at < min) min = at;
  return min;
}

/** TIME-WAIT for 2·MSL, every other timer stopped. */
export function enterTimeWait(t: TcbVariables, now: number): void {
  t.setState('TIME-WAIT', now);
  t.timers.clear();
  t.timers.set('time-wait', now + 2 * t.cfg.mslMs);
}

/** FIN-WAIT-2 of a connection the application closed ends after finWait2TimeoutMs (Linux tcp_fin_timeout). */
export function armFinWait2(t: TcbVariables, now: number): void {
  if (t.cfg.finWait2TimeoutMs !== null && !t.timers.has('fin-wait-2')) t.timers.set('fin-wait-2', now + t.cfg.finWait2TimeoutMs);
}

/** Runs the timers due at `now`; segments they send go to `out`. */
export function expireTimers(t: TcbVariables, now: number, out: TcpRepr[]): void {
  for (const [kind, at] of t.timers) {
    if (at > now) continue;
    t.timers.delete(kind);
    switch (kind) {
      case 'time-wait':
        t.toClosed(now);
        return;
      case 'fin-wait-2':
        if (t.state !== 'FIN-WAIT-2') break;
        t.events.push({ kind: 'reset', reason: 'fin-wait-2-timeout', at: now });
        t.toClosed(now);
        return;
      case 'delayed-ack':
        if (t.ackPending) t.ackNow = true;
        break;
      case 'tail-probe':
        tailProbe(t, now, out);
        break;
      case 'persist':
        persist(t, now, out);
        break;
      case 'keepalive':
        if (keepalive(t, now, out)) return;
        break;
      case 'retransmit':
        if (retransmitTimeout(t, now)) return;
        break;
    }
  }
}

/** The timers that wait for silence: tail loss probe, persist (zero window, SWS override), keep-alive. */
export function armIdleTimers(t: TcbVariables, now: number): void {
  if (!SYNCHRONIZED.has(t.state) || t.state === 'TIME-WAIT' || t.state === 'SYN-RECEIVED') return;
  const flight = seqDiff(t.sndNxt, t.sndUna);
  // tail loss probe (RFC 8985 §7.2): PTO = 2·SRTT; one segment in flight adds the worst-case delayed ACK (Linux TCP_DELACK_MAX)
  const tlp = t.cfg.tailLossProbe && !t.probeSent && t.recovery.phase === 'open';
  if (tlp && flight > 0 && t.rto.srttMs !== null && !t.timers.has('tail-probe')) {
    const pto = Math.max(2 * t.rto.srttMs, 10) + (flight <= t.effMss() ? 200 : 0);
    if (now + pto < (t.timers.get('retransmit') ?? Infinity)) t.timers.set('tail-probe', now + pto);
  }
  // persist: data waits, nothing is in flight to draw an ACK, and the window is shut or too small to use (RFC 9293 §3.8.6.1, §3.8.6.2.1)
  if (flight === 0 && t.unsent() > 0 && !t.timers.has('persist')) t.timers.set('persist', now + t.rto.rtoMs);
  if (t.keepalive && flight === 0 && t.unsent() <= 0) {
    const ka = t.keepalive;
    const at = t.keepaliveProbes === 0 ? t.lastHeardAt + ka.idleMs : (t.timers.get('keepalive') ?? now + ka.intervalMs);
    t.timers.set('keepalive', at);
  } else t.timers.delete('keepalive');
}

/** One probe (RFC 8985 §7.3): new data if the window allows, else the last segment again. */
function tailProbe(t: TcbVariables, now: number, out: TcpRepr[]): void {
  if (!seqGt(t.sndNxt, t.sndUna) || t.recovery.phase !== 'open') return;
  t.probeSent = true;
  if (t.unsent() > 0 && t.usableWindow() > 0) {
    t.probeNew = true;
    return;
  }
  // the last segment as it was sent (with the FIN if that went)
  const before = t.sent.lastStart(t.sndUna);
  const from = seqGt(before, t.sndUna) ? before : t.sndUna;
  t.events.push({ kind: 'retransmit', seq: from, bytes: seqDiff(t.sndNxt, from), timer: true, at: now });
  if (t.rttProbe) t.rttProbe = null;
  dataSegment(t, from, seqDiff(t.sndNxt, from), true, now, out);
}

/**
 * Data waits and nothing is in flight: the window is zero — a probe, an ACK just below SND.UNA
 * that draws the peer's window (as Linux sends it) — or too small for the SWS rules, whose
 * override timeout lets what fits go now (RFC 9293 §3.8.6.2.1 (4)).
 */
function persist(t: TcbVariables, now: number, out: TcpRepr[]): void {
  if (t.unsent() <= 0 || seqGt(t.sndNxt, t.sndUna)) return;
  const usable = t.usableWindow();
  if (usable > 0) {
    sendNew(t, Math.min(usable, t.effMss()), now, out);
    return;
  }
  out.push(segment(t, ACK, seqAdd(t.sndUna, -1), EMPTY, now));
  t.rto.expired();
  t.timers.set('persist', now + t.rto.rtoMs);
}

/**
 * A keep-alive <SEQ=SND.NXT−1> after the idle time, then every interval; unanswered ones end the
 * connection with an RST (as Linux does). Returns whether the connection ended.
 */
function keepalive(t: TcbVariables, now: number, out: TcpRepr[]): boolean {
  const ka = t.keepalive;
  if (!ka || seqGt(t.sndNxt, t.sndUna) || t.unsent() > 0) return false;
  if (t.keepaliveProbes >= ka.probes) {
    out.push(segment(t, RST_ACK, t.sndNxt, EMPTY, now));
    t.events.push({ kind: 'reset', reason: 'keepalive-timeout', at: now });
    t.toClosed(now);
    return true;
  }
  t.keepaliveProbes++;
  t.events.push({ kind: 'keepalive', probe: t.keepaliveProbes, at: now });
  out.push(segment(t, ACK, seqAdd(t.sndNxt, -1), EMPTY, now));
  t.timers.set('keepalive', now + ka.intervalMs);
  return false;
}

/**
 * The retransmission timer expired (RFC 6298 §5.4–5.6): back off, give up after the retry limit,
 * and otherwise resend — the SYN, or from SND.UNA with the window collapsed to one segment and
 * the scoreboard forgotten (RFC 5681 §3.1, RFC 6675 §5.1). A window shrunk to zero under data
 * in flight is probed this way without ever timing out while the peer answers (RFC 9293
 * §3.8.6.1 MUST-35/SHLD-17; Linux gives up only after TCP_RTO_MAX of silence). Returns whether
 * the connection ended.
 */
function retransmitTimeout(t: TcbVariables, now: number): boolean {
  const synState = t.state === 'SYN-SENT' || t.state === 'SYN-RECEIVED';
  const flight = seqDiff(t.sndNxt, t.sndUna);
  if (!synState && flight <= 0) return false;
  const zeroWindowProbe = !synState && t.sndWnd === 0 && now - t.lastAckAt < t.rto.cfg.maxMs;
  if (!zeroWindowProbe) t.retries++;
  if (t.retries > (synState ? t.cfg.synRetries : t.cfg.dataRetries)) {
    t.events.push({ kind: 'reset', reason: 'timeout', at: now });
    t.toClosed(now);
    return true;
  }
  t.rto.expired();
  t.rttProbe = null;
  t.timers.set('retransmit', now + t.rto.rtoMs);
  t.timers.delete('tail-probe');
  if (synState) {
    t.events.push({ kind: 'retransmit', seq: t.iss, bytes: 1, timer: true, at: now });
    t.synDue = true;
    return false;
  }
  const smss = t.effMss();
  t.cc.onRetransmitTimeout(flight, smss, t.rtoUna === t.sndUna);
  t.rtoUna = t.sndUna;
  t.recovery.onRetransmitTimeout(t.sndUna, t.sndNxt);
  t.forceRetransmit = true;
  t.events.push({ kind: 'retransmit', seq: t.sndUna, bytes: flight, timer: true, at: now });
  return false;
}
