// Counting trials as evidence and printed lines read them: "k/n" of the trials that showed
// something, and the different values seen ("EADDRINUSE/OK"), so a lab says what it counts
// instead of spelling out the filter and the Set each time.

/** How many of `xs` pass `test`. */
export function count<T>(xs: readonly T[], test: (x: T) => unknown): number {
  return xs.filter(test).length;
}

/** "k/n": how many of `xs` pass `test`, of all of them. */
export function kOfN<T>(xs: readonly T[], test: (x: T) => unknown): string {
  return `${count(xs, test)}/${xs.length}`;
}

/** The different values among `xs`, in the order first seen, joined: "EADDRINUSE/OK" ('' when there are none). */
export function distinct(xs: Iterable<unknown>, separator = '/'): string {
  return [...new Set(xs)].join(separator);
}

/** The sum of `f` over `xs`. */
export function sum<T>(xs: readonly T[], f: (x: T) => number): number {
  return xs.reduce((a, x) => a + f(x), 0);
}
