// The kernel matrix for real: Debian's 6.1 booted under qemu (fetched into the cache on first
// use), labs 05, 11 and 13 run inside it and on the host, results, captures, verdicts and the
// side-by-side index; the one-line errors for a kernel nobody knows and for a missing qemu;
// and an interrupted guest leaving nothing behind.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPcap } from '../src/capture/pcap';
import type { LabResult } from '../src/lab/api/types';
import { CLI, FIXTURE_LABS, ROOT, pidsMatching, privileged, removeTmpDirs, runCli, tmpDir, waitFor } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();
const QEMU = '/usr/bin/qemu-system-x86_64';
if (run && process.env.CI && !fs.existsSync(QEMU)) throw new Error(`${QEMU} missing: .ci/run installs qemu-system-x86`);

function expectOneLineError(r: { code: number | null; stdout: string; stderr: string }, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^twlab: /);
  expect(lines[0]).toMatch(pattern);
}

describe('naming a kernel that does not exist', () => {
  it('a word that is no kernel: one line, exit 2, nothing written', () => {
    const out = path.join(tmpDir('badkernel'), 'captures');
    expectOneLineError(
      runCli(['run', '05', '--kernel', '6.1,banana', '--out', out]),
      /unknown kernel "banana"; name host, a Debian series \(6\.1, 6\.12\), an exact release/,
    );
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe.skipIf(!run)('a guest kernel', () => {
  it('a series Debian does not have: one line naming the series it has, exit 2, nothing written', () => {
    const out = path.join(tmpDir('nokernel'), 'captures');
    expectOneLineError(
      runCli(['run', '05', '--kernel', '2.4', '--out', out]),
      /unknown kernel "2\.4": apt offers no linux-image-2\.4…-amd64-unsigned \(series it has: .*6\.1.*\)|apt knows no linux-image/,
    );
    expect(fs.existsSync(out)).toBe(false);
  });

  it('qemu missing: one line with the package that brings it, exit 2, nothing written', () => {
    // a private mount namespace puts a non-executable file over qemu for this run only
    const dir = tmpDir('noqemu');
    const out = path.join(dir, 'captures');
    fs.writeFileSync(path.join(dir, 'empty'), '');
    const r = spawnSync(
      'unshare',
      [
        '--mount',
        '--',
        'sh',
        '-c',
        `mount --bind "${dir}/empty" ${QEMU} && exec "$0" "$@"`,
        process.execPath,
        CLI,
        'run',
        '05',
        '--kernel',
        '6.1',
        '--out',
        out,
      ],
      { encoding: 'utf8', cwd: ROOT },
    );
    expectOneLineError(
      { code: r.status, stdout: r.stdout, stderr: r.stderr },
      /qemu-system-x86_64 not found on PATH; fix: apt-get install qemu-system-x86/,
    );
    expect(fs.existsSync(out)).toBe(false);
  });

  describe('labs 05, 11 and 13 on Debian 6.1 and on the host, side by side', () => {
    let out: string;
    let results: LabResult[];
    let stderr: string;
    beforeAll(() => {
      out = tmpDir('matrix');
      const r = runCli(['run', '05', '11', '13', '--kernel', '6.1,host', '--json', '--out', out], { timeoutMs: 540_000 });
      stderr = r.stderr;
      expect(r.code, r.stderr).toBe(0);
      results = JSON.parse(r.stdout) as LabResult[];
    }, 560_000);

    it('--json prints one result per (lab, kernel), each naming its kernel', () => {
      expect(results.map((x) => `${x.lab} ${/^6\.1\./.test(x.kernel) ? 'guest' : x.kernel === os.release() ? 'host' : x.kernel}`)).toEqual([
        '05 guest',
        '05 host',
        '11 guest',
        '11 host',
        '13 guest',
        '13 host',
      ]);
      expect(stderr).toBe('');
    });

    it('the guest judged every claim from what it measured in 6.1 (its own uname -r in the evidence)', () => {
      const guest = results.filter((x) => /^6\.1\./.test(x.kernel));
      const c11 = guest[0]!.claims.find((c) => c.id === 'C11')!;
      expect(c11.verdict).toBe('holds');
      expect(c11.trials).toEqual({ agree: 10, valid: 10, excluded: 0 });
      const c16 = guest[0]!.claims.find((c) => c.id === 'C16')!;
      expect(c16.verdict).toBe('differs by OS');
      expect(c16.evidence).toContain(`this is Linux ${guest[0]!.kernel}`);
      expect(guest[2]!.claims.find((c) => c.id === 'T11')!.verdict).toBe('holds');
      // the peer saw the kernel's RSTs: counted from the 6.1 kernel's own counters
      const idle = guest[0]!.variants.find((v) => v.name === 'established-idle')!;
      expect((idle.observations.counters as Record<string, number>)['Tcp.OutRsts']).toBeGreaterThanOrEqual(5);
    });

    it("lab 11 is judged in the guest too: its ISNs lined up by setting the guest's own realtime clock back (the host's by outrunning it)", () => {
      const [guest11, host11] = results.filter((x) => x.lab === '11');
      for (const r of [guest11!, host11!]) {
        const v = Object.fromEntries(r.claims.map((c) => [c.id, c.verdict]));
        expect(v, `${r.kernel}: ${r.claims.map((c) => c.evidence).join(' | ')}`).toEqual({ C13: 'holds', C14: 'holds', T8: 'holds' });
      }
      const skipped = (r: LabResult) =>
        ['linger-abort', 'no-tw-buckets', 'peer-time-wait-short'].map(
          (n) => (r.variants.find((v) => v.name === n)!.observations.trials as Array<Record<string, unknown>>)[0]!,
        );
      for (const o of skipped(guest11!)) {
        expect(o).toMatchObject({ isnAlign: 'clock', firstBytes: 0, kernelRead: 'BBBB' });
        expect(o.clockBackMs as number).toBeGreaterThan(500); // the time since the first SYN, and clock_back_ms more
        expect(o.oldAckLead as number).toBeGreaterThanOrEqual(0);
      }
      for (const o of skipped(host11!)) expect(o).toMatchObject({ isnAlign: 'outrun', clockBackMs: null, kernelRead: 'BBBB' });
      expect(guest11!.claims.find((c) => c.id === 'C13')!.evidence).toMatch(/ISNs aligned by setting the guest's clock back/);
    });

    it('evidence per kernel: <out>/<uname -r>/NN-slug with non-empty captures, the console log and kernel.json beside', () => {
      const release = results.find((x) => /^6\.1\./.test(x.kernel))!.kernel;
      const dir = path.join(out, release);
      expect(fs.readdirSync(dir).sort()).toEqual([
        '05-linger-zero',
        '11-old-duplicate',
        '13-time-wait-assassination',
        'console.log',
        'index.html',
        'kernel.json',
      ]);
      for (const lab of ['05-linger-zero', '13-time-wait-assassination']) {
        const res = JSON.parse(fs.readFileSync(path.join(dir, lab, 'result.json'), 'utf8')) as LabResult;
        expect(res.kernel).toBe(release);
        for (const v of res.variants) {
          const pcap = readPcap(path.join(dir, lab, v.pcap!));
          expect(pcap.records.length, `${lab} ${v.name}`).toBe(v.frames);
          expect(v.frames).toBeGreaterThan(0);
        }
      }
      const info = JSON.parse(fs.readFileSync(path.join(dir, 'kernel.json'), 'utf8')) as {
        release: string;
        package: string;
        accel: string;
        bootMs: number;
      };
      expect(info.release).toBe(release);
      expect(info.package).toBe(`linux-image-${release}-unsigned`);
      expect(info.bootMs).toBeGreaterThan(0);
      expect(fs.readFileSync(path.join(dir, 'console.log'), 'utf8')).toMatch(/twlab-init: main process ended: exit 0/);
      // the host's evidence stays where it always was
      expect(fs.existsSync(path.join(out, '05-linger-zero', 'result.json'))).toBe(true);
    });

    it('twlab report rebuilds an index with both kernels side by side, each verdict linking to its report', () => {
      fs.rmSync(path.join(out, 'index.html'));
      const r = runCli(['report', '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      const html = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
      const release = results.find((x) => /^6\.1\./.test(x.kernel))!.kernel;
      expect(html).toContain('Claims side by side');
      // the host first, then each guest kernel (by release)
      expect(html).toContain(`<th>${os.release()} (host)</th><th><a href="${release}/index.html">${release}</a></th>`);
      for (const href of [
        `${release}/05-linger-zero/report.html#claim-C11`,
        '05-linger-zero/report.html#claim-C11',
        `${release}/13-time-wait-assassination/report.html#claim-T11`,
      ]) {
        expect(html).toContain(`href="${href}"`);
        expect(fs.existsSync(path.join(out, href.split('#')[0]!))).toBe(true);
      }
      expect(fs.readFileSync(path.join(out, release, '05-linger-zero', 'report.html'), 'utf8')).toContain('id="claim-C11"');
    });

    it('twlab show draws a guest kernel’s captures (--kernel), and names the kernels it has when asked for another', () => {
      const r = runCli(['show', '05', '--kernel', '6.1', '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/== 05 linger-zero · established-idle\.pcap/);
      expect(r.stdout).toContain('RST');
      const release = results.find((x) => /^6\.1\./.test(x.kernel))!.kernel;
      expectOneLineError(
        runCli(['show', '05', '--kernel', '6.12', '--out', out]),
        new RegExp(`no evidence for kernel 6\\.12 in .* \\(there is: ${release.replace(/[.+]/g, '\\$&')}\\)`),
      );
    });

    it('nothing is left: no qemu, no job or staging files', () => {
      expect(pidsMatching(out)).toEqual([]);
      const release = results.find((x) => /^6\.1\./.test(x.kernel))!.kernel;
      expect(fs.readdirSync(path.join(out, release)).filter((n) => n.startsWith('.'))).toEqual([]);
    });
  });

  it('SIGINT while the guest runs a lab: exit 130, qemu gone, no partial evidence', async () => {
    const out = tmpDir('guestint');
    const cli = spawn(process.execPath, [CLI, 'run', '90', '--set', 'seconds=60', '--set', 'helper=off', '--kernel', '6.1', '--out', out], {
      cwd: ROOT,
      env: { ...process.env, TWLAB_LABS_DIR: FIXTURE_LABS },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    cli.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    cli.stdout!.resume();
    // the lab is running inside the guest once its staging folder appears in the shared folder
    const kernelDir = await waitFor('the guest kernel folder', () => fs.readdirSync(out).find((n) => /^6\.1\./.test(n)), 120_000, 200);
    await waitFor(
      'the lab to start in the guest',
      () => fs.readdirSync(path.join(out, kernelDir)).some((n) => n.startsWith('.90-hold.partial-')),
      120_000,
      200,
    );
    expect(pidsMatching(out).length).toBeGreaterThan(0); // qemu, with the folder in its arguments
    cli.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => cli.on('exit', (c) => resolve(c)));
    expect(code, err).toBe(130);
    expect(err).toMatch(/twlab: interrupted by SIGINT/);
    await waitFor('qemu to be gone', () => pidsMatching(out).length === 0, 10_000);
    expect(fs.readdirSync(path.join(out, kernelDir)).filter((n) => n.startsWith('.') || /^\d{2}-/.test(n))).toEqual([]);
  }, 180_000);
});
