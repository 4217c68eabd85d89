// Congestion control, apart from the TCB (as smoltcp keeps it): NewReno window arithmetic per
// RFC 5681 (slow start, congestion avoidance, the loss window after an RTO) with the recovery
// exit of RFC 6582. Which segments go out, and when recovery starts and ends, is loss
// recovery's business (recovery.ts); this only sizes the window.

export class NewReno {
  /** congestion window, bytes */
  cwnd: number;
  /** slow start threshold, bytes (RFC 5681 §3.1: arbitrarily high at first) */
  ssthresh = Number.MAX_SAFE_INTEGER;
  /** bytes acknowledged toward the next congestion-avoidance increase (RFC 5681 §3.1, eq. 3 by byte counting) */
  #bytesAcked = 0;

  constructor(initialWindow: number) {
    this.cwnd = initialWindow;
  }

  /** New data was acknowledged outside fast recovery: grow the window (RFC 5681 §3.1). */
  onAck(acked: number, smss: number): void {
    if (this.cwnd < this.ssthresh) {
      // slow start: at most one SMSS per ACK (RFC 5681 eq. 2, L = 1·SMSS of RFC 3465)
      this.cwnd += Math.min(acked, smss);
      return;
    }
    // congestion avoidance: one SMSS per cwnd of data acknowledged
    this.#bytesAcked += acked;
    if (this.#bytesAcked >= this.cwnd) {
      this.#bytesAcked -= this.cwnd;
      this.cwnd += smss;
    }
  }

  /** Fast retransmit: halve (RFC 5681 eq. 4); the window then stays at ssthresh through recovery (RFC 6675 §5). */
  onFastRetransmit(flightSize: number, smss: number): void {
    this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * smss);
    this.cwnd = this.ssthresh;
    this.#bytesAcked = 0;
  }

  /** Recovery ends with a full ACK: min(ssthresh, max(FlightSize, SMSS) + SMSS), no burst (RFC 6582 §3.2 step 6). */
  onRecoveryEnd(flightSize: number, smss: number): void {
    this.cwnd = Math.min(this.ssthresh, Math.max(flightSize, smss) + smss);
    this.#bytesAcked = 0;
  }

  /**
   * The retransmission timer expired: the loss window, one SMSS (RFC 5681 §3.1). ssthresh halves
   * the flight, except when the same segment times out again: then it is held (the
   * implementation note under eq. 4).
   */
  onRetransmitTimeout(flightSize: number, smss: number, again: boolean): void {
    if (!again) this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * smss);
    this.cwnd = smss;
    this.#bytesAcked = 0;
  }
}
