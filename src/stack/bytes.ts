// A FIFO of bytes for send and receive buffers: append at the end, read or drop at the front.

export class ByteQueue {
  #chunks: Uint8Array[] = [];
  #head = 0; // offset into chunks[0]
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#chunks.push(bytes.slice());
    this.#length += bytes.length;
  }

  /** Copies up to `len` bytes starting `offset` bytes from the front, without removing them. */
  peek(offset: number, len: number): Uint8Array {
    const n = Math.max(0, Math.min(len, this.#length - offset));
    const out = new Uint8Array(n);
    let skip = offset + this.#head;
    let filled = 0;
    for (const c of this.#chunks) {
      if (filled === n) break;
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
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
    while (left > 0) {
      const c = this.#chunks[0]!;
      const avail = c.length - this.#head;
      if (left < avail) {
        this.#head += left;
        return;
      }
      left -= avail;
      this.#chunks.shift();
      this.#head = 0;
    }
  }

  /** Removes and returns up to `n` bytes from the front. */
  take(n: number): Uint8Array {
    const out = this.peek(0, n);
    this.drop(out.length);
    return out;
  }
}
