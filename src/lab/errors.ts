// Errors a user can cause or fix, with stable codes; the CLI prints `twlab: <message>` and exits.
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

export class TwlabError extends Error {
  constructor(
    readonly code: TwlabErrorCode,
    message: string,
    readonly exitCode = code === 'LAB_FAILED' ? 1 : code === 'INTERRUPTED' ? 130 : 2,
  ) {
    super(message);
  }
}
