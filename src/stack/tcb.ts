// One TCP connection, sans IO (RFC 9293): the TCB never reads a clock or touches a socket.
//   process(seg, now) → segments to send in reply (ACKs, RSTs, challenge ACKs)
//   dispatch(now)     → segments due now (SYN, data, FIN, pending ACKs, expired timers)
// Events (state changes, data, EOF, resets) collect in `events` for the caller to drain.
import { seq, seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt, type SeqNumber } from '../wire/seq';
import { NO_FLAGS, segLen, type TcpFlags, type TcpOption, type TcpRepr } from '../wire/tcp';
import { ByteQueue } from './bytes';
import { DEFAULT_RTO, RtoEstimator, type RtoConfig } from './rto';

/** The eleven states of RFC 9293 §3.3.2, printed as the RFC prints them. */
export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT';

export const TCP_STATES: readonly TcpState[] = ['CLOSED', 'LISTEN', 'SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK', 'TIME-WAIT'];

export type TimerKind = 'retransmit' | 'tail-probe' | 'persist' | 'delayed-ack' | 'time-wait';

export interface TcbConfig {
  /** MSS we announce and never exceed when sending */
  mss: number;
  /** window scale shift we offer in our SYN; null: no WS option (RFC 7323 §2) */
  wscale: number | null;
  /** offer timestamps in our SYN (RFC 7323 §3) */
  timestamps: boolean;
  /** PAWS on receive (RFC 7323 §5): reject segments with an older timestamp */
  paws: boolean;
  /** offer SACK-permitted (RFC 2018): we then send SACK blocks, and skip SACKed data when retransmitting */
  sackPermitted: boolean;
  /** receive buffer: the window we advertise when the application reads everything */
  rcvBuf: number;
  /** initial sequence number; random when absent */
  isn?: number;
  /** timestamp clock offset (TSval = now ms + offset); random when absent */
  tsOffset?: number;
  /** maximum segment lifetime in ms; TIME-WAIT lasts 2·MSL (Linux: 60 s) */
  mslMs: number;
  /** delay ACKs (RFC 9293 §3.8.6.3): every second full segment or after delayedAckMs */
  delayedAck: boolean;
  delayedAckMs: number;
  rto: RtoConfig;
  /** retransmissions of a SYN / of data before giving up (Linux: tcp_syn_retries 6, tcp_retries2 15) */
  synRetries: number;
  dataRetries: number;
  /** initial congestion window in segments (RFC 6928) */
  initialCwnd: number;
  /** send a tail loss probe after ~2·SRTT of silence (RFC 8985 §7), as Linux does */
  tailLossProbe: boolean;
  /** ignore RSTs in TIME-WAIT (RFC 1337's fix; Linux: net.ipv4.tcp_rfc1337) */
  rfc1337: boolean;
}

export const DEFAULT_TCB: TcbConfig = {
  mss: 1460,
  wscale: 7,
  timestamps: true,
  paws: true,
  sackPermitted: true,
  rcvBuf: 256 * 1024,
  mslMs: 30_000,
  delayedAck: false,
  delayedAckMs: 40,
  rto: DEFAULT_RTO,
  synRetries: 6,
  dataRetries: 15,
  initialCwnd: 10,
  tailLossProbe: true,
  rfc1337: false,
};

export type TcbEvent =
  | { kind: 'state'; from: TcpState; to: TcpState; at: number }
  | { kind: 'data'; bytes: number; at: number }
  | { kind: 'eof'; at: number }
  | { kind: 'acked'; bytes: number; at: number }
  | { kind: 'reset'; reason: 'rst-received' | 'rst-sent' | 'timeout' | 'refused'; at: number }
  | { kind: 'paws-reject'; tsval: number; tsRecent: number; at: number }
  | { kind: 'challenge-ack'; reason: 'rst' | 'syn' | 'ack'; at: number }
  | { kind: 'retransmit'; seq: SeqNumber; bytes: number; timer: boolean; at: number }
  | { kind: 'time-wait-restart'; at: number };

const SYNCHRONIZED: ReadonlySet<TcpState> = new Set(['SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK', 'TIME-WAIT']);
const RECEIVES_TEXT: ReadonlySet<TcpState> = new Set(['ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2']);
const SENDS_DATA: ReadonlySet<TcpState> = new Set(['ESTABLISHED', 'CLOSE-WAIT', 'FIN-WAIT-1', 'CLOSING', 'LAST-ACK']);

function randomU32(): number {
  return (Math.random() * 0x100000000) >>> 0;
}

function option<K extends TcpOption['kind']>(opts: readonly TcpOption[], kind: K): Extract<TcpOption, { kind: K }> | undefined {
  return opts.find((o) => o.kind === kind) as Extract<TcpOption, { kind: K }> | undefined;
}

const EMPTY = new Uint8Array(0);

export class Tcb {
  readonly cfg: TcbConfig;
  readonly localPort: number;
  readonly remotePort: number;
  /** opened by a passive OPEN (a listener): a reset in SYN-RECEIVED returns to LISTEN */
  readonly passive: boolean;
  state: TcpState = 'CLOSED';

  // send sequence space (RFC 9293 §3.3.1)
  iss: SeqNumber;
  sndUna: SeqNumber;
  sndNxt: SeqNumber;
  /** highest sequence number sent so far (SND.NXT before a go-back retransmission) */
  sndMax: SeqNumber;
  sndWnd = 0;
  sndWl1: SeqNumber = seq(0);
  sndWl2: SeqNumber = seq(0);
  maxSndWnd = 0;
  /** sequence number of the first byte in sendQ */
  sndBase: SeqNumber;
  /** our FIN's sequence number once sent */
  finSeq: SeqNumber | null = null;
  /** the application has closed its sending side */
  finQueued = false;

  // receive sequence space
  irs: SeqNumber = seq(0);
  rcvNxt: SeqNumber = seq(0);
  /** right edge of the window we last advertised */
  rcvAdvEdge: SeqNumber = seq(0);
  finReceived = false;
  /** a FIN that arrived ahead of missing data */
  #pendingFin: SeqNumber | null = null;

