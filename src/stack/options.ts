// TCP options on the TCB's side: what the SYNs negotiate (MSS, RFC 9293 §3.7.1; window scale and
// timestamps, RFC 7323; SACK-permitted, RFC 2018), the options our own SYN carries, and the
// timestamp rules every later segment meets (TS.Recent, RFC 7323 §4.3; PAWS, §5).
import { seq, seqAdd, seqLe, seqLt } from '../wire/seq';
import type { TcpOption, TcpRepr } from '../wire/tcp';
import { LossRecovery } from './recovery';
import type { TcbVariables } from './variables';

export function option<K extends TcpOption['kind']>(opts: readonly TcpOption[], kind: K): Extract<TcpOption, { kind: K }> | undefined {
  for (const o of opts) if (o.kind === kind) return o as Extract<TcpOption, { kind: K }>;
  return undefined;
}

export const NOP: TcpOption = Object.freeze({ kind: 'nop' });
const SACK_PERMITTED: TcpOption = Object.freeze({ kind: 'sackPermitted' });
/** the smallest MSS we take from a peer (Linux TCP_MIN_SND_MSS): room for the options and some data */
const MIN_PEER_MSS = 48;
/** 24 days: a timestamp older than this is no evidence (RFC 7323 §5.5) */
const PAWS_IDLE_MS = 24 * 86_400_000;

/** The peer's SYN: its ISN becomes IRS, and its options decide what this connection uses. */
export function learnSyn(t: TcbVariables, syn: TcpRepr, now: number): void {
  t.irs = syn.seq;
  t.rcvNxt = seqAdd(syn.seq, 1);
  t.rcvAdvEdge = seqAdd(t.rcvNxt, t.synWindow); // RCV.WND: what our SYN offered, if we sent one
  t.rcvUp = t.rcvNxt;
  t.lastAckSent = t.rcvNxt;
  const mss = option(syn.options, 'mss');
  if (mss) t.peerMss = Math.max(MIN_PEER_MSS, mss.value);
  const ws = option(syn.options, 'wscale');
  t.peerWs = !!ws;
  if (ws && t.cfg.wscale !== null) {
    t.sndShift = Math.min(14, ws.shift); // RFC 7323 §2.3: larger shifts are taken as 14
    t.rcvShift = t.cfg.wscale;
  }
  const ts = option(syn.options, 'timestamps');
  t.tsEnabled = !!ts && t.cfg.timestamps;
  if (t.tsEnabled) {
    t.tsRecent = ts!.tsval;
    t.tsRecentAt = now;
  }
  t.sackEnabled = !!option(syn.options, 'sackPermitted') && t.cfg.sackPermitted;
  t.recovery = new LossRecovery(t.sackEnabled, t.iss);
  t.cc.cwnd = t.cfg.initialCwnd * t.effMss();
}

/**
 * SYN options in the order Linux writes them (tcp_options_write): MSS, then SACK-permitted and
 * timestamps sharing a word (or NOP NOP before either alone), then NOP and window scale — 20
 * bytes with all four, a 40-byte header, no padding.
 */
export function synOptions(t: TcbVariables, now: number): TcpOption[] {
  const answering = t.state === 'SYN-RECEIVED';
  const sack = t.cfg.sackPermitted && (!answering || t.sackEnabled);
  const ts = answering ? t.tsEnabled : t.cfg.timestamps;
  const o: TcpOption[] = [{ kind: 'mss', value: t.ownMss() }];
  if (ts) {
    if (sack) o.push(SACK_PERMITTED);
    else o.push(NOP, NOP);
    o.push({ kind: 'timestamps', tsval: (now + t.tsOffset) >>> 0, tsecr: answering ? (t.tsRecent ?? 0) : 0 });
  } else if (sack) o.push(NOP, NOP, SACK_PERMITTED);
  if (t.cfg.wscale !== null && (!answering || t.peerWs)) o.push(NOP, { kind: 'wscale', shift: t.cfg.wscale });
  return o;
}

/** PAWS (RFC 7323 §5.3 R1): an older TSval on a non-RST segment, unless the connection idled 24 days. */
export function pawsRejects(t: TcbVariables, seg: TcpRepr, now: number): boolean {
  if (!t.tsEnabled || seg.flags.rst || t.tsRecent === null) return false;
  const ts = option(seg.options, 'timestamps');
  if (!ts || !seqLt(seq(ts.tsval), seq(t.tsRecent))) return false;
  if (now - t.tsRecentAt > PAWS_IDLE_MS) {
    t.tsRecent = ts.tsval;
    t.tsRecentAt = now;
    return false;
  }
  t.events.push({ kind: 'paws-reject', tsval: ts.tsval, tsRecent: t.tsRecent, at: now });
  return true;
}

/** RFC 7323 §4.3: TS.Recent takes SEG.TSval if it is not older and the segment covers Last.ACK.sent. */
export function updateTsRecent(t: TcbVariables, seg: TcpRepr, now: number): void {
  if (!t.tsEnabled) return;
  const ts = option(seg.options, 'timestamps');
  if (!ts || !seqLe(seg.seq, t.lastAckSent)) return;
  if (t.tsRecent !== null && seqLt(seq(ts.tsval), seq(t.tsRecent))) return;
  t.tsRecent = ts.tsval;
  t.tsRecentAt = now;
}
