// Every lab that makes connections, over IPv6 (`--set family=ipv6`), all at once in one CLI run as
// labs.test.ts runs them over IPv4 (its fast settings): each lab's key claim asserted from what the
// kernel measured (errno, counters, the socket table, its segments), and every capture holding IPv6
// frames only. Then `family=ipv4,ipv6` on two labs: both results, their folders and the side by
// side; with a precondition that cannot be met (lab 13's RST out of the window), `not tested` in
// both families. The columns' verdict marks are checked in memory at the end.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPcap } from '../src/capture/pcap';
import type { LabResult } from '../src/lab/api/types';
import { compareClaims, renderComparisonText, type KernelColumn } from '../src/lab/report/compare';
import { privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();
const LABS = ['02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12', '13', '14', '15', '16', '17'];
const FAST = ['wait=none', 'fin_timeout=3', 'linger=2', 'connections=40', 'burst=20'];

/** The IP version of each frame of a raw-IP capture (the first nibble). */
const versions = (file: string): Set<number> => new Set(readPcap(file).records.map((r) => r.data[0]! >> 4));

describe.skipIf(!run)('labs 02–17 over IPv6', () => {
  let out: string;
  let results: Map<string, LabResult>;
  beforeAll(() => {
    out = tmpDir('ipv6');
    const r = runCli(['run', ...LABS, '--json', '--out', out, '--set', 'family=ipv6', ...FAST.flatMap((s) => ['--set', s])], {
      timeoutMs: 240_000,
    });
    expect(r.code, r.stderr).toBe(0);
    results = new Map((JSON.parse(r.stdout) as LabResult[]).map((x) => [x.lab, x]));
  }, 260_000);

  const claim = (id: string, c: string): LabResult['claims'][number] => results.get(id)!.claims.find((x) => x.id === c)!;
  const verdicts = (id: string): Record<string, string> => Object.fromEntries(results.get(id)!.claims.map((c) => [c.id, c.verdict]));
  const variant = (id: string, name: string): Record<string, unknown> =>
    results.get(id)!.variants.find((v) => v.name === name)!.observations;
  const trials = <T>(id: string, name: string): T[] => variant(id, name).trials as T[];
  const dirOf = (id: string): string => path.join(out, 'ipv6', `${id}-${results.get(id)!.slug}`);

  it('every lab ran over IPv6: result.json says so, its evidence is under ipv6/, every capture holds IPv6 frames and no IPv4', () => {
    expect([...results.keys()]).toEqual(LABS);
    for (const r of results.values()) {
      expect(r.family, r.lab).toBe('ipv6');
      expect(r.params.family, r.lab).toEqual(['ipv6']);
      expect(fs.existsSync(path.join(dirOf(r.lab), 'result.json')), r.lab).toBe(true);
      for (const v of r.variants) {
        if (!v.pcap || v.frames === 0) continue;
        expect(versions(path.join(dirOf(r.lab), v.pcap)), `${r.lab} ${v.pcap}`).toEqual(new Set([6]));
      }
      expect(
        r.variants.some((v) => v.frames > 0),
        r.lab,
      ).toBe(true);
    }
  });

  it('every claim has a verdict, or (17, not waited out) a reasoned "not tested"', () => {
    for (const r of results.values())
      for (const c of r.claims) {
        if (r.lab === '17') continue;
        expect(c.verdict, `${r.lab} ${c.id}: ${c.evidence}`).not.toBe('not tested');
      }
    expect(claim('17', 'C25').evidence).toMatch(/watched until it went/);
  });

  it('02, 08, 09: TIME_WAIT on the closer, FIN_WAIT2 for tcp_fin_timeout, CLOSING into TIME_WAIT — in the v6 table', () => {
    expect(verdicts('02')).toEqual({ T1: 'holds', T2: 'holds' });
    for (const c of trials<{ timerAtEntryMs: number }>('02', 'kernel-closes-first')) expect(c.timerAtEntryMs).toBeGreaterThan(58_000);
    expect(verdicts('08')).toEqual({ T5: 'holds' });
    for (const t of trials<{ lifetimeMs: number }>('08', 'closed-orphaned')) expect(Math.abs(t.lifetimeMs - 3000)).toBeLessThan(1500);
    expect(verdicts('09')).toEqual({ T6: 'holds' });
  });

  it('03, 04, 16: the bind and connect errnos over AF_INET6 are those of AF_INET', () => {
    const cells = variant('03', 'specific-address').cells as Array<{ oldListener: string; newSocket: string; bind: string }>;
    const at = (o: string, n: string): string[] => [
      ...new Set(cells.filter((c) => c.oldListener === o && c.newSocket === n).map((c) => c.bind)),
    ];
    expect([at('none', 'reuseaddr'), at('reuseaddr', 'reuseaddr'), at('none', 'none')]).toEqual([['EADDRINUSE'], ['OK'], ['EADDRINUSE']]);
    for (const t of trials<{ connectA: string; connectB: string }>('04', 'two-sockets-one-tuple'))
      expect(t).toMatchObject({ connectA: 'OK', connectB: 'EADDRNOTAVAIL' });
    expect(verdicts('16')).toEqual({ C21: 'holds' });
    for (const t of trials<{ addresses: object; toSpecific: object }>('16', 'tcp'))
      expect(t).toMatchObject({
        addresses: { any: '::', specific: '2001:db8::1', other: '2001:db8:1::1' },
        toSpecific: { bySpecific: 10, byWildcard: 0 },
      });
  });

  it("05, 06, 07, 17: the kernel's RSTs and FINs over IPv6, counted in its own segments and counters", () => {
    expect(verdicts('05').C11).toBe('holds');
    for (const v of ['established-idle', 'unsent-data']) {
      const sent = readPcap(path.join(dirOf('05'), `${v}.pcap`)).records.length;
      expect(sent, v).toBeGreaterThan(0);
    }
    expect(claim('05', 'C11').trials).toEqual({ agree: 10, valid: 10, excluded: 0 });
    expect(verdicts('06')).toEqual({ C12: 'differs by OS', C18: 'differs by OS' });
    for (const t of trials<{ close: { ret: number; elapsedMs: number }; peerGotEverything: boolean }>('06', 'peer-stalls')) {
      expect(t.close.ret).toBe(0);
      expect(t.close.elapsedMs).toBeGreaterThanOrEqual(1950);
      expect(t.peerGotEverything).toBe(true);
    }
    expect((variant('07', 'linger-off').counters as Record<string, number>)['TcpExt.TCPAbortOnClose']).toBe(5);
    for (const o of variant('17', 'silent-peer').orphans as Array<{ close: { ret: number }; afterClose: { state: string } }>)
      expect(o).toMatchObject({ close: { ret: 0 }, afterClose: { state: 'FIN_WAIT1' } });
  });

  it('10: the v6 TIME_WAITs beyond tcp_max_tw_buckets are skipped and counted', () => {
    expect(verdicts('10')).toEqual({ T7: 'holds' });
    const zero = variant('10', 'close-many-limit-0');
    expect(zero).toMatchObject({ timeWaitEntries: 0, skipped: 40 });
    expect((zero.counters as Record<string, number>)['TcpExt.TCPTimeWaitOverflow']).toBe(40);
  });

  it('11: the ISN clock and the old duplicate line up over IPv6 as over IPv4; TIME_WAIT blocks the reuse; PAWS drops the old one', () => {
    expect(variant('11', 'isn-clock').perSecond as number).toBeGreaterThan(1e6);
    for (const v of ['linger-abort', 'no-tw-buckets', 'peer-time-wait-short']) {
      const o = trials<{ kernelRead: string; oldAckLead: number; timeWaitBeforeSecond: boolean }>('11', v)[0]!;
      expect(o.timeWaitBeforeSecond, v).toBe(false);
      if (o.oldAckLead >= 0) expect(o.kernelRead, v).toBe('BBBB'); // lined up: the old bytes read as new data
    }
    expect(claim('11', 'T8').verdict).toBe('holds');
    for (const o of trials<{ kernelRead: string; pawsEstab: number }>('11', 'paws-with-timestamps'))
      expect(o).toMatchObject({ kernelRead: 'NEW!', pawsEstab: 1 });
    // the MTU of 65535 over IPv6: the bulk frames are as large as the link allows (40 + 20 + MSS 65475)
    const biggest = Math.max(...readPcap(path.join(dirOf('11'), 'linger-abort.pcap')).records.map((r) => r.origLength));
    expect(biggest).toBeGreaterThan(60_000);
    expect(biggest).toBeLessThanOrEqual(65_535);
  });

  it('12, 13: SYNs into a v6 TIME_WAIT, and an in-window RST killing it unless tcp_rfc1337=1', () => {
    expect(verdicts('12')).toEqual({ T9: 'holds', T10: 'holds' });
    for (const p of trials<{ newIssMinusOldSndNxt: number; accepted: boolean }>('12', 'seq-above'))
      expect(p).toMatchObject({ newIssMinusOldSndNxt: 65537, accepted: true });
    expect(verdicts('13').T11).toBe('holds');
    for (const t of trials('13', 'rfc1337-0')) expect(t).toMatchObject({ timeWaitBefore: true, timeWaitAfterRst: false });
    for (const t of trials('13', 'rfc1337-1'))
      expect(t).toMatchObject({ timeWaitBefore: true, timeWaitAfterRst: true, rebindWithoutFlags: 'EADDRINUSE' });
  });

  it("14: challenge ACKs over IPv6, rate-limited (the kernel's counters)", () => {
    expect(verdicts('14')).toEqual({ T12: 'holds', T13: 'holds', T14: 'holds' });
    const rc = variant('14', 'rate-limit').counters as Record<string, number>;
    expect(rc['TcpExt.TCPChallengeACK']).toBeGreaterThan(0);
    expect(rc['TcpExt.TCPACKSkippedChallenge']).toBeGreaterThan(0);
  });

  it('15: SO_REUSEPORT over AF_INET6 spreads connections and datagrams; another uid may not join', () => {
    expect(verdicts('15')).toEqual({ C10: 'holds', C9: 'holds', C20: 'holds' });
    const tcp = variant('15', 'tcp-connections');
    expect((tcp.counts as number[]).reduce((a, b) => a + b, 0)).toBe(40);
    expect(new Set(tcp.otherUidBinds as string[])).toEqual(new Set(['EADDRINUSE']));
    expect((variant('15', 'udp-datagrams').counts as number[]).reduce((a, b) => a + b, 0)).toBe(40);
  });
});

describe.skipIf(!run)('family=ipv4,ipv6: both results side by side', () => {
  let out: string;
  let stdout: string;
  beforeAll(() => {
    out = tmpDir('both');
    const r = runCli(['run', '05', '13', '--out', out, '--set', 'family=ipv4,ipv6', '--set', 'trials=2', '--set', 'rst=out-of-window'], {
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr).toBe(0);
    stdout = r.stdout;
  }, 130_000);

  const result = (folder: string, dir: string): LabResult =>
    JSON.parse(fs.readFileSync(path.join(out, folder, dir, 'result.json'), 'utf8')) as LabResult;

  it('each lab ran once per family, each with its own evidence folder, result.json naming its family and its captures in it', () => {
    for (const [folder, family, version] of [
      ['', 'ipv4', 4],
      ['ipv6', 'ipv6', 6],
    ] as const) {
      const r05 = result(folder, '05-linger-zero');
      expect(r05.family).toBe(family);
      expect(r05.claims.find((c) => c.id === 'C11')!.verdict).toBe('holds');
      for (const v of r05.variants) expect(versions(path.join(out, folder, '05-linger-zero', v.pcap!)), v.name).toEqual(new Set([version]));
    }
  });

  it('a precondition that fails over IPv6 gives "not tested" there, naming it with its numbers (lab 13: the RST outside the window)', () => {
    const t11 = result('ipv6', '13-time-wait-assassination').claims.find((c) => c.id === 'T11')!;
    expect(t11.verdict).toBe('not tested');
    expect(t11.evidence).toMatch(/the RST reached the kernel at its RCV.NXT \(in the capture\) — RST #\d+ 10000000 beyond/);
  });

  it('the terminal says which family each result measured, and shows the two as columns', () => {
    expect(stdout).toContain('==== 05 linger-zero over IPv6 (kernel 2001:db8::1, peer 2001:db8::2)');
    expect(stdout).toContain('==== 13 time-wait-assassination over IPv4 (kernel 192.0.2.1, peer 192.0.2.2)');
    expect(stdout).toMatch(/==== side by side: IPv4 and IPv6/);
    expect(stdout).toMatch(/claim +lab +\S+ \(host\) IPv4 +\S+ \(host\) IPv6/);
    expect(stdout).toMatch(/C11 +05 linger-zero +holds +holds/);
    expect(stdout).toMatch(/T11 +13 time-wait-assassination +not tested +not tested/);
    const index = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
    expect(index).toContain('IPv6');
    expect(index).toContain('ipv6/05-linger-zero/report.html');
  });
});

describe('the side by side of two families marks a claim whose verdict differs, as it marks kernels', () => {
  const column = (family: 'ipv4' | 'ipv6', verdict: LabResult['claims'][number]['verdict']): KernelColumn => ({
    kernel: '6.18',
    host: true,
    folder: family === 'ipv4' ? '' : 'ipv6',
    family,
    labs: new Map([
      [
        '05',
        {
          dirName: '05-linger-zero',
          result: {
            lab: '05',
            slug: 'linger-zero',
            claims: [{ id: 'C11', text: 't', verdict, evidence: 'e', preconditions: [] }],
          } as unknown as LabResult,
        },
      ],
    ]),
  });
  it('a differing verdict is marked ≠ and the summary names the families', () => {
    const cols = [column('ipv4', 'holds'), column('ipv6', 'does not hold')];
    const rows = compareClaims(cols);
    expect(rows[0]!.differs).toBe(true);
    expect(rows[0]!.cells[1]!.href).toBe('ipv6/05-linger-zero/report.html#claim-C11');
    const text = renderComparisonText(cols, rows);
    expect(text[0]).toMatch(/6\.18 \(host\) IPv4 +6\.18 \(host\) IPv6/);
    expect(text.join('\n')).toContain('≠ 1 of 1 claims differ between families');
  });
});
