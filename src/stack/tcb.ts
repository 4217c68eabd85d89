// One TCP connection, sans IO (RFC 9293): the TCB never reads a clock, draws a random number or
// touches a socket.
//   process(seg, now) → segments to send in reply at once (RSTs, challenge ACKs, ACKs of
//                       unacceptable segments)
//   dispatch(now)     → segments due now (SYN, data, FIN, retransmissions, pending ACKs, expired
//                       timers)
// Events (state changes, data, EOF, resets) collect in `events` for the caller to drain. The
// state is written in one place (#setState); congestion control and loss recovery live in
// congestion.ts and recovery.ts, out-of-order data in reassembly.ts.
import { seq, seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt, type SeqNumber } from '../wire/seq';
import { FLAGS_BY_BYTE, segLen, type TcpFlags, type TcpOption, type TcpRepr } from '../wire/tcp';
import { ByteQueue } from './bytes';
import { NewReno } from './congestion';
import { Reassembly } from './reassembly';
import { LossRecovery } from './recovery';
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

export type TimerKind = 'retransmit' | 'tail-probe' | 'persist' | 'delayed-ack' | 'time-wait' | 'keepalive' | 'fin-wait-2';

export interface KeepaliveConfig {
  /** idle time before the first probe (Linux tcp_keepalive_time: 7200 s) */
  idleMs: number;
  /** between unanswered probes (tcp_keepalive_intvl: 75 s) */
  intervalMs: number;
  /** unanswered probes before the connection is reset (tcp_keepalive_probes: 9) */
  probes: number;
}

export interface TcbConfig {
  /** MSS we announce and never exceed when sending; null: from the MTU (MTU − 40 on IPv4, − 60 on IPv6) */
  mss: number | null;
  /** the link's MTU, for the MSS when `mss` is null */
  mtu: number;
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
  /** initial sequence number; absent: the stack's ISN clock (RFC 6528) */
  isn?: number;
  /** timestamp clock offset (TSval = now ms + offset); absent: the stack's, one per address pair */
  tsOffset?: number;
  /** maximum segment lifetime in ms; TIME-WAIT lasts 2·MSL (Linux: 60 s) */
  mslMs: number;
  /** delay ACKs (RFC 9293 §3.8.6.3): every second full segment or after delayedAckMs */
  delayedAck: boolean;
  delayedAckMs: number;
  /**
   * Segments that arrive in one batch (a TUN read that drained several frames) are acknowledged
   * together at the end of the batch, as Linux acknowledges a GRO super-packet, and mid-batch
   * once more than this many bytes (at most a quarter of the receive buffer) are unacknowledged.
   * 0: every second full-sized segment even within a batch (RFC 5681 §4.2, RFC 9293 SHLD-19).
   * Segments that arrive one at a time are acknowledged one by one either way.
   */
  ackCoalesce: number;
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
  /** send keep-alives (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6); null: off, as a socket without SO_KEEPALIVE */
  keepalive: KeepaliveConfig | null;
  /** after close(), FIN-WAIT-2 ends after this long (Linux tcp_fin_timeout, 60 s); null: it waits for the FIN */
  finWait2TimeoutMs: number | null;
  /** challenge ACKs (RFC 5961 §7): at most `count` per `perMs` per connection (Linux: one per 500 ms); null: no limit */
  challengeAckLimit: { count: number; perMs: number } | null;
}

export const DEFAULT_TCB: TcbConfig = {
  mss: null,
  mtu: 1500,
  wscale: 7,
  timestamps: true,
  paws: true,
  sackPermitted: true,
  rcvBuf: 256 * 1024,
  mslMs: 30_000,
  delayedAck: false,
  delayedAckMs: 40,
  ackCoalesce: 65536,
  rto: DEFAULT_RTO,
  synRetries: 6,
  dataRetries: 15,
  initialCwnd: 10,
  tailLossProbe: true,
  rfc1337: false,
  keepalive: null,
  finWait2TimeoutMs: 60_000,
  challengeAckLimit: { count: 1, perMs: 500 },
};

/** What the TCB is given rather than choosing itself (the stack's ISN clock and timestamp offset, the address family). */
export interface TcbInit {
  iss?: number;
  tsOffset?: number;
  ipv6?: boolean;
}

export type ResetReason = 'rst-received' | 'rst-sent' | 'timeout' | 'refused' | 'keepalive-timeout' | 'fin-wait-2-timeout' | 'reincarnated';

export type TcbEvent =
  | { kind: 'state'; from: TcpState; to: TcpState; at: number }
  | { kind: 'data'; bytes: number; at: number }
  | { kind: 'eof'; at: number }
  | { kind: 'acked'; bytes: number; at: number }
  | { kind: 'reset'; reason: ResetReason; at: number }
  | { kind: 'paws-reject'; tsval: number; tsRecent: number; at: number }
  | { kind: 'challenge-ack'; reason: 'rst' | 'syn' | 'ack'; at: number }
  | { kind: 'challenge-ack-limited'; reason: 'rst' | 'syn' | 'ack'; at: number }
  | { kind: 'retransmit'; seq: SeqNumber; bytes: number; timer: boolean; at: number }
  | { kind: 'time-wait-restart'; at: number }
  | { kind: 'keepalive'; probe: number; at: number }
  | { kind: 'urgent'; pointer: SeqNumber; at: number };

const SYNCHRONIZED: ReadonlySet<TcpState> = new Set(['SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK', 'TIME-WAIT']);
const RECEIVES_TEXT: ReadonlySet<TcpState> = new Set(['ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2']);
const SENDS_DATA: ReadonlySet<TcpState> = new Set(['ESTABLISHED', 'CLOSE-WAIT', 'FIN-WAIT-1', 'CLOSING', 'LAST-ACK']);
/** where ABORT sends an RST (RFC 9293 §3.10.5) */
const ABORT_RESETS: ReadonlySet<TcpState> = new Set(['SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT']);

function option<K extends TcpOption['kind']>(opts: readonly TcpOption[], kind: K): Extract<TcpOption, { kind: K }> | undefined {
  for (const o of opts) if (o.kind === kind) return o as Extract<TcpOption, { kind: K }>;
  return undefined;
}

const EMPTY = new Uint8Array(0);
const NOP: TcpOption = Object.freeze({ kind: 'nop' });
const SACK_PERMITTED: TcpOption = Object.freeze({ kind: 'sackPermitted' });
/** NOP NOP TS: 12 bytes on every segment once timestamps are on (RFC 7323 Appendix A layout) */
const TS_OPTION_BYTES = 12;
/** Flags of the segments we build (shared, frozen: building one allocates no flags object). */
const flagsOf = (f: { fin?: boolean; syn?: boolean; rst?: boolean; psh?: boolean; ack?: boolean }): TcpFlags =>
  FLAGS_BY_BYTE[(f.fin ? 0x01 : 0) | (f.syn ? 0x02 : 0) | (f.rst ? 0x04 : 0) | (f.psh ? 0x08 : 0) | (f.ack ? 0x10 : 0)]!;
