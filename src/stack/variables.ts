// The Transmission Control Block's variables (RFC 9293 §3.3.1): the state, the send and receive
// sequence spaces, what the SYNs negotiated, the queues, timers and the bookkeeping of loss
// recovery — data, and the few quantities derived from it, nothing that processes a segment.
//
// Why this shape: the TCB is one record that every part of TCP reads and writes, while the logic
// falls into the parts RFC 9293 §3.10 names (the user calls, SEGMENT ARRIVES per state group,
// sending, timeouts). So the record lives here, each part is a module of functions taking it
// (arrives-*.ts, output.ts, timers.ts, options.ts, segments.ts), and `Tcb` (tcb.ts) extends it
// with the user calls and the sans-IO entry points. Imports run one way — tcb.ts → the parts →
// this file — with no cycle. A module cannot see another's #private field, so the bookkeeping
// fields below are public to the stack's modules; callers use the documented API of tcb.ts.
// The state is still written in one place: setState.
import { seq, seqAdd, seqDiff, seqGt, type SeqNumber } from '../wire/seq';
import type { TcpRepr } from '../wire/tcp';
import { ByteQueue } from './bytes';
import type { KeepaliveConfig, TcbConfig, TcbInit } from './config';
import { NewReno } from './congestion';
import { Reassembly } from './reassembly';
import { LossRecovery } from './recovery';
import type { TcpState } from '../wire/tcp';
import { RtoEstimator } from './rto';
import { SentSegments } from './sent';

export type { TcpState } from '../wire/tcp';

export const TCP_STATES: readonly TcpState[] = [
  'CLOSED',
  'LISTEN',
  'SYN-SENT',
  'SYN-RECEIVED',
  'ESTABLISHED',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'CLOSE-WAIT',
  'CLOSING',
  'LAST-ACK',
  'TIME-WAIT',
];

export type TimerKind = 'retransmit' | 'tail-probe' | 'persist' | 'delayed-ack' | 'time-wait' | 'keepalive' | 'fin-wait-2';

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

/** SYN-RECEIVED and every state after it: both sides' sequence numbers are known */
export const SYNCHRONIZED: ReadonlySet<TcpState> = new Set([
  'SYN-RECEIVED',
  'ESTABLISHED',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'CLOSE-WAIT',
  'CLOSING',
  'LAST-ACK',
  'TIME-WAIT',
]);
export const RECEIVES_TEXT: ReadonlySet<TcpState> = new Set(['ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2']);
export const SENDS_DATA: ReadonlySet<TcpState> = new Set(['ESTABLISHED', 'CLOSE-WAIT', 'FIN-WAIT-1', 'CLOSING', 'LAST-ACK']);

/** NOP NOP TS: 12 bytes on every segment once timestamps are on (RFC 7323 Appendix A layout) */
export const TS_OPTION_BYTES = 12;

export class TcbVariables {
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
  /** the peer's SYN offered window scaling (our SYN,ACK then offers it too) */
  peerWs = false;
  sndShift = 0; // the peer's window scale: applies to windows we receive
  rcvShift = 0; // ours: applies to windows we send
  tsEnabled = false;
  sackEnabled = false;
  tsRecent: number | null = null;
  tsRecentAt = 0;
  lastAckSent: SeqNumber = seq(0);
  readonly tsOffset: number;
  /** the largest segment the peer has sent us (Linux rcv_mss): "full-sized" for the ACK rule */
  rcvMss = 536;
  /** the window our SYN offered (it carries no ACK, so no edge is recorded when it goes out) */
  synWindow = 0;

  // buffers
  readonly sendQ = new ByteQueue();
  readonly recvQ = new ByteQueue();
  readonly ooo = new Reassembly();
  /** text and FIN that came on a SYN in SYN-SENT, taken once ESTABLISHED (RFC 9293 §3.10.7.3) */
  synText: TcpRepr | null = null;

