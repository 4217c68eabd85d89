// What the command line writes: stdout line by line (synchronously, in order with stderr), one-line
// messages on stderr, verdict words coloured on a terminal, paths as a user typed them.
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Standard output, written synchronously in 64 KiB chunks: a listing of a million frames piped
 * into a slow reader must wait for it, not pile up in memory. A closed pipe (`| head`) ends us quietly.
 */
class StdoutLines {
  #buf: string[] = [];
  #size = 0;
  line(s: string): void {
    this.#buf.push(s, '\n');
    this.#size += s.length + 1;
    if (this.#size >= 1 << 16) this.flush();
  }
  flush(): void {
    if (this.#size === 0) return;
    let data = Buffer.from(this.#buf.join(''));
    this.#buf = [];
    this.#size = 0;
    while (data.length) {
      try {
        const n = fs.writeSync(1, data);
        data = data.subarray(n);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN')
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2); // the reader is behind: wait for it
        else if (code === 'EPIPE') process.exit(process.exitCode ?? 0);
        else throw e;
      }
    }
  }
}

export const stdout = new StdoutLines();
export const out = (s = ''): void => stdout.line(s);
export const err = (s: string): boolean => {
  stdout.flush(); // in order with what came before on a terminal
  return process.stderr.write(s + '\n');
};

/** Colour on a terminal that wants it (NO_COLOR unset). */
export const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;

const VERDICT_COLOUR: Record<string, string> = {
  HOLDS: '32',
  'DOES NOT HOLD': '31',
  'DIFFERS BY OS': '33',
  MIXED: '35',
  'NOT TESTED': '90',
};

/** A lab's printed line with its verdict word (and a prediction's ✓/✗) coloured, on a terminal. */
export function paintVerdicts(line: string): string {
  if (!colour) return line;
  return line
    .replace(
      /^(\s*\S+ )(HOLDS|DOES NOT HOLD|DIFFERS BY OS|MIXED|NOT TESTED)(:)/,
      (_m, a: string, v: string, b: string) => `${a}\x1b[1;${VERDICT_COLOUR[v]}m${v}\x1b[0m${b}`,
    )
    .replace(/ ✓$/, ' \x1b[32m✓\x1b[0m')
    .replace(/ ✗$/, ' \x1b[31m✗\x1b[0m');
}

/** A path as printed: relative to here when it is below here, else absolute (never ../../tmp/…). */
export function shown(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel === '' ? '.' : rel.startsWith('..') || path.isAbsolute(rel) ? p : rel;
}

/** Why a file could not be written, in words (ENOSPC → "no space left on device"). */
export function whyNotWritten(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOSPC'
    ? 'no space left on device'
    : code === 'EROFS'
      ? 'read-only filesystem'
      : code === 'EACCES'
        ? 'permission denied'
        : (code ?? (e as Error).message);
}
