// One clock for everything a lab records: wall time in microseconds, the same clock the
// native TUN poller stamps frames with (CLOCK_REALTIME), so syscalls, socket-table samples
// and captured frames line up.
import * as fs from 'node:fs';
import { native } from './native';

export function wallUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * The realtime clock of a twlab guest (a kernel booted by `twlab run --kernel`, whose command line
 * carries twlab_main=), which is the guest's own to set; null anywhere else — twlab never sets
 * the host's clock. Lab 11 uses it: the kernel's ISN clock is CLOCK_REALTIME
 * (net/core/secure_seq.c: seq_scale adds ktime_get_real_ns() >> 6).
 */
export function guestRealtime(cmdline = readCmdline()): { shift(deltaMs: number): { ret: number; errno: string | null } } | null {
  if (!/(^|\s)twlab_main=\S/.test(cmdline)) return null;
  return { shift: (deltaMs: number) => native().shiftRealtime(deltaMs) };
}

function readCmdline(): string {
  try {
    return fs.readFileSync('/proc/cmdline', 'utf8');
  } catch {
    return '';
  }
}