const ACK = flagsOf({ ack: true });
const RST = flagsOf({ rst: true });
const RST_ACK = flagsOf({ rst: true, ack: true });
const maxSeq = (a: SeqNumber, b: SeqNumber): SeqNumber => (seqGt(a, b) ? a : b);
/** the smallest MSS we take from a peer (Linux TCP_MIN_SND_MSS): room for the options and some data */
const MIN_PEER_MSS = 48;
/** 24 days: a timestamp older than this is no evidence (RFC 7323 §5.5) */
const PAWS_IDLE_MS = 24 * 86_400_000;

export class Tcb {
  readonly cfg: TcbConfig;
  readonly localPort: number;
  readonly remotePort: number;
  /** opened by a passive OPEN (a listener): a reset in SYN-RECEIVED returns to LISTEN */
  readonly passive: boolean;
  readonly ipv6: boolean;
  #state: TcpState;

  // send sequence space (RFC 9293 §3.3.1)
  readonly iss: SeqNumber;
  sndUna: SeqNumber;
  /** SND.NXT: the next new sequence number; a retransmission never moves it back */
  sndNxt: SeqNumber;
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
  /** the application called close(): it reads no more (RFC 1122 §4.2.2.13), FIN-WAIT-2 may time out */
  orphaned = false;

  // receive sequence space
  irs: SeqNumber = seq(0);
  rcvNxt: SeqNumber = seq(0);
  /** right edge of the window we advertised (the largest, RFC 7323 §2.4) */
  rcvAdvEdge: SeqNumber = seq(0);
  /** RCV.UP: the urgent pointer (RFC 9293 §3.10.7.4 sixth, RFC 6093) */
  rcvUp: SeqNumber = seq(0);
  finReceived = false;

  // negotiated options
  peerMss: number;
  #peerWs = false;
  sndShift = 0; // the peer's window scale: applies to windows we receive
  rcvShift = 0; // ours: applies to windows we send
  tsEnabled = false;
  sackEnabled = false;
  tsRecent: number | null = null;
  tsRecentAt = 0;
  lastAckSent: SeqNumber = seq(0);
  readonly tsOffset: number;
  /** the largest segment the peer has sent us (Linux rcv_mss): "full-sized" for the ACK rule */
  #rcvMss = 536;
  /** the window our SYN offered (it carries no ACK, so no edge is recorded when it goes out) */
  #synWindow = 0;

  // buffers
  readonly sendQ = new ByteQueue();
  readonly recvQ = new ByteQueue();
  readonly ooo = new Reassembly();
  /** text and FIN that came on a SYN in SYN-SENT, taken once ESTABLISHED (RFC 9293 §3.10.7.3) */
  #synText: TcpRepr | null = null;

  // timers, loss recovery and congestion control
  readonly timers = new Map<TimerKind, number>();
  readonly rto: RtoEstimator;
  retries = 0;
  readonly cc: NewReno;
  recovery: LossRecovery;
  /** send the first lost segment now, whatever pipe says (fast retransmit, RTO) */
  #forceRetransmit = false;
  /** the window reopened with only our FIN outstanding: send it again now, not after the RTO */
  #finResendDue = false;
  /** the tail loss probe may send one new segment beyond cwnd */
  #probeNew = false;
  #probeSent = false;
  /** SND.UNA when the retransmission timer last expired: the same segment timing out again */
  #rtoUna: SeqNumber | null = null;
  #rttProbe: { seq: SeqNumber; at: number } | null = null;
  /** where each segment in flight ended when first sent (from #sentHead on): retransmissions keep those boundaries, as Linux resends an skb */
  #sentEnds: SeqNumber[] = [];
  #sentHead = 0;
  #lastAckAt = 0;
  #lastHeardAt = 0;
  #keepaliveProbes = 0;
  #synDue = false;
  #ackPending = false;
  #ackNow = false;
  #challengeWindow = { start: -Infinity, count: 0 };

  // scripting hooks
  /** hold pure ACKs back (data segments still carry the ACK field) */
  holdAcks = false;
  /** advertise this window (bytes) instead of the free buffer space; null: the buffer decides */
  windowOverride: number | null = null;
  /** keep-alive probes (from the configuration; a connection may change it) */
  keepalive: KeepaliveConfig | null;

  readonly events: TcbEvent[] = [];

