// One TCP connection, sans IO (RFC 9293): the TCB never reads a clock, draws a random number or
// touches a socket.
//   process(seg, now) → segments to send in reply at once (RSTs, challenge ACKs, ACKs of
//                       unacceptable segments)
//   dispatch(now)     → segments due now (SYN, data, FIN, retransmissions, pending ACKs, expired
//                       timers)
// Events (state changes, data, EOF, resets) collect in `events` for the caller to drain.
//
// This file is the TCB as its user sees it: the calls of RFC 9293 §3.10 (OPEN: connect, accept;
// SEND: write; RECEIVE: read; CLOSE: shutdown, close; ABORT: abort; STATUS: state) and the two
// sans-IO entry points. The work is done by one module per part of the RFC's event processing,
// each a set of functions over the TCB's variables (variables.ts, where the shape is explained):
//   (SEGMENT ARRIVES, §3.10.7.3–4, is still below, as methods: it moves out next)
//   output.ts                sending: SYN, retransmissions, new data, FIN, owed ACKs
//   timers.ts                timeouts (§3.10.8) and the timers of closing (2·MSL, FIN-WAIT-2)
//   options.ts, segments.ts  option negotiation and PAWS; building our segments and windows
// Congestion control, loss recovery and out-of-order data live in congestion.ts, recovery.ts and
// reassembly.ts; the stack (stack.ts) answers for CLOSED and LISTEN (§3.10.7.1–2).
import { seq, seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt } from '../wire/seq';
import { segLen, type TcpRepr } from '../wire/tcp';
import type { TcbConfig, TcbInit } from './config';
import { learnSyn, option, pawsRejects, updateTsRecent } from './options';
import { output } from './output';
import { ack, EMPTY, rst, RST_ACK, segment, windowEdge } from './segments';
import { armFinWait2, armIdleTimers, enterTimeWait, expireTimers, nextDeadline } from './timers';
import { RECEIVES_TEXT, SYNCHRONIZED, TCP_STATES, TcbVariables, type TcpState } from './variables';

export { DEFAULT_TCB, type KeepaliveConfig, type TcbConfig, type TcbInit } from './config';
export { TCP_STATES, type ResetReason, type TcbEvent, type TcpState, type TimerKind } from './variables';

/** where ABORT sends an RST (RFC 9293 §3.10.5) */
const ABORT_RESETS: ReadonlySet<TcpState> = new Set(['SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT']);

export class Tcb extends TcbVariables {
  private constructor(cfg: TcbConfig, localPort: number, remotePort: number, passive: boolean, init: TcbInit, now: number) {
    super(cfg, localPort, remotePort, passive, init, now);
  }

  // ------------------------------------------------------------------ OPEN (RFC 9293 §3.10.1)

  /** Active OPEN: a TCB in SYN-SENT whose SYN goes out at the next dispatch. */
  static connect(cfg: TcbConfig, localPort: number, remotePort: number, now: number, init: TcbInit = {}): Tcb {
    const t = new Tcb(cfg, localPort, remotePort, false, init, now);
    t.setState('SYN-SENT', now);
    t.synDue = true;
    return t;
  }

  /** Passive OPEN answering `syn` (a listener got it): a TCB in SYN-RECEIVED whose SYN,ACK goes out at the next dispatch. */
  static accept(cfg: TcbConfig, syn: TcpRepr, now: number, init: TcbInit = {}): Tcb {
    const t = new Tcb(cfg, syn.dstPort, syn.srcPort, true, init, now);
    learnSyn(t, syn, now);
    t.#updateWindow(syn, true);
    t.setState('SYN-RECEIVED', now);
    t.synDue = true;
    return t;
  }

  // ------------------------------------------------------------------ SEND, RECEIVE (§3.10.2–3)

  /** SEND: queue bytes; returns how many were queued (none once the sending side is closed). */
  write(bytes: Uint8Array): number {
    const s = this.state;
    if (this.finQueued || !(s === 'SYN-SENT' || s === 'SYN-RECEIVED' || s === 'ESTABLISHED' || s === 'CLOSE-WAIT')) return 0;
    this.sendQ.push(bytes);
    return bytes.length;
  }

  /**
   * RECEIVE: take up to `max` bytes the application has not read. If that opens the window a
   * lot — at least doubling it, by at least the receiver's SWS step (RFC 9293 §3.8.6.2.2) — a
   * window update goes out at once, so a stalled sender learns it can go on (as Linux does).
   */
  read(max = Number.MAX_SAFE_INTEGER): Uint8Array {
    const out = this.recvQ.take(max);
    if (out.length) this.#windowOpened();
    return out;
  }

