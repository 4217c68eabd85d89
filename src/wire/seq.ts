// TCP sequence numbers: 32-bit, compared modulo 2^32 (RFC 9293 §3.4). Never compare with raw `<`.
export type SeqNumber = number & { readonly __brand: 'SeqNumber' };

export function seq(n: number): SeqNumber {
  return (n >>> 0) as SeqNumber;
}
export function seqAdd(a: SeqNumber, n: number): SeqNumber {
  return ((a + n) >>> 0) as SeqNumber;
}
/** a - b as a signed 32-bit distance */
export function seqDiff(a: SeqNumber, b: SeqNumber): number {
  return (a - b) | 0;
}
export function seqLt(a: SeqNumber, b: SeqNumber): boolean {
  return seqDiff(a, b) < 0;
}
export function seqLe(a: SeqNumber, b: SeqNumber): boolean {
  return seqDiff(a, b) <= 0;
}
export function seqGt(a: SeqNumber, b: SeqNumber): boolean {
  return seqDiff(a, b) > 0;
}
export function seqGe(a: SeqNumber, b: SeqNumber): boolean {
  return seqDiff(a, b) >= 0;
}
/** b <= x < e, modulo 2^32 */
export function seqInRange(x: SeqNumber, b: SeqNumber, e: SeqNumber): boolean {
  return seqLe(b, x) && seqLt(x, e);
}
/** Relative sequence number as humans read it: distance from the initial sequence number. */
export function seqRelative(x: SeqNumber, isn: SeqNumber): number {
  return (x - isn) >>> 0;
}
