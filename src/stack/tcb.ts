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
//   arrives-syn-sent.ts      SEGMENT ARRIVES in SYN-SENT (§3.10.7.3)
//   arrives-synchronized.ts  SEGMENT ARRIVES in SYN-RECEIVED … TIME-WAIT, steps one to five (§3.10.7.4)
//   arrives-ack.ts           the fifth step's work on the send side: SND.UNA, RTT, duplicate ACKs, SND.WND
//   arrives-text.ts          steps six to eight: URG, segment text, FIN
//   output.ts                sending: SYN, retransmissions, new data, FIN, owed ACKs
//   timers.ts                timeouts (§3.10.8) and the timers of closing (2·MSL, FIN-WAIT-2)
//   options.ts, segments.ts  option negotiation and PAWS; building our segments and windows
// Congestion control, loss recovery and out-of-order data live in congestion.ts, recovery.ts and
// reassembly.ts; the stack (stack.ts) answers for CLOSED and LISTEN (§3.10.7.1–2).
import { seq, seqAdd, seqDiff, seqGt, seqLt } from '../wire/seq';
import type { TcpOption, TcpRepr } from '../wire/tcp';
import { updateWindow } from './arrives-ack';
import { synSentArrives } from './arrives-syn-sent';
import { synchronizedArrives } from './arrives-synchronized';
import type { TcbConfig, TcbInit } from './config';
import { learnSyn, option } from './options';
import { output } from './output';
import { EMPTY, RST_ACK, segment, timestampOptions, windowEdge } from './segments';
import { armFinWait2, armIdleTimers, expireTimers, nextDeadline } from './timers';
import { SYNCHRONIZED, TCP_STATES, TcbVariables, type TcpState } from './variables';

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
    updateWindow(t, syn, true);
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
    if (this.state === 'SYN-SENT') synSentArrives(this, seg, now, out);
    else synchronizedArrives(this, seg, now, out);
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

  /** The timestamps option our next segment would carry at `now` (none if not negotiated): for segments a script crafts. */
  timestampOptions(now: number, ack: boolean): TcpOption[] {
    return timestampOptions(this, now, ack);
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
}
