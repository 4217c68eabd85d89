// Building our segments: the window we advertise (receiver SWS avoidance, RFC 9293 §3.8.6.2.2;
// scaled, RFC 7323 §2.3), the options every segment carries (timestamps, SACK blocks), and what
// sending an ACK settles (Last.ACK.sent, the advertised edge, the ACK no longer owed). Which
// segments go, and when, is the business of output.ts, timers.ts and the arrival steps.
import { seq, seqAdd, seqDiff, seqGt, type SeqNumber } from '../wire/seq';
import { FLAGS_BY_BYTE, type TcpFlags, type TcpOption, type TcpRepr } from '../wire/tcp';
import { NOP } from './options';
import type { TcbVariables } from './variables';

export const EMPTY = new Uint8Array(0);
/** Flags of the segments we build (shared, frozen: building one allocates no flags object). */
export const flagsOf = (f: { fin?: boolean; syn?: boolean; rst?: boolean; psh?: boolean; ack?: boolean }): TcpFlags =>
  FLAGS_BY_BYTE[(f.fin ? 0x01 : 0) | (f.syn ? 0x02 : 0) | (f.rst ? 0x04 : 0) | (f.psh ? 0x08 : 0) | (f.ack ? 0x10 : 0)]!;
export const ACK = flagsOf({ ack: true });
const RST = flagsOf({ rst: true });
export const RST_ACK = flagsOf({ rst: true, ack: true });

/** The SACK blocks an ACK-bearing segment carries now (RFC 2018 §4), or null. */
export function sackBlocks(t: TcbVariables): Array<[SeqNumber, SeqNumber]> | null {
  if (!t.sackEnabled || t.ooo.empty) return null;
  return t.ooo.sackBlocks(t.tsEnabled ? 3 : 4);
}

/** Bytes free in the receive buffer. */
function freeSpace(t: TcbVariables): number {
  if (t.windowOverride !== null) return t.windowOverride;
  return Math.max(0, t.cfg.rcvBuf - t.recvQ.length - t.ooo.bytes);
}

/**
 * The right edge to advertise. It never moves left (RFC 9293 §3.8.6.2.2, MUST-39's receiver
 * SWS avoidance): it moves right only by at least min(RCV.BUFF/2, Eff.snd.MSS), so a slow
 * reader does not draw a stream of tiny segments. A scripted window (setWindow) may shrink it.
 */
export function windowEdge(t: TcbVariables): SeqNumber {
  const potential = seqAdd(t.rcvNxt, freeSpace(t));
  if (t.windowOverride !== null) return potential;
  if (!seqGt(potential, t.rcvAdvEdge)) return t.rcvAdvEdge;
  const step = Math.min(Math.floor(t.cfg.rcvBuf / 2), t.smssFor(t.ownMss()));
  return seqDiff(potential, t.rcvAdvEdge) >= step ? potential : t.rcvAdvEdge;
}

/**
 * The window field for the next segment, scaled down (RFC 7323 §2.3). Truncation may leave the
 * advertised edge less than 2^shift short of the tracked one (RFC 7323 §2.4); segments up to the
 * tracked edge are still taken.
 */
function windowField(t: TcbVariables, syn: boolean): number {
  const wnd = Math.max(0, seqDiff(windowEdge(t), t.rcvNxt));
  if (syn) return Math.min(65535, wnd);
  return Math.min(65535, Math.floor(wnd / 2 ** t.rcvShift));
}

/**
 * The timestamps option a segment of this connection carries at `now` once they were negotiated
 * (RFC 7323 §3.2: on every segment; TSecr is TS.Recent when the ACK bit is set, else 0), none
 * otherwise. Also for segments a script builds outside the TCB, so they look like ours.
 */
export function timestampOptions(t: TcbVariables, now: number, ack: boolean): TcpOption[] {
  return t.tsEnabled ? [NOP, NOP, { kind: 'timestamps', tsval: (now + t.tsOffset) >>> 0, tsecr: ack ? (t.tsRecent ?? 0) : 0 }] : [];
}

/**
 * A segment of ours: timestamps on every one once negotiated (RFC 7323 §3.2), SACK blocks when
 * given; a SYN brings its own options.
 */
export function segment(
  t: TcbVariables,
  flags: TcpFlags,
  seqNo: SeqNumber,
  payload: Uint8Array,
  now: number,
  sack: Array<[SeqNumber, SeqNumber]> | null = null,
  synOptions: TcpOption[] | null = null,
): TcpRepr {
  let options: TcpOption[];
  if (synOptions) options = synOptions;
  else {
    options = timestampOptions(t, now, flags.ack);
    if (sack) options.push(NOP, NOP, { kind: 'sack', blocks: sack });
  }
  const window = flags.rst ? 0 : windowField(t, flags.syn);
  const s: TcpRepr = {
    srcPort: t.localPort,
    dstPort: t.remotePort,
    seq: seqNo,
    ack: flags.ack ? t.rcvNxt : seq(0),
    flags,
    window,
    urgent: 0,
    options,
    payload,
  };
  if (flags.ack && !flags.rst) {
    t.lastAckSent = t.rcvNxt;
    const edge = seqAdd(t.rcvNxt, window * (flags.syn ? 1 : 2 ** t.rcvShift));
    if (seqGt(edge, t.rcvAdvEdge) || t.windowOverride !== null) t.rcvAdvEdge = edge;
    t.ackPending = false;
    t.ackNow = false;
    t.timers.delete('delayed-ack');
  }
  return s;
}

/** A bare ACK <SEQ=SND.NXT><ACK=RCV.NXT>, with SACK blocks when we hold out-of-order data. */
export function ack(t: TcbVariables, now: number): TcpRepr {
  return segment(t, ACK, t.sndNxt, EMPTY, now, sackBlocks(t));
}

/** <SEQ=seqNo><CTL=RST>. */
export function rst(t: TcbVariables, seqNo: SeqNumber, now: number): TcpRepr {
  return segment(t, RST, seqNo, EMPTY, now);
}
