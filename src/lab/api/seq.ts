// Sequence numbers for labs: 32-bit, modulo 2^32 (RFC 9293 §3.4), through src/wire/seq.ts. A lab
// never writes `| 0` or `>>> 0`: plain numbers (a TCB field, a capture's) go in, SeqNumber comes out.
import { seqAdd as add, seqDiff as diff, seqRelative as relative, type SeqNumber } from '../../wire/seq';

export type { SeqNumber } from '../../wire/seq';

const s = (n: number): SeqNumber => (n >>> 0) as SeqNumber;

/** n as a sequence number (modulo 2^32) */
export const seqOf = (n: number): SeqNumber => s(n);
/** a + n, modulo 2^32 */
export const seqAdd = (a: number, n: number): SeqNumber => add(s(a), n);
/** a − n, modulo 2^32 */
export const seqSub = (a: number, n: number): SeqNumber => add(s(a), -n);
/** a − b as a signed distance (negative: a lies before b) */
export const seqDiff = (a: number, b: number): number => diff(s(a), s(b));
/** how far `to` lies beyond `from`, unsigned (sequence space consumed from `from` on) */
export const seqSpan = (from: number, to: number): number => relative(s(to), s(from));
export const seqLt = (a: number, b: number): boolean => seqDiff(a, b) < 0;
export const seqLe = (a: number, b: number): boolean => seqDiff(a, b) <= 0;
export const seqGt = (a: number, b: number): boolean => seqDiff(a, b) > 0;
export const seqGe = (a: number, b: number): boolean => seqDiff(a, b) >= 0;
/** the same sequence number (either may be a raw number) */
export const seqEq = (a: number, b: number): boolean => seqDiff(a, b) === 0;
