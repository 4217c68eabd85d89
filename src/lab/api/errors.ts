// Errors a user can cause or fix, with stable codes; the CLI prints `twlab: <message>` and exits.

/**
 * What every error a user can cause or fix carries, whichever room throws it (TwlabError here,
 * ParamError, PcapError, ShowError, AddonMissingError): a stable code, a one-line message and the
 * exit status. The CLI prints `twlab: <message>` and exits with `exitCode`; anything else is a bug
 * and keeps its stack trace.
 */
export interface CodedError extends Error {
  readonly code: string;
  readonly exitCode: number;
}

export function isCodedError(e: unknown): e is CodedError {
  return (
    e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && typeof (e as { exitCode?: unknown }).exitCode === 'number'
  );
}
export type TwlabErrorCode =
  | 'UNKNOWN_LAB'
  | 'BAD_PARAM'
  | 'NO_PRIVILEGE'
  | 'NO_TUN'
  | 'MISSING_TOOL'
  | 'ADDON_MISSING'
  | 'LAB_FAILED'
  | 'INTERRUPTED'
  | 'BAD_PCAP'
  | 'BAD_USAGE'
  | 'UNKNOWN_KERNEL'
  | 'KERNEL_FETCH'
  | 'GUEST_FAILED'
  | 'STACK_BUILD';

export class TwlabError extends Error implements CodedError {
  constructor(
    readonly code: TwlabErrorCode,
    message: string,
    readonly exitCode = code === 'LAB_FAILED' ? 1 : code === 'INTERRUPTED' ? 130 : 2,
  ) {
    super(message);
  }
}
