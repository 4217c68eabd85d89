// One clock for everything a lab records: wall time in microseconds, the same clock the
// native TUN poller stamps frames with (CLOCK_REALTIME), so syscalls, socket-table samples
// and captured frames line up.
export function wallUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
