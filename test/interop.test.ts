// The userspace stack against the real kernel over TUN, each case in its own namespace:
// end states on both sides, what the capture shows, and tshark reading it cleanly.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, hasTool, inNamespace, privileged, removeTmpDirs, tmpDir } from './helpers';
import { readPcap } from '../src/capture/pcap';
import { isWireError } from '../src/wire/errors';
import { parseFrame } from '../src/wire/frame';
import type { InteropResult } from './ns/interop';

afterAll(removeTmpDirs);

const run = privileged();

async function scenario(name: string, input: Record<string, unknown> = {}): Promise<InteropResult> {
  const pcap = path.join(tmpDir('interop'), `${name}.pcap`);
  return inNamespace<InteropResult>(name, { ...input, pcap });
}

/**
 * tshark reads the capture: every frame decodes as IP/TCP, none malformed, no checksum errors.
 * Payloads are random bytes, so every port decodes as plain data (else port 80 would be "HTTP").
 */
function expectCleanInTshark(pcap: string): void {
  if (!hasTool('tshark') && !process.env.CI) return;
  const t = spawnSync(
    'tshark',
    [
      '-r',
      pcap,
      '-d',
      'tcp.port==1-65535,data',
      '-o',
      'tcp.check_checksum:TRUE',
      '-T',
      'fields',
      '-e',
      'frame.number',
      '-e',
      'ip.src',
      '-e',
      'tcp.flags.str',
      '-e',
      'tcp.len',
      '-e',
      'frame.protocols',
      '-e',
      '_ws.malformed',
      '-e',
      'tcp.checksum.status',
      '-e',
      'tcp.checksum',
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  expect(t.status, t.stderr).toBe(0);
  const frames = readPcap(pcap);
  const bad = t.stdout
    .trim()
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([number, , , , protocols, malformed, status, field]) => {
      if (!/^raw:ip(v6)?:tcp(:data)?$/.test(protocols ?? '') || (malformed ?? '') !== '') return true;
      if (status === '1') return false; // PROTO_CHECKSUM_E_GOOD
      // 0xffff is one's-complement zero, as valid as 0x0000 (Linux's csum_fold yields it about once in
      // 65,536 segments); Wireshark 4.0 compares literally and calls it bad. Verify such a frame ourselves.
      return !(field === '0xffff' && checksumOk(frames, Number(number)));
    });
  if (bad.length) {
    // keep the capture for a look: the temporary folder is removed after the run
    const kept = path.join(ROOT, 'captures', `failed-${path.basename(pcap)}`);
    fs.copyFileSync(pcap, kept);
    expect.fail(
      `${bad.length} frame(s) not clean in tshark, e.g. ${bad
        .slice(0, 3)
        .map((f) => `#${f[0]} from ${f[1]} [${f[2]}] len ${f[3]} protocols ${f[4]} checksum status ${f[6]}`)
        .join('; ')} (capture kept: ${kept})`,
    );
  }
}

function checksumOk(file: ReturnType<typeof readPcap>, number: number): boolean {
  const seg = parseFrame(file.records[number - 1]!.data);
  return !isWireError(seg) && seg.kind === 'tcp' && seg.tcp.checksumOk === true;
}

// What must hold however busy the machine is: no RST, and each side's FIN at one sequence number
// (sent once or more). Retransmissions are not asserted: when this process is not scheduled for a
// few milliseconds the kernel's tail-loss probe or RTO fires (the scheduler's doing, not TCP's);
// `npm run bench` counts them (bench/goodput.ts) instead.
const noRst = { kernel: 0, stack: 0 };

describe.skipIf(!run)('stack ↔ kernel over TUN', () => {
  it('kernel client ↔ stack server, 10 MB each way, the kernel closes first', async () => {
    const r = await scenario('kernel-client', { bytes: 10 << 20 });
    expect(r.kernel.sha256).toBe((r.kernel.expect as { toKernel: string }).toKernel);
    expect(r.stack.sha256).toBe((r.kernel.expect as { toStack: string }).toStack);
    expect(r.kernel.received).toBe(10 << 20);
    expect(r.stack.received).toBe(10 << 20);
    // the side that closed first holds TIME-WAIT; the stack passed LAST-ACK and is gone
    expect(r.stack.states).toEqual(['SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED']);
    expect(r.table).toEqual([expect.objectContaining({ state: 'TIME_WAIT', timer: 'time-wait' })]);
    expect(r.table[0]!.timerMs).toBeGreaterThan(55_000);
    expect(r.kernel.options).toBe(7); // TCP_INFO: timestamps | SACK | window scaling
    expect(r.capture.rst).toEqual(noRst);
    expect(r.capture.finAt).toEqual({ kernel: [1 + (10 << 20)], stack: [1 + (10 << 20)] }); // one FIN each way, after all the data
    expectCleanInTshark(r.capture.pcap);
  });

  it('stack client ↔ kernel server, 10 MB each way, the stack closes first and holds TIME-WAIT', async () => {
    const r = await scenario('stack-client', { bytes: 10 << 20 });
    expect(r.kernel.sha256).toBe((r.kernel.expect as { toKernel: string }).toKernel);
    expect(r.stack.sha256).toBe((r.kernel.expect as { toStack: string }).toStack);
    expect(r.kernel.stateAfterEof).toBe('CLOSE_WAIT');
    expect(r.stack.states).toEqual(['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED']);
    expect(r.extra).toMatchObject({ inTimeWait: true, stateBeforeExpiry: 'TIME-WAIT', closedAfter2Msl: true });
    expect(r.table).toEqual([]); // the kernel closed second: no TIME_WAIT on its side
    expect(r.capture.rst).toEqual(noRst);
    expect(r.capture.finAt).toEqual({ kernel: [1 + (10 << 20)], stack: [1 + (10 << 20)] });
    expectCleanInTshark(r.capture.pcap);
  });

  it('handshake without timestamps and window scaling (IPv6)', async () => {
    const r = await scenario('stack-client', { bytes: 300_000, ipv6: true, timestamps: false, wscale: false });
    expect(r.kernel.options).toBe(2); // SACK only
    expect(r.kernel.sha256).toBe((r.kernel.expect as { toKernel: string }).toKernel);
    expect(r.stack.sha256).toBe((r.kernel.expect as { toStack: string }).toStack);
    expect(r.capture.rst).toEqual(noRst);
    expect(r.capture.finAt).toEqual({ kernel: [300_001], stack: [300_001] });
    expectCleanInTshark(r.capture.pcap);
  });

  it('in TIME-WAIT the stack re-ACKs the FIN the kernel retransmits when the first ACK is lost', async () => {
    const r = await scenario('stack-client', { bytes: 100_000, dropFirstFinAck: true });
    expect(r.stack.states.slice(-2)).toEqual(['TIME-WAIT', 'CLOSED']);
    // the kernel sent its FIN again (one FIN, at one sequence number), and every copy that reached TIME-WAIT restarted it
    expect(r.extra.timeWaitRestarts).toBeGreaterThanOrEqual(1);
    expect(r.capture.finAt.kernel).toEqual([100_001]);
    expect(r.capture.kernel).toMatchObject({ fin: 1 + (r.extra.timeWaitRestarts as number) });
    expect(r.capture.rst).toEqual(noRst);
    expectCleanInTshark(r.capture.pcap);
  });

  it('simultaneous close: both sides pass through CLOSING into TIME-WAIT', async () => {
    const r = await scenario('simultaneous-close');
    expect(r.extra).toMatchObject({ finHeld: true, stackGotFin: true, stackMid: 'CLOSING', timeWait: true });
    expect(r.kernel).toMatchObject({ kernelBefore: 'FIN_WAIT1', kernelClosing: true, kernelMid: 'CLOSING' });
    expect(r.stack.states).toEqual(['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'CLOSING', 'TIME-WAIT']);
    expect(r.table).toEqual([expect.objectContaining({ state: 'TIME_WAIT' })]);
    expect(r.capture.rst).toEqual(noRst);
    expect(r.capture.finAt).toEqual({ kernel: [1], stack: [1] });
    expectCleanInTshark(r.capture.pcap);
  });

  it("close() with data queued behind the kernel's shut window, the kernel's FIN crossing: the stack goes FIN-WAIT-1 → CLOSING → TIME-WAIT, and so does the kernel's side", async () => {
    const bytes = 256 * 1024;
    const r = await scenario('close-with-queued-data', { bytes });
    expect(r.extra.shut).toBe(true); // the kernel's window was shut with data still queued
    expect(r.extra.afterClose).toMatchObject({ state: 'FIN-WAIT-1', finSent: false });
    expect((r.extra.afterClose as { unsent: number }).unsent).toBeGreaterThan(0);
    // the kernel's FIN arrived while ours still waited behind data
    expect(r.extra.atKernelFin).toMatchObject({ finSent: false });
    expect((r.extra.atKernelFin as { unsent: number }).unsent).toBeGreaterThan(0);
    expect(r.kernel.kernelFinAcked).toBe(true); // FIN_WAIT2: the stack acknowledged the kernel's FIN
    expect(r.kernel.sha256).toBe(r.kernel.expect);
    expect(r.kernel.eof).toEqual({ ret: 0, errno: null });
    expect(r.stack.states).toEqual(['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'CLOSING', 'TIME-WAIT']);
    expect(r.table).toEqual([expect.objectContaining({ state: 'TIME_WAIT', timer: 'time-wait' })]); // the kernel's side holds TIME_WAIT too
    // one FIN each way: the stack's after all its data, the kernel's with none
    expect(r.capture.finAt).toEqual({ stack: [1 + bytes], kernel: [1] });
    expect(r.capture.rst).toEqual(noRst);
    expectCleanInTshark(r.capture.pcap);
  });

  it('half-close: the kernel shuts down writing and still reads 1 MB from the stack', async () => {
    const r = await scenario('half-close');
    expect(r.kernel.kernelAfterShutdown).toBe('FIN_WAIT2');
    expect(r.kernel.sha256).toBe(r.kernel.expect);
    expect(r.stack.states).toEqual(['SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED']);
    expect(r.table).toEqual([expect.objectContaining({ state: 'TIME_WAIT' })]);
    expect(r.capture.rst).toEqual(noRst);
    expect(r.capture.finAt).toEqual({ kernel: [1], stack: [1 + (1 << 20)] });
    expectCleanInTshark(r.capture.pcap);
  });

  it('abort by the stack: one RST, the kernel reads ECONNRESET', async () => {
    const r = await scenario('abort', { by: 'stack' });
    expect(r.kernel.recv).toEqual({ ret: -1, errno: 'ECONNRESET' });
    expect(r.stack).toMatchObject({ final: 'CLOSED', resetReason: 'rst-sent' });
    expect(r.capture.rst).toEqual({ kernel: 0, stack: 1 });
    expect(r.capture.stack).toMatchObject({ fin: 0 });
    expect(r.table).toEqual([]);
    expectCleanInTshark(r.capture.pcap);
  });

  it('abort by the kernel (SO_LINGER {1,0}): one RST, the stack is reset, no TIME_WAIT', async () => {
    const r = await scenario('abort', { by: 'kernel' });
    expect(r.kernel.stackClosed).toBe(true);
    expect(r.stack).toMatchObject({ final: 'CLOSED', resetReason: 'rst-received' });
    expect(r.capture.rst).toEqual({ kernel: 1, stack: 0 });
    expect(r.capture.kernel).toMatchObject({ fin: 0 });
    expect(r.table).toEqual([]);
    expectCleanInTshark(r.capture.pcap);
  });

  it('zero window: the stack stops reading, the kernel probes, then everything arrives', async () => {
    const r = await scenario('zero-window', { stallMs: 1500 });
    expect(r.extra.timer).toBe('probe'); // the kernel's zero-window probe timer, in its socket table
    expect(r.capture.stack!.zeroWindow).toBeGreaterThanOrEqual(1);
    expect(r.capture.kernel!.windowProbes).toBeGreaterThanOrEqual(1);
    expect(r.stack.sha256).toBe(r.kernel.expect);
    expect(r.capture.rst).toEqual(noRst);
    expect(r.capture.finAt).toEqual({ kernel: [1 + (1 << 20)], stack: [1] });
    expect(r.kernel.sendMs).toBeGreaterThan(1000); // send() waited out the stall
    expectCleanInTshark(r.capture.pcap);
  });

  it('peer behaviours: keep-alives the kernel answers, urgent data from MSG_OOB, close() with unread data and data after close() reset', async () => {
    const r = await scenario('peer-behaviours');
    // a probe after 200 ms of silence, then every 400 ms: the kernel answers one per 500 ms (tcp_invalid_ratelimit), each answer starts the count over: 3 or more probes, still up
    expect(r.extra.keepalive).toMatchObject({ state: 'ESTABLISHED' });
    expect((r.extra.keepalive as { probes: number }).probes).toBeGreaterThanOrEqual(3);
    expect(r.extra.urgentPointers).toEqual([4]); // Linux's urgent pointer: the byte after the urgent one (RFC 6093)
    expect(r.kernel.afterUnread).toEqual({ ret: -1, errno: 'ECONNRESET' });
    expect(r.stack).toMatchObject({ final: 'CLOSED', resetReason: 'rst-sent' });
    expect(r.extra.lateReset).toBe('rst-sent');
    expect(r.extra.lateStates).toEqual(['SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSED']);
    expect(r.kernel.lateState).toBe('CLOSE'); // the kernel took the RST
    expect(r.kernel.afterLate).toEqual({ ret: -1, errno: 'EPIPE' }); // reset in CLOSE_WAIT: EPIPE (tcp_reset)
    if (hasTool('tshark')) {
      const t = spawnSync('tshark', ['-r', r.capture.pcap, '-Y', 'tcp.analysis.keep_alive', '-T', 'fields', '-e', 'frame.number'], {
        encoding: 'utf8',
      });
      expect(t.stdout.trim().split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(3); // Wireshark recognises them as keep-alives
    }
    expectCleanInTshark(r.capture.pcap);
  });

  it('5 % loss on the stack side (both directions): the transfer still completes intact', async () => {
    const r = await scenario('kernel-client', { bytes: 2_000_000, loss: 0.05 });
    expect(r.extra.dropped).toBeGreaterThan(100);
    expect(r.kernel.sha256).toBe((r.kernel.expect as { toKernel: string }).toKernel);
    expect(r.stack.sha256).toBe((r.kernel.expect as { toStack: string }).toStack);
    expect(r.stack.final).toBe('CLOSED');
    expect(r.extra.retransmitsByStack).toBeGreaterThan(0);
    expect(r.capture.rst).toEqual(noRst);
    expectCleanInTshark(r.capture.pcap);
  });
});
