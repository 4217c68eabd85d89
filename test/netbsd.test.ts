// NetBSD's TCP/IP stack as the system under test (--kernel netbsd): the helper's protocol
// pieces in memory; the helper against NetBSD's own kernel (errno names by NetBSD's numbering, a
// TIME_WAIT in its pcb list, sysctls, process contexts, a knob it lacks); labs 01, 05 and 13 on
// NetBSD and on the host end to end (results, captures, verdicts, the index's NetBSD column);
// and a missing or broken source: one line, nothing half-built in the cache.
//
// The stack is built on first use from the pinned sources (TWLAB_NETBSD_SRC, else ../shared/netbsd
// beside the checkout) into the cache (TWLAB_NETBSD_CACHE, else ~/.cache/twlab/netbsd); later
// runs reuse it. .ci/run builds it before the tests start.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPcap } from '../src/capture/pcap';
import { parseIp } from '../src/wire/ip';
import { parseTcp } from '../src/wire/tcp';
import { helperBackend, parseTable } from '../src/host/backend/helper-backend';
import { NETBSD_KNOBS } from '../src/host/backend/knobs';
import { decodeValue, encodeValue, StackHelper } from '../src/host/backend/stack-helper';
import { KnobMissingError } from '../src/host/backend/types';
import { ensureNetbsd, type NetbsdStack } from '../src/kernels/netbsd';
import { parseKernelList } from '../src/kernels/debian';
import { claimById, inScope } from '../src/lab/api/claims';
import { decide } from '../src/lab/api/verdict';
import type { LabResult } from '../src/lab/api/types';
import { pidsMatching, privileged, removeTmpDirs, ROOT, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const SOURCE =
  process.env.TWLAB_NETBSD_SRC ??
  [path.resolve(ROOT, '..', 'shared', 'netbsd'), path.resolve(ROOT, '..', '..', 'shared', 'netbsd')].find((d) => fs.existsSync(d));
if (!SOURCE && process.env.CI)
  throw new Error('the pinned NetBSD sources are not at ../shared/netbsd (or TWLAB_NETBSD_SRC): the NetBSD tests must run in CI');
/** a mark in the environment of this file's runs: helpers of other runs on a shared machine are not ours to count */
const RUN_MARK = `TWLAB_TEST_RUN=netbsd-${process.pid}-${Date.now()}`;
const ENV: Record<string, string> = { ...(SOURCE ? { TWLAB_NETBSD_SRC: SOURCE } : {}), [RUN_MARK.split('=')[0]!]: RUN_MARK.split('=')[1]! };

/** Helper processes started by this file's runs (their environment carries RUN_MARK). */
function ourHelpers(): number[] {
  return pidsMatching('twlab-netbsd-helper').filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(RUN_MARK);
    } catch {
      return false; // gone meanwhile
    }
  });
}
const NETBSD = { os: 'NetBSD', release: '7.99.34' };

describe('the helper protocol and the NetBSD mapping, in memory', () => {
  it('values cross percent-encoded, and come back the same', () => {
    for (const v of ['NetBSD 7.99.34 (RUMP-ROAST)', '1,0', '2001:db8::1', 'a=b c%d', 'ünï']) expect(decodeValue(encodeValue(v))).toBe(v);
    expect(encodeValue('NetBSD 7.99.34')).toBe('NetBSD%207.99.34');
    expect(encodeValue('a=b')).toBe('a%3Db');
  });

  it('a pcb list line becomes a socket table entry; its unknown timer stays unknown, a control block no connection uses is left out', () => {
    const t = parseTable(
      'family=inet state=TIME_WAIT laddr=192.0.2.1 lport=80 raddr=192.0.2.2 rport=41000 sndq=0 rcvq=0\n' +
        'family=inet6 state=LISTEN laddr=2001:db8::1 lport=80 raddr=:: rport=0 sndq=0 rcvq=0\n' +
        'family=inet state=CLOSE laddr=0.0.0.0 lport=0 raddr=0.0.0.0 rport=0 sndq=0 rcvq=0\n',
    );
    expect(t).toHaveLength(2);
    expect(t[0]).toMatchObject({
      family: 'ipv4',
      state: 'TIME_WAIT',
      local: { address: '192.0.2.1', port: 80 },
      remote: { address: '192.0.2.2', port: 41000 },
      timer: 'unknown',
      timerMs: null,
    });
    expect(t[1]).toMatchObject({ family: 'ipv6', state: 'LISTEN' });
  });

  it('--kernel netbsd and all', () => {
    expect(parseKernelList('netbsd,host')).toEqual([{ kind: 'netbsd' }, { kind: 'host' }]);
    expect(parseKernelList('all')).toContainEqual({ kind: 'netbsd' });
  });

  it('on NetBSD a BSD claim is judged on its home ground, a Linux claim differs by OS', () => {
    expect(inScope(['BSD'], NETBSD)).toBe(true);
    expect(inScope(['Linux >= 3.9'], NETBSD)).toBe(false);
    expect(inScope(['any'], NETBSD)).toBe(true);
    expect(decide(claimById('C4'), { agrees: false, evidence: 'e' }, NETBSD).verdict).toBe('does not hold');
    expect(decide(claimById('C4'), { agrees: true, evidence: 'e' }, NETBSD).verdict).toBe('holds');
    const t2 = decide(claimById('T2'), { agrees: false, evidence: 'e' }, NETBSD);
    expect(t2.verdict).toBe('differs by OS');
    expect(t2.evidence).toContain('this is NetBSD 7.99.34');
  });

  it('every Linux sysctl mapped to NetBSD names a NetBSD knob; a missing one says why', () => {
    for (const [linux, m] of Object.entries(NETBSD_KNOBS.sysctls)) {
      expect(linux).toMatch(/^net\./);
      if ('missing' in m) expect(m.missing.length).toBeGreaterThan(10);
      else expect(m.name).toMatch(/^(net\.inet6?|kern)\./);
    }
  });
});

