// What one four-tuple's segments in a finished variant's capture show, read from the kernel's
// side: which segments the kernel sent, what its own ACKs say its RCV.NXT was. Labs judge the
// system under test from these, not from the peer's state or from how long a syscall waited.
import type { FlowSegment, FlowSummary } from '../capture/flows';
import { formatEndpoint } from '../wire/address';

export interface Endpoint {
  address: string;
  port: number;
}

export const endpointText = (e: Endpoint): string => formatEndpoint(e.address, e.port);

export class TupleOnWire {
  /** every segment of the four-tuple, in capture order */
  readonly segments: FlowSegment[];
  readonly #kernel: string;

  constructor(flows: FlowSummary, kernel: Endpoint, peer: Endpoint) {
    this.#kernel = endpointText(kernel);
    const p = endpointText(peer);
    this.segments = flows.segments.filter((s) => (s.src === this.#kernel && s.dst === p) || (s.src === p && s.dst === this.#kernel));
  }

  fromKernel(s: FlowSegment): boolean {
    return s.src === this.#kernel;
  }

  /** The kernel's segments after frame `after` (all of them without it). */
  kernelSent(after = 0): FlowSegment[] {
    return this.segments.filter((s) => s.number > after && this.fromKernel(s));
  }

  /** The peer's segments that pass `test`. */
  peerSent(test: (s: FlowSegment) => boolean = () => true): FlowSegment[] {
    return this.segments.filter((s) => !this.fromKernel(s) && test(s));
  }

  /**
   * The kernel's RCV.NXT as its own segments show it: the ACK field of the last segment it sent
   * with ACK set before frame `before` (null when it sent none).
   */
  kernelRcvNxt(before = Infinity): number | null {
    const last = this.segments.filter((s) => s.number < before && this.fromKernel(s) && (s.flagBits & 16) !== 0).pop();
    return last ? (last.ack as number) : null;
  }
}

/** Frame numbers as a human reads them: "#12", "#12, #15", or "none". */
export const frameList = (segs: readonly FlowSegment[]): string => segs.map((s) => `#${s.number}`).join(', ') || 'none';

/** One segment as a human reads it: "#12 ACK seq=… ack=…" (sequence numbers relative to the incarnation's ISN). */
export const describeSegment = (s: FlowSegment): string => `#${s.number} ${s.flags}${s.len ? ` len=${s.len}` : ''}`;