  // negotiated options
  peerMss = 536;
  #peerWs = false;
  sndShift = 0; // the peer's window scale: applies to windows we receive
  rcvShift = 0; // ours: applies to windows we send
  tsEnabled = false;
  sackEnabled = false;
  tsRecent: number | null = null;
  tsRecentAt = 0;
  lastAckSent: SeqNumber = seq(0);
  readonly tsOffset: number;

  // buffers
  readonly sendQ = new ByteQueue();
  readonly recvQ = new ByteQueue();
  readonly ooo: Array<{ seq: SeqNumber; data: Uint8Array }> = [];
  /** where the latest out-of-order segment started: its block goes first (RFC 2018 §4) */
  #lastOoo: SeqNumber | null = null;
  /** ranges above SND.UNA the peer has SACKed (the sender's scoreboard) */
  readonly sacked: Array<[SeqNumber, SeqNumber]> = [];

  // timers and recovery
  readonly timers = new Map<TimerKind, number>();
  readonly rto: RtoEstimator;
  retries = 0;
  cwnd: number;
  ssthresh = Number.MAX_SAFE_INTEGER;
  dupAcks = 0;
  /** in loss recovery until SND.UNA passes this point (RFC 6582 "recover", RFC 6675 RecoveryPoint) */
  recoverUntil: SeqNumber | null = null;
  /** in recovery: everything below this has been retransmitted once already */
  #highRetx: SeqNumber = seq(0);
  /** a single segment to retransmit at the next dispatch (fast retransmit, partial ACK) */
  #retxAt: SeqNumber | null = null;
  #probeSent = false;
  #rttProbe: { seq: SeqNumber; at: number } | null = null;
  #synDue = false;
  #ackPending = false;
  #ackNow = false;
  #unackedSegments = 0;

  // scripting hooks
  /** hold pure ACKs back (data segments still carry the ACK field) */
  holdAcks = false;
  /** advertise this window (bytes) instead of the free buffer space; null: the buffer decides */
  windowOverride: number | null = null;

  readonly events: TcbEvent[] = [];

  private constructor(cfg: TcbConfig, localPort: number, remotePort: number, passive: boolean) {
    this.cfg = cfg;
    this.localPort = localPort;
    this.remotePort = remotePort;
    this.passive = passive;
    this.iss = seq(cfg.isn ?? randomU32());
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.sndBase = seqAdd(this.iss, 1);
    this.tsOffset = cfg.tsOffset ?? randomU32();
    this.rto = new RtoEstimator(cfg.rto);
    this.cwnd = cfg.initialCwnd * cfg.mss;
  }

  /** Active OPEN: a TCB in SYN-SENT whose SYN goes out at the next dispatch. */
  static connect(cfg: TcbConfig, localPort: number, remotePort: number, now: number): Tcb {
    const t = new Tcb(cfg, localPort, remotePort, false);
    t.#setState('SYN-SENT', now);
    t.#synDue = true;
    return t;
  }

  /** Passive OPEN answering `syn` (a listener got it): a TCB in SYN-RECEIVED whose SYN,ACK goes out at the next dispatch. */
  static accept(cfg: TcbConfig, syn: TcpRepr, now: number): Tcb {
    const t = new Tcb(cfg, syn.dstPort, syn.srcPort, true);
    t.state = 'LISTEN'; // the listener's state this TCB was born from
    t.#learnSyn(syn, now, true);
    t.#setState('SYN-RECEIVED', now);
    t.#synDue = true;
    return t;
  }

  // ------------------------------------------------------------------ user calls (RFC 9293 §3.10)

  /** SEND: queue bytes; returns how many were queued (none once the sending side is closed). */
  write(bytes: Uint8Array): number {
    if (this.finQueued || !['SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT'].includes(this.state)) return 0;
    this.sendQ.push(bytes);
    return bytes.length;
  }