  /** RECEIVE everything unread, in the chunks it arrived in (no copy). */
  readChunks(): Uint8Array[] {
    const out = this.recvQ.takeChunks();
    if (out.length) this.#windowOpened();
    return out;
  }

  #windowOpened(): void {
    if (!SYNCHRONIZED.has(this.state) || this.finReceived || this.windowOverride !== null) return;
    const current = Math.max(0, seqDiff(this.rcvAdvEdge, this.rcvNxt));
    const edge = windowEdge(this);
    if (seqGt(edge, this.rcvAdvEdge) && seqDiff(edge, this.rcvNxt) >= 2 * current) this.ackNow = true;
  }

  // ------------------------------------------------------------------ CLOSE, ABORT (§3.10.4–5)

  /**
   * shutdown(SHUT_WR), RFC 9293's CLOSE: a FIN follows the queued data; receiving goes on. The
   * state changes at once, data still queued or not (§3.10.4: "enter FIN-WAIT-1"; Linux's
   * tcp_close_state), so a FIN that crosses ours finds FIN-WAIT-1 and leads to CLOSING.
   */
  shutdown(now: number): void {
    switch (this.state) {
      case 'LISTEN':
      case 'SYN-SENT':
        this.toClosed(now);
        return;
      case 'SYN-RECEIVED':
        this.finQueued = true; // FIN-WAIT-1 once ESTABLISHED (§3.10.4: "queue for processing after entering ESTABLISHED")
        return;
      case 'ESTABLISHED':
        this.finQueued = true;
        this.setState('FIN-WAIT-1', now);
        return;
      case 'CLOSE-WAIT':
        this.finQueued = true;
        this.setState('LAST-ACK', now);
        return;
      default:
        return; // already closing
    }
  }

  /**
   * close(): the application is done sending and receiving. Unread data is lost, so the
   * connection is reset instead (RFC 1122 §4.2.2.13, as Linux does); otherwise a FIN follows the
   * queued data, data arriving later draws an RST, and FIN-WAIT-2 may time out. Returns the
   * segments to send at once (the RST).
   */
  close(now: number): TcpRepr[] {
    if (this.recvQ.length > 0 && this.#abortResets()) return this.abort(now);
    this.orphaned = true;
    this.shutdown(now);
    if (this.state === 'FIN-WAIT-2') armFinWait2(this, now);
    return [];
  }

  /** ABORT: an RST where the RFC sends one, then CLOSED. Returns the segments to send. */
  abort(now: number): TcpRepr[] {
    const out: TcpRepr[] = [];
    if (this.#abortResets()) {
      out.push(segment(this, RST_ACK, this.sndNxt, EMPTY, now));
      this.events.push({ kind: 'reset', reason: 'rst-sent', at: now });
    }
    this.toClosed(now);
    return out;
  }

  /**
   * Whether ABORT sends an RST: in the states §3.10.5 names, and in CLOSING or LAST-ACK while our
   * FIN has not gone yet (data still queued), where the peer is owed more (Linux tcp_disconnect:
   * snd_nxt != write_seq).
   */
  #abortResets(): boolean {
    return ABORT_RESETS.has(this.state) || ((this.state === 'CLOSING' || this.state === 'LAST-ACK') && this.finSeq === null);
  }

  // ------------------------------------------------------------------ TIME-WAIT and a new incarnation

  /**
   * TIME-WAIT: would a SYN on this four-tuple open a new incarnation (RFC 6191 §2; RFC 9293
   * §3.10.7.4 via RFC 1122 §4.2.2.13)? With timestamps on both incarnations, its TSval must be
   * newer, or equal with a higher sequence number; otherwise its sequence number must be above
   * the old RCV.NXT.
   */
  acceptsNewIncarnation(syn: TcpRepr, newUsesTimestamps: boolean): boolean {
    if (this.state !== 'TIME-WAIT') return false;
    const ts = option(syn.options, 'timestamps');
    const seqHigher = seqGt(syn.seq, this.rcvNxt);
    if (this.tsEnabled && this.tsRecent !== null && ts && newUsesTimestamps) {
      const d = seqDiff(seq(ts.tsval), seq(this.tsRecent));
      return d > 0 || (d === 0 && seqHigher);
    }
    return seqHigher;
  }

  /** TIME-WAIT ends early: a new incarnation took the four-tuple. Its ISS should start above our SND.NXT. */
  reincarnated(now: number): void {
    if (this.state !== 'TIME-WAIT') return;
    this.events.push({ kind: 'reset', reason: 'reincarnated', at: now });
    this.toClosed(now);
  }

  // ------------------------------------------------------------------ SEGMENT ARRIVES (§3.10.7), sending, timeouts

  process(seg: TcpRepr, now: number): TcpRepr[] {
    const out: TcpRepr[] = [];
    if (this.state === 'CLOSED' || this.state === 'LISTEN') return out; // the stack answers for these
    this.lastHeardAt = now;
    this.keepaliveProbes = 0;
    if (this.state === 'SYN-SENT') this.#synSentArrives(seg, now, out);
    else this.#synchronizedArrives(seg, now, out);
    return out;
  }

  /** Everything due at `now`: expired timers, then SYN, retransmissions, data, FIN, a pending ACK. */
  dispatch(now: number): TcpRepr[] {
    const out: TcpRepr[] = [];
    expireTimers(this, now, out);
    if (this.state === 'CLOSED') return out;
    output(this, now, out);
    armIdleTimers(this, now);
    return out;
  }

  /** Whether a dispatch would send an ACK at once (the stack need not wait for the end of a batch of frames). */
  get ackDue(): boolean {
    return this.ackNow || this.synDue;
  }

  /** The earliest timer deadline, or null. */
  nextDeadline(): number | null {
    return nextDeadline(this);
  }

  /** Holds after every segment (the fuzz test checks it): throws on a broken invariant. */
  checkInvariants(): void {
    const s = this.state;
    const fail = (what: string): never => {
      throw new Error(`TCB invariant broken in ${s}: ${what}`);
    };
    if (!TCP_STATES.includes(s)) fail(`unknown state ${String(s)}`);
    const { sndUna, sndNxt, rcvNxt, rcvAdvEdge } = this;
    if (seqGt(sndUna, sndNxt)) fail(`SND.UNA ${sndUna} > SND.NXT ${sndNxt}`);
    const rec = this.recovery;
    if (rec.phase !== 'open') {
      if (seqGt(rec.highRxt, sndNxt)) fail(`retransmission cursor ${rec.highRxt} beyond SND.NXT ${sndNxt}`);
      if (seqGt(rec.recover, sndNxt)) fail(`recovery point ${rec.recover} beyond SND.NXT ${sndNxt}`);
    }
    for (const [l, r] of rec.scoreboard.ranges) {
      const inside = seqLt(l, r) && !seqLt(l, sndUna) && !seqGt(r, sndNxt);
      if (!inside) fail(`SACKed range [${l}, ${r}) outside (SND.UNA ${sndUna}, SND.NXT ${sndNxt}]`);
    }
    if (this.sndWnd < 0 || this.sndWnd > 65535 * 2 ** 14) fail(`SND.WND ${this.sndWnd}`);
    if (this.cc.cwnd < 1) fail(`cwnd ${this.cc.cwnd}`);
    if (SYNCHRONIZED.has(s)) {
      const edgeKept = this.windowOverride !== null || this.finReceived;
      if (seqLt(rcvAdvEdge, rcvNxt) && !edgeKept) fail(`advertised edge ${rcvAdvEdge} below RCV.NXT ${rcvNxt}`);
      for (const p of this.ooo.pieces) {
        if (!seqGt(p.seq, rcvNxt)) fail(`out-of-order data at ${p.seq} not above RCV.NXT ${rcvNxt}`);
        if (seqGt(seqAdd(p.seq, p.data.length), rcvAdvEdge)) fail(`out-of-order data beyond the advertised edge ${rcvAdvEdge}`);
      }
      const dataUnacked = seqDiff(seqAdd(this.sndBase, this.sendQ.length), sndUna);
      const baseAhead = this.finSeq === null && seqGt(this.sndBase, seqAdd(sndUna, 1));
      if (dataUnacked < -1 || baseAhead) fail(`send queue starts at ${this.sndBase}, SND.UNA ${sndUna}`);
    }
    const held = this.recvQ.length + this.ooo.bytes;
    if (this.windowOverride === null && held > this.cfg.rcvBuf) {
      fail(`receive queue ${this.recvQ.length} + ${this.ooo.bytes} out of order beyond the buffer ${this.cfg.rcvBuf}`);
    }
  }

  #synSentArrives(seg: TcpRepr, now: number, out: TcpRepr[]): void {
    const f = seg.flags;
    // first: the ACK must acknowledge our SYN
    if (f.ack && (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndNxt))) {
      if (!f.rst) out.push(rst(this, seg.ack, now));
      return;
    }
    const ackOk = f.ack && seqLe(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndNxt);
    // second: RST
    if (f.rst) {
      if (ackOk) {
        this.events.push({ kind: 'reset', reason: 'refused', at: now });
        this.toClosed(now);
      }
      return;
    }
    // fourth: SYN
    if (!f.syn) return;
    learnSyn(this, seg, now);
    if (ackOk) this.#ackAdvance(seg, now);
    if (seqGt(this.sndUna, this.iss)) {
      this.#updateWindow(seg, true);
      this.setState('ESTABLISHED', now);
      this.ackNow = true;
      // other controls or text: on from the sixth step (urgent, text, FIN)
      this.#urgent(seg, now);
      this.#text(seg, now, out);
      this.#finStep(now);
    } else {
      // simultaneous open (§3.5, figure 8): text and controls wait for ESTABLISHED
      this.setState('SYN-RECEIVED', now);
      this.synDue = true;
      if (seg.payload.length > 0 || f.fin) this.synText = seg;
    }
  }

  #synchronizedArrives(seg: TcpRepr, now: number, out: TcpRepr[]): void {
    if (this.state === 'SYN-RECEIVED' && seg.flags.syn && !seg.flags.ack && seg.seq === this.irs) {
      this.synDue = true; // the peer retransmitted its SYN: our SYN,ACK was lost
      return;
    }
    if (this.state === 'TIME-WAIT' && this.#timeWaitArrives(seg, now, out)) return;
    const controlOnly = this.#checkSequence(seg, now, out); // first
    if (controlOnly === null) return;
    if (seg.flags.rst) return this.#checkRst(seg, now, out); // second
    // third (security) has nothing to check: twlab uses no compartments (RFC 9293 §3.10.7.4)
    if (seg.flags.syn && !this.#simultaneousSynAck(seg) && !this.#checkSyn(now, out)) return; // fourth
    if (!seg.flags.ack) return; // fifth: no ACK, no processing
    if (!this.#checkAck(seg, now, out)) return;
    updateTsRecent(this, seg, now); // RFC 7323 §4.3: once the segment has passed the ACK check
    if (this.state === 'CLOSED' || this.state === 'TIME-WAIT' || this.state === 'CLOSING' || this.state === 'LAST-ACK') return;
    if (controlOnly) {
      // a zero window takes ACKs, URGs and RSTs only: text and FIN wait, the reply says the window is still shut
      this.#urgent(seg, now);
      if (seg.payload.length > 0 || seg.flags.fin) this.ackNow = true;
      return;
    }
    this.#urgent(seg, now); // sixth
    if (!this.#text(seg, now, out)) return; // seventh (data after close() resets the connection)
    this.#finStep(now); // eighth
  }

  /** SYN-RECEIVED after a simultaneous open: the peer's SYN,ACK acknowledges our SYN (figure 8). */
  #simultaneousSynAck(seg: TcpRepr): boolean {
    return this.state === 'SYN-RECEIVED' && !this.passive && seg.flags.syn && seg.flags.ack && seg.seq === this.irs;
  }

  /**
   * TIME-WAIT as Linux runs it (net/ipv4/tcp_minisocks.c): a retransmitted FIN is re-ACKed and
   * restarts 2·MSL (§3.10.7.4); anything else but an RST, a SYN or a bare ACK at RCV.NXT is
   * answered with an ACK, text never taken. Returns whether the segment was handled here.
   */
  #timeWaitArrives(seg: TcpRepr, now: number, out: TcpRepr[]): boolean {
    const f = seg.flags;
    if (f.rst || f.syn) return false;
    if (this.cfg.paws && pawsRejects(this, seg, now)) {
      this.#replyAck(now, out);
      return true;
    }
    if (f.fin && seqAdd(seg.seq, segLen(seg)) === this.rcvNxt) {
      this.timers.set('time-wait', now + 2 * this.cfg.mslMs);
      this.events.push({ kind: 'time-wait-restart', at: now });
      this.#replyAck(now, out);
      return true;
    }
    if (seg.seq !== this.rcvNxt || segLen(seg) > 0) this.#replyAck(now, out);
    return true;
  }

  /**
   * First: is the segment acceptable (PAWS, then the four cases of §3.10.7.4)? An unacceptable
   * one draws an ACK (unless it is an RST) and is dropped: null. Otherwise whether only its
   * controls count (a zero window takes valid ACKs, URGs and RSTs at RCV.NXT).
   */
  #checkSequence(seg: TcpRepr, now: number, out: TcpRepr[]): boolean | null {
    if (this.cfg.paws && pawsRejects(this, seg, now)) {
      this.#replyAck(now, out);
      return null;
    }
    if (this.#simultaneousSynAck(seg)) return false;
    const len = segLen(seg);
    const wnd = Math.max(0, seqDiff(this.rcvAdvEdge, this.rcvNxt));
    const end = seqAdd(this.rcvNxt, wnd);
    let acceptable: boolean;
    if (len === 0) acceptable = wnd === 0 ? seg.seq === this.rcvNxt : seqInRange(seg.seq, this.rcvNxt, end);
    else if (wnd === 0) acceptable = false;
    else acceptable = seqInRange(seg.seq, this.rcvNxt, end) || seqInRange(seqAdd(seg.seq, len - 1), this.rcvNxt, end);
    if (acceptable) return false;
    if (wnd === 0 && seg.seq === this.rcvNxt) return true;
    if (!seg.flags.rst) this.#replyAck(now, out);
    return null;
  }

  /** Second: RST (RFC 5961 §3.2: only an exact match resets; in the window, a challenge ACK). */
  #checkRst(seg: TcpRepr, now: number, out: TcpRepr[]): void {
    if (this.state === 'TIME-WAIT' && this.cfg.rfc1337) return; // no assassination (RFC 1337 §3)
    if (seg.seq !== this.rcvNxt) {
      this.#challengeAck('rst', now, out);
      return;
    }
    if (this.state === 'SYN-RECEIVED') {
      if (this.passive) {
        this.toClosed(now); // back to LISTEN: the listener lives on in the stack
        return;
      }
      this.events.push({ kind: 'reset', reason: 'refused', at: now }); // came from SYN-SENT: refused
      this.toClosed(now);
      return;
    }
    this.events.push({ kind: 'reset', reason: 'rst-received', at: now });
    this.toClosed(now);
  }

  /** Fourth: a SYN in a synchronized state (RFC 5961 §4: a challenge ACK). Returns whether processing goes on. */
  #checkSyn(now: number, out: TcpRepr[]): boolean {
    if (this.state === 'SYN-RECEIVED' && this.passive) {
      this.toClosed(now); // back to LISTEN
      return false;
    }
    this.#challengeAck('syn', now, out);
    return false;
  }

  /** Fifth: the ACK field. Returns whether processing goes on. */
  #checkAck(seg: TcpRepr, now: number, out: TcpRepr[]): boolean {
    if (this.state === 'SYN-RECEIVED') {
      if (!(seqLt(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndNxt))) {
        out.push(rst(this, seg.ack, now));
        return false;
      }
      const simultaneous = this.#simultaneousSynAck(seg);
      this.#updateWindow(seg, true);
      this.#ackAdvance(seg, now);
      this.setState('ESTABLISHED', now);
      if (this.finQueued) this.setState('FIN-WAIT-1', now); // CLOSE was called in SYN-RECEIVED
      if (simultaneous) {
        this.ackNow = true;
        return false;
      }
      if (this.synText) {
        const held = this.synText;
        this.synText = null;
        this.#text(held, now, out);
        this.#finStep(now);
      }
    }
    // RFC 5961 §5.2: acceptable only within SND.UNA − MAX.SND.WND ≤ SEG.ACK ≤ SND.NXT
    if (seqGt(seg.ack, this.sndNxt)) {
      this.#challengeAck('ack', now, out);
      return false;
    }
    if (seqLt(seg.ack, seqAdd(this.sndUna, -Math.max(this.maxSndWnd, 1)))) {
      this.#challengeAck('ack', now, out);
      return false;
    }
    this.lastAckAt = now;
    const finWasAcked = this.finAcked();
    // an old ACK (below SND.UNA) updates nothing, whatever its SEQ (§3.10.7.4: only SND.UNA ≤ SEG.ACK ≤ SND.NXT updates the window)
    const mayUpdateWindow = seqGe(seg.ack, this.sndUna);
    if (seqGt(seg.ack, this.sndUna)) this.#ackAdvance(seg, now);
    else this.#sameAck(seg, now);
    if (mayUpdateWindow) this.#updateWindow(seg, false);
    const finAcked = this.finAcked();
    switch (this.state) {
      case 'FIN-WAIT-1':
        if (finAcked) {
          this.setState('FIN-WAIT-2', now);
          if (this.orphaned) armFinWait2(this, now);
        }
        return true;
      case 'CLOSING':
        if (finAcked) enterTimeWait(this, now);
        return false;
      case 'LAST-ACK':
        if (finAcked && !finWasAcked) this.toClosed(now);
        return false;
      default:
        return true;
    }
  }

  /** A challenge ACK (RFC 5961 §3–5), at most challengeAckLimit of them (§7). */
  #challengeAck(reason: 'rst' | 'syn' | 'ack', now: number, out: TcpRepr[]): void {
    const limit = this.cfg.challengeAckLimit;
    if (limit) {
      const w = this.challengeWindow;
      if (now - w.start >= limit.perMs) {
        w.start = now;
        w.count = 0;
      }
      if (w.count >= limit.count) {
        this.events.push({ kind: 'challenge-ack-limited', reason, at: now });
        return;
      }
      w.count++;
    }
    this.events.push({ kind: 'challenge-ack', reason, at: now });
    this.#replyAck(now, out);
  }

  /** An ACK in reply to the segment at hand (or, while ACKs are held, one owed: it goes as soon as they are released). */
  #replyAck(now: number, out: TcpRepr[]): void {
    if (this.holdAcks) {
      this.ackNow = true;
      return;
    }
    out.push(ack(this, now));
  }

  /**
   * The ACK advanced SND.UNA: drop what it covers from the send queue, measure the RTT (from the
   * echoed timestamp, or the one timed segment — never a retransmitted one, Karn), and let loss
   * recovery and congestion control see it.
   */
  #ackAdvance(seg: TcpRepr, now: number): void {
    const ack = seg.ack;
    const acked = seqDiff(ack, this.sndUna);
    const dataAcked = Math.max(0, Math.min(seqDiff(ack, this.sndBase), this.sendQ.length));
    this.sendQ.drop(dataAcked);
    this.sndBase = seqAdd(this.sndBase, dataAcked);
    this.sndUna = ack;
    this.sent.forget(ack);
    if (dataAcked) this.events.push({ kind: 'acked', bytes: dataAcked, at: now });
    // RTT (RFC 6298 §2, RFC 7323 §4.1). Only a valid sample ends the back-off (RFC 6298 §5, Karn):
    // an ACK of a retransmitted segment without timestamps says nothing about the path.
    const ts = this.tsEnabled ? option(seg.options, 'timestamps') : undefined;
    if (ts && ts.tsecr !== 0) this.rto.sample(((now + this.tsOffset) >>> 0) - ts.tsecr);
    else if (this.rttProbe && seqGe(ack, this.rttProbe.seq)) this.rto.sample(now - this.rttProbe.at);
    if (this.rttProbe && seqGe(ack, this.rttProbe.seq)) this.rttProbe = null;
    this.retries = 0;
    this.rtoUna = null;
    this.probeSent = false;
    this.timers.delete('tail-probe');
    if (this.state !== 'SYN-SENT' && this.state !== 'SYN-RECEIVED') {
      if (this.sackEnabled) this.#learnSack(seg);
      const smss = this.effMss();
      const phase = this.recovery.phase;
      const r = this.recovery.onNewAck(ack, acked, smss);
      if (r === 'exit' && phase === 'fast-recovery') this.cc.onRecoveryEnd(seqDiff(this.sndNxt, this.sndUna), smss);
      else if (phase !== 'fast-recovery') this.cc.onAck(dataAcked || acked, smss);
      if (r === 'partial') {
        // NewReno (RFC 6582 §3.2 step 5): the segment now at SND.UNA is lost too, and goes at once
        if (!this.sackEnabled) this.forceRetransmit = true;
        const bytes = Math.min(smss, seqDiff(this.sndNxt, this.sndUna));
        this.events.push({ kind: 'retransmit', seq: this.sndUna, bytes, timer: false, at: now });
      }
      this.#detectLoss(now);
    }
    // RFC 6298 §5.3: restart the timer while data is outstanding
    if (seqGt(this.sndNxt, this.sndUna)) this.timers.set('retransmit', now + this.rto.rtoMs);
    else this.timers.delete('retransmit');
  }

  /** An ACK that does not advance SND.UNA: maybe a duplicate ACK (RFC 5681 §2), maybe new SACK information. */
  #sameAck(seg: TcpRepr, now: number): void {
    if (this.sackEnabled) this.#learnSack(seg);
    const bare = seg.payload.length === 0 && !seg.flags.syn && !seg.flags.fin;
    const duplicate = seg.ack === this.sndUna && bare && seqGt(this.sndNxt, this.sndUna) && this.#windowOf(seg) === this.sndWnd;
    if (duplicate && this.recovery.phase !== 'loss') this.recovery.onDuplicateAck();
    this.#detectLoss(now);
  }

  /** Starts fast recovery when loss recovery sees DupThresh duplicate ACKs or as much SACKed (RFC 5681 §3.2, RFC 6675 §5). */
  #detectLoss(now: number): void {
    const smss = this.effMss();
    if (!this.recovery.lossDetected(this.sndUna, this.#dupThresh(), smss)) return;
    const flight = seqDiff(this.sndNxt, this.sndUna);
    this.cc.onFastRetransmit(flight, smss);
    this.recovery.enterFastRecovery(this.sndUna, this.sndNxt, smss);
    this.forceRetransmit = true;
    this.events.push({ kind: 'retransmit', seq: this.sndUna, bytes: Math.min(smss, flight), timer: false, at: now });
  }

  #learnSack(seg: TcpRepr): void {
    const opt = option(seg.options, 'sack');
    if (opt) this.recovery.scoreboard.add(opt.blocks, seqGt(seg.ack, this.sndUna) ? seg.ack : this.sndUna, this.sndNxt);
  }

  /**
   * Duplicate ACKs (or SACKed segments) that mean loss: 3, or fewer when so little is in flight and
   * nothing new is waiting that three could never come — Early Retransmit (RFC 5827 §3.1).
   */
  #dupThresh(): number {
    const unsent = this.unsent();
    const outstanding = Math.ceil(seqDiff(this.sndNxt, this.sndUna) / this.effMss());
    return outstanding >= 2 && outstanding < 4 && unsent <= 0 ? outstanding - 1 : 3;
  }

  /** SEG.WND in bytes: scaled, except on a SYN (RFC 7323 §2.2). */
  #windowOf(seg: TcpRepr): number {
    return seg.flags.syn ? seg.window : seg.window * 2 ** this.sndShift;
  }

  /** SND.WND from a segment that is newer than the last update (RFC 9293 §3.10.7.4, fifth); `force` for the SYN's. */
  #updateWindow(seg: TcpRepr, force: boolean): void {
    if (!(force || seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, seg.ack)))) return;
    const was = this.sndWnd;
    this.sndWnd = this.#windowOf(seg);
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    if (this.sndWnd > this.maxSndWnd) this.maxSndWnd = this.sndWnd;
    if (this.sndWnd > 0 && was === 0) {
      this.timers.delete('persist');
      // what went out as probes into the shut window was not taken: it goes again from SND.UNA
      if (this.recovery.phase === 'loss') {
        this.recovery.highRxt = this.sndUna;
        this.forceRetransmit = true;
      } else if (this.finSeq !== null && this.sndUna === this.finSeq) {
        this.finResendDue = true; // our FIN alone is outstanding: the shut window dropped it (Linux < 6.10 does), it goes again now
      }
    }
  }

  /**
   * Sixth: URG. RCV.UP advances; the application hears of it (RFC 9293 §3.10.7.4, RFC 6093: the
   * pointer is the byte after the urgent data).
   */
  #urgent(seg: TcpRepr, now: number): void {
    if (!seg.flags.urg || !RECEIVES_TEXT.has(this.state)) return;
    const up = seqAdd(seg.seq, seg.urgent);
    if (seqGt(up, this.rcvUp) && seqGt(up, this.rcvNxt)) {
      this.rcvUp = up;
      this.events.push({ kind: 'urgent', pointer: up, at: now });
    }
  }

  /**
   * Seventh: segment text. Trimmed to RCV.NXT and the window's right edge; in order it goes to
   * the receive queue (with whatever it releases from the reassembly queue), out of order into
   * the reassembly queue. A FIN is remembered at its sequence number (the eighth step takes it
   * once RCV.NXT gets there), so one that came ahead of missing data is not lost. Returns false
   * when the text reset the connection instead (new data after close()).
   */
  #text(seg: TcpRepr, now: number, out: TcpRepr[]): boolean {
    let start = seg.flags.syn ? seqAdd(seg.seq, 1) : seg.seq;
    let data = seg.payload;
    const finAt = seg.flags.fin ? seqAdd(start, data.length) : null;
    if (!RECEIVES_TEXT.has(this.state)) {
      // after the peer's FIN (or in a state that takes none): nothing is taken, an ACK says where we are
      if (data.length > 0) this.ackNow = true;
      return true;
    }
    if (this.orphaned && data.length > 0 && seqGt(seqAdd(start, data.length), this.rcvNxt)) {
      // new data after close(): it would be lost, so say so (RFC 1122 §4.2.2.13; Linux answers <SEQ=SEG.ACK><CTL=RST>)
      out.push(rst(this, seg.ack, now));
      this.events.push({ kind: 'reset', reason: 'rst-sent', at: now });
      this.toClosed(now);
      return false;
    }
    if (data.length > this.rcvMss) this.rcvMss = Math.min(data.length, this.ownMss());
    if (seqLt(start, this.rcvNxt)) {
      data = data.subarray(Math.min(data.length, seqDiff(this.rcvNxt, start)));
      start = this.rcvNxt;
    }
    const room = Math.max(0, seqDiff(this.rcvAdvEdge, start));
    const trimmed = data.length > room;
    if (trimmed) data = data.subarray(0, room);
    // the FIN takes no buffer space: it counts up to the window's edge (as Linux takes it)
    if (finAt !== null && !trimmed && seqGe(finAt, this.rcvNxt) && seqLe(finAt, this.rcvAdvEdge)) this.ooo.finSeq = finAt;
    if (data.length === 0) {
      if (seg.payload.length > 0) this.ackNow = true; // all old or beyond the window: a duplicate ACK
      return true;
    }
    if (start !== this.rcvNxt) {
      // out of order: keep it, and a duplicate ACK at once (RFC 5681 §4.2) with SACK blocks
      this.ooo.insert(start, data);
      this.ackNow = true;
      return true;
    }
    const fillsHole = !this.ooo.empty;
    this.recvQ.push(data, true);
    this.rcvNxt = seqAdd(this.rcvNxt, data.length);
    let delivered = data.length;
    if (fillsHole) {
      for (const d of this.ooo.takeAt(this.rcvNxt)) {
        this.recvQ.push(d, true);
        this.rcvNxt = seqAdd(this.rcvNxt, d.length);
        delivered += d.length;
      }
    }
    this.events.push({ kind: 'data', bytes: delivered, at: now });
    // ACK at once when a hole was filled (RFC 5681 §4.2) or more than one full-sized segment is
    // unacknowledged (§4.2: at least every second one); else one ACK when the batch is done —
    // or, with delayed ACKs, after delayedAckMs
    if (fillsHole || !this.ooo.empty || seqDiff(this.rcvNxt, this.lastAckSent) > this.#ackAfter()) this.ackNow = true;
    else {
      this.ackPending = true;
      if (this.cfg.delayedAck && !this.timers.has('delayed-ack')) this.timers.set('delayed-ack', now + this.cfg.delayedAckMs);
    }
    return true;
  }

  /**
   * Unacknowledged bytes beyond which an ACK goes at once: more than one full-sized segment
   * (RFC 5681 §4.2: at least every second one), or with batch coalescing, GRO's 64 KiB.
   */
  #ackAfter(): number {
    if (this.cfg.delayedAck || this.cfg.ackCoalesce <= 0) return this.rcvMss;
    return Math.max(this.rcvMss, Math.min(this.cfg.ackCoalesce, Math.floor(this.cfg.rcvBuf / 4)));
  }

  /** Eighth: FIN, once RCV.NXT has reached it. */
  #finStep(now: number): void {
    if (this.ooo.finSeq === null || this.ooo.finSeq !== this.rcvNxt || this.finReceived) return;
    this.ooo.finSeq = null;
    this.finReceived = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.ackNow = true;
    switch (this.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.setState('CLOSE-WAIT', now);
        break;
      case 'FIN-WAIT-1':
        if (this.finAcked()) enterTimeWait(this, now);
        else this.setState('CLOSING', now);
        break;
      case 'FIN-WAIT-2':
        enterTimeWait(this, now);
        break;
      default:
        break;
    }
    this.events.push({ kind: 'eof', at: now }); // after the state change: a reader seeing EOF sees CLOSE-WAIT
  }
}
