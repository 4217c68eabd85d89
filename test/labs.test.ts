// Labs 02–10 run for real (fast settings where a lab has them), in parallel, each in its own
// namespace; the tests assert what this kernel measured and that the captures show it in tshark.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabResult } from '../src/lab/types';
import { hasTool, privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();

function tshark(pcap: string, filter: string, fields: string[]): string[][] {
  const t = spawnSync('tshark', ['-r', pcap, '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8' });
  expect(t.status, t.stderr).toBe(0);
  return t.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
}

function expectNoMalformed(pcap: string): void {
  expect(tshark(pcap, '_ws.malformed || _ws.expert.severity == "error"', ['frame.number'])).toEqual([]);
}

const canTshark = hasTool('tshark') || !!process.env.CI;

describe.skipIf(!run)('labs 02–10 on this kernel', () => {
  let out: string;
  let results: Map<string, LabResult>;
  let stderr: string;
  beforeAll(() => {
    out = tmpDir('labs');
    const r = runCli(['run', '02', '03', '04', '05', '06', '07', '08', '09', '10', '--json', '--out', out, '--set', 'wait=none', '--set', 'fin_timeout=3', '--set', 'linger=2', '--set', 'connections=12'], {
      timeoutMs: 180_000,
    });
    stderr = r.stderr;
    expect(r.code, r.stderr).toBe(0);
    results = new Map((JSON.parse(r.stdout) as LabResult[]).map((x) => [x.lab, x]));
  }, 200_000);

  const verdicts = (id: string): Record<string, string> => Object.fromEntries(results.get(id)!.claims.map((c) => [c.id, c.verdict]));
  const variant = (id: string, name: string): Record<string, unknown> => results.get(id)!.variants.find((v) => v.name === name)!.observations;
  const pcapOf = (id: string, name: string): string => path.join(out, `${id}-${results.get(id)!.slug}`, `${name}.pcap`);

  it('runs all nine, in parallel, each leaving result.json, timeline.json and one pcap per variant', () => {
    expect([...results.keys()]).toEqual(['02', '03', '04', '05', '06', '07', '08', '09', '10']);
    expect(stderr).toBe(''); // --json: nothing but JSON, no progress lines
    for (const r of results.values()) {
      const dir = path.join(out, `${r.lab}-${r.slug}`);
      for (const f of ['result.json', 'timeline.json', ...r.variants.map((v) => v.pcap!)]) expect(fs.existsSync(path.join(dir, f)), `${r.lab}/${f}`).toBe(true);
      for (const c of r.claims) expect(['holds', 'does not hold', 'differs by OS']).toContain(c.verdict);
      const timeline = JSON.parse(fs.readFileSync(path.join(dir, 'timeline.json'), 'utf8')) as { events: Array<{ kind: string }> };
      const kinds = new Set(timeline.events.map((e) => e.kind));
      for (const k of ['syscall', 'frame', 'kernel', 'counters', 'peer-state', 'peer-segment']) expect(kinds.has(k), `${r.lab} timeline has ${k}`).toBe(true);
    }
  });

  it('02: only the closer holds TIME_WAIT; 60 s whatever tcp_fin_timeout says', () => {
    expect(verdicts('02')).toEqual({ T1: 'holds', T2: 'holds' });
    expect(results.get('02')!.sysctls['net.ipv4.tcp_fin_timeout']).toBe('3');
    expect(variant('02', 'kernel-closes-first').timerAtEntryMs as number).toBeGreaterThan(58_000);
    expect(variant('02', 'fin-timeout-changed').timerAtEntryMs as number).toBeGreaterThan(58_000);
  });

  it('03: Linux wants SO_REUSEADDR on the old listener too; SO_REUSEPORT on both works', () => {
    expect(verdicts('03')).toEqual({ C4: 'differs by OS', C5: 'holds' });
    const cells = variant('03', 'specific-address').cells as Array<{ oldListener: string; newSocket: string; bind: string; timeWait: boolean }>;
    expect(cells.every((c) => c.timeWait)).toBe(true);
    const at = (o: string, n: string): string => cells.find((c) => c.oldListener === o && c.newSocket === n)!.bind;
    expect([at('none', 'reuseaddr'), at('reuseaddr', 'reuseaddr'), at('reuseport', 'reuseport'), at('none', 'none')]).toEqual(['EADDRINUSE', 'OK', 'OK', 'EADDRINUSE']);
  });

  it('04: a second connect() on an existing four-tuple is EADDRNOTAVAIL; tcp_tw_reuse only governs kernel-chosen ports', () => {
    expect(verdicts('04')).toEqual({ C6: 'differs by OS', T3: 'does not hold' });
    expect(variant('04', 'two-sockets-one-tuple')).toMatchObject({ connectA: 'OK', connectB: 'EADDRNOTAVAIL' });
    const cmp = variant('04', 'tw-reuse-compare') as Record<string, { connect: string }>;
    expect([cmp['range tw_reuse=0']!.connect, cmp['range tw_reuse=1']!.connect, cmp['bind tw_reuse=0']!.connect]).toEqual(['EADDRNOTAVAIL', 'OK', 'OK']);
  });

  it('05: SO_LINGER {1,0} resets, drops unsent data, no TIME_WAIT — also when the process is killed', () => {
    expect(verdicts('05')).toEqual({ C11: 'holds', C16: 'differs by OS' });
    expect(variant('05', 'unsent-data').discarded as number).toBeGreaterThan(0);
    if (!canTshark) return;
    for (const v of ['established-idle', 'unsent-data', 'process-killed']) {
      const pcap = pcapOf('05', v);
      expectNoMalformed(pcap);
      expect(tshark(pcap, 'ip.src == 192.0.2.1 && tcp.flags.reset == 1', ['frame.number']).length, v).toBe(1);
      expect(tshark(pcap, 'ip.src == 192.0.2.1 && tcp.flags.fin == 1', ['frame.number']).length, v).toBe(0);
    }
  });

  it('06: a lingering close() blocks N s (non-blocking too), returns 0, and the data still arrives; TIME_WAIT is 60 s', () => {
    expect(verdicts('06')).toEqual({ C12: 'does not hold', T4: 'does not hold' });
    for (const v of ['peer-stalls', 'non-blocking']) {
      const o = variant('06', v);
      expect((o.close as { elapsedMs: number }).elapsedMs, v).toBeGreaterThanOrEqual(1900);
      expect((o.close as { ret: number }).ret).toBe(0);
      expect(o.peerGotEverything).toBe(true);
    }
    if (!canTshark) return;
    const pcap = pcapOf('06', 'peer-stalls');
    expectNoMalformed(pcap);
    // the peer's zero windows, and the kernel's probes: Linux probes with an ACK at SND.UNA−1 and no
    // data (tcp_xmit_probe_skb), which Wireshark labels "Keep-Alive"
    expect(tshark(pcap, 'ip.src == 192.0.2.2 && tcp.analysis.zero_window', ['frame.number']).length).toBeGreaterThan(0);
    expect(tshark(pcap, 'ip.src == 192.0.2.1 && tcp.analysis.keep_alive', ['frame.number']).length).toBeGreaterThan(0);
  });

  it('07: unread data turns every close() into a RST', () => {
    expect(verdicts('07')).toEqual({ C15: 'holds' });
  });

  it('08: an orphaned FIN_WAIT_2 lives tcp_fin_timeout; a shutdown() one does not time out', () => {
    expect(verdicts('08')).toEqual({ T5: 'holds' });
    expect(variant('08', 'closed-orphaned').lifetimeMs as number).toBeLessThan(5000);
    expect((variant('08', 'shutdown-kept-open').lateData as { readByApplication: string }).readByApplication).toBe('late data');
  });

  it('09: both sides pass CLOSING into TIME_WAIT; the capture shows the FINs crossing', () => {
    expect(verdicts('09')).toEqual({ T6: 'holds' });
    expect(variant('09', 'crossing-fins').kernelStates).toContain('CLOSING');
    if (!canTshark) return;
    const pcap = pcapOf('09', 'crossing-fins');
    expectNoMalformed(pcap);
    const fins = tshark(pcap, 'tcp.flags.fin == 1', ['ip.src', 'tcp.seq_raw', 'tcp.ack_raw']);
    expect(fins.map((f) => f[0])).toEqual(['192.0.2.1', '192.0.2.2']);
    // each FIN acknowledges the other side's data but not the other FIN: they crossed
    const [kernelFin, peerFin] = fins as [string[], string[]];
    expect(peerFin[2]).toBe(kernelFin[1]); // the peer's FIN: ACK = the kernel FIN's own seq, not seq + 1
    expect(kernelFin[2]).toBe(peerFin[1]);
    expect(tshark(pcap, 'tcp.analysis.retransmission', ['frame.number'])).toEqual([]);
  });

  it('10: beyond tcp_max_tw_buckets TIME_WAIT is skipped, counted, and the port is free', () => {
    expect(verdicts('10')).toEqual({ T7: 'holds' });
    expect(variant('10', 'close-many')).toMatchObject({ timeWaitEntries: 0, bindSkippedPort: 'OK' });
    expect((variant('10', 'close-many').counters as Record<string, number>)['TcpExt.TCPTimeWaitOverflow']).toBe(12);
  });
});

describe.skipIf(!run)('a full TIME_WAIT, waited out', () => {
  it('02 with wait=full: the kernel entry vanishes 60 s after close()', () => {
    const out = tmpDir('tw-full');
    const r = runCli(['run', '02', '--set', 'wait=full', '--json', '--out', out], { timeoutMs: 150_000 });
    expect(r.code, r.stderr).toBe(0);
    const [res] = JSON.parse(r.stdout) as LabResult[];
    const lifetime = res!.variants.find((v) => v.name === 'kernel-closes-first')!.observations.lifetimeMs as number;
    expect(lifetime).toBeGreaterThan(59_000);
    expect(lifetime).toBeLessThan(63_000);
    expect(res!.claims.find((c) => c.id === 'T2')!.verdict).toBe('holds');
  }, 150_000);
});
