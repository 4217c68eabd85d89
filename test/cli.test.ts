// The command line as a user meets it: help, list, show, doctor, and bad input.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PcapWriter } from '../src/capture/pcap';
import { emitTcpFrame } from '../src/wire/frame';
import { seq } from '../src/wire/seq';
import { flags } from '../src/wire/tcp';
import { CLI, ROOT, privileged, runCli, removeTmpDirs, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();

/** One line on stderr, nothing on stdout, no stack trace. */
function expectOneLineError(r: { code: number | null; stdout: string; stderr: string }, pattern: RegExp): void {
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^twlab: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('help and list', () => {
  it('--help names every command', () => {
    const r = runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['list', 'run', 'show', 'doctor']) expect(r.stdout).toContain(c);
  });
  it('run --help shows --set, --json and --out with its default', () => {
    const r = runCli(['run', '--help']);
    expect(r.stdout).toMatch(/--set <name=value>/);
    expect(r.stdout).toMatch(/--json/);
    expect(r.stdout).toMatch(/default: "captures"/);
  });
  it('list shows id, slug, title and what each lab shows', () => {
    const r = runCli(['list']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^01 {2}bind-matrix +The bind matrix/m);
    expect(r.stdout).toMatch(/shows: every bind\(\) pairing/);
  });
  it('list -v shows parameters with defaults, and claims', () => {
    const r = runCli(['list', '-v']);
    expect(r.stdout).toContain('--set protocols=tcp,udp');
    expect(r.stdout).toMatch(/C9: Sockets can share .*stated for Linux ≥ 3.9/);
  });
  it('list --json is JSON only', () => {
    const labs = JSON.parse(runCli(['list', '--json']).stdout) as Array<{ id: string; params: Array<{ name: string }> }>;
    expect(labs.find((l) => l.id === '01')!.params.map((p) => p.name)).toContain('addresses');
  });
});

describe('bad input: one line, non-zero exit, no stack trace, no capture written', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['an unknown lab id', ['run', '99'], /unknown lab "99"; known: 01 bind-matrix/],
    ['a --set without =', ['run', '01', '--set', 'protocols'], /--set takes name=value/],
    ['a parameter no lab declares', ['run', '01', '--set', 'nosuch=1'], /no lab in this run has a parameter "nosuch"/],
    ['a value outside the choices', ['run', '01', '--set', 'protocols=sctp'], /"sctp" is not one of tcp, udp/],
    ['a value of the wrong type', ['run', '01', '--set', 'base_port=abc'], /takes a whole number/],
    ['a value out of range', ['run', '01', '--set', 'base_port=80'], /must be ≥ 1024/],
    ['a bad address', ['run', '01', '--set', 'addresses=0.0.0.0,banana'], /"banana" is not an IP address/],
    ['+v6only on IPv4', ['run', '01', '--set', 'addresses=0.0.0.0+v6only'], /\+v6only applies to IPv6 addresses only/],
    ['a bad --jobs', ['run', '01', '--jobs', 'x'], /--jobs takes a whole number/],
  ];
  for (const [name, args, pattern] of cases) {
    it(name, () => {
      const out = path.join(tmpDir('bad'), 'captures');
      const r = runCli([...args, '--out', out]);
      expectOneLineError(r, pattern);
      expect(r.code).toBe(2);
      expect(fs.existsSync(out)).toBe(false);
    });
  }

  it('an unknown option (commander) is one line too', () => {
    const r = runCli(['run', '01', '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--frobnicate'/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('show: a missing file, a non-pcap, a directory — one line each', () => {
    const dir = tmpDir('show');
    expectOneLineError(runCli(['show', path.join(dir, 'nope.pcap')]), /nope.pcap: no such file/);
    fs.writeFileSync(path.join(dir, 'text.pcap'), 'just some text, not a capture');
    expectOneLineError(runCli(['show', path.join(dir, 'text.pcap')]), /not a pcap or pcapng file/);
    expectOneLineError(runCli(['show', dir]), /a directory, not a capture/);
    fs.rmSync(dir, { recursive: true });
  });

  it('show: a capture cut short mid-frame shows its whole frames and warns in one line', () => {
    const dir = tmpDir('cut');
    const file = path.join(dir, 'cut.pcap');
    const w = new PcapWriter(file);
    for (let i = 0; i < 3; i++)
      w.write(
        1e15 + i,
        emitTcpFrame('192.0.2.1', '192.0.2.2', {
          srcPort: 1,
          dstPort: 2,
          seq: seq(1 + i),
          ack: seq(0),
          flags: flags(i ? 'ack' : 'syn'),
          window: 1,
          urgent: 0,
          options: [],
          payload: new Uint8Array(),
        }),
      );
    w.close();
    fs.truncateSync(file, fs.statSync(file).size - 5);
    for (const args of [[], ['--list'], ['--summary']]) {
      const r = runCli(['show', file, ...args]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toEqual([
        'twlab: warning: ' + file + ': frame 3 truncated (35 of 40 bytes); showing the 2 whole frames before it',
      ]);
      expect(r.stdout).toMatch(/192\.0\.2\.1/);
    }
    expect(
      runCli(['show', file, '--list'])
        .stdout.split('\n')
        .filter((l) => /^\s+\d+\s/.test(l)),
    ).toHaveLength(2);
  });

  it('show --conn: an unknown connection or a malformed four-tuple is one line', () => {
    const dir = tmpDir('conn');
    const file = path.join(dir, 'one.pcap');
    const w = new PcapWriter(file);
    w.write(
      1e15,
      emitTcpFrame('192.0.2.1', '192.0.2.2', {
        srcPort: 1,
        dstPort: 2,
        seq: seq(1),
        ack: seq(0),
        flags: flags('syn'),
        window: 1,
        urgent: 0,
        options: [],
        payload: new Uint8Array(),
      }),
    );
    w.close();
    expectOneLineError(runCli(['show', file, '--conn', '7']), /no connection 7 \(it has 1; see --summary\)/);
    expectOneLineError(runCli(['show', file, '--conn', 'nonsense']), /--conn takes a connection's number/);
    const ok = runCli(['show', file, '--conn', '192.0.2.2:2-192.0.2.1:1']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/SYN/);
  });

  it('run --out on a pseudo-filesystem, under a file, or unwritable: one line at once, before any lab starts', () => {
    for (const [out, why] of [
      ['/proc/twlab-evidence', /\/proc is on proc, a kernel pseudo-filesystem/],
      ['/sys/kernel/twlab', /\/sys\/kernel is on sysfs/],
      ['/etc/passwd/x', /\/etc\/passwd is a file, not a directory/],
    ] as const) {
      const t0 = Date.now();
      const r = runCli(['run', '07', '--out', out], { timeoutMs: 20_000 });
      expectOneLineError(r, why);
      expect(r.code).toBe(2);
      expect(Date.now() - t0).toBeLessThan(10_000);
    }
    expect(fs.existsSync('/proc/twlab-evidence')).toBe(false);
  });
});

describe.skipIf(!run)('bad environment', () => {
  it('no /dev/net/tun: one line saying how to fix it', () => {
    // a private mount namespace hides the device from this run only
    const out = path.join(tmpDir('notun'), 'captures');
    const r = spawnSync(
      'unshare',
      ['--mount', '--', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$0" "$@"', process.execPath, CLI, 'run', '01', '--out', out],
      { encoding: 'utf8', cwd: ROOT },
    );
    expectOneLineError({ code: r.status, stdout: r.stdout, stderr: r.stderr }, /\/dev\/net\/tun does not exist; fix: load the tun module/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('not root and no user namespaces: one line saying how to fix it', () => {
    // a copy of the built package that uid 65534 can read, wherever this checkout lives
    const copy = tmpDir('nobody');
    fs.chmodSync(copy, 0o755);
    for (const p of ['package.json', 'binding.gyp', 'bin', 'dist/src', 'dist/labs', 'build/Release/twlab.node', 'node_modules/commander']) {
      fs.cpSync(path.join(ROOT, p), path.join(copy, p), { recursive: true });
    }
    spawnSync('chmod', ['-R', 'a+rX', copy]);
    const out = path.join(copy, 'captures');
    const r = spawnSync(
      path.join(ROOT, 'test', 'fixtures', 'no-userns.sh'),
      [process.execPath, path.join(copy, 'bin', 'twlab.js'), 'run', '01', '--out', out],
      { encoding: 'utf8', cwd: copy },
    );
    expectOneLineError(
      {
        code: r.status,
        stdout: r.stdout,
        stderr: r.stderr
          .split('\n')
          .filter((l) => !l.startsWith('unshare:'))
          .join('\n'),
      },
      /not root, and `unshare -rn true` fails.*fix: run as root/,
    );
    expect(fs.existsSync(out)).toBe(false);
    fs.rmSync(copy, { recursive: true, force: true });
  });

  it('doctor passes here, naming each check', () => {
    const r = runCli(['doctor']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/\[ok {2}\] privileges for a private network namespace: running as root/);
    expect(r.stdout).toMatch(/\[ok {2}\] TUN device/);
    expect(r.stdout).toMatch(/\[ok {2}\] native addon built/);
    expect(r.stdout).toMatch(/\[ok {2}\] live: a lab namespace with its TUN device: created and removed a namespace with lo, tw0/);
    expect(r.stdout).toMatch(/Ready: labs can run here/);
  });
});
