// Where each segment in flight ended when it was first sent, so that retransmissions keep those
// boundaries, as Linux resends an skb (the go-back after an RTO and the tail probe resend whole
// original segments). Kept from SND.UNA on, ascending.
import { seqGt, seqLe, type SeqNumber } from '../wire/seq';

export class SentSegments {
  #ends: SeqNumber[] = [];
  /** index of the first end above SND.UNA (ends below it are compacted away lazily) */
  #head = 0;

  /** A segment ending at `end` went out for the first time (a later end only: a resend adds nothing). */
  note(end: SeqNumber): void {
    const ends = this.#ends;
    if (ends.length === this.#head || seqGt(end, ends[ends.length - 1]!)) ends.push(end);
  }

  /** SND.UNA reached `una`: the segments it covers are no longer in flight. */
  forget(una: SeqNumber): void {
    const ends = this.#ends;
    while (this.#head < ends.length && seqLe(ends[this.#head]!, una)) this.#head++;
    if (this.#head === ends.length) {
      ends.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > ends.length) {
      this.#ends = ends.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The end of the segment, as first sent, that holds `p` (binary search), or null. */
  endOf(p: SeqNumber): SeqNumber | null {
    const ends = this.#ends;
    let lo = this.#head;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqGt(ends[mid]!, p)) hi = mid;
      else lo = mid + 1;
    }
    return lo < ends.length ? ends[lo]! : null;
  }

  /** Where the last segment in flight began (the end of the one before it), or `una` when it is the only one. */
  lastStart(una: SeqNumber): SeqNumber {
    const ends = this.#ends;
    return ends.length - 2 >= this.#head ? ends[ends.length - 2]! : una;
  }
}
