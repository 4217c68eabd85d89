// src/host/family.ts: which sysctls govern IPv6 TCP. The table must name every knob the labs use,
// and what it says is measured again here: each knob on AF_INET and AF_INET6 alike in a private
// namespace (test/fixtures/v6/sysctls.py), and which knobs a namespace has at all.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { governsFamily, noMeaningFor, SYSCTL_FAMILIES } from '../src/host/family';
import { hasTool, privileged, ROOT } from './helpers';

/** Every .ts file under `dir`. */
function sources(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

describe('the family table', () => {
  it("names every sysctl the labs and the knob table use (the namespace's own IPv6 address settings aside)", () => {
    const named = new Set<string>();
    for (const f of [...sources(path.join(ROOT, 'labs')), path.join(ROOT, 'src', 'host', 'backend', 'knobs.ts')]) {
      for (const m of fs.readFileSync(f, 'utf8').matchAll(/\bnet\.(?:ipv4|ipv6|core)\.[a-z0-9_]+(?:\.[a-z0-9_]+)*/g))
        if (!m[0].startsWith('net.ipv6.conf.')) named.add(m[0]);
    }
    expect(named.size).toBeGreaterThan(10);
    expect([...named].filter((n) => !SYSCTL_FAMILIES[n]).sort()).toEqual([]);
  });

  it('says which family a knob governs, and why a v6-only knob means nothing over IPv4', () => {
    expect(governsFamily('net.ipv4.tcp_rfc1337', 'ipv6')).toBe(true);
    expect(governsFamily('net.ipv4.tcp_rfc1337', 'ipv4')).toBe(true);
    expect(governsFamily('net.ipv6.bindv6only', 'ipv4')).toBe(false);
    expect(governsFamily('net.ipv4.tcp_no_such_knob', 'ipv6')).toBeNull();
    expect(noMeaningFor('net.ipv4.tcp_fin_timeout', 'ipv6')).toBeNull();
    expect(noMeaningFor('net.ipv6.bindv6only', 'ipv4')).toMatch(
      /^net\.ipv6\.bindv6only has no meaning for IPv4 TCP on Linux \(inet6_create\(\) /,
    );
    for (const [name, rule] of Object.entries(SYSCTL_FAMILIES)) {
      expect(rule.governs.length, name).toBeGreaterThan(0);
      expect(rule.why, name).toMatch(/\w+\(\)/); // names the kernel function that reads it
    }
  });
});

const run = privileged();
const python = hasTool('python3');
if (run && !python && process.env.CI) throw new Error('python3 is needed: .ci/run installs it');

describe.skipIf(!run)('the family table, measured', () => {
  it('a fresh network namespace has each per-namespace knob, and no global one', () => {
    const known = Object.keys(SYSCTL_FAMILIES).filter((n) => fs.existsSync(`/proc/sys/${n.replace(/\./g, '/')}`));
    const r = spawnSync(
      'unshare',
      ['--net', '--', 'sh', '-c', 'for n; do test -e "/proc/sys/$(echo "$n" | tr . /)" && echo "$n"; done; true', 'sh', ...known],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const inside = new Set(r.stdout.trim().split('\n'));
    for (const n of known) expect(inside.has(n), `${n} (${SYSCTL_FAMILIES[n]!.scope})`).toBe(SYSCTL_FAMILIES[n]!.scope === 'namespace');
  });

  it.skipIf(!python)(
    'each knob does over AF_INET6 what it does over AF_INET',
    () => {
      const r = spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'sh', path.join(ROOT, 'test', 'fixtures', 'v6', 'sysctls.sh')], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const m = JSON.parse(r.stdout) as Record<string, unknown>;
      const seconds = (t: unknown): number => Number(/^\(timewait,([\d.]+)(?:ms|sec),/.exec(String(t))![1]);
      for (const fam of ['v4', 'v6']) {
        // tcp_fin_timeout: the orphan's timer starts at the knob (read a moment later)
        expect(seconds(m[`fin_timeout=7 ${fam}`])).toBeGreaterThan(5);
        expect(seconds(m[`fin_timeout=7 ${fam}`])).toBeLessThanOrEqual(7);
        expect(seconds(m[`fin_timeout=33 ${fam}`])).toBeGreaterThan(30);
        expect(seconds(m[`fin_timeout=33 ${fam}`])).toBeLessThanOrEqual(33);
        // tcp_timestamps on the SYN
        expect(m[`timestamps=0 ${fam} SYN`]).toBe('no TS option');
        expect(m[`timestamps=1 ${fam} SYN`]).toBe('TS option');
        // tcp_rfc1337
        expect(m[`rfc1337=0 ${fam}: TIME_WAIT after an in-window RST`]).toBe('gone');
        expect(m[`rfc1337=1 ${fam}: TIME_WAIT after an in-window RST`]).toBe('still there');
        // tcp_invalid_ratelimit: every SYN answered (0), or counted as answered or skipped (500 ms: how many fit its window is the clock's)
        expect(m[`invalid_ratelimit=0 ${fam}: 5 SYNs into ESTABLISHED`]).toEqual({ TCPChallengeACK: 5, TCPACKSkippedChallenge: 0 });
        const limited = m[`invalid_ratelimit=500 ${fam}: 5 SYNs into ESTABLISHED`] as {
          TCPChallengeACK: number;
          TCPACKSkippedChallenge: number;
        };
        expect(limited.TCPChallengeACK + limited.TCPACKSkippedChallenge).toBe(5);
        expect(limited.TCPACKSkippedChallenge).toBeGreaterThan(0);
      }
      // tcp_tw_reuse: 2 is "loopback only", and loopback is 127.0.0.0/8 and ::1 — not the lab's documentation addresses on lo
      const reuse = Object.fromEntries(
        Object.entries(m)
          .filter(([k]) => k.startsWith('tw_reuse='))
          .map(([k, v]) => [k, String(v).startsWith('connected') ? 'connected' : v]),
      );
      expect(reuse).toEqual({
        'tw_reuse=0 v4 (192.0.2.2)': 'EADDRNOTAVAIL',
        'tw_reuse=0 v6 (2001:db8::2)': 'EADDRNOTAVAIL',
        'tw_reuse=0 v4-loopback (127.0.0.1)': 'EADDRNOTAVAIL',
        'tw_reuse=0 v6-loopback (::1)': 'EADDRNOTAVAIL',
        'tw_reuse=1 v4 (192.0.2.2)': 'connected',
        'tw_reuse=1 v6 (2001:db8::2)': 'connected',
        'tw_reuse=1 v4-loopback (127.0.0.1)': 'connected',
        'tw_reuse=1 v6-loopback (::1)': 'connected',
        'tw_reuse=2 v4 (192.0.2.2)': 'EADDRNOTAVAIL',
        'tw_reuse=2 v6 (2001:db8::2)': 'EADDRNOTAVAIL',
        'tw_reuse=2 v4-loopback (127.0.0.1)': 'connected',
        'tw_reuse=2 v6-loopback (::1)': 'connected',
      });
      // tcp_max_tw_buckets: one cap for both families — the v4 TIME_WAIT took the last place
      expect(m['max_tw_buckets=existing+1: v4 then v6 TIME_WAIT']).toEqual({
        'v4 in table': true,
        'v6 in table': false,
        TCPTimeWaitOverflow: 1,
      });
      expect((m['in this namespace'] as Record<string, string>)['net.ipv4.tcp_max_orphans']).toMatch(/^absent/);
    },
    150_000,
  );
});
