// What a capture shows of one connection's close, read from the kernel's side of the wire: whose
// FIN came first (the other FIN acknowledges it), whether they crossed (neither acknowledges the
// other), and whether each FIN was acknowledged — so a lab judges the kernel from its segments,
// not from what the userspace peer believes happened.
import type { FlowSegment } from '../../capture/flows';
import { formatEndpoint } from '../../wire/address';
import { seqAdd, type SeqNumber } from '../../wire/seq';

export interface FinExchange {
  /** the kernel's first FIN and the peer's, as the capture numbers them */
  kernelFin: number | null;
  peerFin: number | null;
  /** kernel first: the peer's FIN acknowledges the kernel's; peer first: the other way round; crossed: neither */
  order: 'kernel first' | 'peer first' | 'crossed' | 'missing';
  /** a kernel segment acknowledges the peer's FIN (the kernel took it) */
  kernelAckedPeerFin: boolean;
  /** a peer segment acknowledges the kernel's FIN */
  peerAckedKernelFin: boolean;
  /** the frames that first acknowledge the peer's FIN (from the kernel) and the kernel's (from the peer), in capture order */
  kernelAckOfPeerFin: number | null;
  peerAckOfKernelFin: number | null;
  /** one line, with frame numbers */
  text: string;
}

const FIN = 1;
const ACK = 16;
const afterFin = (s: FlowSegment): SeqNumber => seqAdd(s.seq, s.len + 1);

/** The close of the connection whose kernel end is `kernel` (address and port), from its segments in a capture. */
export function finExchange(segments: readonly FlowSegment[], kernel: { address: string; port: number }): FinExchange {
  const end = formatEndpoint(kernel.address, kernel.port);
  const mine = segments.filter((s) => s.src === end || s.dst === end);
  const fromKernel = mine.filter((s) => s.src === end);
  const fromPeer = mine.filter((s) => s.dst === end);
  const kFin = fromKernel.find((s) => (s.flagBits & FIN) !== 0) ?? null;
  const pFin = fromPeer.find((s) => (s.flagBits & FIN) !== 0) ?? null;
  const acks = (from: FlowSegment[], fin: FlowSegment | null): FlowSegment | undefined =>
    fin ? from.find((s) => s.number > fin.number && (s.flagBits & ACK) !== 0 && s.ack === afterFin(fin)) : undefined;
  const kernelAck = acks(fromKernel, pFin);
  const peerAck = acks(fromPeer, kFin);
  if (!kFin || !pFin) {
    return {
      kernelFin: kFin?.number ?? null,
      peerFin: pFin?.number ?? null,
      order: 'missing',
      kernelAckedPeerFin: !!kernelAck,
      peerAckedKernelFin: !!peerAck,
      kernelAckOfPeerFin: kernelAck?.number ?? null,
      peerAckOfKernelFin: peerAck?.number ?? null,
      text: `FIN from the kernel: ${kFin ? `#${kFin.number}` : 'none'}, from the peer: ${pFin ? `#${pFin.number}` : 'none'}`,
    };
  }
  const kAcksP = (kFin.flagBits & ACK) !== 0 && kFin.ack === afterFin(pFin);
  const pAcksK = (pFin.flagBits & ACK) !== 0 && pFin.ack === afterFin(kFin);
  const order = pAcksK && !kAcksP ? 'kernel first' : kAcksP && !pAcksK ? 'peer first' : 'crossed';
  return {
    kernelFin: kFin.number,
    peerFin: pFin.number,
    order,
    kernelAckedPeerFin: !!kernelAck,
    peerAckedKernelFin: !!peerAck,
    kernelAckOfPeerFin: kernelAck?.number ?? null,
    peerAckOfKernelFin: peerAck?.number ?? null,
    text:
      `kernel FIN #${kFin.number} ${kAcksP ? 'acknowledges' : 'does not acknowledge'} the peer's FIN #${pFin.number}, which ${pAcksK ? 'acknowledges' : 'does not acknowledge'} it; ` +
      `the kernel acknowledged the peer's FIN ${kernelAck ? `in #${kernelAck.number}` : 'in no segment'}, the peer the kernel's ${peerAck ? `in #${peerAck.number}` : 'in no segment'}`,
  };
}
