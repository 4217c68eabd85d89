// FreeBSD's TCP/IP stack (F-Stack 1.25, FreeBSD 13.0's netinet over DPDK): building it (a missing
// or broken source is one line and leaves nothing in the cache), and our helper answering as
// FreeBSD's own code answers — errno names, TIME_WAIT in net.inet.tcp.pcblist, SO_LINGER {1,0}'s
// reset — plus what F-Stack does that stock FreeBSD does not, measured.
//
// The stack is built once per machine (.ci/run builds it before the tests; here it is reused from
// ~/.cache/twlab/freebsd or built from ../shared/freebsd/ when the cache has none).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StackHelper, type Done } from '../src/host/backend/stack-helper';
import { cachedStack, ensureHelper, ensureStack, FSTACK, type FreebsdStack } from '../src/kernels/freebsd';
import type { LabResult } from '../src/lab/api/types';
import type { Round } from '../labs/14-challenge-ack';
import { CLI, privileged, ROOT, removeTmpDirs, tmpDir } from './helpers';

afterAll(removeTmpDirs);

/** F-Stack's pinned source on this machine: $TWLAB_FREEBSD_SRC, or ../shared/freebsd/ beside the checkout. */
function pinnedSource(): string | undefined {
  if (process.env.TWLAB_FREEBSD_SRC) return process.env.TWLAB_FREEBSD_SRC;
  for (const up of ['..', path.join('..', '..')]) {
    const p = path.resolve(ROOT, up, 'shared', 'freebsd', 'f-stack-5cb586b.tar.xz');
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

/** Runs `fn` with these environment variables set (and the old values back after). */
async function withEnv<T>(env: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const old: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    old[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** What a failed build left in a cache folder: anything but a kept build log is half-built. */
function leftovers(cache: string): string[] {
  return fs.existsSync(cache) ? fs.readdirSync(cache).filter((n) => !/^build-[0-9a-f]{12}\.log$/.test(n)) : [];
}

describe('building FreeBSD’s stack: a bad source is one line, and nothing half-built is cached', () => {
  it('a source that does not exist', async () => {
    const cache = tmpDir('fbsd-cache-');
    const err = await withEnv({ TWLAB_FREEBSD_CACHE: cache, TWLAB_FREEBSD_SRC: '/nonexistent/f-stack.tar.xz' }, () =>
      ensureStack().then(
        () => null,
        (e: Error) => e,
      ),
    );
    expect(err?.message).toMatch(/^TWLAB_FREEBSD_SRC=\/nonexistent\/f-stack\.tar\.xz: no such file or folder; fix: /);
    expect(err?.message).not.toContain('\n');
    expect(leftovers(cache)).toEqual([]);
  });

  it('from the command line: one line, exit 2, no evidence folder and nothing cached', () => {
    const cache = tmpDir('fbsd-cache-');
    const out = path.join(tmpDir('fbsd-out-'), 'evidence');
    const r = spawnSync(process.execPath, [CLI, 'run', '01', '--kernel', 'freebsd', '--out', out], {
      encoding: 'utf8',
      env: { ...process.env, TWLAB_FREEBSD_CACHE: cache, TWLAB_FREEBSD_SRC: '/nonexistent/f-stack' },
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^twlab: TWLAB_FREEBSD_SRC=\/nonexistent\/f-stack: no such file or folder; fix: /),
    ]);
    expect(fs.existsSync(out)).toBe(false);
    expect(leftovers(cache)).toEqual([]);
  });

  it('an archive cut short (tar fails half-way)', async () => {
    const src = pinnedSource();
    const dir = tmpDir('fbsd-src-');
    const cut = path.join(dir, 'f-stack-cut.tar.xz');
    if (src && fs.statSync(src).isFile()) fs.writeFileSync(cut, fs.readFileSync(src).subarray(0, 3 << 20));
    else fs.writeFileSync(cut, Buffer.from('not an xz archive at all'));
    const cache = tmpDir('fbsd-cache-');
    const err = await withEnv({ TWLAB_FREEBSD_CACHE: cache, TWLAB_FREEBSD_SRC: cut }, () =>
      ensureStack().then(
        () => null,
        (e: Error) => e,
      ),
    );
    expect(err?.message).toMatch(/^unpacking .*f-stack-cut\.tar\.xz failed \(exit \d+\): .* — full log: /);
    expect(err?.message).not.toContain('\n');
    expect(leftovers(cache)).toEqual([]);
  });

  it('a folder that is not F-Stack', async () => {
    const dir = tmpDir('fbsd-src-');
    fs.writeFileSync(path.join(dir, 'VERSION'), '1.25\n');
    const cache = tmpDir('fbsd-cache-');
    const err = await withEnv({ TWLAB_FREEBSD_CACHE: cache, TWLAB_FREEBSD_SRC: dir }, () =>
      ensureStack().then(
        () => null,
        (e: Error) => e,
      ),
    );
    expect(err?.message).toMatch(/is not F-Stack's source \(no lib\/ff_api\.h, /);
    expect(leftovers(cache)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------- the helper

let stack: FreebsdStack | undefined;
let helper: string | undefined;
let why = '';

beforeAll(async () => {
  stack = cachedStack();
  if (!stack) {
    const src = pinnedSource();
    if (!src) {
      why = `FreeBSD's stack is not built and no source was found (set TWLAB_FREEBSD_SRC to F-Stack at ${FSTACK.commit.slice(0, 7)})`;
      if (process.env.CI) throw new Error(why);
      return;
    }
    stack = await withEnv({ TWLAB_FREEBSD_SRC: src }, () => ensureStack((s) => console.log(`freebsd: ${s}`)));
  }
  helper = await ensureHelper(stack);
}, 3_600_000);

/** The helper, booted; closed after the test. */
function boot(env: Record<string, string> = {}): StackHelper {
  const h = StackHelper.start(helper!, env);
  booted.push(h);
  return h;
}
const booted: StackHelper[] = [];
afterAll(() => {
  for (const h of booted) h.close();
});

/** A synchronous call that must be answered `ok`: its ret and errno. */
function ok(
  h: StackHelper,
  op: string,
  args: Record<string, string | number> = {},
): { ret: number; errno: string | null; kv: Record<string, string>; data: Buffer } {
  const r = h.call(op, args);
  if (r.kind !== 'ok') throw new Error(`${op}: ${r.kind} ${r.what}`);
  return r;
}

async function done(h: StackHelper, op: string, args: Record<string, string | number>, data?: Uint8Array): Promise<Done> {
  const r = await h.callAsync(op, args, data);
  if ('kind' in r) throw new Error(`${op}: missing ${r.what}`);
  return r;
}

function tcp(h: StackHelper, family = 'inet'): number {
  const s = ok(h, 'socket', { family, type: 'stream' });
  expect(s.ret).toBeGreaterThanOrEqual(0);
  return s.ret;
}

/** A connected pair over 127.0.0.1 (both FreeBSD sockets): [client, accepted] */
async function pair(h: StackHelper, port: number): Promise<{ client: number; server: number; listener: number; clientPort: number }> {
  const listener = tcp(h);
  expect(ok(h, 'bind', { fd: listener, addr: '127.0.0.1', port }).ret).toBe(0);
  expect(ok(h, 'listen', { fd: listener, backlog: 8 }).ret).toBe(0);
  const client = tcp(h);
  expect((await done(h, 'connect', { fd: client, addr: '127.0.0.1', port })).ret).toBe(0);
  const a = await done(h, 'accept', { fd: listener, timeout_ms: 5000 });
  expect(a.ret).toBeGreaterThanOrEqual(0);
  return { client, server: a.ret, listener, clientPort: Number(a.kv.port) };
}

function table(h: StackHelper): Array<Record<string, string>> {
  const t = ok(h, 'table');
  return t.data
    .toString('latin1')
    .split('\n')
    .filter(Boolean)
    .map((line) => Object.fromEntries(line.split(' ').map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)])));
}

function counters(h: StackHelper): Record<string, number> {
  return Object.fromEntries(
    ok(h, 'counters')
      .data.toString('latin1')
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.split(' ')[0]!, Number(l.split(' ')[1])]),
  );
}

describe('the FreeBSD helper answers as FreeBSD 13.0’s code does', () => {
  it('boots with no device and no privilege, and says which stack it is', (ctx) => {
    if (!helper) ctx.skip(why);
    const h = boot();
    expect(h.ready).toMatchObject({
      os: 'FreeBSD',
      release: '13.0',
      version: 'FreeBSD 13.0 network stack (F-Stack 1.25)',
      fstack: '1.25',
      procs: '1',
      wire: 'none',
    });
    expect(h.ready.freebsd_version).toBe('1300139');
  });

  it('FreeBSD’s defaults, not F-Stack’s sample config: MSL 30 s, no FIN_WAIT_2 recycling, no blackholes', (ctx) => {
    if (!helper) ctx.skip(why);
    const h = boot();
    const get = (name: string): string | undefined => ok(h, 'sysctl_get', { name }).kv.value;
    expect(get('net.inet.tcp.msl')).toBe('30000');
    expect(get('net.inet.tcp.fast_finwait2_recycle')).toBe('0');
    expect(get('net.inet.tcp.finwait2_timeout')).toBe('60000');
    expect(get('net.inet.tcp.blackhole')).toBe('0');
    expect(get('net.inet.udp.blackhole')).toBe('0');
    expect(get('net.inet6.ip6.v6only')).toBe('1'); // FreeBSD's IPv6 sockets are V6ONLY unless told
    expect(ok(h, 'sysctl_get', { name: 'net.inet.tcp.no_such_knob' })).toMatchObject({ ret: -1, errno: 'ENOENT' });
    expect(ok(h, 'sysctl_set', { name: 'net.inet.tcp.msl', value: '1000' }).ret).toBe(0);
    expect(get('net.inet.tcp.msl')).toBe('1000');
  });

  it('bind() errnos by name: the wildcard holds the port unless the newcomer sets SO_REUSEADDR; exact duplicates need SO_REUSEPORT', (ctx) => {
    if (!helper) ctx.skip(why);
    const h = boot();
    expect(ok(h, 'if_addr', { if: 'f-stack-0', addr: '198.51.100.1', prefix: 24 }).ret).toBe(0);
    const a = tcp(h);
    expect(ok(h, 'bind', { fd: a, addr: '0.0.0.0', port: 20000 }).ret).toBe(0);
    const b = tcp(h);
    expect(ok(h, 'bind', { fd: b, addr: '192.0.2.1', port: 20000 })).toMatchObject({ ret: -1, errno: 'EADDRINUSE' });
    // BSD: SO_REUSEADDR on the newcomer alone lets a specific address share a wildcard's port
    expect(ok(h, 'setsockopt', { fd: b, opt: 'SO_REUSEADDR', value: 1 }).ret).toBe(0);
    expect(ok(h, 'getsockopt', { fd: b, opt: 'SO_REUSEADDR' }).kv.value).toBe('1');
    expect(ok(h, 'bind', { fd: b, addr: '192.0.2.1', port: 20000 }).ret).toBe(0);
    // the same address and port twice: SO_REUSEADDR on both is not enough for TCP
    const c = tcp(h);
    expect(ok(h, 'setsockopt', { fd: c, opt: 'SO_REUSEADDR', value: 1 }).ret).toBe(0);
    expect(ok(h, 'bind', { fd: c, addr: '192.0.2.1', port: 20000 })).toMatchObject({ ret: -1, errno: 'EADDRINUSE' });
    // … SO_REUSEPORT on both is
    const d = tcp(h);
    const e = tcp(h);
    for (const fd of [d, e]) expect(ok(h, 'setsockopt', { fd, opt: 'SO_REUSEPORT', value: 1 }).ret).toBe(0);
    expect(ok(h, 'bind', { fd: d, addr: '198.51.100.1', port: 20001 }).ret).toBe(0);
    expect(ok(h, 'bind', { fd: e, addr: '198.51.100.1', port: 20001 }).ret).toBe(0);
    // an address the stack does not have; a descriptor that is not there
    expect(ok(h, 'bind', { fd: tcp(h), addr: '203.0.113.9', port: 20002 })).toMatchObject({ ret: -1, errno: 'EADDRNOTAVAIL' });
    expect(ok(h, 'bind', { fd: 99999, addr: '0.0.0.0', port: 20003 })).toMatchObject({ ret: -1, errno: 'EBADF' });
    // Linux's own knob is missing, not faked
    expect(h.call('setsockopt', { fd: a, opt: 'IP_LOCAL_PORT_RANGE', value: '41000,41000' })).toEqual({
      kind: 'missing',
      what: 'IP_LOCAL_PORT_RANGE',
    });
  });

  it('the side that closes first holds TIME_WAIT, and net.inet.tcp.pcblist shows it', async (ctx) => {
    if (!helper) ctx.skip(why);
    const h = boot();
    const p = await pair(h, 30000);
    const sent = await done(h, 'send', { fd: p.client }, Buffer.from('hello'));
    expect(sent.ret).toBe(5);
    const got = await done(h, 'recv', { fd: p.server, max: 100, timeout_ms: 5000 });
    expect(got.data.toString()).toBe('hello');
    expect(ok(h, 'close', { fd: p.client }).ret).toBe(0);
    const eof = await done(h, 'recv', { fd: p.server, max: 100, timeout_ms: 5000 });
    expect(eof.ret).toBe(0); // the client's FIN
    expect(ok(h, 'close', { fd: p.server }).ret).toBe(0);
    let tw: Record<string, string> | undefined;
    for (let i = 0; i < 200 && !tw; i++) {
      tw = table(h).find((e) => e.state === 'TIME_WAIT');
      if (!tw) await new Promise((r) => setTimeout(r, 10));
    }
    expect(tw).toMatchObject({
      family: 'inet',
      state: 'TIME_WAIT',
      laddr: '127.0.0.1',
      lport: String(p.clientPort),
      raddr: '127.0.0.1',
      rport: '30000',
    });
    expect(tw?.timer_ms).toBeUndefined(); // FreeBSD exports no TIME_WAIT timer
    expect(counters(h)['tcp.states.TIME_WAIT']).toBe(1);
    // the port stays taken: binding the four-tuple's local side again without flags
    expect(ok(h, 'bind', { fd: tcp(h), addr: '127.0.0.1', port: p.clientPort })).toMatchObject({ ret: -1, errno: 'EADDRINUSE' });
  });

  it('TIME_WAIT lasts 2×MSL on FreeBSD’s own clock (net.inet.tcp.msl), and then the entry goes', async (ctx) => {
    if (!helper) ctx.skip(why);
    const h = boot();
    expect(ok(h, 'sysctl_set', { name: 'net.inet.tcp.msl', value: '1000' }).ret).toBe(0);
    const p = await pair(h, 30003);
    expect(ok(h, 'close', { fd: p.client }).ret).toBe(0);
    expect(ok(h, 'close', { fd: p.server }).ret).toBe(0);
    const t0 = performance.now();
    let gone = -1;
    while (performance.now() - t0 < 15_000) {
      if (!table(h).some((e) => e.state === 'TIME_WAIT' && e.lport === String(p.clientPort))) {
        gone = performance.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    // never before 2 × 1 s; FreeBSD ends TIME_WAITs from tcp_slowtimo, every 500 ms (a stack
    // whose clock lost ticks would take far longer: at 1000 Hz F-Stack's did)
    expect(gone).toBeGreaterThanOrEqual(2000);
  });

  it('SO_LINGER {1,0}: close() resets the connection — the peer reads ECONNRESET, no TIME_WAIT', async (ctx) => {
    if (!helper) ctx.skip(why);
    const h = boot();
    const p = await pair(h, 30001);
    expect(ok(h, 'setsockopt', { fd: p.client, opt: 'SO_LINGER', value: '1,0' }).ret).toBe(0);
    expect(ok(h, 'getsockopt', { fd: p.client, opt: 'SO_LINGER' }).kv.value).toBe('1,0');
    const drops = counters(h)['tcp.drops']!;
    expect(ok(h, 'close', { fd: p.client }).ret).toBe(0);
    const r = await done(h, 'recv', { fd: p.server, max: 100, timeout_ms: 5000 });
    expect(r).toMatchObject({ ret: -1, errno: 'ECONNRESET' });
    expect(table(h).filter((e) => e.state === 'TIME_WAIT')).toEqual([]);
    // both ends are this stack's: the closer's tcp_drop() and the receiver's RST each count one
    expect(counters(h)['tcp.drops']).toBe(drops + 2);
  });

  it('where F-Stack is not stock FreeBSD, measured: bind(port 0) assigns no port; a lingering close() cannot wait; one credential', async (ctx) => {
    if (!helper) ctx.skip(why);
    const h = boot();
    const s = tcp(h);
    expect(ok(h, 'bind', { fd: s, addr: '127.0.0.1', port: 0 }).ret).toBe(0);
    expect(ok(h, 'getsockname', { fd: s })).toMatchObject({ ret: 0, kv: { addr: '127.0.0.1', port: '0' } });
    const p = await pair(h, 30002);
    expect(ok(h, 'setsockopt', { fd: p.client, opt: 'SO_LINGER', value: '1,5' }).ret).toBe(0);
    const closed = await done(h, 'close', { fd: p.client, async: 1 });
    // stock FreeBSD would sleep in soclose() up to 5 s; F-Stack's tsleep() fails at once
    expect(closed).toMatchObject({ ret: -1, errno: 'EPERM' });
    expect(closed.elapsedMs).toBeLessThan(1000);
    expect(h.call('proc_new', { uid: 65534, gid: 65534 })).toEqual({ kind: 'missing', what: 'proc_new' });
    const proc = ok(h, 'proc_new').ret;
    expect(proc).toBeGreaterThan(1);
    const theirs = ok(h, 'socket', { family: 'inet', type: 'stream', proc }).ret;
    expect(ok(h, 'bind', { fd: theirs, addr: '0.0.0.0', port: 20010 })).toMatchObject({ ret: -1, errno: 'EBADF' }); // not process 1's
    expect(ok(h, 'bind', { fd: theirs, addr: '0.0.0.0', port: 20010, proc }).ret).toBe(0);
  });

  it('leaves no process behind', (ctx) => {
    if (!helper) ctx.skip(why);
    const h = boot();
    const pid = h.pid!;
    h.close();
    for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8')); i++)
      spawnSync('sleep', ['0.02']);
    expect(!fs.existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))).toBe(true);
  });
});

describe('lab 01 end to end on FreeBSD (--kernel freebsd)', () => {
  it('every pairing it can make carries FreeBSD’s errno; the other-user cells are not tested, naming F-Stack’s one credential', (ctx) => {
    if (!helper) ctx.skip(why);
    if (!privileged()) ctx.skip('needs root: labs run in a private network namespace');
    const out = tmpDir('fbsd-out-');
    // (6,176 cells: more JSON than runCli's default buffer holds)
    const r = spawnSync(process.execPath, [CLI, 'run', '01', '--kernel', 'freebsd', '--json', '--out', out], {
      encoding: 'utf8',
      timeout: 600_000,
      maxBuffer: 1 << 28,
    });
    expect(r.status, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout) as Array<
      LabResult & { variants: Array<{ observations: { cells: Array<Record<string, unknown>> } }> }
    >;
    expect(results).toHaveLength(1);
    const lab = results[0]!;
    expect(lab.kernel).toBe('FreeBSD 13.0 network stack (F-Stack 1.25)');
    expect(lab.system).toMatchObject({ os: 'FreeBSD', release: '13.0' });
    expect(fs.existsSync(path.join(out, 'freebsd-13.0', '01-bind-matrix', 'result.json'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'freebsd-13.0', 'kernel.json'), 'utf8'))).toMatchObject({
      release: lab.kernel,
      accel: 'stack',
    });
    const cells = lab.variants[0]!.observations.cells;
    const same = cells.filter((c) => c.uidB === 'same' && c.setupA === 'OK');
    const other = cells.filter((c) => c.uidB === 'other');
    expect(same.length).toBeGreaterThan(2000);
    for (const c of same) expect(c.result).toMatch(/^(OK|E[A-Z]+)$/);
    expect(other.length).toBe(cells.length - cells.filter((c) => c.uidB === 'same').length);
    for (const c of other) expect(c).toMatchObject({ result: 'not measured', notTested: expect.stringContaining('one credential') });
    // FreeBSD's own answers to the seed's BSD table: a wildcard bound, a specific address with
    // SO_REUSEADDR on B alone → OK; without → EADDRINUSE; SO_REUSEPORT on both → OK
    const find = (w: Record<string, unknown>): Record<string, unknown> | undefined =>
      same.find((c) =>
        Object.entries({
          proto: 'tcp',
          kind: 'bound',
          reuseaddrA: false,
          reuseaddrB: false,
          reuseportA: false,
          reuseportB: false,
          ...w,
        }).every(([k, v]) => c[k] === v),
      );
    expect(find({ addrA: '0.0.0.0', addrB: '192.0.2.1', reuseaddrB: true })?.result).toBe('OK');
    expect(find({ addrA: '0.0.0.0', addrB: '192.0.2.1' })?.result).toBe('EADDRINUSE');
    expect(find({ addrA: '192.0.2.1', addrB: '192.0.2.1', reuseportA: true, reuseportB: true })?.result).toBe('OK');
    const verdicts = Object.fromEntries(lab.claims.map((c) => [c.id, c]));
    for (const id of ['C2', 'C3', 'C5']) expect(verdicts[id]?.verdict, `${id}: ${verdicts[id]?.evidence}`).toBe('holds');
    expect(verdicts.C9).toMatchObject({ verdict: 'not tested', evidence: expect.stringContaining('priv_check') });
  }, 900_000);
});

describe('lab 14 end to end on FreeBSD (--kernel freebsd)', () => {
  it('probes carry the timestamp FreeBSD requires (RFC 7323 §3.2), and each draws a challenge ACK that FreeBSD’s own check counted', (ctx) => {
    if (!helper) ctx.skip(why);
    if (!privileged()) ctx.skip('needs root: labs run in a private network namespace');
    const out = tmpDir('fbsd-14-');
    const r = spawnSync(process.execPath, [CLI, 'run', '14', '--kernel', 'freebsd', '--json', '--out', out], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const [lab] = JSON.parse(r.stdout) as LabResult[];
    // FreeBSD 13.0 has no rate limit on challenge ACKs: every probe is answered, however busy the machine
    for (const id of ['T12', 'T13', 'T14'])
      expect(
        lab!.claims.find((c) => c.id === id),
        id,
      ).toMatchObject({ verdict: 'holds', trials: { agree: 5, valid: 5, excluded: 0 } });
    const rounds = lab!.variants.find((v) => v.name === 'probes')!.observations.rounds as Round[];
    expect(rounds.map((x) => [x.kind, x.counters])).toEqual([
      ['rst', [{ name: 'FreeBSD.tcp.badrst', change: 5 }]],
      ['syn', [{ name: 'FreeBSD.tcp.badsyn', change: 5 }]],
      ['ack', [{ name: 'FreeBSD.tcp.rcvacktoomuch', change: 5 }]],
    ]);
    // in the capture (tshark): every segment of the peer carries a timestamp, the 15 probes among them
    const pcap = path.join(out, 'freebsd-13.0', '14-challenge-ack', 'probes.pcap');
    const frames = (filter: string): number => {
      const t = spawnSync('tshark', ['-r', pcap, '-Y', filter, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' });
      expect(t.status, t.stderr).toBe(0);
      return t.stdout.split('\n').filter(Boolean).length;
    };
    expect(frames('ip.src == 192.0.2.2 && (tcp.flags.reset == 1 || tcp.flags == 0x002 || tcp.len == 4)')).toBe(15);
    expect(frames('ip.src == 192.0.2.2 && !tcp.options.timestamp.tsval')).toBe(0);
  }, 600_000);
});