describe("NetBSD's stack, built from the pinned sources", () => {
  let stack: NetbsdStack;
  beforeAll(async () => {
    if (SOURCE) process.env.TWLAB_NETBSD_SRC ??= SOURCE;
    stack = await ensureNetbsd();
  }, 45 * 60_000);

  describe("the helper against NetBSD's own kernel", () => {
    let h: StackHelper;
    beforeAll(() => {
      h = StackHelper.start(stack.helper);
    });
    afterAll(() => h?.close());

    const ok = (
      op: string,
      args: Record<string, string | number> = {},
    ): { ret: number; errno: string | null; kv: Record<string, string> } => {
      const r = h.call(op, args);
      if (r.kind !== 'ok') throw new Error(`${op}: ${r.what} missing`);
      return r;
    };

    it('boots NetBSD 7.99.34 and names it', () => {
      expect(h.ready).toMatchObject({ os: 'NetBSD', release: '7.99.34' });
      expect(ok('sysctl_get', { name: 'kern.osrelease' }).kv.value).toBe('7.99.34');
      expect(stack.label).toBe('NetBSD 7.99.34 (src-netbsd 82f3a69)');
    });

    it("errnos cross by name, not by NetBSD's numbers (EADDRINUSE is 48 there, 98 on Linux)", async () => {
      const a = ok('socket', { family: 'inet', type: 'stream' }).ret;
      const b = ok('socket', { family: 'inet', type: 'stream' }).ret;
      expect(ok('bind', { fd: a, addr: '127.0.0.1', port: 7000 })).toMatchObject({ ret: 0, errno: null });
      expect(ok('bind', { fd: b, addr: '127.0.0.1', port: 7000 })).toMatchObject({ ret: -1, errno: 'EADDRINUSE' });
      expect(ok('bind', { fd: b, addr: '192.0.2.77', port: 7000 })).toMatchObject({ ret: -1, errno: 'EADDRNOTAVAIL' });
      const c = ok('socket', { family: 'inet', type: 'stream' }).ret;
      const refused = await h.callAsync('connect', { fd: c, addr: '127.0.0.1', port: 7001 });
      expect(refused).toMatchObject({ ret: -1, errno: 'ECONNREFUSED' });
      for (const fd of [a, b, c]) ok('close', { fd });
    });

    it('an option only Linux has is missing, not an errno', () => {
      const fd = ok('socket', { family: 'inet', type: 'stream' }).ret;
      expect(h.call('setsockopt', { fd, opt: 'IP_LOCAL_PORT_RANGE', value: '41000,41000' })).toEqual({
        kind: 'missing',
        what: 'IP_LOCAL_PORT_RANGE',
      });
      expect(ok('setsockopt', { fd, opt: 'SO_LINGER', value: '1,0' }).ret).toBe(0);
      expect(ok('getsockopt', { fd, opt: 'SO_LINGER' }).kv.value).toBe('1,0');
      ok('close', { fd });
    });

    it("the side that closes first holds TIME_WAIT, and NetBSD's pcb list shows it", async () => {
      const l = ok('socket', { family: 'inet', type: 'stream' }).ret;
      ok('bind', { fd: l, addr: '127.0.0.1', port: 7100 });
      ok('listen', { fd: l, backlog: 4 });
      const c = ok('socket', { family: 'inet', type: 'stream' }).ret;
      const accepted = h.callAsync('accept', { fd: l, timeout_ms: 5000 });
      expect(await h.callAsync('connect', { fd: c, addr: '127.0.0.1', port: 7100 })).toMatchObject({ ret: 0 });
      const s = await accepted;
      expect(s).toMatchObject({ errno: null });
      const client = ok('getsockname', { fd: c }).kv;
      ok('close', { fd: c }); // the client closes first
      const server = (s as { ret: number }).ret;
      expect(await h.callAsync('recv', { fd: server, max: 10, timeout_ms: 5000 })).toMatchObject({ ret: 0 }); // end of file
      ok('close', { fd: server });
      const table = h.call('table');
      const entries = table.kind === 'ok' ? parseTable(table.data.toString()) : [];
      const tw = entries.filter((e) => e.state === 'TIME_WAIT');
      expect(tw).toHaveLength(1);
      expect(tw[0]).toMatchObject({ local: { address: '127.0.0.1', port: Number(client.port) }, remote: { port: 7100 } });
      ok('close', { fd: l });
    });

    it("sysctls by NetBSD's names: read, set, an unknown one is ENOENT; Linux names map or are missing", () => {
      expect(Number(ok('sysctl_get', { name: 'net.inet.tcp.msl' }).kv.value)).toBeGreaterThan(0);
      expect(ok('sysctl_get', { name: 'net.inet.tcp.no_such_knob' })).toMatchObject({ ret: -1, errno: 'ENOENT' });
      const b = helperBackend(h, { identity: { os: 'NetBSD', release: '7.99.34', label: stack.label }, knobs: NETBSD_KNOBS });
      expect(b.writeSysctl('net.ipv4.tcp_timestamps', 0)).toBe('0');
      expect(ok('sysctl_get', { name: 'net.inet.tcp.timestamps' }).kv.value).toBe('0');
      b.writeSysctl('net.ipv4.tcp_timestamps', 1);
      expect(() => b.writeSysctl('net.ipv4.tcp_rfc1337', 1)).toThrow(KnobMissingError);
      expect(b.readSysctl('net.ipv4.tcp_max_tw_buckets')).toBeNull();
      expect(() => b.counters()['TcpExt.TWRecycled']).toThrow(/TcpExt.TWRecycled: NetBSD 7.99.34 has no equivalent/);
      expect(b.counters()['Tcp.ActiveOpens']).toBeGreaterThan(0);
    });

    it('a process of another uid holds descriptors of its own, and its exit closes them', async () => {
      const p = ok('proc_new', { uid: 65534, gid: 65534 }).ret;
      expect(p).toBeGreaterThan(1);
      const fd = ok('socket', { family: 'inet', type: 'stream', proc: p }).ret;
      expect(ok('bind', { fd, addr: '127.0.0.1', port: 7200, proc: p }).ret).toBe(0);
      expect(ok('listen', { fd, backlog: 1, proc: p }).ret).toBe(0);
      // a port below 1024 needs privilege on NetBSD too
      const low = ok('socket', { family: 'inet', type: 'stream', proc: p }).ret;
      expect(ok('bind', { fd: low, addr: '127.0.0.1', port: 80, proc: p })).toMatchObject({ ret: -1, errno: 'EACCES' });
      expect(await h.callAsync('proc_exit', { proc: p })).toMatchObject({ ret: 0 });
      const table = h.call('table');
      expect(table.kind === 'ok' && parseTable(table.data.toString()).some((e) => e.local.port === 7200)).toBe(false);
    });
  });

  describe.skipIf(!privileged())('labs 01, 05 and 13 on NetBSD and on the host, side by side', () => {
    let out: string;
    let results: LabResult[];
    let stderr: string;
    // biome-ignore lint/suspicious/noDuplicateTestHooks: this describe's own hook (biome also counts the sibling describe's)
    beforeAll(() => {
      out = tmpDir('netbsd-matrix');
      const r = runCli(['run', '01', '05', '13', '--kernel', 'netbsd,host', '--json', '--out', out, '--set', 'trials=2'], {
        timeoutMs: 600_000,
        env: ENV,
      });
      stderr = r.stderr;
      expect(r.code, r.stderr).toBe(0);
      results = JSON.parse(r.stdout) as LabResult[];
    }, 660_000);

    const nb = (lab: string): LabResult => results.find((r) => r.lab === lab && r.system?.os === 'NetBSD')!;

    it('six results: each lab on NetBSD 7.99.34 and on the host', () => {
      expect(results, stderr).toHaveLength(6);
      for (const lab of ['01', '05', '13']) {
        expect(nb(lab).kernel).toBe('NetBSD 7.99.34 (src-netbsd 82f3a69)');
        expect(results.filter((r) => r.lab === lab && r.system?.os !== 'NetBSD')).toHaveLength(1);
      }
    });

    it("lab 01's NetBSD cells carry NetBSD's errno, by name, for every pairing; the seed's BSD table holds there", () => {
      const cells = nb('01').variants[0]!.observations.cells as Array<{ result: string; setupA?: string }>;
      expect(cells.length).toBeGreaterThan(1000);
      for (const c of cells) expect(c.result).toMatch(/^(OK|E[A-Z0-9]+)$/);
      expect(cells.filter((c) => c.result === 'EADDRINUSE').length).toBeGreaterThan(100);
      const v = (id: string): string => nb('01').claims.find((c) => c.id === id)!.verdict;
      expect([v('C2'), v('C3')]).toEqual(['holds', 'holds']);
      expect(v('C8')).toBe('differs by OS'); // a Linux < 3.9 claim, judged on NetBSD
    });

    it('lab 05 over the wire: NetBSD resets on close() with SO_LINGER {1,0}, in the capture', () => {
      const r = nb('05');
      expect(r.claims.find((c) => c.id === 'C11')!.verdict).toBe('holds');
      const dir = path.join(out, 'netbsd-7.99.34', '05-linger-zero');
      const rsts = readPcap(path.join(dir, 'established-idle.pcap'))
        .records.map((f) => parseIp(f.data))
        .flatMap((p) => ('kind' in p || p.ip.src !== '192.0.2.1' ? [] : [parseTcp(p.payload)]))
        .filter((t) => !('kind' in t) && t.flags.rst);
      expect(rsts.length).toBeGreaterThanOrEqual(2);
      const tshark = spawnSync('tshark', ['-r', path.join(dir, 'established-idle.pcap'), '-Y', 'tcp.flags.reset==1 && ip.src==192.0.2.1'], {
        encoding: 'utf8',
      });
      expect(tshark.status, tshark.stderr).toBe(0);
      expect(tshark.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(2);
    });

    it('a Linux knob NetBSD lacks makes the claim that needs it not tested, naming it', () => {
      const t11 = nb('13').claims.find((c) => c.id === 'T11')!;
      expect(t11.verdict).toBe('not tested');
      expect(t11.evidence).toContain('net.ipv4.tcp_rfc1337');
    });

    it('the index shows a NetBSD column, and its links work', () => {
      const index = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
      expect(index).toContain('NetBSD 7.99.34 (src-netbsd 82f3a69)');
      for (const href of [...index.matchAll(/href="(netbsd-7\.99\.34\/[^"#]+)/g)].map((m) => m[1]!))
        expect(fs.existsSync(path.join(out, href)), href).toBe(true);
      const info = JSON.parse(fs.readFileSync(path.join(out, 'netbsd-7.99.34', 'kernel.json'), 'utf8')) as { accel: string };
      expect(info.accel).toBe('stack');
    });

    it('no helper process is left behind', () => {
      expect(ourHelpers()).toEqual([]);
    });
  });
});

describe('a missing or broken NetBSD source', () => {
  it('a folder that does not exist: one line, exit 2, nothing in the cache or --out', () => {
    const dir = tmpDir('nb-missing');
    const cache = path.join(dir, 'cache');
    const out = path.join(dir, 'captures');
    const r = runCli(['run', '01', '--kernel', 'netbsd', '--out', out], {
      env: { TWLAB_NETBSD_CACHE: cache, TWLAB_NETBSD_SRC: path.join(dir, 'nowhere') },
    });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^twlab: TWLAB_NETBSD_SRC=.*nowhere: no such folder/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(cache) ? fs.readdirSync(cache) : []).toEqual([]);
  });

  it('archives that are not archives: one line, exit 2, nothing half-built in the cache', () => {
    const dir = tmpDir('nb-broken');
    const src = path.join(dir, 'src');
    const cache = path.join(dir, 'cache');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'buildrump.sh-6cccd46.tar.xz'), 'not an archive');
    fs.writeFileSync(path.join(src, 'src-netbsd-82f3a690.tar.xz'), 'not an archive either');
    const r = runCli(['kernels', '--build', 'netbsd'], { env: { TWLAB_NETBSD_CACHE: cache, TWLAB_NETBSD_SRC: src } });
    expect(r.code, r.stderr).toBe(2);
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !/^twlab: unpacking /.test(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^twlab: .*buildrump\.sh-6cccd46\.tar\.xz cannot be unpacked/);
    expect(fs.readdirSync(cache)).toEqual([]);
  });
});
