// Loss recovery, apart from the TCB: the SACK scoreboard (RFC 2018, RFC 6675), duplicate ACKs
// and fast retransmit/recovery (RFC 5681 §3.2, RFC 6582 NewReno without SACK, RFC 6675 with
// it), and go-back-N after a retransmission timeout (RFC 5681 §3.1, RFC 6675 §5.1). It says
// what is lost, what to retransmit next and how much is in the network (RFC 6675 "pipe"); the
// window those bytes must fit in is congestion control's (congestion.ts), and building and
// sending the segments is the TCB's.
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, type SeqNumber } from '../wire/seq';

export type RecoveryPhase = 'open' | 'fast-recovery' | 'loss';

const maxSeq = (a: SeqNumber, b: SeqNumber): SeqNumber => (seqGt(a, b) ? a : b);

/** Ranges above SND.UNA the peer has SACKed: sorted, disjoint, never beyond SND.NXT. */
export class Scoreboard {
  readonly ranges: Array<[SeqNumber, SeqNumber]> = [];
  /** SACKed bytes in total */
  bytes = 0;

  /**
   * Adds the blocks of one ACK. A block that reaches beyond SND.NXT reports data we never sent
   * and is ignored, as is one wholly below SND.UNA (a D-SACK, RFC 2883, or stale) (RFC 2018 §3,
   * RFC 6675 §5). Returns whether anything was SACKed that was not before.
   */
  add(blocks: ReadonlyArray<readonly [SeqNumber, SeqNumber]>, una: SeqNumber, sndNxt: SeqNumber): boolean {
    const before = this.bytes;
    for (const [left, right] of blocks) {
      if (!seqLt(left, right) || seqGt(right, sndNxt) || seqLe(right, una)) continue;
      this.#insert(seqLt(left, una) ? una : left, right);
    }
    return this.bytes > before;
  }

  #insert(l: SeqNumber, r: SeqNumber): void {
    const rs = this.ranges;
    let i = 0;
    while (i < rs.length && seqLt(rs[i]![1], l)) i++;
    let j = i;
    let left = l;
    let right = r;
    while (j < rs.length && seqLe(rs[j]![0], right)) {
      if (seqLt(rs[j]![0], left)) left = rs[j]![0];
      if (seqGt(rs[j]![1], right)) right = rs[j]![1];
      this.bytes -= seqDiff(rs[j]![1], rs[j]![0]);
      j++;
    }
    rs.splice(i, j - i, [left, right]);
    this.bytes += seqDiff(right, left);
  }

  /** Forgets what SND.UNA has passed. */
  trim(una: SeqNumber): void {
    const rs = this.ranges;
    while (rs.length && seqLe(rs[0]![1], una)) {
      this.bytes -= seqDiff(rs[0]![1], rs[0]![0]);
      rs.shift();
    }
    if (rs.length && seqLt(rs[0]![0], una)) {
      this.bytes -= seqDiff(una, rs[0]![0]);
      rs[0]![0] = una;
    }
  }

  clear(): void {
    this.ranges.length = 0;
    this.bytes = 0;
  }

  /** The end of the highest SACKed range, or null. */
  get highest(): SeqNumber | null {
    return this.ranges.length ? this.ranges[this.ranges.length - 1]![1] : null;
  }

  /** The end of the SACKed range holding `p`, or null if `p` is not SACKed. */
  sackedUntil(p: SeqNumber): SeqNumber | null {
    for (const [l, r] of this.ranges) {
      if (seqGt(l, p)) return null;
      if (seqLt(p, r)) return r;
    }
    return null;
  }

  /** The start of the first SACKed range above `p`, or null. */
  nextAbove(p: SeqNumber): SeqNumber | null {
    for (const [l] of this.ranges) if (seqGt(l, p)) return l;
    return null;
  }

  /** Bytes in [from, to) that are not SACKed. */
  holes(from: SeqNumber, to: SeqNumber): number {
    if (!seqLt(from, to)) return 0;
    let n = seqDiff(to, from);
    for (const [l, r] of this.ranges) {
      const a = seqGt(l, from) ? l : from;
      const b = seqLt(r, to) ? r : to;
      if (seqLt(a, b)) n -= seqDiff(b, a);
    }
    return n;
  }

  /** SACKed ranges above `p`, counted (RFC 6675 IsLost counts discontiguous SACKed sequences). */
  rangesAbove(p: SeqNumber): number {
    let n = 0;
    for (const [, r] of this.ranges) if (seqGt(r, p)) n++;
    return n;
  }
}

/**
 * Which phase the sender is in and what it has given up for lost:
 * - `open`: nothing lost;
 * - `fast-recovery`: entered on DupThresh duplicate ACKs (or as much SACKed), left when the
 *   cumulative ACK reaches `recover` (RFC 6582's "recover", RFC 6675's RecoveryPoint); lost is
 *   the hole at SND.UNA (NewReno) or every unSACKed byte below the highest SACKed one (SACK);
 * - `loss`: after an RTO, everything outstanding then is lost and is resent from SND.UNA as the
 *   window opens again (slow start), skipping what is SACKed after the timeout.
 * `highRxt` is RFC 6675's HighRxt: below it, lost data has been retransmitted in this episode.
 */
