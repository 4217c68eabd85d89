// Each lab run with a parameter that makes a precondition impossible: the claims that need it
// must say "not tested", name the precondition that failed and give its measured numbers —
// never "holds" or "does not hold". All sixteen labs run at once in one namespace each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabResult } from '../src/lab/api/types';
import { privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();

// parameter → what it breaks (each name reaches every lab that declares it)
const BREAK: Array<[string, string]> = [
  ['wait=full', '02: the TIME_WAIT lifetime is promised…'],
  ['watch_s=3', '…but watched for 3 s only'],
  ['closer=client', '03: no TIME_WAIT on the server'],
  ['timestamps=off', '04: the old connections carry no timestamps (T3, T16; lab 11 has them off already)'],
  ['linger_s=5', '05: SO_LINGER {1,5}, not {1,0}'],
  ['peer_window=1048576', '06: the peer takes everything: nothing unsent when the linger time runs out'],
  ['unsent=1000', '06: (a small write)'],
  ['linger=1', '06: (a short linger)'],
  ['unread=0', '07: nothing unread at close()'],
  ['peer_fin=at-once', '08: the peer answers with its FIN, no FIN_WAIT2'],
  ['fin_timeout=2', '08: (short)'],
  ['stagger_ms=300', '09: the kernel shuts down after the peer’s FIN arrived: the FINs do not cross'],
  ['max_tw_buckets=100', '10: more buckets than connections…'],
  ['second_limit=100', '10: …for both caps'],
  ['kernel_bytes=0', '11: the old ACK cannot fall inside the new connection'],
  ['first_close=peer', '12: the kernel holds no TIME_WAIT'],
  ['rst=out-of-window', '13: the RST misses the window'],
  ['spacing_ms=100', '14: probes within the rate limit'],
  ['connections=10', '15: 2.5 connections per socket, too few for χ²'],
  ['flags=none', '16: neither socket sets a flag: the second bind() fails'],
  ['orphan_watch_s=3', '17: the orphans watched for 3 s only (wait=full comes from lab 02)'],
  ['trials=2', '(fewer trials, for speed)'],
];

describe.skipIf(!run)('a precondition that cannot be met gives "not tested", with the numbers', () => {
  let results: Map<string, LabResult>;
  beforeAll(() => {
    const r = runCli(
      [
        'run',
        '02',
        '03',
        '04',
        '05',
        '06',
        '07',
        '08',
        '09',
        '10',
        '11',
        '12',
        '13',
        '14',
        '15',
        '16',
        '17',
        '--json',
        '--out',
        tmpDir('pre'),
        ...BREAK.flatMap(([s]) => ['--set', s]),
      ],
      { timeoutMs: 180_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    results = new Map((JSON.parse(r.stdout) as LabResult[]).map((x) => [x.lab, x]));
  }, 200_000);

  const cases: Array<[string, string, RegExp]> = [
    ['02', 'T2', /every TIME_WAIT entry was watched until it went \(watch 3 s\) — \d\/\d still there after 3 s/],
    ['03', 'C4', /the old connection was in TIME_WAIT when the new bind\(\) ran — no TIME_WAIT entry in 8\/8 cells \(closer=client\)/],
    ['03', 'C17', /no TIME_WAIT entry in 8\/8 cells/],
    ['04', 'T3', /the old connection used timestamps — no timestamps on local port \d+ \(timestamps=off\)/],
    ['04', 'T16', /the old connection used timestamps — no timestamps on local port \d+ \(timestamps=off\)/],
    ['05', 'C11', /the socket had SO_LINGER \{1,0\} — \{1,5\}/],
    ['05', 'C16', /the socket had SO_LINGER \{1,0\} — \{1,5\}/],
    [
      '06',
      'C18',
      /(data was still unsent when it ran out — 0 bytes in the send queue|close\(\) blocked until the linger time \(1 s\) ran out — \d+ ms)/,
    ],
    ['07', 'T15', /data was unread in the receive queue at close\(\) — 0 bytes unread/],
    ['08', 'T5', /(the kernel sat in FIN_WAIT2|the peer sent no FIN while the kernel waited)/],
    ['09', 'T6', /the FINs crossed \(neither acknowledges the other, in the capture\) — kernel FIN #\d+ acknowledges the peer's FIN #\d+/],
    ['10', 'T7', /more connections closed first than there were free buckets — 10 connections, tcp_max_tw_buckets=100/],
    [
      '11',
      'C13',
      /the old segment's ACK fell inside the new connection — it lies [\d.]+ MB below the new ISN: the kernel's ISN grew [\d.]+ MB between the incarnations; it had sent 0.0 MB first/,
    ],
    ['11', 'C14', /without TIME_WAIT an old segment was taken for new data — 0 of 3/],
    ['12', 'T9', /the kernel held the four-tuple in TIME_WAIT when the SYN came — no TIME_WAIT entry \(first_close=peer\)/],
    ['12', 'T10', /no TIME_WAIT entry \(first_close=peer\)/],
    ['13', 'T11', /the RST reached the kernel at its RCV.NXT \(in the capture\) — RST #\d+ 10000000 beyond the kernel's RCV.NXT/],
    ['14', 'T13', /no earlier probe on this connection within tcp_invalid_ratelimit \(500 ms\) — \d+ ms after the previous one/],
    ['14', 'T14', /within tcp_invalid_ratelimit/],
    ['15', 'C10', /at least 5 connections expected per socket \(for the χ² test\) — 2.5 per socket/],
    [
      '16',
      'C21',
      /both sockets were set up: setsockopt, bind\(\) \(and listen\(\)\) returned 0 — 0\.0\.0\.0:\d+ → OK, 192\.0\.2\.1:\d+ → bind EADDRINUSE/,
    ],
    ['17', 'C25', /the orphan was watched until it went \(watch 3 s\) — still FIN_WAIT1 \(\w+ timer\) after 3 s/],
  ];
  it.each(cases)('lab %s, claim %s', (lab, id, why) => {
    const c = results.get(lab)!.claims.find((x) => x.id === id)!;
    expect(c.verdict, c.evidence).toBe('not tested');
    expect(c.evidence).toMatch(/^precondition failed/);
    expect(c.evidence).toMatch(why);
    expect(c.preconditions.length + (c.trials ? 1 : 0)).toBeGreaterThan(0);
  });

  it('what is still measurable is still judged: the first probe of lab 14, PAWS (it needs no aligned ACK), lab 15’s same-user rule and connected UDP socket', () => {
    expect(results.get('14')!.claims.find((c) => c.id === 'T12')!.verdict).toBe('holds');
    expect(results.get('11')!.claims.find((c) => c.id === 'T8')!.verdict).toBe('holds');
    expect(results.get('15')!.claims.find((c) => c.id === 'C9')!.verdict).toBe('holds');
    expect(results.get('15')!.claims.find((c) => c.id === 'C20')!.verdict).toBe('holds');
  });

  it('lab 16 without flags: the second bind() of every pair failed, whichever bound first', () => {
    for (const proto of ['udp', 'tcp']) {
      const ts = results.get('16')!.variants.find((v) => v.name === proto)!.observations.trials as Array<{
        order: string;
        wildcardSetup: string;
        specificSetup: string;
      }>;
      for (const t of ts)
        expect(
          t.order === 'wildcard first' ? [t.wildcardSetup, t.specificSetup] : [t.specificSetup, t.wildcardSetup],
          `${proto} ${t.order}`,
        ).toEqual(['OK', 'bind EADDRINUSE']);
    }
  });
});