  /** RECEIVE: take up to `max` bytes the application has not read; opens the window again. */
  read(max = Number.MAX_SAFE_INTEGER): Uint8Array {
    const before = this.#window();
    const out = this.recvQ.take(max);
    // receiver SWS avoidance (RFC 9293 §3.8.6.2.2): announce the window once it has grown by
    // min(RCV.BUFF/2, MSS) — at once, so a stalled sender learns it can go on
    const step = Math.min(Math.floor(this.cfg.rcvBuf / 2), this.effMss());
    if (out.length && this.#window() - before >= step && before < step && SYNCHRONIZED.has(this.state)) this.#ackNow = true;
    return out;
  }

  /** CLOSE / shutdown(SHUT_WR): a FIN follows the queued data. */
  close(now: number): void {
    switch (this.state) {
      case 'LISTEN':
      case 'SYN-SENT':
        this.#setState('CLOSED', now);
        this.timers.clear();
        return;
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
      case 'CLOSE-WAIT':
        this.finQueued = true;
        return;
      default:
        return; // already closing
    }
  }

  /** ABORT: an RST where the RFC sends one, then CLOSED. Returns the segments to send. */
  abort(now: number): TcpRepr[] {
    const out: TcpRepr[] = [];
    if (['SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT'].includes(this.state)) {
      out.push(this.#segment({ ...NO_FLAGS, rst: true, ack: true }, this.sndNxt, EMPTY, now));
      this.events.push({ kind: 'reset', reason: 'rst-sent', at: now });
    }
    this.#toClosed(now);
    return out;
  }

  // ------------------------------------------------------------------ SEGMENT ARRIVES (§3.10.7)

  process(seg: TcpRepr, now: number): TcpRepr[] {
    const out: TcpRepr[] = [];
    if (this.state === 'CLOSED' || this.state === 'LISTEN') return out; // the stack handles these
    if (this.state === 'SYN-SENT') this.#synSent(seg, now, out);
    else this.#synchronized(seg, now, out);
    if (!this.holdAcks) return out;
    // held: bare ACKs wait (one goes out when released); RSTs and anything else still go
    const bare = (s: TcpRepr): boolean => s.flags.ack && !s.flags.rst && !s.flags.syn && !s.flags.fin && s.payload.length === 0;
    if (out.some(bare)) this.#ackPending = true;
    return out.filter((s) => !bare(s));
  }

  #synSent(seg: TcpRepr, now: number, out: TcpRepr[]): void {
    const f = seg.flags;
    if (f.ack && (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndMax))) {
      if (!f.rst) out.push(this.#rst(seg.ack, now));
      return;
    }
    const ackOk = f.ack && seqLe(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndMax);
    if (f.rst) {
      if (ackOk) {
        this.events.push({ kind: 'reset', reason: 'refused', at: now });
        this.#toClosed(now);
      }
      return;
    }
    if (!f.syn) return;
    this.#learnSyn(seg, now, false);
    if (ackOk) {
      this.#ackAdvance(seg.ack, now);
    }
    if (seqGt(this.sndUna, this.iss)) {
      this.#updateWindow(seg, true);
      this.#setState('ESTABLISHED', now);
      this.#ackNow = true;
    } else {
      // simultaneous open (§3.5, figure 8)
      this.#setState('SYN-RECEIVED', now);
      this.#synDue = true;
    }
  }

  #synchronized(seg: TcpRepr, now: number, out: TcpRepr[]): void {
    const f = seg.flags;
    const len = segLen(seg);
    // SYN-RECEIVED: the peer retransmitted its SYN — our SYN,ACK was lost
    if (this.state === 'SYN-RECEIVED' && f.syn && !f.ack && seg.seq === this.irs) {
      this.#synDue = true;
      return;
    }
    // SYN-RECEIVED after a simultaneous open: the peer's SYN,ACK acknowledges our SYN (figure 8)
    const simultaneousSynAck = this.state === 'SYN-RECEIVED' && !this.passive && f.syn && f.ack && seg.seq === this.irs;
    // TIME-WAIT: a retransmission of the remote FIN is acknowledged and restarts 2MSL (§3.10.7.4)
    if (this.state === 'TIME-WAIT' && f.fin && !f.rst && !f.syn && seqAdd(seg.seq, len) === this.rcvNxt) {
      this.#ackNow = true;
      this.timers.set('time-wait', now + 2 * this.cfg.mslMs);
      this.events.push({ kind: 'time-wait-restart', at: now });
      return;
    }
    // TIME-WAIT: anything but a bare ACK or RST at RCV.NXT is answered with an ACK, as Linux does
    // (net/ipv4/tcp_minisocks.c, tcp_timewait_state_process): text after a FIN is never taken
    if (this.state === 'TIME-WAIT' && !f.rst && !f.syn && (seg.seq !== this.rcvNxt || len > 0)) {
      out.push(this.#ack(now));
      return;
    }
    // PAWS (RFC 7323 §5.3)
    const ts = option(seg.options, 'timestamps');
    if (this.tsEnabled && this.cfg.paws && ts && !f.rst && this.tsRecent !== null && seqLt(seq(ts.tsval), seq(this.tsRecent)) && now - this.tsRecentAt < 24 * 86400_000) {
      this.events.push({ kind: 'paws-reject', tsval: ts.tsval, tsRecent: this.tsRecent, at: now });
      out.push(this.#ack(now));
      return;
    }
    // first: sequence number
    const wnd = Math.max(0, seqDiff(this.rcvAdvEdge, this.rcvNxt));
    let acceptable: boolean;
    if (simultaneousSynAck) acceptable = true;
    else if (len === 0) acceptable = wnd === 0 ? seg.seq === this.rcvNxt : seqInRange(seg.seq, this.rcvNxt, seqAdd(this.rcvNxt, wnd));
    else if (wnd === 0) acceptable = false;
    else acceptable = seqInRange(seg.seq, this.rcvNxt, seqAdd(this.rcvNxt, wnd)) || seqInRange(seqAdd(seg.seq, len - 1), this.rcvNxt, seqAdd(this.rcvNxt, wnd));
    // a zero window still takes valid ACKs and RSTs at RCV.NXT (§3.10.7.4)
    const controlOnly = !acceptable && wnd === 0 && seg.seq === this.rcvNxt;
    if (!acceptable && !controlOnly) {
      if (!f.rst) out.push(this.#ack(now));
      return;
    }
    if (ts && this.tsEnabled && seqLe(seg.seq, this.lastAckSent)) {
      this.tsRecent = ts.tsval;
      this.tsRecentAt = now;
    }
    // second: RST (RFC 5961 §3.2: only an exact match resets; in-window draws a challenge ACK)
    if (f.rst) {
      if (this.state === 'TIME-WAIT' && this.cfg.rfc1337) return; // no assassination (RFC 1337 §3)
      if (seg.seq === this.rcvNxt) {
        if (this.state === 'SYN-RECEIVED' && this.passive) {
          this.#toClosed(now); // back to LISTEN: the listener lives on in the stack
          return;
        }
        this.events.push({ kind: 'reset', reason: 'rst-received', at: now });
        this.#toClosed(now);
      } else {
        this.events.push({ kind: 'challenge-ack', reason: 'rst', at: now });
        out.push(this.#ack(now));
      }
      return;
    }
    // fourth: SYN in a synchronized state (RFC 5961 §4: challenge ACK)
    if (f.syn && !simultaneousSynAck) {
      if (this.state === 'SYN-RECEIVED' && this.passive) {
        this.#toClosed(now);
        return;
      }
      this.events.push({ kind: 'challenge-ack', reason: 'syn', at: now });
      out.push(this.#ack(now));
      return;
    }
    // fifth: ACK
    if (!f.ack) return;
    if (this.state === 'SYN-RECEIVED') {
      if (seqLt(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndMax)) {
        this.#updateWindow(seg, true);
        this.#ackAdvance(seg.ack, now);
        this.#setState('ESTABLISHED', now);
        if (simultaneousSynAck) {
          this.#ackNow = true;
          return;
        }
      } else {
        out.push(this.#rst(seg.ack, now));
        return;
      }
    }
    if (seqGt(seg.ack, this.sndMax)) {
      // an ACK for something not yet sent (RFC 5961 §5)
      this.events.push({ kind: 'challenge-ack', reason: 'ack', at: now });
      out.push(this.#ack(now));
      return;
    }
    if (seqLt(seg.ack, seqAdd(this.sndUna, -Math.max(this.maxSndWnd, 1)))) {
      out.push(this.#ack(now));
      return;
    }
    const finWasAcked = this.#finAcked();
    if (this.sackEnabled) this.#learnSack(seg);
    if (seqGt(seg.ack, this.sndUna)) {
      this.#ackAdvance(seg.ack, now, ts?.tsecr);
    } else if (seg.ack === this.sndUna && len === 0 && seqGt(this.sndMax, this.sndUna) && seg.window << this.sndShift === this.sndWnd) {
      this.#duplicateAck(now);
    }
    // RFC 6675: three segments' worth SACKed above SND.UNA means the first hole is lost — this
    // also catches duplicate ACKs that ride on data, which RFC 5681 does not count
    if (this.recoverUntil === null && this.sacked.length && (this.sacked.length >= this.#dupThresh() || this.#sackedBytes() > (this.#dupThresh() - 1) * this.effMss())) {
      this.#enterRecovery(now); // RFC 6675 §4 IsLost
    }
    this.#updateWindow(seg, false);
    const finAcked = this.#finAcked();
    switch (this.state) {
      case 'FIN-WAIT-1':
        if (finAcked) this.#setState('FIN-WAIT-2', now);
        break;
      case 'CLOSING':
        if (finAcked) this.#enterTimeWait(now);
        return;
      case 'LAST-ACK':
        if (finAcked && !finWasAcked) this.#toClosed(now);
        return;
      case 'TIME-WAIT':
        return;
      default:
        break;
    }
    if (controlOnly) {
      // a zero-window probe: its text is not taken, but the reply tells the window is still shut
      if (seg.payload.length > 0 || f.fin) this.#ackNow = true;
      return;
    }
    // seventh: segment text
    let fin = f.fin;
    if (seg.payload.length > 0 && RECEIVES_TEXT.has(this.state)) {
      fin = this.#receiveText(seg, now) && fin;
    } else if (seg.payload.length > 0) {
      this.#ackNow = true; // data after the peer's FIN, or in a state that takes none: just ACK
    }
    // eighth: FIN
    if (fin) {
      const finSeqIn = seqAdd(seg.seq, seg.payload.length + (f.syn ? 1 : 0));
      if (finSeqIn === this.rcvNxt) this.#receiveFin(now);
      else if (seqGt(finSeqIn, this.rcvNxt)) this.#pendingFin = finSeqIn;
    }
  }

  /** Takes in-window payload; returns whether it reached RCV.NXT contiguously (so a FIN on it counts). */
  #receiveText(seg: TcpRepr, now: number): boolean {
    let start = seg.flags.syn ? seqAdd(seg.seq, 1) : seg.seq;
    let data = seg.payload;
    if (seqLt(start, this.rcvNxt)) {
      data = data.subarray(Math.min(data.length, seqDiff(this.rcvNxt, start)));
      start = this.rcvNxt;
    }
    const room = Math.max(0, seqDiff(this.rcvAdvEdge, start));
    const trimmed = data.length > room;
    data = data.subarray(0, room);
    if (data.length === 0) {
      this.#ackNow = true;
      return false;
    }
    if (start === this.rcvNxt) {
      this.recvQ.push(data);
      this.rcvNxt = seqAdd(this.rcvNxt, data.length);
      let delivered = data.length;
      delivered += this.#drainOoo();
      this.events.push({ kind: 'data', bytes: delivered, at: now });
      this.#unackedSegments++;
      if (!this.cfg.delayedAck || this.#unackedSegments >= 2 || this.ooo.length > 0) this.#ackNow = true;
      else {
        this.#ackPending = true;
        if (!this.timers.has('delayed-ack')) this.timers.set('delayed-ack', now + this.cfg.delayedAckMs);
      }
      if (this.#pendingFin !== null && this.#pendingFin === this.rcvNxt) {
        this.#pendingFin = null;
        this.#receiveFin(now);
      }
      return !trimmed;
    }
    // out of order: keep it, and send a duplicate ACK at once (RFC 5681 §4.2)
    this.ooo.push({ seq: start, data: data.slice() });
    this.ooo.sort((a, b) => seqDiff(a.seq, b.seq));
    this.#lastOoo = start;
    this.#ackNow = true;
    return false;
  }

  #drainOoo(): number {
    let n = 0;
    for (;;) {
      const i = this.ooo.findIndex((s) => seqLe(s.seq, this.rcvNxt));
      if (i < 0) return n;
      const s = this.ooo.splice(i, 1)[0]!;
      const skip = seqDiff(this.rcvNxt, s.seq);
      if (skip < s.data.length) {
        const d = s.data.subarray(skip);
        this.recvQ.push(d);
        this.rcvNxt = seqAdd(this.rcvNxt, d.length);
        n += d.length;
      }
    }
  }

  #receiveFin(now: number): void {
    if (this.finReceived) return;
    this.finReceived = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.#ackNow = true;
    const eof = { kind: 'eof' as const, at: now };
    switch (this.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.#setState('CLOSE-WAIT', now);
        break;
      case 'FIN-WAIT-1':
        if (this.#finAcked()) this.#enterTimeWait(now);
        else this.#setState('CLOSING', now);
        break;
      case 'FIN-WAIT-2':
        this.#enterTimeWait(now);
        break;
      default:
        break;
    }
    this.events.push(eof); // after the state change: a reader seeing EOF sees CLOSE-WAIT
  }

  #finAcked(): boolean {
    return this.finSeq !== null && seqGt(this.sndUna, this.finSeq);
  }

  #ackAdvance(ack: SeqNumber, now: number, tsecr?: number): void {
    const acked = seqDiff(ack, this.sndUna);
    // bytes of data (not SYN or FIN) newly acknowledged
    const dataAcked = Math.max(0, Math.min(seqDiff(ack, this.sndBase), this.sendQ.length));
    this.sendQ.drop(dataAcked);
    this.sndBase = seqAdd(this.sndBase, dataAcked);
    this.sndUna = ack;
    if (seqLt(this.sndNxt, this.sndUna)) this.sndNxt = this.sndUna;
    if (dataAcked) this.events.push({ kind: 'acked', bytes: dataAcked, at: now });
    // RTT: timestamps echo, else the one timed segment (Karn: never a retransmitted one). Not
    // during recovery: the peer then echoes the timestamp of an old segment (RFC 7323 §4.3).
    if (this.recoverUntil === null) {
      if (tsecr !== undefined && this.tsEnabled && tsecr !== 0) this.rto.sample(((now + this.tsOffset) >>> 0) - tsecr);
      else if (this.#rttProbe && seqGe(ack, this.#rttProbe.seq)) this.rto.sample(now - this.#rttProbe.at);
    }
    if (this.#rttProbe && seqGe(ack, this.#rttProbe.seq)) this.#rttProbe = null;
    this.retries = 0;
    this.rto.backoff = 0;
    this.#probeSent = false;
    this.timers.delete('tail-probe');
    // congestion window (RFC 5681 §3.1); in recovery a partial ACK resends the next hole at once (RFC 6582 §3.2)
    if (this.recoverUntil !== null) {
      if (seqGe(ack, this.recoverUntil)) {
        this.recoverUntil = null;
        this.cwnd = this.ssthresh;
      } else if (seqGe(this.sndUna, this.#highRetx) && seqLt(this.sndUna, this.sndNxt)) {
        // a partial ACK: the segment now at SND.UNA is lost too
        this.#retxAt = this.sndUna;
        this.events.push({ kind: 'retransmit', seq: this.sndUna, bytes: Math.min(this.effMss(), seqDiff(this.sndNxt, this.sndUna)), timer: false, at: now });
      }
    } else if (this.dupAcks >= 3) this.cwnd = this.ssthresh;
    else if (this.cwnd < this.ssthresh) this.cwnd += Math.min(acked, this.effMss());
    else this.cwnd += Math.max(1, Math.floor((this.effMss() * this.effMss()) / this.cwnd));
    this.dupAcks = 0;
    if (seqGt(this.sndMax, this.sndUna)) this.timers.set('retransmit', now + this.rto.rtoMs);
    else this.timers.delete('retransmit');
  }

  /** Adds the peer's SACK blocks to the scoreboard, merged, above SND.UNA. */
  #learnSack(seg: TcpRepr): void {
    const opt = option(seg.options, 'sack');
    const ranges = [...this.sacked, ...(opt?.blocks ?? [])].filter(([, r]) => seqGt(r, seg.flags.ack && seqGt(seg.ack, this.sndUna) ? seg.ack : this.sndUna));
    ranges.sort((a, b) => seqDiff(a[0], b[0]));
    const merged: Array<[SeqNumber, SeqNumber]> = [];
    for (const [l, r] of ranges) {
      const last = merged[merged.length - 1];
      if (last && seqLe(l, last[1])) {
        if (seqGt(r, last[1])) last[1] = r;
      } else merged.push([l, r]);
    }
    this.sacked.splice(0, this.sacked.length, ...merged);
  }

  /** SACK blocks for our next ACK: out-of-order data we hold, the latest first, at most `max`. */
  #sackBlocks(max: number): Array<[SeqNumber, SeqNumber]> {
    const blocks: Array<[SeqNumber, SeqNumber]> = [];
    for (const s of this.ooo) {
      const end = seqAdd(s.seq, s.data.length);
      const last = blocks[blocks.length - 1];
      if (last && seqLe(s.seq, last[1])) {
        if (seqGt(end, last[1])) last[1] = end;
      } else blocks.push([s.seq, end]);
    }
    const latest = this.#lastOoo;
    const first = latest === null ? -1 : blocks.findIndex(([l, r]) => seqLe(l, latest) && seqLt(latest, r));
    if (first > 0) blocks.unshift(...blocks.splice(first, 1));
    return blocks.slice(0, max);
  }

  /**
   * Duplicate ACKs (or SACKed segments) that mean loss: 3, or fewer when so little is in flight and
   * nothing new is waiting that three could never come — Early Retransmit (RFC 5827 §3.1).
   */
  #dupThresh(): number {
    const unsent = this.sendQ.length - seqDiff(this.sndNxt, this.sndBase);
    const outstanding = Math.ceil(seqDiff(this.sndMax, this.sndUna) / this.effMss());
    return outstanding >= 2 && outstanding < 4 && unsent <= 0 ? outstanding - 1 : 3;
  }

  #duplicateAck(now: number): void {
    this.dupAcks++;
    if (this.dupAcks >= this.#dupThresh() && this.recoverUntil === null) this.#enterRecovery(now);
    else if (this.dupAcks > 3) this.cwnd += this.effMss();
  }

  /** Fast retransmit and recovery (RFC 5681 §3.2, RFC 6582): halve, resend the first hole. */
  #enterRecovery(now: number): void {
    const flight = seqDiff(this.sndMax, this.sndUna);
    this.ssthresh = Math.max(Math.floor(flight / 2), 2 * this.effMss());
    this.cwnd = this.ssthresh + 3 * this.effMss();
    this.recoverUntil = this.sndMax;
    this.#highRetx = this.sndUna;
    this.#retxAt = this.sndUna;
    this.events.push({ kind: 'retransmit', seq: this.sndUna, bytes: Math.min(this.effMss(), flight), timer: false, at: now });
  }

  #sackedBytes(): number {
    return this.sacked.reduce((n, [l, r]) => n + seqDiff(r, l), 0);
  }

  #updateWindow(seg: TcpRepr, force: boolean): void {
    if (force || seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, seg.ack))) {
      this.sndWnd = seg.flags.syn ? seg.window : seg.window << this.sndShift;
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
      this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
      if (this.sndWnd > 0) this.timers.delete('persist');
    }
  }

  #learnSyn(syn: TcpRepr, now: number, passive: boolean): void {
    this.irs = syn.seq;
    this.rcvNxt = seqAdd(syn.seq, 1);
    this.rcvAdvEdge = this.rcvNxt;
    this.peerMss = option(syn.options, 'mss')?.value ?? 536;
    const ws = option(syn.options, 'wscale');
    this.#peerWs = !!ws;
    if (ws && this.cfg.wscale !== null) {
      this.sndShift = Math.min(14, ws.shift);
      this.rcvShift = this.cfg.wscale;
    }
    const ts = option(syn.options, 'timestamps');
    this.tsEnabled = !!ts && this.cfg.timestamps;
    if (this.tsEnabled) {
      this.tsRecent = ts!.tsval;
      this.tsRecentAt = now;
    }
    this.sackEnabled = !!option(syn.options, 'sackPermitted') && this.cfg.sackPermitted;
    if (passive) {
      this.sndWnd = syn.window;
      this.maxSndWnd = syn.window;
      this.sndWl1 = syn.seq;
    }
  }

