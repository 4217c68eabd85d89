// Retransmission timeout per RFC 6298: SRTT/RTTVAR smoothing, back-off doubling on expiry.

export interface RtoConfig {
  /** RFC 6298 §2.1 says 1 s; Linux uses 1 s too */
  initialMs: number;
  /** RFC 6298 §2.4 says 1 s; Linux uses 200 ms, and so do we by default to keep pace with it */
  minMs: number;
  maxMs: number;
}

export const DEFAULT_RTO: RtoConfig = { initialMs: 1000, minMs: 200, maxMs: 120_000 };

export class RtoEstimator {
  readonly cfg: RtoConfig;
  srttMs: number | null = null;
  rttvarMs = 0;
  #rtoMs: number;
  backoff = 0;

  constructor(cfg: RtoConfig = DEFAULT_RTO) {
    this.cfg = cfg;
    this.#rtoMs = cfg.initialMs;
  }

  /** The current timeout, with back-off applied. */
  get rtoMs(): number {
    return Math.min(this.cfg.maxMs, this.#rtoMs * 2 ** this.backoff);
  }

  /** A new RTT measurement (Karn: never from a retransmitted segment). */
  sample(rttMs: number): void {
    const r = Math.max(0, rttMs);
    if (this.srttMs === null) {
      this.srttMs = r;
      this.rttvarMs = r / 2;
    } else {
      this.rttvarMs = 0.75 * this.rttvarMs + 0.25 * Math.abs(this.srttMs - r);
      this.srttMs = 0.875 * this.srttMs + 0.125 * r;
    }
    this.#rtoMs = Math.min(this.cfg.maxMs, Math.max(this.cfg.minMs, this.srttMs + Math.max(1, 4 * this.rttvarMs)));
    this.backoff = 0;
  }

  /** The timer expired: double (RFC 6298 §5.5). */
  expired(): void {
    if (this.rtoMs < this.cfg.maxMs) this.backoff++; // no point doubling past the cap
  }
}
