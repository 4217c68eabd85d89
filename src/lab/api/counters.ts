// A counter's change as evidence reads it: `+3` (or `-1`), or `n/a` where the system under test has
// no such counter (ctx.counterChange gave null) — never a 0 it did not count.
export const signed = (n: number | null): string => (n === null ? 'n/a (no such counter here)' : n >= 0 ? `+${n}` : `${n}`);
