// Time for the stack: real (performance.now + setTimeout) or virtual (tests advance it by hand).

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** milliseconds, monotonic */
  now(): number;
  /** runs `fn` at time `at` (or at once if it has passed) */
  at(at: number, fn: () => void): TimerHandle;
}

export const realClock: Clock = {
  now: () => performance.now(),
  at(at, fn) {
    const t = setTimeout(fn, Math.max(0, at - performance.now()));
    return { cancel: () => clearTimeout(t) };
  },
};

/** A clock that moves only when told: timers fire in order of their deadlines. */
interface VirtualTimer {
  at: number;
  fn: () => void;
  id: number;
  live: boolean;
}

export class VirtualClock implements Clock {
  #now: number;
  #timers: VirtualTimer[] = [];
  #id = 0;

  constructor(start = 1000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  at(at: number, fn: () => void): TimerHandle {
    const t = { at, fn, id: this.#id++, live: true };
    this.#timers.push(t);
    return { cancel: () => (t.live = false) };
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      this.#timers = this.#timers.filter((t) => t.live);
      const next = this.#timers.reduce<VirtualTimer | null>(
        (a, t) => (t.at <= until && (!a || t.at < a.at || (t.at === a.at && t.id < a.id)) ? t : a),
        null,
      );
      if (!next) break;
      next.live = false;
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = until;
  }

  /** Runs until no timer is due within `limitMs` (or the limit passes); returns the time spent. */
  runUntilIdle(limitMs = 600_000, stepMs = 1): number {
    const start = this.#now;
    while (this.#now - start < limitMs) {
      const live = this.#timers.filter((t) => t.live);
      if (!live.length) break;
      const next = Math.min(...live.map((t) => t.at));
      this.advance(Math.max(stepMs, next - this.#now));
    }
    return this.#now - start;
  }

  pending(): number {
    return this.#timers.filter((t) => t.live).length;
  }
}

/** Small seeded PRNG (mulberry32) so loss and reordering are repeatable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
