// Two links joined back to back in memory, with loss, delay and reordering to order.
import { seededRandom, type Clock } from './clock';
import type { Link } from './link';

export interface ImpairmentOptions {
  /** probability a frame is lost, 0..1 */
  loss?: number;
  /** one-way delay in ms */
  delayMs?: number;
  /** probability a frame is held back by an extra `reorderMs` */
  reorder?: number;
  reorderMs?: number;
  seed?: number;
}

class End implements Link {
  peer: End | null = null;
  #listeners = new Set<(frame: Uint8Array, timeUs: number) => void>();
  #clock: Clock;
  #opts: Required<ImpairmentOptions>;
  #random: () => number;
  sent = 0;
  dropped = 0;

  constructor(clock: Clock, opts: ImpairmentOptions) {
    this.#clock = clock;
    this.#opts = { loss: 0, delayMs: 0, reorder: 0, reorderMs: 5, seed: 1, ...opts };
    this.#random = seededRandom(this.#opts.seed);
  }

  set impairments(o: ImpairmentOptions) {
    this.#opts = { ...this.#opts, ...o };
  }

  send(frame: Uint8Array): void {
    this.sent++;
    if (this.#opts.loss > 0 && this.#random() < this.#opts.loss) {
      this.dropped++;
      return;
    }
    let delay = this.#opts.delayMs;
    if (this.#opts.reorder > 0 && this.#random() < this.#opts.reorder) delay += this.#opts.reorderMs;
    const copy = frame.slice();
    const peer = this.peer!;
    if (delay <= 0) peer.deliver(copy);
    else this.#clock.at(this.#clock.now() + delay, () => peer.deliver(copy));
  }

  deliver(frame: Uint8Array): void {
    const t = this.#clock.now() * 1000;
    for (const l of this.#listeners) l(frame, t);
  }

  onFrame(listener: (frame: Uint8Array, timeUs: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export type MemoryLinkEnd = End;

/** Two ends: what one sends, the other hears (each direction impaired by its sender's options). */
export function memoryLink(clock: Clock, a: ImpairmentOptions = {}, b: ImpairmentOptions = {}): [End, End] {
  const x = new End(clock, a);
  const y = new End(clock, b);
  x.peer = y;
  y.peer = x;
  return [x, y];
}
