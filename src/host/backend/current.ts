// Which system this process tests: Linux through the addon unless the lab process was set up
// for another stack (src/lab/run/lab-main.ts calls useBackend before the lab runs).
import { linuxBackend } from './linux';
import type { Backend } from './types';

let current: Backend | null = null;

export function currentBackend(): Backend {
  return (current ??= linuxBackend());
}

export function useBackend(b: Backend): void {
  current = b;
}
