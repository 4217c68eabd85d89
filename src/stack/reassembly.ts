// Out-of-order data held above RCV.NXT until the hole below it is filled: each byte once (a
// duplicate is not kept twice), a FIN that came ahead of missing data, and the SACK blocks
// that describe what is held (RFC 2018 §4).
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, type SeqNumber } from '../wire/seq';

interface Piece {
  seq: SeqNumber;
  data: Uint8Array;
}

const endOf = (p: Piece): SeqNumber => seqAdd(p.seq, p.data.length);

export class Reassembly {
  /** sorted by sequence number, disjoint */
  readonly pieces: Piece[] = [];
  /** bytes held */
  bytes = 0;
  /** the sequence number of a FIN seen ahead of missing data */
  finSeq: SeqNumber | null = null;
  /** where the latest arrival landed: its block is reported first (RFC 2018 §4) */
  #latest: SeqNumber | null = null;

  get empty(): boolean {
    return this.pieces.length === 0;
  }

  /** Keeps what of [seq, seq + data.length) is not held yet. `data` is kept, not copied. */
  insert(seq: SeqNumber, data: Uint8Array): void {
    if (data.length === 0) return;
    this.#latest = seq;
    const ps = this.pieces;
    let start = seq;
    let bytes = data;
    let i = 0;
    while (i < ps.length && seqLe(endOf(ps[i]!), start)) i++;
    while (bytes.length > 0) {
      const next = ps[i];
      if (!next || seqGe(next.seq, seqAdd(start, bytes.length))) {
        ps.splice(i, 0, { seq: start, data: bytes });
        this.bytes += bytes.length;
        return;
      }
      if (seqLt(start, next.seq)) {
        // the part before the next piece
        const n = seqDiff(next.seq, start);
        ps.splice(i, 0, { seq: start, data: bytes.subarray(0, n) });
        this.bytes += n;
        i++;
        bytes = bytes.subarray(n);
        start = next.seq;
      }
      // skip what the next piece already holds
      const skip = Math.min(bytes.length, seqDiff(endOf(ps[i]!), start));
      bytes = bytes.subarray(skip);
      start = seqAdd(start, skip);
      i++;
    }
  }

  /** Removes and returns the held data that now continues at `rcvNxt`, in order. */
  takeAt(rcvNxt: SeqNumber): Uint8Array[] {
    const out: Uint8Array[] = [];
    let at = rcvNxt;
    while (this.pieces.length) {
      const p = this.pieces[0]!;
      if (seqGt(p.seq, at)) break;
      this.pieces.shift();
      this.bytes -= p.data.length;
      const skip = seqDiff(at, p.seq);
      if (skip < p.data.length) {
        const d = p.data.subarray(skip);
        out.push(d);
        at = seqAdd(at, d.length);
      }
    }
    return out;
  }

  /** SACK blocks for what is held: the one with the latest arrival first, then in order; at most `max`. */
  sackBlocks(max: number): Array<[SeqNumber, SeqNumber]> {
    const blocks: Array<[SeqNumber, SeqNumber]> = [];
    for (const p of this.pieces) {
      const last = blocks[blocks.length - 1];
      if (last && last[1] === p.seq) last[1] = endOf(p);
      else blocks.push([p.seq, endOf(p)]);
    }
    const latest = this.#latest;
    const first = latest === null ? -1 : blocks.findIndex(([l, r]) => seqLe(l, latest) && seqLt(latest, r));
    if (first > 0) blocks.unshift(...blocks.splice(first, 1));
    return blocks.slice(0, max);
  }

  /** The highest sequence number held (end of the last piece), or null. */
  get highest(): SeqNumber | null {
    return this.pieces.length ? endOf(this.pieces[this.pieces.length - 1]!) : null;
  }
}
