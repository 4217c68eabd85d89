// Bad input a hostile user or a careless operator gives, each refused in one line with a non-zero
// exit and nothing written: the ids beside `all`, a multicast group that is none, an empty --out,
// commander's own errors, `report` on places that are no evidence folder, `show` on a FIFO, a
// device or a lab folder without captures, a --predict that is rejected.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, privileged, runCli, removeTmpDirs, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();

/** One line on stderr starting `twlab: `, nothing on stdout, no stack trace, exit 2 (unless said). */
function expectOneLineError(r: { code: number | null; stdout: string; stderr: string }, pattern: RegExp, code = 2): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^twlab: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('run: refused before anything starts or is written', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['an unknown id beside `all`', ['run', 'all', 'nosuch'], /^twlab: unknown lab "nosuch"; known: 01 bind-matrix/],
    [
      'a multicast group that is a unicast address',
      ['run', '01', '--set', 'multicast=10.0.0.1'],
      /lab 01 parameter multicast: "10\.0\.0\.1" is not a multicast group address \(224\.0\.0\.0–239\.255\.255\.255, or ff00::\/8\)/,
    ],
    ['a multicast group that is no address', ['run', '01', '--set', 'multicast=banana'], /"banana" is not an IP address/],
  ];
  for (const [name, args, pattern] of cases) {
    it(name, () => {
      const out = path.join(tmpDir('bad'), 'captures');
      expectOneLineError(runCli([...args, '--out', out]), pattern);
      expect(fs.existsSync(out)).toBe(false);
    });
  }

  it("--out '' is refused, not taken as the current directory", () => {
    const here = tmpDir('empty-out');
    expectOneLineError(runCli(['run', '07', '--out', ''], { cwd: here }), /--out takes a directory, not an empty string/);
    expect(fs.readdirSync(here)).toEqual([]);
  });

  it("commander's own errors are one `twlab:` line too", () => {
    expectOneLineError(runCli(['run', '01', '--frobnicate']), /^twlab: unknown option '--frobnicate' \(run `twlab --help` for usage\)$/);
    expectOneLineError(runCli(['show']), /^twlab: missing required argument 'capture\|lab' \(run `twlab --help` for usage\)$/);
    expectOneLineError(runCli(['frobnicate']), /^twlab: unknown command 'frobnicate'/);
  });

  it.skipIf(!run)('a rejected --predict leaves no --out folder behind', () => {
    const out = path.join(tmpDir('predict'), 'captures');
    expectOneLineError(
      runCli(['run', '03', '--predict', path.join(ROOT, 'nosuch-answers.json'), '--out', out]),
      /--predict .*nosuch-answers\.json: no such file/,
    );
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('report: --out must be a folder of evidence', () => {
  it('a file, /proc, an empty string: one line each', () => {
    expectOneLineError(
      runCli(['report', '--out', '/etc/passwd']),
      /--out \/etc\/passwd: \/etc\/passwd is a file, not a directory of evidence/,
    );
    expectOneLineError(runCli(['report', '--out', '/proc']), /\/proc is on proc, a kernel pseudo-filesystem/);
    expectOneLineError(runCli(['report', '--out', '']), /--out takes a directory, not an empty string/);
    expect(fs.existsSync('/proc/index.html')).toBe(false);
  });

  it.skipIf(!run)('a read-only place: one line (a read-only bind mount in a private mount namespace)', () => {
    const dir = tmpDir('ro');
    fs.mkdirSync(path.join(dir, '07-close-unread-data'));
    const r = spawnSync(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        `mount --bind "${dir}" "${dir}" && mount -o remount,ro,bind "${dir}" && exec "$0" "$@"`,
        process.execPath,
        CLI,
        'report',
        '--out',
        dir,
      ],
      { encoding: 'utf8', cwd: ROOT },
    );
    expectOneLineError({ code: r.status, stdout: r.stdout, stderr: r.stderr }, /cannot write into .* \(read-only filesystem\)/);
  });

  it('damaged lab folders (an empty, a cut-short, a foreign result.json) are skipped and named; the others are rebuilt', () => {
    const dir = tmpDir('damaged');
    const lab = (name: string, result: string): void => {
      fs.mkdirSync(path.join(dir, name));
      fs.writeFileSync(path.join(dir, name, 'result.json'), result);
    };
    lab('05-linger-zero', '');
    lab('07-close-unread-data', '{"lab": "07", "slug": "close-unread-data", "claims": [');
    lab('08-fin-wait-2', '[1, 2, 3]');
    lab(
      '13-time-wait-assassination',
      JSON.stringify({
        lab: '13',
        slug: 'time-wait-assassination',
        title: 'T',
        kernel: 'k',
        startedAt: 'now',
        durationMs: 1,
        params: {},
        sysctls: {},
        variants: [],
        claims: [],
        conclusion: [],
      }),
    );
    const r = runCli(['report', '--out', dir]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr.trim().split('\n')).toEqual([
      `twlab: skipped ${path.join(dir, '05-linger-zero')} (result.json is empty): run that lab again to replace it`,
      expect.stringMatching(
        /^twlab: skipped .*07-close-unread-data \(result\.json is not whole JSON \(\d+ bytes; cut short\?\)\): run that lab again/,
      ),
      expect.stringMatching(/^twlab: skipped .*08-fin-wait-2 \(result\.json is not a lab result\): run that lab again/),
    ]);
    expect(r.stdout).toMatch(/13-time-wait-assassination\/report\.html/);
    expect(fs.existsSync(path.join(dir, '13-time-wait-assassination', 'report.html'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'index.html'))).toBe(true);
  });
});

describe('show: files that are no capture, and lab folders without captures', () => {
  it('a FIFO is refused at once (opening it would wait for a writer); a capture piped to `show -` is read', () => {
    const dir = tmpDir('fifo');
    const fifo = path.join(dir, 'pipe');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const t0 = Date.now();
    expectOneLineError(
      runCli(['show', fifo], { timeoutMs: 20_000 }),
      /pipe: a FIFO \(named pipe\), not a capture file; to read a capture from a pipe, give it on standard input: … \| twlab show -/,
    );
    expect(Date.now() - t0).toBeLessThan(15_000);
    expectOneLineError(runCli(['show', '/dev/zero'], { timeoutMs: 20_000 }), /\/dev\/zero: a character device, not a capture file/);
    // the same bytes on standard input
    const pcap = Buffer.alloc(24);
    pcap.writeUInt32LE(0xa1b2c3d4, 0);
    pcap.writeUInt16LE(2, 4);
    pcap.writeUInt16LE(4, 6);
    pcap.writeUInt32LE(65535, 16);
    pcap.writeUInt32LE(101, 20);
    const r = spawnSync(process.execPath, [CLI, 'show', '-', '--summary'], { input: pcap, encoding: 'utf8', cwd: ROOT, timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\(no TCP connections in the capture\)/);
    const garbage = spawnSync(process.execPath, [CLI, 'show', '-'], {
      input: 'not a capture at all',
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 20_000,
    });
    expectOneLineError(
      { code: garbage.status, stdout: garbage.stdout, stderr: garbage.stderr },
      /standard input: not a pcap or pcapng file/,
    );
  });

  it('a lab folder without captures is one line, not an empty success', () => {
    const dir = tmpDir('nocaptures');
    fs.mkdirSync(path.join(dir, '05-linger-zero'));
    fs.writeFileSync(path.join(dir, '05-linger-zero', 'result.json'), '{}');
    expectOneLineError(
      runCli(['show', '05', '--out', dir]),
      /no captures \(\*\.pcap\) in .*05-linger-zero; run `twlab run 05` again to make them/,
    );
  });
});
