// Fixed-size records of numbers, side by side in one growable buffer. A capture may hold hundreds
// of thousands of connections at once; as objects and arrays each would cost its headers, its
// boxed numbers and its hash-table entries (over 1 KB a connection, measured), as a record it
// costs 8 bytes per 64-bit number and 4 per whole number below 2^31.
//
// A record is named by its offset r in 32-bit words (always even). Its first `doubleWords` words
// hold 64-bit numbers, read and written through `doubles` at (r >> 1) + i; the rest hold whole
// numbers, through `words` at r + j (j counting from the record's start). A freed record is reused.
// The buffer is a resizable ArrayBuffer: it grows in place, pages are committed as they are first
// written, and no old copy waits for the collector (doubling by copying peaked at 1.5× the live
// records, measured).

/** the most a resizable buffer may reserve here (V8 refuses more); beyond it the slab grows by copying */
const MAX_RESERVED = 2 ** 31;

/** ES2024's resizable ArrayBuffer (Node 20 has it; this TypeScript's lib does not yet) */
interface ResizableBuffer extends ArrayBuffer {
  readonly resizable: boolean;
  resize(byteLength: number): void;
}
const ResizableArrayBuffer = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ResizableBuffer;

export class Slab {
  /** two views of the records (re-read them after alloc(), which may replace them) */
  doubles: Float64Array;
  words: Int32Array;
  /** a record's size in 32-bit words, and how many of its first words hold 64-bit numbers */
  readonly stride: number;
  readonly doubleWords: number;
  readonly #free: number[] = [];
  #top = 0;
  #live = 0;

  constructor(doubles: number, wholes: number, initialRecords = 256) {
    this.doubleWords = 2 * doubles;
    this.stride = this.doubleWords + wholes + (wholes % 2); // even: each record's 64-bit numbers stay aligned
    const buffer = new ResizableArrayBuffer(this.stride * 4 * initialRecords, { maxByteLength: MAX_RESERVED });
    this.doubles = new Float64Array(buffer);
    this.words = new Int32Array(buffer);
  }

  /** A new record, every number in it set to `fill`; returns its offset. */
  alloc(fill = -1): number {
    let at = this.#free.pop();
    if (at === undefined) {
      if (this.#top + this.stride > this.words.length) this.#grow();
      at = this.#top;
      this.#top += this.stride;
    }
    this.doubles.fill(fill, at >> 1, (at + this.doubleWords) >> 1);
    this.words.fill(fill, at + this.doubleWords, at + this.stride);
    this.#live++;
    return at;
  }

  #grow(): void {
    const buffer = this.words.buffer as ResizableBuffer;
    const want = Math.min(buffer.byteLength * 2, MAX_RESERVED - (MAX_RESERVED % (this.stride * 4)));
    if (buffer.resizable && want > buffer.byteLength) {
      buffer.resize(want); // the length-tracking views grow with it
      return;
    }
    const bigger = new ArrayBuffer(buffer.byteLength * 2);
    new Int32Array(bigger).set(this.words);
    this.doubles = new Float64Array(bigger);
    this.words = new Int32Array(bigger);
  }

  free(at: number): void {
    this.#free.push(at);
    this.#live--;
  }

  /** the end of the records ever used: every record lies below it */
  get top(): number {
    return this.#top;
  }

  /** records in use */
  get live(): number {
    return this.#live;
  }
}
