// The capture's clock: frames read from an AF_PACKET socket on the lab's TUN carry the time the
// kernel stamped them where they crossed, not the time twlab read them.
import { afterAll, describe, expect, it } from 'vitest';
import { inNamespace, privileged, removeTmpDirs } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();

interface Captured {
  timeUs: number;
  direction: string;
  length: number;
  kept: number;
  what: string;
}

describe.skipIf(!run)('packet-socket capture on the TUN', () => {
  it('stamps each frame where it crossed: a kernel frame read late keeps its time, a peer frame lies within its write()', async () => {
    const r = await inNamespace<{
      busyMs: number;
      sentAt: number;
      readAt: Record<string, number>;
      before: number;
      after: number;
      captured: Captured[];
      received: string;
      cut: Captured | null;
      stats: { ret: number; drops: number };
      noDevice: { errno: string; step: string } | null;
    }>('packet-capture', { busyMs: 80 });
    const busy = r.captured.find((c) => c.what === 'udp sent while busy')!;
    const peer = r.captured.find((c) => c.what === 'udp from the peer')!;
    expect(busy.direction).toBe('kernel→peer');
    expect(peer.direction).toBe('peer→kernel');
    // stamped when sendNow() put it on the device, not when the busy loop let twlab read it
    expect(busy.timeUs).toBeGreaterThanOrEqual(r.sentAt - 1000);
    expect(r.readAt['udp sent while busy']! - busy.timeUs).toBeGreaterThanOrEqual(r.busyMs * 1000);
    // a frame written in is stamped inside its write(2)
    expect(peer.timeUs).toBeGreaterThanOrEqual(r.before - 1);
    expect(peer.timeUs).toBeLessThanOrEqual(r.after + 1);
    expect(r.received).toBe('from the peer');
    // in the order they crossed
    const times = r.captured.map((c) => c.timeUs);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(r.cut).toMatchObject({ direction: 'kernel→peer', length: 1028, kept: 40 });
    expect(r.stats).toEqual({ ret: 0, drops: 0 });
    expect(r.noDevice).toEqual({ errno: 'ENODEV', step: 'ioctl(SIOCGIFINDEX)' });
  });

  it("one four-tuple's socket read with an exact sock_diag lookup agrees with /proc/net/tcp through a close", async () => {
    const r = await inNamespace<Record<string, unknown>>('socket-diag');
    expect(r.connect).toBe(0);
    expect(r.established).toEqual({
      diag: { state: 'ESTABLISHED', timer: 'none', inodeZero: false, timerMs: 0 },
      proc: { state: 'ESTABLISHED', timer: 'none', inodeZero: false },
    });
    const fw2 = r.finWait2 as { diag: { state: string; inodeZero: boolean }; proc: { state: string; inodeZero: boolean } };
    expect(fw2.diag).toMatchObject({ state: 'FIN_WAIT2', inodeZero: true });
    expect(fw2.proc).toMatchObject({ state: 'FIN_WAIT2', inodeZero: true });
    const tw = r.timeWait as {
      diag: { state: string; timer: string; inodeZero: boolean; timerMs: number };
      proc: { state: string; timer: string };
    };
    expect(tw.diag).toMatchObject({ state: 'TIME_WAIT', timer: 'time-wait', inodeZero: true });
    expect(tw.diag.timerMs).toBeGreaterThan(55_000);
    expect(tw.proc).toMatchObject({ state: 'TIME_WAIT', timer: 'time-wait' });
    expect(r.unused).toBeNull();
    expect(r.v6).toBeNull();
  });
});
