// What one four-tuple's segments in a finished variant's capture show, read from the kernel's
// side: which segments the kernel sent, what its own ACKs say its RCV.NXT was. Labs judge the
// system under test from these, not from the peer's state or from how long a syscall waited.
import type { FlowSegment, FlowSummary } from '../../capture/flows';
import { formatEndpoint } from '../../wire/address';

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

/**
 * A new SYN on a four-tuple that had a connection before, and the kernel's answer, from the
 * capture: a SYN-ACK lets it in; an ACK of the old connection (ACK = the old RCV.NXT) or an RST
 * refuses it; nothing is no answer (never read as a refusal).
 */
export interface NewSynOnWire {
  /** the new SYN's frame (the first SYN after the kernel's first SYN-ACK) */
  syn: number | null;
  /** its sequence number minus the kernel's RCV.NXT of the old connection (the ACK of its last segment before), signed */
  synVsRcvNxt: number | null;
  synAck: number | null;
  refusal: number | null;
  /** the kernel's first SYN-ACK (the old connection's) carried a timestamp */
  oldTimestamps: boolean | null;
  /** the kernel's SYN-ACK of the new connection carried one (PAWS guards it) */
  newTimestamps: boolean | null;
  /** the new SYN's TSval minus the newest TSval the peer sent before it (what a TIME_WAIT holds as ts_recent), signed */
  tsvalLead: number | null;
}

export function newSynOnWire(w: TupleOnWire): NewSynOnWire {
  const firstSynAck = w.kernelSent().find((s) => s.flags === 'SYN,ACK');
  const oldTimestamps = firstSynAck ? firstSynAck.tsval >= 0 : null;
  const syn = w.peerSent((s) => s.flags === 'SYN' && s.number > (firstSynAck?.number ?? Infinity))[0] ?? null;
  if (!syn) return { syn: null, synVsRcvNxt: null, synAck: null, refusal: null, oldTimestamps, newTimestamps: null, tsvalLead: null };
  const rcvNxt = w.kernelRcvNxt(syn.number);
  const answers = w.kernelSent(syn.number);
  const synAck = answers.find((s) => s.flags === 'SYN,ACK') ?? null;
  const refusal =
    answers.find(
      (s) => !(s.flagBits & 2) && (((s.flagBits & 16) !== 0 && rcvNxt !== null && (s.ack as number) === rcvNxt) || (s.flagBits & 4) !== 0),
    ) ?? null;
  const newestOld = w
    .peerSent((s) => s.number < syn.number && s.tsval >= 0)
    .reduce<number | null>((m, s) => (m === null || ((s.tsval - m) | 0) > 0 ? s.tsval : m), null);
  return {
    syn: syn.number,
    synVsRcvNxt: rcvNxt === null ? null : ((syn.seq as number) - rcvNxt) | 0,
    synAck: synAck?.number ?? null,
    refusal: refusal?.number ?? null,
    oldTimestamps,
    newTimestamps: synAck ? synAck.tsval >= 0 : null,
    tsvalLead: syn.tsval >= 0 && newestOld !== null ? (syn.tsval - newestOld) | 0 : null,
  };
}

/** Frame numbers as a human reads them: "#12", "#12, #15", or "none". */
export const frameList = (segs: readonly FlowSegment[]): string => segs.map((s) => `#${s.number}`).join(', ') || 'none';

/** One segment as a human reads it: "#12 ACK seq=… ack=…" (sequence numbers relative to the incarnation's ISN). */
export const describeSegment = (s: FlowSegment): string => `#${s.number} ${s.flags}${s.len ? ` len=${s.len}` : ''}`;
