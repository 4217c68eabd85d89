// What a lab file may import: the lab API and the kernel-side types it names.
export { defineLab, labDirName, labClaims, LabError } from './api/types';
export { CLAIMS, claimById, type Scope } from './api/claims';
export { decide, requires, type Judgement, type Precondition, type Trial } from './api/verdict';
export type { Answer, QuestionSpec } from './api/questions';
export type { ClaimSpec, ClaimResult, CourseEntry, LabDefinition, LabReportHooks, LabResult, Verdict, VariantResult } from './api/types';
export { LabContext } from './api/context';
export type { ParamSpec, ParamValue } from './api/params';
export type { KernelSocket, Proto, Linger, TcpInfo, SyscallRecord } from '../host/ksocket';
export type { ProcessHandle, ProcessHandle as UidHelper } from '../host/backend/types';
export { KnobMissingError } from '../host/backend/types';
export { signed } from './api/counters';
export { count, distinct, kOfN, sum } from './api/tally';
export type { SyscallResult, AsyncSyscallResult } from '../host/native';
export { familyOf, parseIPv4, parseIPv6, type IpFamily } from '../wire/address';
export type { TcpStack, Connection, CraftedSegment, FourTuple } from '../stack/stack';
export type { Expected, SegmentCame, NothingCame, SegmentPattern, SegmentMatch, ExpectOptions } from '../stack/expect';
export { seqOf, seqAdd, seqSub, seqDiff, seqSpan, seqLt, seqLe, seqGt, seqGe, seqEq, type SeqNumber } from './api/seq';
export type { TcbConfig, TcpState } from '../stack/tcb';
export type { SocketEntry } from '../host/observe';
export { finExchange, type FinExchange } from './api/fins';
export {
  kernelConnects,
  kernelServerTimeWait,
  peerConnects,
  peerReaches,
  PATIENT_PEER,
  type KernelClient,
  type PeerClient,
  type ServerTimeWait,
} from './api/connect';
export type { SegmentEvent as SegmentEventLike } from '../stack/stack';
export { emitTcpFrame, emitUdpFrame } from '../wire/frame';
export { NO_FLAGS, flags } from '../wire/tcp';
export { TupleOnWire, describeSegment, endpointText, frameList, newSynOnWire, type Endpoint, type NewSynOnWire } from './api/onwire';
export type { FlowSegment } from '../capture/flows';