  private constructor(cfg: TcbConfig, localPort: number, remotePort: number, passive: boolean, init: TcbInit, now: number) {
    this.cfg = cfg;
    this.localPort = localPort;
    this.remotePort = remotePort;
    this.passive = passive;
    this.ipv6 = init.ipv6 ?? false;
    this.#state = passive ? 'LISTEN' : 'CLOSED';
    this.iss = seq(init.iss ?? cfg.isn ?? 0);
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndBase = seqAdd(this.iss, 1);
    this.tsOffset = (init.tsOffset ?? cfg.tsOffset ?? 0) >>> 0;
    this.rto = new RtoEstimator(cfg.rto);
    this.peerMss = this.ipv6 ? 1220 : 536; // RFC 9293 §3.7.1 MUST-15, until an MSS option says otherwise
    this.cc = new NewReno(cfg.initialCwnd * this.#smssFor(this.#ownMss()));
    this.recovery = new LossRecovery(false, this.iss);
    this.#lastHeardAt = now;
    this.keepalive = cfg.keepalive;
  }

  /** Active OPEN: a TCB in SYN-SENT whose SYN goes out at the next dispatch. */
  static connect(cfg: TcbConfig, localPort: number, remotePort: number, now: number, init: TcbInit = {}): Tcb {
    const t = new Tcb(cfg, localPort, remotePort, false, init, now);
    t.#setState('SYN-SENT', now);
    t.#synDue = true;
    return t;
  }

  /** Passive OPEN answering `syn` (a listener got it): a TCB in SYN-RECEIVED whose SYN,ACK goes out at the next dispatch. */
  static accept(cfg: TcbConfig, syn: TcpRepr, now: number, init: TcbInit = {}): Tcb {
    const t = new Tcb(cfg, syn.dstPort, syn.srcPort, true, init, now);
    t.#learnSyn(syn, now);
    t.#updateWindow(syn, true);
    t.#setState('SYN-RECEIVED', now);
    t.#synDue = true;
    return t;
  }

  get state(): TcpState {
    return this.#state;
  }

  // ------------------------------------------------------------------ user calls (RFC 9293 §3.10)

  /** SEND: queue bytes; returns how many were queued (none once the sending side is closed). */
  write(bytes: Uint8Array): number {
    if (this.finQueued || !(this.#state === 'SYN-SENT' || this.#state === 'SYN-RECEIVED' || this.#state === 'ESTABLISHED' || this.#state === 'CLOSE-WAIT')) return 0;
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
    if (!SYNCHRONIZED.has(this.#state) || this.finReceived || this.windowOverride !== null) return;
    const current = Math.max(0, seqDiff(this.rcvAdvEdge, this.rcvNxt));
    const edge = this.#windowEdge();
    if (seqGt(edge, this.rcvAdvEdge) && seqDiff(edge, this.rcvNxt) >= 2 * current) this.#ackNow = true;
  }

  /**
   * shutdown(SHUT_WR), RFC 9293's CLOSE: a FIN follows the queued data; receiving goes on. The
   * state changes at once, data still queued or not (§3.10.4: "enter FIN-WAIT-1"; Linux's
   * tcp_close_state), so a FIN that crosses ours finds FIN-WAIT-1 and leads to CLOSING.
   */
  shutdown(now: number): void {
    switch (this.#state) {
      case 'LISTEN':
      case 'SYN-SENT':
        this.#toClosed(now);
        return;
      case 'SYN-RECEIVED':
        this.finQueued = true; // FIN-WAIT-1 once ESTABLISHED (§3.10.4: "queue for processing after entering ESTABLISHED")
        return;
      case 'ESTABLISHED':
        this.finQueued = true;
        this.#setState('FIN-WAIT-1', now);
        return;
      case 'CLOSE-WAIT':
        this.finQueued = true;
        this.#setState('LAST-ACK', now);
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
    if (this.#state === 'FIN-WAIT-2') this.#armFinWait2(now);
    return [];
  }

  /** ABORT: an RST where the RFC sends one, then CLOSED. Returns the segments to send. */
  abort(now: number): TcpRepr[] {
    const out: TcpRepr[] = [];
    if (this.#abortResets()) {
      out.push(this.#segment(RST_ACK, this.sndNxt, EMPTY, now));
      this.events.push({ kind: 'reset', reason: 'rst-sent', at: now });
    }
    this.#toClosed(now);
    return out;
  }

  /**
   * Whether ABORT sends an RST: in the states §3.10.5 names, and in CLOSING or LAST-ACK while our
   * FIN has not gone yet (data still queued), where the peer is owed more (Linux tcp_disconnect:
   * snd_nxt != write_seq).
   */
  #abortResets(): boolean {
    return ABORT_RESETS.has(this.#state) || ((this.#state === 'CLOSING' || this.#state === 'LAST-ACK') && this.finSeq === null);
  }

  /**
   * TIME-WAIT: would a SYN on this four-tuple open a new incarnation (RFC 6191 §2; RFC 9293
   * §3.10.7.4 via RFC 1122 §4.2.2.13)? With timestamps on both incarnations, its TSval must be
   * newer, or equal with a higher sequence number; otherwise its sequence number must be above
   * the old RCV.NXT.
   */
  acceptsNewIncarnation(syn: TcpRepr, newUsesTimestamps: boolean): boolean {
    if (this.#state !== 'TIME-WAIT') return false;
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
    if (this.#state !== 'TIME-WAIT') return;
    this.events.push({ kind: 'reset', reason: 'reincarnated', at: now });
    this.#toClosed(now);
  }

  // ------------------------------------------------------------------ SEGMENT ARRIVES (§3.10.7)

  process(seg: TcpRepr, now: number): TcpRepr[] {
    const out: TcpRepr[] = [];
    if (this.#state === 'CLOSED' || this.#state === 'LISTEN') return out; // the stack answers for these
    this.#lastHeardAt = now;
    this.#keepaliveProbes = 0;
    if (this.#state === 'SYN-SENT') this.#synSentArrives(seg, now, out);
    else this.#synchronizedArrives(seg, now, out);
    return out;
  }

  /** §3.10.7.3: SYN-SENT. */
  #synSentArrives(seg: TcpRepr, now: number, out: TcpRepr[]): void {
    const f = seg.flags;
    // first: the ACK must acknowledge our SYN
    if (f.ack && (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndNxt))) {
      if (!f.rst) out.push(this.#rst(seg.ack, now));
      return;
    }
    const ackOk = f.ack && seqLe(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndNxt);
    // second: RST
    if (f.rst) {
      if (ackOk) {
        this.events.push({ kind: 'reset', reason: 'refused', at: now });
        this.#toClosed(now);
      }
      return;
    }
    // fourth: SYN
    if (!f.syn) return;
    this.#learnSyn(seg, now);
    if (ackOk) this.#ackAdvance(seg, now);
    if (seqGt(this.sndUna, this.iss)) {
      this.#updateWindow(seg, true);
      this.#setState('ESTABLISHED', now);
      this.#ackNow = true;
      // other controls or text: on from the sixth step (urgent, text, FIN)
      this.#urgent(seg, now);
      this.#text(seg, now, out);
      this.#finStep(now);
    } else {
      // simultaneous open (§3.5, figure 8): text and controls wait for ESTABLISHED
      this.#setState('SYN-RECEIVED', now);
      this.#synDue = true;
      if (seg.payload.length > 0 || f.fin) this.#synText = seg;
    }
  }

  /** §3.10.7.4: the synchronized states, step by step. */
  #synchronizedArrives(seg: TcpRepr, now: number, out: TcpRepr[]): void {
    if (this.#state === 'SYN-RECEIVED' && seg.flags.syn && !seg.flags.ack && seg.seq === this.irs) {
      this.#synDue = true; // the peer retransmitted its SYN: our SYN,ACK was lost
      return;
    }
    if (this.#state === 'TIME-WAIT' && this.#timeWaitArrives(seg, now, out)) return;
    const controlOnly = this.#checkSequence(seg, now, out); // first
    if (controlOnly === null) return;
    if (seg.flags.rst) return this.#checkRst(seg, now, out); // second
    // third (security) has nothing to check: twlab uses no compartments (RFC 9293 §3.10.7.4)
    if (seg.flags.syn && !this.#simultaneousSynAck(seg) && !this.#checkSyn(seg, now, out)) return; // fourth
    if (!seg.flags.ack) return; // fifth: no ACK, no processing
    if (!this.#checkAck(seg, now, out)) return;
    this.#updateTsRecent(seg, now); // RFC 7323 §4.3: once the segment has passed the ACK check
    if (this.#state === 'CLOSED' || this.#state === 'TIME-WAIT' || this.#state === 'CLOSING' || this.#state === 'LAST-ACK') return;
    if (controlOnly) {
      // a zero window takes ACKs, URGs and RSTs only: text and FIN wait, the reply says the window is still shut
      this.#urgent(seg, now);
      if (seg.payload.length > 0 || seg.flags.fin) this.#ackNow = true;
      return;
    }
    this.#urgent(seg, now); // sixth
    this.#text(seg, now, out); // seventh
    if (this.state === 'CLOSED') return; // data after close() reset it
    this.#finStep(now); // eighth
  }

  /** SYN-RECEIVED after a simultaneous open: the peer's SYN,ACK acknowledges our SYN (figure 8). */
  #simultaneousSynAck(seg: TcpRepr): boolean {
    return this.#state === 'SYN-RECEIVED' && !this.passive && seg.flags.syn && seg.flags.ack && seg.seq === this.irs;
  }

  /**
   * TIME-WAIT as Linux runs it (net/ipv4/tcp_minisocks.c): a retransmitted FIN is re-ACKed and
   * restarts 2·MSL (§3.10.7.4); anything else but an RST, a SYN or a bare ACK at RCV.NXT is
   * answered with an ACK, text never taken. Returns whether the segment was handled here.
   */
  #timeWaitArrives(seg: TcpRepr, now: number, out: TcpRepr[]): boolean {
    const f = seg.flags;
    if (f.rst || f.syn) return false;
    if (this.cfg.paws && this.#pawsRejects(seg, now)) {
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

  /** PAWS (RFC 7323 §5.3 R1): an older TSval on a non-RST segment, unless the connection idled 24 days. */
  #pawsRejects(seg: TcpRepr, now: number): boolean {
    if (!this.tsEnabled || seg.flags.rst || this.tsRecent === null) return false;
    const ts = option(seg.options, 'timestamps');
    if (!ts || !seqLt(seq(ts.tsval), seq(this.tsRecent))) return false;
    if (now - this.tsRecentAt > PAWS_IDLE_MS) {
      this.tsRecent = ts.tsval;
      this.tsRecentAt = now;
      return false;
    }
    this.events.push({ kind: 'paws-reject', tsval: ts.tsval, tsRecent: this.tsRecent, at: now });
    return true;
  }

  /**
   * First: is the segment acceptable (PAWS, then the four cases of §3.10.7.4)? An unacceptable
   * one draws an ACK (unless it is an RST) and is dropped: null. Otherwise whether only its
   * controls count (a zero window takes valid ACKs, URGs and RSTs at RCV.NXT).
   */
  #checkSequence(seg: TcpRepr, now: number, out: TcpRepr[]): boolean | null {
    if (this.cfg.paws && this.#pawsRejects(seg, now)) {
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
    if (this.#state === 'TIME-WAIT' && this.cfg.rfc1337) return; // no assassination (RFC 1337 §3)
    if (seg.seq !== this.rcvNxt) {
      this.#challengeAck('rst', now, out);
      return;
    }
    if (this.#state === 'SYN-RECEIVED') {
      if (this.passive) {
        this.#toClosed(now); // back to LISTEN: the listener lives on in the stack
        return;
      }
      this.events.push({ kind: 'reset', reason: 'refused', at: now }); // came from SYN-SENT: refused
      this.#toClosed(now);
      return;
    }
    this.events.push({ kind: 'reset', reason: 'rst-received', at: now });
    this.#toClosed(now);
  }

  /** Fourth: a SYN in a synchronized state (RFC 5961 §4: a challenge ACK). Returns whether processing goes on. */
  #checkSyn(seg: TcpRepr, now: number, out: TcpRepr[]): boolean {
    if (this.#state === 'SYN-RECEIVED' && this.passive) {
      this.#toClosed(now); // back to LISTEN
      return false;
    }
    this.#challengeAck('syn', now, out);
    return false;
  }

  /** Fifth: the ACK field. Returns whether processing goes on. */
  #checkAck(seg: TcpRepr, now: number, out: TcpRepr[]): boolean {
    if (this.#state === 'SYN-RECEIVED') {
      if (!(seqLt(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndNxt))) {
        out.push(this.#rst(seg.ack, now));
        return false;
      }
      const simultaneous = this.#simultaneousSynAck(seg);
      this.#updateWindow(seg, true);
      this.#ackAdvance(seg, now);
      this.#setState('ESTABLISHED', now);
      if (this.finQueued) this.#setState('FIN-WAIT-1', now); // CLOSE was called in SYN-RECEIVED
      if (simultaneous) {
        this.#ackNow = true;
        return false;
      }
      if (this.#synText) {
        const held = this.#synText;
        this.#synText = null;
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
    this.#lastAckAt = now;
    const finWasAcked = this.#finAcked();
    // an old ACK (below SND.UNA) updates nothing, whatever its SEQ (§3.10.7.4: only SND.UNA ≤ SEG.ACK ≤ SND.NXT updates the window)
    const mayUpdateWindow = seqGe(seg.ack, this.sndUna);
    if (seqGt(seg.ack, this.sndUna)) this.#ackAdvance(seg, now);
    else this.#sameAck(seg, now);
    if (mayUpdateWindow) this.#updateWindow(seg, false);
    const finAcked = this.#finAcked();
    switch (this.#state) {
      case 'FIN-WAIT-1':
        if (finAcked) {
          this.#setState('FIN-WAIT-2', now);
          if (this.orphaned) this.#armFinWait2(now);
        }
        return true;
      case 'CLOSING':
        if (finAcked) this.#enterTimeWait(now);
        return false;
      case 'LAST-ACK':
        if (finAcked && !finWasAcked) this.#toClosed(now);
        return false;
      default:
        return true;
    }
  }

  /** RFC 7323 §4.3: TS.Recent takes SEG.TSval if it is not older and the segment covers Last.ACK.sent. */
  #updateTsRecent(seg: TcpRepr, now: number): void {
    if (!this.tsEnabled) return;
    const ts = option(seg.options, 'timestamps');
    if (!ts || !seqLe(seg.seq, this.lastAckSent)) return;
    if (this.tsRecent !== null && seqLt(seq(ts.tsval), seq(this.tsRecent))) return;
    this.tsRecent = ts.tsval;
    this.tsRecentAt = now;
  }

  /** Sixth: URG. RCV.UP advances; the application hears of it (RFC 9293 §3.10.7.4, RFC 6093: the pointer is the byte after the urgent data). */
  #urgent(seg: TcpRepr, now: number): void {
    if (!seg.flags.urg || !RECEIVES_TEXT.has(this.#state)) return;
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
   * once RCV.NXT gets there), so one that came ahead of missing data is not lost.
   */
  #text(seg: TcpRepr, now: number, out: TcpRepr[]): void {
    let start = seg.flags.syn ? seqAdd(seg.seq, 1) : seg.seq;
    let data = seg.payload;
    const finAt = seg.flags.fin ? seqAdd(start, data.length) : null;
    if (!RECEIVES_TEXT.has(this.#state)) {
      // after the peer's FIN (or in a state that takes none): nothing is taken, an ACK says where we are
      if (data.length > 0) this.#ackNow = true;
      return;
    }
    if (this.orphaned && data.length > 0 && seqGt(seqAdd(start, data.length), this.rcvNxt)) {
      // new data after close(): it would be lost, so say so (RFC 1122 §4.2.2.13; Linux answers <SEQ=SEG.ACK><CTL=RST>)
      out.push(this.#rst(seg.ack, now));
      this.events.push({ kind: 'reset', reason: 'rst-sent', at: now });
      this.#toClosed(now);
      return;
    }
    if (data.length > this.#rcvMss) this.#rcvMss = Math.min(data.length, this.#ownMss());
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
      if (seg.payload.length > 0) this.#ackNow = true; // all old or beyond the window: a duplicate ACK
      return;
    }
    if (start !== this.rcvNxt) {
      // out of order: keep it, and a duplicate ACK at once (RFC 5681 §4.2) with SACK blocks
      this.ooo.insert(start, data);
      this.#ackNow = true;
      return;
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
    if (fillsHole || !this.ooo.empty || seqDiff(this.rcvNxt, this.lastAckSent) > this.#ackAfter()) this.#ackNow = true;
    else {
      this.#ackPending = true;
      if (this.cfg.delayedAck && !this.timers.has('delayed-ack')) this.timers.set('delayed-ack', now + this.cfg.delayedAckMs);
    }
  }

  /**
   * Unacknowledged bytes beyond which an ACK goes at once: more than one full-sized segment
   * (RFC 5681 §4.2: at least every second one), or with batch coalescing, GRO's 64 KiB.
   */
  #ackAfter(): number {
    if (this.cfg.delayedAck || this.cfg.ackCoalesce <= 0) return this.#rcvMss;
    return Math.max(this.#rcvMss, Math.min(this.cfg.ackCoalesce, Math.floor(this.cfg.rcvBuf / 4)));
  }

  /** Eighth: FIN, once RCV.NXT has reached it. */
  #finStep(now: number): void {
    if (this.ooo.finSeq === null || this.ooo.finSeq !== this.rcvNxt || this.finReceived) return;
    this.ooo.finSeq = null;
    this.finReceived = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.#ackNow = true;
    switch (this.#state) {
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
    this.events.push({ kind: 'eof', at: now }); // after the state change: a reader seeing EOF sees CLOSE-WAIT
  }

  #finAcked(): boolean {
    return this.finSeq !== null && seqGt(this.sndUna, this.finSeq);
  }

  /** A challenge ACK (RFC 5961 §3–5), at most challengeAckLimit of them (§7). */
  #challengeAck(reason: 'rst' | 'syn' | 'ack', now: number, out: TcpRepr[]): void {
    const limit = this.cfg.challengeAckLimit;
    if (limit) {
      const w = this.#challengeWindow;
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
      this.#ackNow = true;
      return;
    }
    out.push(this.#ack(now));
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
    this.#forgetSent(ack);
    if (dataAcked) this.events.push({ kind: 'acked', bytes: dataAcked, at: now });
    // RTT (RFC 6298 §2, RFC 7323 §4.1). Only a valid sample ends the back-off (RFC 6298 §5, Karn):
    // an ACK of a retransmitted segment without timestamps says nothing about the path.
    const ts = this.tsEnabled ? option(seg.options, 'timestamps') : undefined;
    if (ts && ts.tsecr !== 0) this.rto.sample(((now + this.tsOffset) >>> 0) - ts.tsecr);
    else if (this.#rttProbe && seqGe(ack, this.#rttProbe.seq)) this.rto.sample(now - this.#rttProbe.at);
    if (this.#rttProbe && seqGe(ack, this.#rttProbe.seq)) this.#rttProbe = null;
    this.retries = 0;
    this.#rtoUna = null;
    this.#probeSent = false;
    this.timers.delete('tail-probe');
    if (this.#state !== 'SYN-SENT' && this.#state !== 'SYN-RECEIVED') {
      if (this.sackEnabled) this.#learnSack(seg);
      const smss = this.effMss();
      const phase = this.recovery.phase;
      const r = this.recovery.onNewAck(ack, acked, smss);
      if (r === 'exit' && phase === 'fast-recovery') this.cc.onRecoveryEnd(seqDiff(this.sndNxt, this.sndUna), smss);
      else if (phase !== 'fast-recovery') this.cc.onAck(dataAcked || acked, smss);
      if (r === 'partial') {
        // NewReno (RFC 6582 §3.2 step 5): the segment now at SND.UNA is lost too, and goes at once
        if (!this.sackEnabled) this.#forceRetransmit = true;
        this.events.push({ kind: 'retransmit', seq: this.sndUna, bytes: Math.min(smss, seqDiff(this.sndNxt, this.sndUna)), timer: false, at: now });
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
    const duplicate = seg.ack === this.sndUna && seg.payload.length === 0 && !seg.flags.syn && !seg.flags.fin && seqGt(this.sndNxt, this.sndUna) && this.#windowOf(seg) === this.sndWnd;
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
    this.#forceRetransmit = true;
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
    const unsent = this.#unsent();
    const outstanding = Math.ceil(seqDiff(this.sndNxt, this.sndUna) / this.effMss());
    return outstanding >= 2 && outstanding < 4 && unsent <= 0 ? outstanding - 1 : 3;
  }

  #windowOf(seg: TcpRepr): number {
    return seg.flags.syn ? seg.window : seg.window * 2 ** this.sndShift;
  }

  /** SND.WND from a segment that is newer than the last update (RFC 9293 §3.10.7.4, fifth). */
  #updateWindow(seg: TcpRepr, force: boolean): void {
    if (force || seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, seg.ack))) {
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
          this.#forceRetransmit = true;
        } else if (this.finSeq !== null && this.sndUna === this.finSeq) this.#finResendDue = true; // our FIN alone is outstanding: the shut window dropped it (Linux < 6.10 does), it goes again now
      }
    }
  }

  #learnSyn(syn: TcpRepr, now: number): void {
    this.irs = syn.seq;
    this.rcvNxt = seqAdd(syn.seq, 1);
    this.rcvAdvEdge = seqAdd(this.rcvNxt, this.#synWindow); // RCV.WND: what our SYN offered, if we sent one
    this.rcvUp = this.rcvNxt;
    this.lastAckSent = this.rcvNxt;
    const mss = option(syn.options, 'mss');
    if (mss) this.peerMss = Math.max(MIN_PEER_MSS, mss.value);
    const ws = option(syn.options, 'wscale');
    this.#peerWs = !!ws;
    if (ws && this.cfg.wscale !== null) {
      this.sndShift = Math.min(14, ws.shift); // RFC 7323 §2.3: larger shifts are taken as 14
      this.rcvShift = this.cfg.wscale;
    }
    const ts = option(syn.options, 'timestamps');
    this.tsEnabled = !!ts && this.cfg.timestamps;
    if (this.tsEnabled) {
      this.tsRecent = ts!.tsval;
      this.tsRecentAt = now;
    }
    this.sackEnabled = !!option(syn.options, 'sackPermitted') && this.cfg.sackPermitted;
    this.recovery = new LossRecovery(this.sackEnabled, this.iss);
    this.cc.cwnd = this.cfg.initialCwnd * this.effMss();
  }

  #enterTimeWait(now: number): void {
    this.#setState('TIME-WAIT', now);
    this.timers.clear();
    this.timers.set('time-wait', now + 2 * this.cfg.mslMs);
  }

  #armFinWait2(now: number): void {
    if (this.cfg.finWait2TimeoutMs !== null && !this.timers.has('fin-wait-2')) this.timers.set('fin-wait-2', now + this.cfg.finWait2TimeoutMs);
  }

  #toClosed(now: number): void {
    this.timers.clear();
    this.#setState('CLOSED', now);
  }

  /** The one place the state changes. */
  #setState(to: TcpState, now: number): void {
    if (to === this.#state) return;
    this.events.push({ kind: 'state', from: this.#state, to, at: now });
    this.#state = to;
  }

  // ------------------------------------------------------------------ sending

  /** The MSS we announce (and never exceed): configured, or from the MTU (RFC 9293 §3.7.1). */
  #ownMss(): number {
    return this.cfg.mss ?? this.cfg.mtu - (this.ipv6 ? 60 : 40);
  }

  #smssFor(mss: number): number {
    return Math.max(1, mss - (this.tsEnabled ? TS_OPTION_BYTES : 0));
  }

  /** SMSS: the largest payload of a segment with the options every segment carries (RFC 9293 §3.7.1 Eff.snd.MSS). */
  effMss(): number {
    return this.#smssFor(Math.min(this.peerMss, this.#ownMss()));
  }

  /** The payload room of a segment that carries `optionBytes` of options (MUST-16: options come out of the MSS). */
  #payloadRoom(optionBytes: number): number {
    return Math.max(1, Math.min(this.peerMss, this.#ownMss()) - optionBytes);
  }

  /** Options every ACK-bearing segment would carry now: timestamps, SACK blocks. Their length, and the blocks. */
  #sackBlocks(): Array<[SeqNumber, SeqNumber]> | null {
    if (!this.sackEnabled || this.ooo.empty) return null;
    return this.ooo.sackBlocks(this.tsEnabled ? 3 : 4);
  }

  /** Bytes free in the receive buffer. */
  #freeSpace(): number {
    if (this.windowOverride !== null) return this.windowOverride;
    return Math.max(0, this.cfg.rcvBuf - this.recvQ.length - this.ooo.bytes);
  }

  /**
   * The right edge to advertise. It never moves left (RFC 9293 §3.8.6.2.2, MUST-39's receiver
   * SWS avoidance): it moves right only by at least min(RCV.BUFF/2, Eff.snd.MSS), so a slow
   * reader does not draw a stream of tiny segments. A scripted window (setWindow) may shrink it.
   */
  #windowEdge(): SeqNumber {
    const potential = seqAdd(this.rcvNxt, this.#freeSpace());
    if (this.windowOverride !== null) return potential;
    if (!seqGt(potential, this.rcvAdvEdge)) return this.rcvAdvEdge;
    const step = Math.min(Math.floor(this.cfg.rcvBuf / 2), this.#smssFor(this.#ownMss()));
    return seqDiff(potential, this.rcvAdvEdge) >= step ? potential : this.rcvAdvEdge;
  }

  /**
   * The window field for the next segment, scaled down (RFC 7323 §2.3). Truncation may leave the
   * advertised edge less than 2^shift short of the tracked one (RFC 7323 §2.4); segments up to the
   * tracked edge are still taken.
   */
  #windowField(syn: boolean): number {
    const wnd = Math.max(0, seqDiff(this.#windowEdge(), this.rcvNxt));
    if (syn) return Math.min(65535, wnd);
    return Math.min(65535, Math.floor(wnd / 2 ** this.rcvShift));
  }

  /**
   * The timestamps option a segment of this connection carries at `now` once they were negotiated
   * (RFC 7323 §3.2: on every segment; TSecr is TS.Recent when the ACK bit is set, else 0), none
   * otherwise. Also for segments a script builds outside the TCB, so they look like ours.
   */
  timestampOptions(now: number, ack: boolean): TcpOption[] {
    return this.tsEnabled ? [NOP, NOP, { kind: 'timestamps', tsval: (now + this.tsOffset) >>> 0, tsecr: ack ? (this.tsRecent ?? 0) : 0 }] : [];
  }

  /** A segment of ours: timestamps on every one once negotiated (RFC 7323 §3.2), SACK blocks when given; a SYN brings its own options. */
  #segment(flags: TcpFlags, seqNo: SeqNumber, payload: Uint8Array, now: number, sack: Array<[SeqNumber, SeqNumber]> | null = null, synOptions: TcpOption[] | null = null): TcpRepr {
    let options: TcpOption[];
    if (synOptions) options = synOptions;
    else {
      options = this.timestampOptions(now, flags.ack);
      if (sack) options.push(NOP, NOP, { kind: 'sack', blocks: sack });
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
      this.timers.delete('delayed-ack');
    }
    return s;
  }

  /** A bare ACK <SEQ=SND.NXT><ACK=RCV.NXT>, with SACK blocks when we hold out-of-order data. */
  #ack(now: number): TcpRepr {
    return this.#segment(ACK, this.sndNxt, EMPTY, now, this.#sackBlocks());
  }

  #rst(seqNo: SeqNumber, now: number): TcpRepr {
    return this.#segment(RST, seqNo, EMPTY, now);
  }

  /**
   * SYN options in the order Linux writes them (tcp_options_write): MSS, then SACK-permitted and
   * timestamps sharing a word (or NOP NOP before either alone), then NOP and window scale — 20
   * bytes with all four, a 40-byte header, no padding.
   */
  #synOptions(now: number): TcpOption[] {
    const answering = this.#state === 'SYN-RECEIVED';
    const sack = this.cfg.sackPermitted && (!answering || this.sackEnabled);
    const ts = answering ? this.tsEnabled : this.cfg.timestamps;
    const o: TcpOption[] = [{ kind: 'mss', value: this.#ownMss() }];
    if (ts) {
      if (sack) o.push(SACK_PERMITTED);
      else o.push(NOP, NOP);
      o.push({ kind: 'timestamps', tsval: (now + this.tsOffset) >>> 0, tsecr: answering ? (this.tsRecent ?? 0) : 0 });
    } else if (sack) o.push(NOP, NOP, SACK_PERMITTED);
    if (this.cfg.wscale !== null && (!answering || this.#peerWs)) o.push(NOP, { kind: 'wscale', shift: this.cfg.wscale });
    return o;
  }

  /** Everything due at `now`: expired timers, then SYN, retransmissions, data, FIN, a pending ACK. */
  dispatch(now: number): TcpRepr[] {
    const out: TcpRepr[] = [];
    this.#expireTimers(now, out);
    if (this.#state === 'CLOSED') return out;
    if (this.#synDue) {
      this.#synDue = false;
      const synack = this.#state === 'SYN-RECEIVED';
      const syn = this.#segment(flagsOf({ syn: true, ack: synack }), this.iss, EMPTY, now, null, this.#synOptions(now));
      if (!synack) this.#synWindow = syn.window;
      out.push(syn);
      if (seqLe(this.sndNxt, this.iss)) this.sndNxt = seqAdd(this.iss, 1);
      if (!this.timers.has('retransmit')) this.timers.set('retransmit', now + this.rto.rtoMs);
      if (!this.#rttProbe && this.retries === 0) this.#rttProbe = { seq: this.sndNxt, at: now };
    }
    if (SENDS_DATA.has(this.#state)) this.#transmit(now, out);
    if ((this.#ackNow || (this.#ackPending && !this.cfg.delayedAck)) && !this.holdAcks && SYNCHRONIZED.has(this.#state) && this.#state !== 'SYN-RECEIVED') {
      out.push(this.#ack(now));
    }
    this.#armIdleTimers(now);
    return out;
  }

  /** Whether a dispatch would send an ACK at once (the stack need not wait for the end of a batch of frames). */
  get ackDue(): boolean {
    return this.#ackNow || this.#synDue;
  }

  #noteSent(end: SeqNumber): void {
    const ends = this.#sentEnds;
    if (ends.length === this.#sentHead || seqGt(end, ends[ends.length - 1]!)) ends.push(end);
  }

  #forgetSent(una: SeqNumber): void {
    const ends = this.#sentEnds;
    while (this.#sentHead < ends.length && seqLe(ends[this.#sentHead]!, una)) this.#sentHead++;
    if (this.#sentHead === ends.length) {
      ends.length = 0;
      this.#sentHead = 0;
    } else if (this.#sentHead > 1024 && this.#sentHead * 2 > ends.length) {
      this.#sentEnds = ends.slice(this.#sentHead);
      this.#sentHead = 0;
    }
  }

  /** The end of the segment, as first sent, that holds `p` (binary search), or null. */
  #sentSegmentEnd(p: SeqNumber): SeqNumber | null {
    const ends = this.#sentEnds;
    let lo = this.#sentHead;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqGt(ends[mid]!, p)) hi = mid;
      else lo = mid + 1;
    }
    return lo < ends.length ? ends[lo]! : null;
  }

  #unsent(): number {
    return this.sendQ.length - seqDiff(this.sndNxt, this.sndBase);
  }

  /** SND.UNA + SND.WND − SND.NXT: what the peer's window still allows (negative once it shrank). */
  #usableWindow(): number {
    return seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
  }

  /**
   * One data (and/or FIN) segment from `from`: payload from the send queue up to `maxLen` and
   * the payload room, and the FIN when `finOk` and the data ends where the FIN goes. Returns the
   * sequence number after it (`from` when there was nothing to send).
   */
  #dataSegment(from: SeqNumber, maxLen: number, finOk: boolean, now: number, out: TcpRepr[]): SeqNumber {
    const sack = this.#sackBlocks();
    const optionBytes = (this.tsEnabled ? TS_OPTION_BYTES : 0) + (sack ? 4 + 8 * sack.length : 0);
    const offset = seqDiff(from, this.sndBase);
    const dataEnd = seqAdd(this.sndBase, this.sendQ.length);
    const n = Math.max(0, Math.min(maxLen, this.sendQ.length - offset, this.#payloadRoom(optionBytes)));
    const end = seqAdd(from, n);
    const fin = finOk && end === dataEnd && (this.finQueued || this.finSeq !== null);
    if (n === 0 && !fin) return from;
    const psh = n > 0 && end === dataEnd;
    out.push(this.#segment(flagsOf({ ack: true, psh, fin }), from, this.sendQ.view(offset, n), now, sack));
    if (fin && this.finSeq === null) this.finSeq = dataEnd; // the state changed when CLOSE was called
    if (!this.timers.has('retransmit')) this.timers.set('retransmit', now + this.rto.rtoMs);
    return seqAdd(end, fin ? 1 : 0);
  }

  /**
   * Sends what may go: first what loss recovery says is lost (RFC 6675 NextSeg), then new data
   * within the peer's window and the congestion window, avoiding silly segments (RFC 9293
   * §3.8.6.2.1), then the FIN.
   */
  #transmit(now: number, out: TcpRepr[]): void {
    const smss = this.effMss();
    const rec = this.recovery;
    // 1. retransmissions
    for (;;) {
      const r = rec.nextRetransmission(this.sndUna);
      if (!r) break;
      const force = this.#forceRetransmit;
      if (!force && this.cc.cwnd - rec.pipe(this.sndUna, this.sndNxt, smss) < smss) return;
      // the peer's window bounds retransmissions too, except SND.UNA's segment (a probe of a shrunk window, as Linux sends it)
      const wndEnd = seqAdd(this.sndUna, this.sndWnd);
      let end = r.end;
      const segEnd = this.#sentSegmentEnd(r.from);
      if (segEnd !== null && seqLt(segEnd, end)) end = segEnd;
      if (r.from !== this.sndUna) {
        if (!seqLt(r.from, wndEnd)) return;
        if (seqGt(end, wndEnd)) end = wndEnd;
      }
      const sent = this.#dataSegment(r.from, seqDiff(end, r.from), this.finSeq !== null && seqLt(this.finSeq, end), now, out);
      this.#forceRetransmit = false;
      if (this.#rttProbe && seqLt(r.from, this.#rttProbe.seq)) this.#rttProbe = null; // Karn
      rec.retransmitted(sent);
      if (sent === r.from) break; // nothing could go (no room): do not spin
    }
    this.#forceRetransmit = false;
    // … or the FIN sent into a window that was shut
    if (this.#finResendDue) {
      this.#finResendDue = false;
      if (this.finSeq !== null && this.sndUna === this.finSeq) {
        this.events.push({ kind: 'retransmit', seq: this.finSeq, bytes: 1, timer: false, at: now });
        this.#rttProbe = null; // Karn
        this.#dataSegment(this.finSeq, 0, true, now, out);
      }
    }
    // 2. new data
    for (;;) {
      const unsent = this.#unsent();
      if (unsent <= 0) break;
      const usable = this.#usableWindow();
      const probe = this.#probeNew;
      const room = probe ? smss : this.cc.cwnd - rec.pipe(this.sndUna, this.sndNxt, smss);
      const sack = this.#sackBlocks();
      const segMax = this.#payloadRoom((this.tsEnabled ? TS_OPTION_BYTES : 0) + (sack ? 4 + 8 * sack.length : 0));
      const n = Math.min(unsent, usable, room, segMax);
      // sender SWS avoidance: a full segment, or all that is queued, or half the largest window the peer offered
      const sendable = n > 0 && (n >= segMax || n === unsent || (n === Math.min(unsent, usable) && n >= this.maxSndWnd / 2));
      if (!sendable) break;
      this.#probeNew = false;
      const from = this.sndNxt;
      const end = this.#dataSegment(from, n, true, now, out);
      if (!this.#rttProbe) this.#rttProbe = { seq: end, at: now };
      this.sndNxt = end;
      this.#noteSent(end);
    }
    this.#probeNew = false;
    // 3. a FIN after all the data, which needs no window
    if (this.finQueued && this.finSeq === null && this.#unsent() <= 0) {
      const end = this.#dataSegment(this.sndNxt, 0, true, now, out);
      this.sndNxt = end;
      this.#noteSent(end);
    }
  }

  /** The timers that wait for silence: tail loss probe, persist (zero window, SWS override), keep-alive. */
  #armIdleTimers(now: number): void {
    if (!SYNCHRONIZED.has(this.#state) || this.#state === 'TIME-WAIT' || this.#state === 'SYN-RECEIVED') return;
    const flight = seqDiff(this.sndNxt, this.sndUna);
    // tail loss probe (RFC 8985 §7.2): PTO = 2·SRTT; one segment in flight adds the worst-case delayed ACK (Linux TCP_DELACK_MAX)
    if (this.cfg.tailLossProbe && !this.#probeSent && this.recovery.phase === 'open' && flight > 0 && this.rto.srttMs !== null && !this.timers.has('tail-probe')) {
      const pto = Math.max(2 * this.rto.srttMs, 10) + (flight <= this.effMss() ? 200 : 0);
      if (now + pto < (this.timers.get('retransmit') ?? Infinity)) this.timers.set('tail-probe', now + pto);
    }
    // persist: data waits, nothing is in flight to draw an ACK, and the window is shut or too small to use (RFC 9293 §3.8.6.1, §3.8.6.2.1)
    if (flight === 0 && this.#unsent() > 0 && !this.timers.has('persist')) this.timers.set('persist', now + this.rto.rtoMs);
    if (this.keepalive && flight === 0 && this.#unsent() <= 0) {
      const ka = this.keepalive;
      const at = this.#keepaliveProbes === 0 ? this.#lastHeardAt + ka.idleMs : (this.timers.get('keepalive') ?? now + ka.intervalMs);
      this.timers.set('keepalive', at);
    } else this.timers.delete('keepalive');
  }

  #expireTimers(now: number, out: TcpRepr[]): void {
    for (const [kind, at] of this.timers) {
      if (at > now) continue;
      this.timers.delete(kind);
      switch (kind) {
        case 'time-wait':
          this.#toClosed(now);
          return;
        case 'fin-wait-2':
          if (this.#state !== 'FIN-WAIT-2') break;
          this.events.push({ kind: 'reset', reason: 'fin-wait-2-timeout', at: now });
          this.#toClosed(now);
          return;
        case 'delayed-ack':
          if (this.#ackPending) this.#ackNow = true;
          break;
        case 'tail-probe':
          this.#tailProbe(now, out);
          break;
        case 'persist':
          this.#persist(now, out);
          break;
        case 'keepalive':
          if (this.#keepalive(now, out)) return;
          break;
        case 'retransmit':
          if (this.#retransmitTimeout(now)) return;
          break;
      }
    }
  }

  /** One probe (RFC 8985 §7.3): new data if the window allows, else the last segment again. */
  #tailProbe(now: number, out: TcpRepr[]): void {
    if (!seqGt(this.sndNxt, this.sndUna) || this.recovery.phase !== 'open') return;
    this.#probeSent = true;
    if (this.#unsent() > 0 && this.#usableWindow() > 0) {
      this.#probeNew = true;
      return;
    }
    // the last segment as it was sent (with the FIN if that went)
    const ends = this.#sentEnds;
    const before = ends.length - 2 >= this.#sentHead ? ends[ends.length - 2]! : this.sndUna;
    const from = seqGt(before, this.sndUna) ? before : this.sndUna;
    this.events.push({ kind: 'retransmit', seq: from, bytes: seqDiff(this.sndNxt, from), timer: true, at: now });
    if (this.#rttProbe) this.#rttProbe = null;
    this.#dataSegment(from, seqDiff(this.sndNxt, from), true, now, out);
  }

  /**
   * Data waits and nothing is in flight: the window is zero — a probe, an ACK just below SND.UNA
   * that draws the peer's window (as Linux sends it) — or too small for the SWS rules, whose
   * override timeout lets what fits go now (RFC 9293 §3.8.6.2.1 (4)).
   */
  #persist(now: number, out: TcpRepr[]): void {
    if (this.#unsent() <= 0 || seqGt(this.sndNxt, this.sndUna)) return;
    const usable = this.#usableWindow();
    if (usable > 0) {
      const end = this.#dataSegment(this.sndNxt, Math.min(usable, this.effMss()), true, now, out);
      this.sndNxt = end;
      this.#noteSent(end);
      return;
    }
    out.push(this.#segment(ACK, seqAdd(this.sndUna, -1), EMPTY, now));
    this.rto.expired();
    this.timers.set('persist', now + this.rto.rtoMs);
  }

  /** A keep-alive <SEQ=SND.NXT−1> after the idle time, then every interval; unanswered ones end the connection with an RST (as Linux does). */
  #keepalive(now: number, out: TcpRepr[]): boolean {
    const ka = this.keepalive;
    if (!ka || seqGt(this.sndNxt, this.sndUna) || this.#unsent() > 0) return false;
    if (this.#keepaliveProbes >= ka.probes) {
      out.push(this.#segment(RST_ACK, this.sndNxt, EMPTY, now));
      this.events.push({ kind: 'reset', reason: 'keepalive-timeout', at: now });
      this.#toClosed(now);
      return true;
    }
    this.#keepaliveProbes++;
    this.events.push({ kind: 'keepalive', probe: this.#keepaliveProbes, at: now });
    out.push(this.#segment(ACK, seqAdd(this.sndNxt, -1), EMPTY, now));
    this.timers.set('keepalive', now + ka.intervalMs);
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
  #retransmitTimeout(now: number): boolean {
    const synState = this.#state === 'SYN-SENT' || this.#state === 'SYN-RECEIVED';
    const flight = seqDiff(this.sndNxt, this.sndUna);
    if (!synState && flight <= 0) return false;
    const zeroWindowProbe = !synState && this.sndWnd === 0 && now - this.#lastAckAt < this.rto.cfg.maxMs;
    if (!zeroWindowProbe) this.retries++;
    if (this.retries > (synState ? this.cfg.synRetries : this.cfg.dataRetries)) {
      this.events.push({ kind: 'reset', reason: 'timeout', at: now });
      this.#toClosed(now);
      return true;
    }
    this.rto.expired();
    this.#rttProbe = null;
    this.timers.set('retransmit', now + this.rto.rtoMs);
    this.timers.delete('tail-probe');
    if (synState) {
      this.events.push({ kind: 'retransmit', seq: this.iss, bytes: 1, timer: true, at: now });
      this.#synDue = true;
      return false;
    }
    const smss = this.effMss();
    this.cc.onRetransmitTimeout(flight, smss, this.#rtoUna === this.sndUna);
    this.#rtoUna = this.sndUna;
    this.recovery.onRetransmitTimeout(this.sndUna, this.sndNxt);
    this.#forceRetransmit = true;
    this.events.push({ kind: 'retransmit', seq: this.sndUna, bytes: flight, timer: true, at: now });
    return false;
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
      throw new Error(`TCB invariant broken in ${this.#state}: ${what}`);
    };
    if (!TCP_STATES.includes(this.#state)) fail(`unknown state ${String(this.#state)}`);
    if (seqGt(this.sndUna, this.sndNxt)) fail(`SND.UNA ${this.sndUna} > SND.NXT ${this.sndNxt}`);
    const rec = this.recovery;
    if (rec.phase !== 'open') {
      if (seqGt(rec.highRxt, this.sndNxt)) fail(`retransmission cursor ${rec.highRxt} beyond SND.NXT ${this.sndNxt}`);
      if (seqGt(rec.recover, this.sndNxt)) fail(`recovery point ${rec.recover} beyond SND.NXT ${this.sndNxt}`);
    }
    for (const [l, r] of rec.scoreboard.ranges) {
      if (!seqLt(l, r) || seqLt(l, this.sndUna) || seqGt(r, this.sndNxt)) fail(`SACKed range [${l}, ${r}) outside (SND.UNA ${this.sndUna}, SND.NXT ${this.sndNxt}]`);
    }
    if (this.sndWnd < 0 || this.sndWnd > 65535 * 2 ** 14) fail(`SND.WND ${this.sndWnd}`);
    if (this.cc.cwnd < 1) fail(`cwnd ${this.cc.cwnd}`);
    if (SYNCHRONIZED.has(this.#state)) {
      if (seqLt(this.rcvAdvEdge, this.rcvNxt) && this.windowOverride === null && !this.finReceived) fail(`advertised edge ${this.rcvAdvEdge} below RCV.NXT ${this.rcvNxt}`);
      for (const p of this.ooo.pieces) {
        if (!seqGt(p.seq, this.rcvNxt)) fail(`out-of-order data at ${p.seq} not above RCV.NXT ${this.rcvNxt}`);
        if (seqGt(seqAdd(p.seq, p.data.length), this.rcvAdvEdge)) fail(`out-of-order data beyond the advertised edge ${this.rcvAdvEdge}`);
      }
      const dataUnacked = seqDiff(seqAdd(this.sndBase, this.sendQ.length), this.sndUna);
      if (dataUnacked < -1 || (this.finSeq === null && seqGt(this.sndBase, seqAdd(this.sndUna, 1)))) fail(`send queue starts at ${this.sndBase}, SND.UNA ${this.sndUna}`);
    }
    if (this.windowOverride === null && this.recvQ.length + this.ooo.bytes > this.cfg.rcvBuf) fail(`receive queue ${this.recvQ.length} + ${this.ooo.bytes} out of order beyond the buffer ${this.cfg.rcvBuf}`);
  }
}
