// A counter's move as evidence reads it: `+3`, or `n/a` where the system under test has no such
// counter (another OS) — never a 0 it did not count.
export const signed = (n: number | null): string => (n === null ? 'n/a (no such counter here)' : `+${n}`);
