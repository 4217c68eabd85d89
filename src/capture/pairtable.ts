// A hash table from a pair of whole numbers (each below 2^53) to a whole number ≥ 0, held in typed
// arrays: open addressing with linear probing, deletion by shifting back (no tombstones). What a
// Map of Maps cost per IPv4 flow — boxed keys, entries, rehashed tables waiting for the collector
// — was a fifth of a summary's heap over 200,000 connections (measured); here an entry is 20
// bytes at most twice over.
export class PairTable {
  #a: Float64Array;
  #b: Float64Array;
  /** the value + 1; 0 marks an empty slot */
  #v: Int32Array;
  #mask: number;
  #size = 0;

  constructor(capacity = 1024) {
    const n = 2 ** Math.ceil(Math.log2(Math.max(16, capacity)));
    this.#a = new Float64Array(n);
    this.#b = new Float64Array(n);
    this.#v = new Int32Array(n);
    this.#mask = n - 1;
  }

  get size(): number {
    return this.#size;
  }

  #slot(a: number, b: number): number {
    let h = Math.imul((a >>> 0) ^ Math.floor(a / 4294967296), 0x9e3779b1);
    h = Math.imul(h ^ (b >>> 0) ^ Math.imul(Math.floor(b / 4294967296), 0x85ebca6b), 0xc2b2ae35);
    return (h ^ (h >>> 15)) & this.#mask;
  }

  /** The value for (a, b), or -1. */
  get(a: number, b: number): number {
    for (let i = this.#slot(a, b); ; i = (i + 1) & this.#mask) {
      const v = this.#v[i]!;
      if (v === 0) return -1;
      if (this.#a[i] === a && this.#b[i] === b) return v - 1;
    }
  }

  set(a: number, b: number, value: number): void {
    if ((this.#size + 1) * 2 > this.#v.length) this.#grow();
    for (let i = this.#slot(a, b); ; i = (i + 1) & this.#mask) {
      if (this.#v[i] === 0) {
        this.#a[i] = a;
        this.#b[i] = b;
        this.#v[i] = value + 1;
        this.#size++;
        return;
      }
      if (this.#a[i] === a && this.#b[i] === b) {
        this.#v[i] = value + 1;
        return;
      }
    }
  }

  delete(a: number, b: number): void {
    let i = this.#slot(a, b);
    for (; ; i = (i + 1) & this.#mask) {
      if (this.#v[i] === 0) return;
      if (this.#a[i] === a && this.#b[i] === b) break;
    }
    this.#size--;
    // shift back the entries after the hole that would otherwise no longer be found from their slot
    for (let j = (i + 1) & this.#mask; this.#v[j] !== 0; j = (j + 1) & this.#mask) {
      const home = this.#slot(this.#a[j]!, this.#b[j]!);
      // the entry at j may fill the hole at i when its home is not cyclically within (i, j]
      if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
        this.#a[i] = this.#a[j]!;
        this.#b[i] = this.#b[j]!;
        this.#v[i] = this.#v[j]!;
        i = j;
      }
    }
    this.#v[i] = 0;
  }

  #grow(): void {
    const [a, b, v] = [this.#a, this.#b, this.#v];
    const n = v.length * 2;
    this.#a = new Float64Array(n);
    this.#b = new Float64Array(n);
    this.#v = new Int32Array(n);
    this.#mask = n - 1;
    this.#size = 0;
    for (let i = 0; i < v.length; i++) if (v[i] !== 0) this.set(a[i]!, b[i]!, v[i]! - 1);
  }
}
