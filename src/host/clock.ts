// One clock for everything a lab records: CLOCK_REALTIME in microseconds — the clock the kernel
// stamps captured frames with (SO_TIMESTAMPNS on the packet socket, src/host/capture.ts) — so
// syscalls, socket-table samples, the peer's events and captured frames line up.
import { native } from './native';

export function wallUs(): number {
  return Math.round(native().realtimeUs());
}

/**
 * A time on the monotonic clock (performance.now(), ms: the userspace stack's clock) as wall time
 * in µs, for an event that happened `ms` ago: anchored at the present, so the two clocks' drift
 * since the process started does not enter.
 */
export function wallUsOf(ms: number): number {
  return Math.round(native().realtimeUs() - (performance.now() - ms) * 1000);
}
