// What a lab file may import: the lab API and the kernel-side types it names.
export { defineLab, labDirName, labClaims, LabError } from './types';
export { CLAIMS, claimById, type Scope } from './claims';
export { decide, requires, type Judgement, type Precondition, type Trial } from './verdict';
export type { Answer, QuestionSpec } from './questions';
export type { ClaimSpec, ClaimResult, LabDefinition, LabResult, Verdict, VariantResult } from './types';
export { LabContext } from './context';
export type { ParamSpec, ParamValue } from './params';
export type { KernelSocket, Proto, Linger, TcpInfo, SyscallRecord } from '../host/ksocket';
export type { UidHelper } from '../host/uidhelper';
export type { SyscallResult, AsyncSyscallResult } from '../host/native';
export { familyOf, parseIPv4, parseIPv6, type IpFamily } from '../wire/address';
export type { TcpStack, Connection } from '../stack/stack';
export type { TcbConfig, TcpState } from '../stack/tcb';
export type { SocketEntry } from '../host/observe';
export { kernelConnects, kernelServerTimeWait, peerConnects, peerReaches, PATIENT_PEER, type KernelClient, type PeerClient, type ServerTimeWait } from './connect';
export type { SegmentEvent as SegmentEventLike } from '../stack/stack';
export { emitTcpFrame, emitUdpFrame } from '../wire/frame';
export { NO_FLAGS } from '../wire/tcp';
