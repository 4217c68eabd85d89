// The runner: every lab in its own namespace, and nothing left behind however the run ends.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CLI,
  FIXTURE_LABS,
  ROOT,
  assertBuilt,
  childrenOf,
  netnsOf,
  pidAlive,
  pidsMatching,
  privileged,
  processesInNetns,
  runCli,
  removeTmpDirs,
  tmpDir,
  waitFor,
} from './helpers';

afterAll(removeTmpDirs);

const run = privileged();

interface Started {
  cli: ReturnType<typeof spawn>;
  inner: number;
  netns: number;
  helpers: number[];
  out: string;
  stderr: () => string;
}

/** Starts `twlab run 90` (the hold lab) and waits until its namespace, TUN and helper exist. */
async function startHold(seconds = 30): Promise<Started> {
  assertBuilt();
  const out = tmpDir('hold');
  const cli = spawn(process.execPath, [CLI, 'run', '90', '--set', `seconds=${seconds}`, '--out', out], {
    cwd: ROOT,
    env: { ...process.env, TWLAB_LABS_DIR: FIXTURE_LABS },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  cli.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  cli.stdout!.resume();
  // the lab process carries the staging path (under `out`) in its arguments
  const inner = await waitFor('the lab process', () =>
    pidsMatching(`${out}/.90-hold.partial`).find((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('lab-main.js')),
  );
  await waitFor(
    'the lab to start holding',
    () => stderr.includes('holding') || fs.existsSync(path.join(out, `.90-hold.partial-${cli.pid}`, 'hold.pcap')),
  );
  const netns = netnsOf(inner)!;
  const helpers = childrenOf(inner);
  return { cli, inner, netns, helpers, out, stderr: () => stderr };
}

/** Temporary copies made for the uid helper of lab process `pid`. */
function helperCopies(pid: number): string[] {
  return fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(`twlab-uid-${pid}-`));
}

async function exitOf(cli: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (cli.exitCode !== null || cli.signalCode !== null) return { code: cli.exitCode, signal: cli.signalCode };
  return new Promise((resolve) => cli.on('exit', (code, signal) => resolve({ code, signal })));
}

async function expectNothingLeft(s: Started): Promise<void> {
  await waitFor('the lab process to die', () => !pidAlive(s.inner), 10_000);
  for (const h of s.helpers) await waitFor(`helper ${h} to die`, () => !pidAlive(h), 10_000);
  // no process is left in the lab's namespace: with it gone, the namespace and its TUN are gone
  await waitFor('the namespace to empty', () => processesInNetns(s.netns).length === 0, 10_000);
  expect(pidsMatching(s.out)).toEqual([]);
}

describe.skipIf(!run)('runner: nothing left behind', () => {
  it('the lab really runs in its own namespace, with a helper under another uid', async () => {
    const s = await startHold(30);
    expect(s.netns).not.toBe(netnsOf(process.pid));
    expect(s.helpers.length).toBeGreaterThanOrEqual(1);
    const uid = fs.readFileSync(`/proc/${s.helpers[0]}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1];
    expect(uid).toBe('65534');
    expect(netnsOf(s.helpers[0]!)).toBe(s.netns);
    s.cli.kill('SIGKILL');
    await expectNothingLeft(s);
    fs.rmSync(s.out, { recursive: true, force: true });
  });

  it('SIGKILL of the CLI mid-lab: the lab, its helper and its namespace die; the next run clears the staging folder', async () => {
    const s = await startHold(30);
    s.cli.kill('SIGKILL');
    await exitOf(s.cli);
    await expectNothingLeft(s);
    // the killed run's staging folder is stale; a new run removes it and leaves complete evidence only
    const r = runCli(['run', '90', '--set', 'seconds=0', '--set', 'helper=off', '--out', s.out], { env: { TWLAB_LABS_DIR: FIXTURE_LABS } });
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(s.out).sort()).toEqual(['90-hold', 'course.html', 'index.html']);
    expect(helperCopies(s.inner)).toEqual([]);
    fs.rmSync(s.out, { recursive: true, force: true });
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} to the CLI: it stops the lab, exits 130 with one line, and leaves no partial evidence`, async () => {
      const s = await startHold(30);
      s.cli.kill(signal);
      const { code } = await exitOf(s.cli);
      expect(code).toBe(130);
      expect(s.stderr()).toMatch(/twlab: interrupted by SIG(INT|TERM)/);
      await expectNothingLeft(s);
      expect(fs.readdirSync(s.out)).toEqual([]);
      expect(helperCopies(s.inner)).toEqual([]);
      fs.rmSync(s.out, { recursive: true, force: true });
    });
  }

  it('a parameter with a sysctl sets it inside the lab namespace only, and the result records it', () => {
    const hostBefore = fs.readFileSync('/proc/sys/net/ipv4/tcp_fin_timeout', 'utf8').trim();
    const want = hostBefore === '7' ? '8' : '7';
    const r = runCli(
      ['run', '90', '--set', 'seconds=0', '--set', 'helper=off', '--set', `fin_timeout=${want}`, '--json', '--out', tmpDir('sysctl')],
      { env: { TWLAB_LABS_DIR: FIXTURE_LABS } },
    );
    expect(r.code, r.stderr).toBe(0);
    const [res] = JSON.parse(r.stdout) as Array<{
      sysctls: Record<string, string>;
      variants: Array<{ observations: { finTimeout: string } }>;
    }>;
    expect(res!.sysctls).toEqual({ 'net.ipv4.tcp_fin_timeout': want });
    expect(res!.variants[0]!.observations.finTimeout).toBe(want);
    expect(fs.readFileSync('/proc/sys/net/ipv4/tcp_fin_timeout', 'utf8').trim()).toBe(hostBefore);
  });

  it('labs run in parallel, each in its own namespace', async () => {
    const out = tmpDir('parallel');
    const t0 = Date.now();
    const r = runCli(
      [
        'run',
        '90',
        '01',
        '--set',
        'seconds=2',
        '--set',
        'helper=off',
        '--set',
        'protocols=udp',
        '--set',
        'uids=same',
        '--json',
        '--out',
        out,
      ],
      { env: { TWLAB_LABS_DIR: FIXTURE_LABS } },
    );
    expect(r.code, r.stderr).toBe(0);
    const results = JSON.parse(r.stdout) as Array<{ lab: string; durationMs: number }>;
    expect(results.map((x) => x.lab)).toEqual(['01', '90']);
    // the hold lab took 2 s; run one after the other the wall time would exceed both durations' sum
    expect(Date.now() - t0).toBeLessThan(results.reduce((n, x) => n + x.durationMs, 0) + 4000);
    expect(fs.readdirSync(out).sort()).toEqual(['01-bind-matrix', '90-hold', 'course.html', 'index.html']);
    fs.rmSync(out, { recursive: true, force: true });
  });
});