  // timers, loss recovery and congestion control
  readonly timers = new Map<TimerKind, number>();
  readonly rto: RtoEstimator;
  retries = 0;
  readonly cc: NewReno;
  recovery: LossRecovery;
  /** where each segment in flight ended when first sent */
  readonly sent = new SentSegments();
  /** send the first lost segment now, whatever pipe says (fast retransmit, RTO) */
  forceRetransmit = false;
  /** the window reopened with only our FIN outstanding: send it again now, not after the RTO */
  finResendDue = false;
  /** the tail loss probe may send one new segment beyond cwnd */
  probeNew = false;
  probeSent = false;
  /** SND.UNA when the retransmission timer last expired: the same segment timing out again */
  rtoUna: SeqNumber | null = null;
  /** the one segment being timed for an RTT sample without timestamps (Karn: never a retransmitted one) */
  rttProbe: { seq: SeqNumber; at: number } | null = null;
  lastAckAt = 0;
  lastHeardAt = 0;
  keepaliveProbes = 0;

  // what is owed to the peer
  /** our SYN (or SYN,ACK) goes at the next dispatch */
  synDue = false;
  /** an ACK is owed: at the end of the batch, or after the delayed-ACK timeout */
  ackPending = false;
  /** an ACK is owed at once */
  ackNow = false;
  /** challenge ACKs sent in the current interval (RFC 5961 §7) */
  challengeWindow = { start: -Infinity, count: 0 };

  // scripting hooks
  /** hold pure ACKs back (data segments still carry the ACK field) */
  holdAcks = false;
  /** advertise this window (bytes) instead of the free buffer space; null: the buffer decides */
  windowOverride: number | null = null;
  /** keep-alive probes (from the configuration; a connection may change it) */
  keepalive: KeepaliveConfig | null;

  readonly events: TcbEvent[] = [];

  protected constructor(cfg: TcbConfig, localPort: number, remotePort: number, passive: boolean, init: TcbInit, now: number) {
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
    this.cc = new NewReno(cfg.initialCwnd * this.smssFor(this.ownMss()));
    this.recovery = new LossRecovery(false, this.iss);
    this.lastHeardAt = now;
    this.keepalive = cfg.keepalive;
  }

  get state(): TcpState {
    return this.#state;
  }

  /** The one place the state changes. */
  setState(to: TcpState, now: number): void {
    if (to === this.#state) return;
    this.events.push({ kind: 'state', from: this.#state, to, at: now });
    this.#state = to;
  }

  /** CLOSED: the connection is gone, and with it every timer. */
  toClosed(now: number): void {
    this.timers.clear();
    this.setState('CLOSED', now);
  }

  // ------------------------------------------------------------------ derived quantities

  /** The MSS we announce (and never exceed): configured, or from the MTU (RFC 9293 §3.7.1). */
  ownMss(): number {
    return this.cfg.mss ?? this.cfg.mtu - (this.ipv6 ? 60 : 40);
  }

  smssFor(mss: number): number {
    return Math.max(1, mss - (this.tsEnabled ? TS_OPTION_BYTES : 0));
  }

  /** SMSS: the largest payload of a segment with the options every segment carries (RFC 9293 §3.7.1 Eff.snd.MSS). */
  effMss(): number {
    return this.smssFor(Math.min(this.peerMss, this.ownMss()));
  }

  /** The payload room of a segment that carries `optionBytes` of options (MUST-16: options come out of the MSS). */
  payloadRoom(optionBytes: number): number {
    return Math.max(1, Math.min(this.peerMss, this.ownMss()) - optionBytes);
  }

  /** Bytes queued and never sent. */
  unsent(): number {
    return this.sendQ.length - seqDiff(this.sndNxt, this.sndBase);
  }

  /** SND.UNA + SND.WND − SND.NXT: what the peer's window still allows (negative once it shrank). */
  usableWindow(): number {
    return seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
  }

  finAcked(): boolean {
    return this.finSeq !== null && seqGt(this.sndUna, this.finSeq);
  }
}