export class LossRecovery {
  phase: RecoveryPhase = 'open';
  readonly scoreboard = new Scoreboard();
  readonly sack: boolean;
  dupAcks = 0;
  recover: SeqNumber;
  highRxt: SeqNumber;
  /** without SACK: the end of the head segment NewReno retransmits */
  #headEnd: SeqNumber;

  constructor(sack: boolean, iss: SeqNumber) {
    this.sack = sack;
    this.recover = iss;
    this.highRxt = iss;
    this.#headEnd = iss;
  }

  /** Below this point, data not SACKed is deemed lost. */
  lostEnd(una: SeqNumber): SeqNumber {
    if (this.phase === 'loss') return this.recover;
    if (this.phase === 'open') return una;
    const highest = this.sack ? this.scoreboard.highest : null;
    return maxSeq(highest ?? una, this.#headEnd);
  }

  /** Bytes deemed SACKed: the scoreboard's, or without SACK one segment per duplicate ACK (as Linux counts them). */
  sackedBytes(una: SeqNumber, sndNxt: SeqNumber, smss: number): number {
    if (this.sack) return this.scoreboard.bytes;
    return Math.min(this.dupAcks * smss, Math.max(0, seqDiff(sndNxt, una) - smss));
  }

  /** RFC 6675 pipe: bytes in the network — sent, not acknowledged, not SACKed, not lost unless retransmitted. */
  pipe(una: SeqNumber, sndNxt: SeqNumber, smss: number): number {
    const flight = seqDiff(sndNxt, una);
    const from = maxSeq(this.highRxt, una);
    const end = this.lostEnd(una);
    const lost = this.sack ? this.scoreboard.holes(from, end) : Math.max(0, seqDiff(end, from));
    return Math.max(0, flight - this.sackedBytes(una, sndNxt, smss) - lost);
  }

  /**
   * The next lost range to retransmit (RFC 6675 NextSeg rule 1: the lowest lost, not yet
   * retransmitted), up to the next SACKed range; null when none is left.
   */
  nextRetransmission(una: SeqNumber): { from: SeqNumber; end: SeqNumber } | null {
    if (this.phase === 'open') return null;
    const end = this.lostEnd(una);
    let p = maxSeq(this.highRxt, una);
    while (seqLt(p, end)) {
      const sacked = this.scoreboard.sackedUntil(p);
      if (sacked !== null) {
        p = sacked;
        continue;
      }
      const next = this.scoreboard.nextAbove(p);
      return { from: p, end: next !== null && seqLt(next, end) ? next : end };
    }
    return null;
  }

  /** A retransmission of [from, end) went out. */
  retransmitted(end: SeqNumber): void {
    if (seqGt(end, this.highRxt)) this.highRxt = end;
  }

  /**
   * Whether to start fast recovery now: DupThresh duplicate ACKs, or with SACK as much SACKed
   * above SND.UNA (RFC 6675 §5 IsLost(SND.UNA)). Without SACK, not for duplicate ACKs of data
   * sent before the last recovery ended (RFC 6582 §3.2 step 1: the ACK must cover more than
   * `recover`).
   */
  lossDetected(una: SeqNumber, dupThresh: number, smss: number): boolean {
    if (this.phase !== 'open') return false;
    if (this.sack && (this.scoreboard.rangesAbove(una) >= dupThresh || this.scoreboard.bytes > (dupThresh - 1) * smss)) return true;
    return this.dupAcks >= dupThresh && (this.sack || seqGt(una, this.recover));
  }

  /** Fast retransmit: enter fast recovery; SND.UNA's segment is the first to go again (RFC 6675 §5 step 4). */
  enterFastRecovery(una: SeqNumber, sndNxt: SeqNumber, smss: number): void {
    this.phase = 'fast-recovery';
    this.recover = sndNxt;
    this.highRxt = una;
    this.#headEnd = seqAdd(una, Math.min(smss, seqDiff(sndNxt, una)));
  }

  /** The retransmission timer expired: everything outstanding is lost; the SACK scoreboard is forgotten (RFC 2018 §8, RFC 6675 §5.1). */
  onRetransmitTimeout(una: SeqNumber, sndNxt: SeqNumber): void {
    this.phase = 'loss';
    this.recover = sndNxt;
    this.highRxt = una;
    this.#headEnd = una;
    this.scoreboard.clear();
    this.dupAcks = 0;
  }

  onDuplicateAck(): void {
    this.dupAcks++;
  }

  /**
   * The cumulative ACK advanced SND.UNA to `una` (by `acked` bytes). 'exit': recovery (or the
   * loss phase) is over; 'partial': a partial ACK in fast recovery, the new head is lost too
   * (RFC 6582 §3.2 step 5); 'none' otherwise.
   */
  onNewAck(una: SeqNumber, acked: number, smss: number): 'exit' | 'partial' | 'none' {
    this.scoreboard.trim(una);
    if (this.phase === 'open') {
      this.dupAcks = 0;
      return 'none';
    }
    if (seqGe(una, this.recover)) {
      this.phase = 'open';
      this.dupAcks = 0;
      this.highRxt = una;
      return 'exit';
    }
    if (seqLt(this.highRxt, una)) this.highRxt = una;
    if (this.phase === 'loss') return 'none';
    this.dupAcks = Math.max(0, this.dupAcks - Math.ceil(acked / smss));
    if (!this.sack) this.#headEnd = maxSeq(this.#headEnd, seqAdd(una, Math.min(smss, seqDiff(this.recover, una))));
    return 'partial';
  }
}
