// One clock for everything a lab records: wall time in microseconds, CLOCK_REALTIME as it was
// when the process started, advanced by the monotonic clock — so a guest's lab that sets its
// realtime clock (lab 11, below) does not make its own timeline jump. The kernel stamps captured
// frames on CLOCK_REALTIME (SO_TIMESTAMPNS, src/host/capture.ts): fromRealtimeUs() puts them on
// this clock, so syscalls, socket-table samples, the peer's events and frames line up.
import * as fs from 'node:fs';
import { native } from './native';

export function wallUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** A time on the monotonic clock (performance.now(), ms: the userspace stack's clock) as wall time in µs. */
export function wallUsOf(ms: number): number {
  return Math.round((performance.timeOrigin + ms) * 1000);
}

/**
 * A CLOCK_REALTIME time (µs: a frame's kernel stamp, a worker's start) on this clock: the two
 * differ by what the realtime clock was set by since the process started (nothing, on the host).
 */
export function fromRealtimeUs(us: number): number {
  return Math.round(us - (native().realtimeUs() - (performance.timeOrigin + performance.now()) * 1000));
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
