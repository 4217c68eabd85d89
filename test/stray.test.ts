// Labs 11–15 run for real, in parallel, each in its own namespace; then the parameters the
// kernel's behaviour depends on are flipped and the outcome must flip with them.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabResult } from '../src/lab/types';
import { CLI, hasTool, privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();

function runLabs(args: string[]): Map<string, LabResult> {
  const r = runCli(['run', ...args, '--json', '--out', tmpDir('stray')], { timeoutMs: 240_000 });
  expect(r.code, r.stderr).toBe(0);
  return new Map((JSON.parse(r.stdout) as LabResult[]).map((x) => [x.lab, x]));
}

const verdicts = (r: LabResult): Record<string, string> => Object.fromEntries(r.claims.map((c) => [c.id, c.verdict]));
const obs = (r: LabResult, v: string): Record<string, unknown> => r.variants.find((x) => x.name === v)!.observations;

describe.skipIf(!run)('labs 11–15 on this kernel', () => {
  let res: Map<string, LabResult>;
  beforeAll(() => {
    // lab 11 alone: its first incarnation must outrun the kernel's ISN clock (about 15.6 MB/s)
    res = new Map([...runLabs(['11']), ...runLabs(['12', '13', '14', '15', '--set', 'burst=20', '--set', 'connections=200'])]);
  }, 250_000);

  it('11: with TIME_WAIT skipped, the old "BBBB" is read as the new connection\'s data; TIME_WAIT blocks the reuse', () => {
    const r = res.get('11')!;
    expect(verdicts(r)).toEqual({ C13: 'holds', C14: 'holds', T8: 'holds' });
    expect(obs(r, 'paws-with-timestamps').kernelRead).toBe('NEW!');
    for (const v of ['linger-abort', 'no-tw-buckets', 'peer-time-wait-short']) expect(obs(r, v).kernelRead, v).toBe('BBBB');
    expect(obs(r, 'with-time-wait').opened).toBe(false);
    expect(r.conclusion.join('\n')).toContain('the application reading the new connection got "BBBB"');
  });

  it('11: twlab show marks the old segment as stray in the new incarnation', () => {
    const dir = tmpDir('show11');
    const run11 = runCli(['run', '11', '--out', dir], { timeoutMs: 120_000 });
    expect(run11.code, run11.stderr).toBe(0);
    const ladder = spawnSync(process.execPath, [CLI, 'show', '11', '--out', dir], { encoding: 'utf8', maxBuffer: 256 << 20 });
    expect(ladder.status, ladder.stderr).toBe(0);
    // the ladder keeps the stray segment (long uneventful runs are condensed) and marks it
    // three skip variants, and the PAWS run (where the stray also carries an old timestamp)
    expect(ladder.stdout.split('\n').filter((l) => l.includes('STRAY') && l.includes('len=4')).length).toBe(4);
    expect(ladder.stdout).toMatch(/old timestamp \(PAWS\), STRAY|STRAY.*old timestamp/);
    const show = spawnSync(process.execPath, [CLI, 'show', '11', '--list', '--out', dir], { encoding: 'utf8', maxBuffer: 256 << 20 });
    expect(show.status, show.stderr).toBe(0);
    // the replayed data segment, in each variant that reached a second incarnation (the control never opened one;
    // there the TIME_WAIT's own ACK, from the old sequence space, may be marked too)
    const strayData = show.stdout.split('\n').filter((l) => l.includes('STRAY') && l.includes('len=4'));
    expect(strayData.length).toBe(4);
    for (const l of strayData) expect(l).toMatch(/P→K .* len=4 \(incarnation 2\) STRAY: a segment of incarnation 1/);
  }, 150_000);

  it('12: a higher sequence number or a newer timestamp gets a SYN into TIME_WAIT; the new ISN is old SND.NXT + 65537', () => {
    const r = res.get('12')!;
    expect(verdicts(r)).toEqual({ T9: 'holds', T10: 'holds' });
    expect(obs(r, 'seq-above').newIssMinusOldSndNxt).toBe(65537);
    expect(obs(r, 'seq-below-no-ts').accepted).toBe(false);
  });

  it('13: an in-window RST kills TIME_WAIT (the port is free at once) unless tcp_rfc1337=1', () => {
    const r = res.get('13')!;
    expect(verdicts(r)).toEqual({ T11: 'holds' });
    expect(obs(r, 'rfc1337-0')).toMatchObject({ timeWaitAfterRst: false, rebindWithoutFlags: 'OK' });
    expect(obs(r, 'rfc1337-1')).toMatchObject({ timeWaitAfterRst: true, rebindWithoutFlags: 'EADDRINUSE' });
  });

  it('14: challenge ACKs for in-window RST, SYN and ACK beyond SND.NXT; rate-limited per socket', () => {
    const r = res.get('14')!;
    expect(verdicts(r)).toEqual({ T12: 'holds', T13: 'holds', T14: 'holds' });
    const rate = obs(r, 'rate-limit');
    expect(rate.challengeAcks as number).toBeLessThan(rate.sent as number);
  });

  it('15: SO_REUSEPORT spreads connections and datagrams evenly; another uid may not join', () => {
    const r = res.get('15')!;
    expect(verdicts(r)).toEqual({ C10: 'holds', C9: 'holds' });
    expect((obs(r, 'tcp-connections').counts as number[]).reduce((a, b) => a + b, 0)).toBe(200);
  });

  it('flipping timestamps, rfc1337 and the ISN placement flips what is observed', () => {
    const flipped = runLabs(['11', '13', '--set', 'timestamps=on', '--set', 'rfc1337=1']);
    const r11 = flipped.get('11')!;
    expect(verdicts(r11)).toMatchObject({ C13: 'does not hold', T8: 'holds' });
    for (const v of ['linger-abort', 'no-tw-buckets', 'peer-time-wait-short']) expect(obs(r11, v).kernelRead, v).toBe('NEW!');
    // rfc1337=1 is now the main variant: its TIME_WAIT survives the RST
    expect(flipped.get('13')!.variants[0]!.name).toBe('rfc1337-1');
    expect(flipped.get('13')!.variants[0]!.observations.timeWaitAfterRst).toBe(true);
    const far = runLabs(['11', '--set', 'isn=far']).get('11')!;
    expect(obs(far, 'linger-abort').kernelRead).toBe('NEW!');
    expect(verdicts(far).C13).toBe('does not hold');
  }, 250_000);

  it.skipIf(!hasTool('tshark') && !process.env.CI)('their captures open in tshark without malformed frames', () => {
    const dir = tmpDir('stray-tshark');
    const r = runCli(['run', '13', '14', '--out', dir], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['13-time-wait-assassination/rfc1337-0.pcap', '14-challenge-ack/probes.pcap']) {
      const t = spawnSync('tshark', ['-r', path.join(dir, f), '-Y', '_ws.malformed', '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' });
      expect(t.status, t.stderr).toBe(0);
      expect(t.stdout.trim(), f).toBe('');
    }
  }, 150_000);
});
