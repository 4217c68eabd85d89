// A FIFO of bytes for send and receive buffers: append at the end, read or drop at the front.
// Chunks are kept as they came; a read inside one chunk is a view, not a copy, and the sender's
// sequential reads find their chunk from a cursor instead of walking from the front.

export class ByteQueue {
  #chunks: Uint8Array[] = [];
  /** index of the first live chunk in #chunks (dropped chunks are compacted away lazily) */
  #first = 0;
  /** offset into the first live chunk */
  #head = 0;
  #length = 0;
  /** cursor: chunk index and the queue offset at which that chunk's live bytes start */
  #curIndex = 0;
  #curStart = 0;

  get length(): number {
    return this.#length;
  }

  /** Appends `bytes`; copied unless `owned` (the caller hands them over and will not change them). */
  push(bytes: Uint8Array, owned = false): void {
    if (bytes.length === 0) return;
    this.#chunks.push(owned ? bytes : bytes.slice());
    this.#length += bytes.length;
  }

  /** Finds the chunk holding queue offset `offset` (< length): [index, offset of the chunk's first live byte]. */
  #seek(offset: number): void {
    if (this.#curIndex < this.#first || offset < this.#curStart) {
      this.#curIndex = this.#first;
      this.#curStart = 0;
    }
    for (;;) {
      const c = this.#chunks[this.#curIndex]!;
      const live = c.length - (this.#curIndex === this.#first ? this.#head : 0);
      if (offset < this.#curStart + live) return;
      this.#curStart += live;
      this.#curIndex++;
    }
  }

  /** `len` bytes from `offset` bytes past the front (fewer if the queue ends): a view when they lie in one chunk, else a copy. */
  view(offset: number, len: number): Uint8Array {
    const n = Math.max(0, Math.min(len, this.#length - offset));
    if (n === 0) return new Uint8Array(0);
    this.#seek(offset);
    const c = this.#chunks[this.#curIndex]!;
    const start = offset - this.#curStart + (this.#curIndex === this.#first ? this.#head : 0);
    if (start + n <= c.length) return c.subarray(start, start + n);
    return this.peek(offset, n);
  }

  /** Copies up to `len` bytes starting `offset` bytes from the front, without removing them. */
  peek(offset: number, len: number): Uint8Array {
    const n = Math.max(0, Math.min(len, this.#length - offset));
    const out = new Uint8Array(n);
    if (n === 0) return out;
    this.#seek(offset);
    let i = this.#curIndex;
    let skip = offset - this.#curStart + (i === this.#first ? this.#head : 0);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[i++]!;
      const take = Math.min(c.length - skip, n - filled);
      out.set(c.subarray(skip, skip + take), filled);
      filled += take;
      skip = 0;
    }
    return out;
  }

  /** Removes `n` bytes from the front. */
  drop(n: number): void {
    let left = Math.min(n, this.#length);
    this.#length -= left;
    this.#curIndex = this.#first;
    this.#curStart = 0;
    while (left > 0) {
      const c = this.#chunks[this.#first]!;
      const avail = c.length - this.#head;
      if (left < avail) {
        this.#head += left;
        break;
      }
      left -= avail;
      this.#chunks[this.#first] = EMPTY;
      this.#first++;
      this.#head = 0;
    }
    if (this.#first > 64 && this.#first * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#first);
      this.#first = 0;
    }
    this.#curIndex = this.#first;
    this.#curStart = 0;
  }

  /** Removes and returns everything, chunk by chunk as it came (no copy). */
  takeChunks(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = this.#first; i < this.#chunks.length; i++) {
      const c = this.#chunks[i]!;
      out.push(i === this.#first && this.#head > 0 ? c.subarray(this.#head) : c);
    }
    this.#chunks = [];
    this.#first = 0;
    this.#head = 0;
    this.#length = 0;
    this.#curIndex = 0;
    this.#curStart = 0;
    return out;
  }

  /** Removes and returns up to `n` bytes from the front (a view when they lie in one chunk). */
  take(n: number): Uint8Array {
    const out = this.view(0, n);
    this.drop(out.length);
    return out;
  }
}

const EMPTY = new Uint8Array(0);