  #enterTimeWait(now: number): void {
    this.#setState('TIME-WAIT', now);
    this.timers.clear();
    this.timers.set('time-wait', now + 2 * this.cfg.mslMs);
  }

  #toClosed(now: number): void {
    this.timers.clear();
    if (this.state !== 'CLOSED') this.#setState('CLOSED', now);
  }

  #setState(to: TcpState, now: number): void {
    if (to === this.state) return;
    this.events.push({ kind: 'state', from: this.state, to, at: now });
    this.state = to;
  }

  // ------------------------------------------------------------------ sending

  /** The MSS we send: the peer's MSS, capped by ours, less the timestamp option. */
  effMss(): number {
    return Math.max(1, Math.min(this.peerMss, this.cfg.mss) - (this.tsEnabled ? 12 : 0));
  }

  #window(): number {
    if (this.windowOverride !== null) return this.windowOverride;
    const oooBytes = this.ooo.reduce((n, s) => n + s.data.length, 0);
    return Math.max(0, this.cfg.rcvBuf - this.recvQ.length - oooBytes);
  }

  /**
   * The window field for the next segment. The right edge does not move left (RFC 9293
   * §3.8.6.2.2) except by the truncation scaling forces, less than 2^shift (RFC 7323 §2.4):
   * rounding up instead would let the edge creep past the buffer on every ACK.
   */
  #windowField(syn: boolean): number {
    if (syn) return Math.min(65535, this.#window());
    let wnd = this.#window() >> this.rcvShift;
    const edge = seqDiff(this.rcvAdvEdge, this.rcvNxt);
    if (this.windowOverride === null && edge > 0) wnd = Math.max(wnd, Math.floor(edge / 2 ** this.rcvShift));
    return Math.min(65535, wnd);
  }

  #segment(flags: TcpFlags, seqNo: SeqNumber, payload: Uint8Array, now: number, opts: TcpOption[] = []): TcpRepr {
    const options = [...opts];
    if (this.tsEnabled || (flags.syn && !flags.ack && this.cfg.timestamps)) {
      options.push({ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', tsval: (now + this.tsOffset) >>> 0, tsecr: flags.ack ? (this.tsRecent ?? 0) : 0 });
    }
    if (this.sackEnabled && flags.ack && !flags.syn && !flags.rst && this.ooo.length) {
      const blocks = this.#sackBlocks(this.tsEnabled ? 3 : 4);
      if (blocks.length) options.push({ kind: 'nop' }, { kind: 'nop' }, { kind: 'sack', blocks });
    }
    const window = flags.rst ? 0 : this.#windowField(flags.syn);
    const s: TcpRepr = {
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seq: seqNo,
      ack: flags.ack ? this.rcvNxt : seq(0),
      flags,
      window,
      urgent: 0,
      options,
      payload,
    };
    if (flags.ack && !flags.rst) {
      this.lastAckSent = this.rcvNxt;
      const edge = seqAdd(this.rcvNxt, window * (flags.syn ? 1 : 2 ** this.rcvShift));
      if (seqGt(edge, this.rcvAdvEdge) || this.windowOverride !== null) this.rcvAdvEdge = edge;
      this.#ackPending = false;
      this.#ackNow = false;
      this.#unackedSegments = 0;
      this.timers.delete('delayed-ack');
    }
    return s;
  }

  #ack(now: number): TcpRepr {
    return this.#segment({ ...NO_FLAGS, ack: true }, this.sndNxt, EMPTY, now);
  }

  #rst(seqNo: SeqNumber, now: number): TcpRepr {
    return this.#segment({ ...NO_FLAGS, rst: true }, seqNo, EMPTY, now);
  }

  #synOptions(): TcpOption[] {
    // in the order Linux sends them
    const o: TcpOption[] = [{ kind: 'mss', value: this.cfg.mss }];
    const answering = this.state === 'SYN-RECEIVED';
    if (this.cfg.sackPermitted && (!answering || this.sackEnabled)) o.push({ kind: 'sackPermitted' });
    if (this.cfg.wscale !== null && (!answering || this.#peerWs)) o.push({ kind: 'nop' }, { kind: 'wscale', shift: this.cfg.wscale });
    return o;
  }

  #retransmitFrom(from: SeqNumber, now: number, timer: boolean): void {
    this.events.push({ kind: 'retransmit', seq: from, bytes: seqDiff(this.sndMax, from), timer, at: now });
    this.sndNxt = from;
    this.#rttProbe = null;
  }

  /** Everything due at `now`: expired timers, then SYN / data / FIN / ACK within the windows. */
  dispatch(now: number): TcpRepr[] {
    const out: TcpRepr[] = [];
    this.#expireTimers(now, out);
    if (this.state === 'CLOSED') return out;
    if (this.#synDue) {
      this.#synDue = false;
      const synack = this.state === 'SYN-RECEIVED';
      out.push(this.#segment({ ...NO_FLAGS, syn: true, ack: synack }, this.iss, EMPTY, now, this.#synOptions()));
      if (seqLe(this.sndNxt, this.iss)) this.sndNxt = seqAdd(this.iss, 1);
      if (seqLt(this.sndMax, this.sndNxt)) this.sndMax = this.sndNxt;
      if (!this.timers.has('retransmit')) this.timers.set('retransmit', now + this.rto.rtoMs);
      if (!this.#rttProbe && this.retries === 0) this.#rttProbe = { seq: this.sndNxt, at: now };
    }
    if (SENDS_DATA.has(this.state)) this.#sendData(now, out);
    if ((this.#ackNow || (this.#ackPending && !this.cfg.delayedAck)) && !this.holdAcks && SYNCHRONIZED.has(this.state) && this.state !== 'SYN-RECEIVED') {
      out.push(this.#ack(now));
    }
    return out;
  }

  /** Sends [from, from+maxLen) again from the send queue (with the FIN if it is the last byte). */
  #resend(from: SeqNumber, maxLen: number, now: number, out: TcpRepr[]): SeqNumber {
    const dataEnd = seqAdd(this.sndBase, this.sendQ.length);
    const offset = seqDiff(from, this.sndBase);
    const n = Math.max(0, Math.min(maxLen, this.sendQ.length - offset, this.effMss()));
    const fin = this.finSeq !== null && seqAdd(from, n) === dataEnd;
    out.push(this.#segment({ ...NO_FLAGS, ack: true, psh: n > 0 && seqAdd(from, n) === dataEnd, fin }, from, this.sendQ.peek(offset, n), now));
    this.#rttProbe = null; // Karn
    return seqAdd(from, n + (fin ? 1 : 0));
  }

  /** In recovery: each hole below the highest SACKed byte once, then the single segment asked for. */
  #resendHoles(now: number, out: TcpRepr[]): void {
    if (this.#retxAt !== null) {
      const from = seqLt(this.#retxAt, this.sndUna) ? this.sndUna : this.#retxAt;
      this.#retxAt = null;
      if (seqLt(from, this.sndNxt)) {
        const next = this.sacked.find(([l]) => seqGt(l, from));
        const end = this.#resend(from, next ? seqDiff(next[0], from) : this.effMss(), now, out);
        if (seqGt(end, this.#highRetx)) this.#highRetx = end;
      }
    }
    if (this.recoverUntil === null || this.sacked.length === 0) return;
    const highestSacked = this.sacked[this.sacked.length - 1]![1];
    let p = seqGt(this.#highRetx, this.sndUna) ? this.#highRetx : this.sndUna;
    let budget = Math.max(1, Math.floor(this.cwnd / this.effMss()));
    while (budget > 0 && seqLt(p, highestSacked) && seqLt(p, this.sndNxt)) {
      const inside = this.sacked.find(([l, r]) => seqLe(l, p) && seqLt(p, r));
      if (inside) {
        p = inside[1];
        continue;
      }
      const next = this.sacked.find(([l]) => seqGt(l, p));
      p = this.#resend(p, next ? seqDiff(next[0], p) : this.effMss(), now, out);
      this.#highRetx = p;
      budget--;
    }
  }

  #sendData(now: number, out: TcpRepr[]): void {
    this.#resendHoles(now, out);
    for (;;) {
      // retransmitting: what the peer already SACKed need not go again (RFC 6675, simplified)
      if (seqLt(this.sndNxt, this.sndMax)) {
        const hit = this.sacked.find(([l, r]) => seqLe(l, this.sndNxt) && seqLt(this.sndNxt, r));
        if (hit) this.sndNxt = seqLt(hit[1], this.sndMax) ? hit[1] : this.sndMax;
      }
      const offset = seqDiff(this.sndNxt, this.sndBase);
      const avail = this.sendQ.length - offset;
      const inFlight = seqDiff(this.sndNxt, this.sndUna);
      const room = Math.min(this.sndWnd, this.cwnd) - inFlight;
      const dataEnd = seqAdd(this.sndBase, this.sendQ.length);
      if (avail > 0 && room > 0) {
        let n = Math.min(avail, this.effMss(), room);
        // a retransmission stops where the next SACKed range begins
        const nextSacked = seqLt(this.sndNxt, this.sndMax) ? this.sacked.find(([l]) => seqGt(l, this.sndNxt)) : undefined;
        if (nextSacked) n = Math.max(1, Math.min(n, seqDiff(nextSacked[0], this.sndNxt)));
        const payload = this.sendQ.peek(offset, n);
        const last = offset + n === this.sendQ.length;
        const fin = last && this.finQueued;
        const retrans = seqLt(this.sndNxt, this.sndMax);
        out.push(this.#segment({ ...NO_FLAGS, ack: true, psh: last, fin }, this.sndNxt, payload, now));
        if (!retrans && !this.#rttProbe) this.#rttProbe = { seq: seqAdd(this.sndNxt, n), at: now };
        this.sndNxt = seqAdd(this.sndNxt, n + (fin ? 1 : 0));
        if (fin) this.#finSent(dataEnd, now);
      } else if (avail <= 0 && this.finQueued && seqLe(this.sndNxt, dataEnd) && (this.finSeq === null || seqLe(this.sndNxt, this.finSeq))) {
        out.push(this.#segment({ ...NO_FLAGS, ack: true, fin: true }, this.sndNxt, EMPTY, now));
        this.sndNxt = seqAdd(dataEnd, 1);
        this.#finSent(dataEnd, now);
      } else {
        break;
      }
      if (seqGt(this.sndNxt, this.sndMax)) this.sndMax = this.sndNxt;
      if (!this.timers.has('retransmit')) this.timers.set('retransmit', now + this.rto.rtoMs);
    }
    const unsent = this.sendQ.length - seqDiff(this.sndNxt, this.sndBase);
    // tail loss probe: data in flight, and silence until the RTO would follow a lost tail or ACK
    if (this.cfg.tailLossProbe && !this.#probeSent && this.recoverUntil === null && seqGt(this.sndMax, this.sndUna) && this.rto.srttMs !== null && !this.timers.has('tail-probe')) {
      // PTO = 2·SRTT; with a single segment in flight, plus the worst-case delayed ACK (RFC 8985 §7.2; Linux TCP_DELACK_MAX 200 ms)
      const single = seqDiff(this.sndMax, this.sndUna) <= this.effMss();
      const pto = Math.max(2 * this.rto.srttMs, 10) + (single ? 200 : 0);
      if (now + pto < (this.timers.get('retransmit') ?? Infinity)) this.timers.set('tail-probe', now + pto);
    }
    if (this.sndWnd === 0 && unsent > 0 && seqDiff(this.sndMax, this.sndUna) === 0 && !this.timers.has('persist')) {
      this.timers.set('persist', now + this.rto.rtoMs);
    }
  }

  #finSent(dataEnd: SeqNumber, now: number): void {
    this.finSeq = dataEnd;
    if (this.state === 'ESTABLISHED' || this.state === 'SYN-RECEIVED') this.#setState('FIN-WAIT-1', now);
    else if (this.state === 'CLOSE-WAIT') this.#setState('LAST-ACK', now);
  }

  #expireTimers(now: number, out: TcpRepr[]): void {
    for (const [kind, at] of [...this.timers]) {
      if (at > now) continue;
      this.timers.delete(kind);
      switch (kind) {
        case 'time-wait':
          this.#toClosed(now);
          return;
        case 'delayed-ack':
          if (this.#ackPending) this.#ackNow = true;
          break;
        case 'tail-probe': {
          // one probe: new data if the windows allow, else the last segment again (RFC 8985 §7.3)
          if (!seqGt(this.sndMax, this.sndUna) || this.recoverUntil !== null) break;
          this.#probeSent = true;
          const unsent = this.sendQ.length - seqDiff(this.sndNxt, this.sndBase);
          if (unsent > 0 && this.sndWnd - seqDiff(this.sndNxt, this.sndUna) > 0) {
            this.cwnd += this.effMss();
          } else {
            // the last segment again: its data (up to one MSS) and the FIN if one was sent
            const dataEnd = seqAdd(this.sndBase, this.sendQ.length);
            const end = this.finSeq !== null && seqGt(this.sndMax, this.finSeq) ? dataEnd : this.sndMax;
            const back = seqAdd(end, -this.effMss());
            const last = seqGt(back, this.sndUna) ? back : this.sndUna;
            this.events.push({ kind: 'retransmit', seq: last, bytes: seqDiff(this.sndMax, last), timer: true, at: now });
            this.#resend(last, this.effMss(), now, out);
          }
          break;
        }
        case 'persist': {
          // a zero-window probe: an ACK just below SND.UNA draws the peer's current window (as Linux does)
          out.push(this.#segment({ ...NO_FLAGS, ack: true }, seqAdd(this.sndUna, -1), EMPTY, now));
          this.rto.expired();
          if (this.sndWnd === 0) this.timers.set('persist', now + this.rto.rtoMs);
          break;
        }
        case 'retransmit': {
          this.retries++;
          const limit = this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED' ? this.cfg.synRetries : this.cfg.dataRetries;
          if (this.retries > limit) {
            this.events.push({ kind: 'reset', reason: 'timeout', at: now });
            this.#toClosed(now);
            return;
          }
          this.rto.expired();
          if (this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED') {
            this.events.push({ kind: 'retransmit', seq: this.iss, bytes: 1, timer: true, at: now });
            this.#synDue = true;
            this.#rttProbe = null;
            this.timers.set('retransmit', now + this.rto.rtoMs);
            break;
          }
          if (seqGt(this.sndMax, this.sndUna)) {
            const flight = seqDiff(this.sndMax, this.sndUna);
            this.ssthresh = Math.max(Math.floor(flight / 2), 2 * this.effMss());
            this.cwnd = this.effMss();
            this.dupAcks = 0;
            this.recoverUntil = this.sndMax;
            this.#highRetx = this.sndMax;
            this.#retxAt = null;
            this.#retransmitFrom(this.sndUna, now, true);
            this.timers.set('retransmit', now + this.rto.rtoMs);
          }
          break;
        }
      }
    }
  }

  /** The earliest timer deadline, or null. */
  nextDeadline(): number | null {
    let min: number | null = null;
    for (const at of this.timers.values()) if (min === null || at < min) min = at;
    return min;
  }

  /** Holds after every segment (the fuzz test checks it): throws on a broken invariant. */
  checkInvariants(): void {
    const fail = (what: string): never => {
      throw new Error(`TCB invariant broken in ${this.state}: ${what}`);
    };
    if (!TCP_STATES.includes(this.state)) fail(`unknown state ${String(this.state)}`);
    if (seqGt(this.sndUna, this.sndNxt)) fail(`sndUna ${this.sndUna} > sndNxt ${this.sndNxt}`);
    if (seqGt(this.sndNxt, this.sndMax)) fail(`sndNxt ${this.sndNxt} > sndMax ${this.sndMax}`);
    if (this.sndWnd < 0 || this.sndWnd > 65535 * 2 ** 14) fail(`sndWnd ${this.sndWnd}`);
    if (this.recvQ.length > this.cfg.rcvBuf + 65535 * 2 ** this.rcvShift) fail(`receive queue ${this.recvQ.length} beyond the buffer`);
    if (SYNCHRONIZED.has(this.state) && seqGt(this.sndBase, seqAdd(this.sndUna, 1)) && this.finSeq === null) fail(`sndBase ${this.sndBase} beyond sndUna+1`);
  }
}
