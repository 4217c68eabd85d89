// What twlab promises about evidence: a SIGKILL at any point of the replace leaves a lab's old
// evidence or its new, whole, and the old evidence is kept under earlier/ (by the next run when the
// kill came after the swap); an interrupted run keeps (with reports) the labs that finished and
// says which; a full disk leaves the old evidence as it was, no temporaries, and says exactly
// what was and was not written. The kill is placed inside the replace by strace (delaying the
// swap's syscall), the full disk is a small tmpfs mounted in a private mount namespace.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { recoverStaging, replaceFolder, stagingName } from '../src/lab/run/evidence';
import {
  CLI,
  FIXTURE_LABS,
  ROOT,
  assertBuilt,
  childrenOf,
  hasTool,
  pidAlive,
  privileged,
  runCli,
  removeTmpDirs,
  tmpDir,
  waitFor,
} from './helpers';

afterAll(removeTmpDirs);

const run = privileged();
const strace = hasTool('strace');
if (!strace && process.env.CI) throw new Error('strace is needed: .ci/run installs it');

const env = { TWLAB_LABS_DIR: FIXTURE_LABS };
const QUICK = ['run', '90', '--set', 'seconds=0', '--set', 'helper=off'];

/** Every file under `dir` with its bytes, for "left exactly as it was". */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, name);
    if (fs.statSync(p).isFile()) out[name] = fs.readFileSync(p).toString('base64');
  }
  return out;
}

const leftovers = (out: string): string[] => fs.readdirSync(out).filter((n) => n.startsWith('.') || /\.\d+$/.test(n));

/**
 * Runs the hold lab under strace with `inject`, waits until the process is stopped inside the
 * replace (strace has logged `syscall(` and, for a delay at exit, its result), then SIGKILLs it.
 */
async function killInsideReplace(out: string, inject: string[], waitFor_: RegExp): Promise<void> {
  assertBuilt();
  const log = path.join(tmpDir('strace'), 'log');
  const st = spawn(
    'strace',
    [
      '-qq',
      '-o',
      log,
      '-e',
      'trace=rename,renameat2',
      ...inject.flatMap((i) => ['-e', `inject=${i}`]),
      process.execPath,
      CLI,
      ...QUICK,
      '--out',
      out,
    ],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: 'ignore' },
  );
  await waitFor('the process to stop inside the replace', () => fs.existsSync(log) && waitFor_.test(fs.readFileSync(log, 'utf8')), 60_000);
  const [cli] = childrenOf(st.pid!);
  expect(cli, 'the CLI under strace').toBeDefined();
  process.kill(cli!, 'SIGKILL');
  st.kill('SIGKILL'); // strace would otherwise sit out its delay
  await new Promise((resolve) => (st.exitCode !== null || st.signalCode !== null ? resolve(null) : st.on('exit', resolve)));
  await waitFor('the CLI to be gone', () => !pidAlive(cli!), 10_000);
}

/** A lab folder with a result.json started at `startedAt` and one more file. */
function labFolder(dir: string, startedAt: string, body: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify({ startedAt }));
  fs.writeFileSync(path.join(dir, 'hold.pcap'), body);
  return dir;
}

describe('the replace and the clean-up after a kill, on folders (no lab)', () => {
  const OLD = '2026-01-02T03:04:05.000Z';
  const kept = (out: string): string => path.join(out, 'earlier', '2026-01-02T03-04-05Z', '90-hold');

  it('a replace swaps the folders and keeps the old one under earlier/<its start time>/', () => {
    const out = tmpDir('replace');
    const final = labFolder(path.join(out, '90-hold'), OLD, 'old');
    const staging = labFolder(stagingName(final, 'partial'), '2026-01-02T04:00:00.000Z', 'new');
    const r = replaceFolder(staging, final);
    expect(r).toMatchObject({ replaced: true, earlier: { dir: kept(out), startedAt: OLD, removed: [] } });
    expect(fs.readFileSync(path.join(final, 'hold.pcap'), 'utf8')).toBe('new');
    expect(fs.readFileSync(path.join(kept(out), 'hold.pcap'), 'utf8')).toBe('old');
    expect(fs.readdirSync(out).sort()).toEqual(['90-hold', 'earlier']);
  });

  it('after a kill: old evidence renamed aside goes back when the folder is missing, else under earlier/; a swap folder by its inode', () => {
    const dead = 999_999_999;
    // the fallback, killed between its two renames: the folder missing, put back
    const a = tmpDir('recover-aside');
    labFolder(path.join(a, `.90-hold.old-${dead}`), OLD, 'old');
    labFolder(path.join(a, `.90-hold.swap-${dead}-1`), '2026-01-02T04:00:00.000Z', 'new');
    expect(recoverStaging(a, () => true)).toEqual({ restored: [path.join(a, '90-hold')], kept: [] });
    expect(fs.readdirSync(a)).toEqual(['90-hold']);
    expect(fs.readFileSync(path.join(a, '90-hold', 'hold.pcap'), 'utf8')).toBe('old');
    // the fallback, killed after its second rename: the old folder kept
    const b = tmpDir('recover-aside-done');
    labFolder(path.join(b, '90-hold'), '2026-01-02T04:00:00.000Z', 'new');
    labFolder(path.join(b, `.90-hold.old-${dead}`), OLD, 'old');
    expect(recoverStaging(b, () => true).kept).toMatchObject([{ final: path.join(b, '90-hold'), earlier: { dir: kept(b) } }]);
    expect(fs.readFileSync(path.join(kept(b), 'hold.pcap'), 'utf8')).toBe('old');
    // killed after the swap: the swap folder is the one whose inode its name holds — the old evidence, kept
    const c = tmpDir('recover-swapped');
    labFolder(path.join(c, '90-hold'), '2026-01-02T04:00:00.000Z', 'new');
    const left = labFolder(path.join(c, '.swapped'), OLD, 'old');
    const ino = fs.statSync(left, { bigint: true }).ino;
    fs.renameSync(left, path.join(c, `.90-hold.swap-${dead}-${ino}`));
    expect(recoverStaging(c, () => true).kept).toMatchObject([
      { left: path.join(c, `.90-hold.swap-${dead}-${ino}`), earlier: { dir: kept(c) } },
    ]);
    expect(fs.readFileSync(path.join(kept(c), 'hold.pcap'), 'utf8')).toBe('old');
    // killed before the swap: the swap folder is another (the new evidence, never in place): removed, as a partial one is
    const d = tmpDir('recover-unswapped');
    const final = labFolder(path.join(d, '90-hold'), OLD, 'old');
    labFolder(path.join(d, `.90-hold.swap-${dead}-${fs.statSync(final, { bigint: true }).ino}-x`), OLD, 'not ours');
    labFolder(path.join(d, `.90-hold.swap-${dead}-${fs.statSync(final, { bigint: true }).ino}`), '2026-01-02T04:00:00.000Z', 'new');
    labFolder(path.join(d, `.90-hold.partial-${dead}`), '2026-01-02T04:00:00.000Z', 'new');
    expect(recoverStaging(d, () => true)).toEqual({ restored: [], kept: [] });
    expect(fs.readdirSync(d).sort()).toEqual([`.90-hold.swap-${dead}-${fs.statSync(final, { bigint: true }).ino}-x`, '90-hold']);
    expect(fs.readFileSync(path.join(final, 'hold.pcap'), 'utf8')).toBe('old');
    // a live run's folders are left alone
    const e = tmpDir('recover-alive');
    labFolder(path.join(e, `.90-hold.partial-${process.pid}`), OLD, 'new');
    expect(recoverStaging(e, (pid) => pid !== process.pid)).toEqual({ restored: [], kept: [] });
    expect(fs.readdirSync(e)).toEqual([`.90-hold.partial-${process.pid}`]);
  });
});

describe.skipIf(!run || !strace)('SIGKILL inside the replace of a lab folder', () => {
  it("before the swap: the old evidence stays whole; the next run clears the killed run's folder", async () => {
    const out = tmpDir('kill-enter');
    expect(runCli([...QUICK, '--out', out], { env }).code).toBe(0);
    const before = snapshot(path.join(out, '90-hold'));
    await killInsideReplace(out, ['renameat2:delay_enter=30000000'], /renameat2\(.*RENAME_EXCHANGE/);
    expect(snapshot(path.join(out, '90-hold'))).toEqual(before);
    // the killed run's new evidence, renamed for the swap (the old folder's inode in its name), never swapped
    expect(leftovers(out)).toEqual([expect.stringMatching(/^\.90-hold\.swap-\d+-\d+$/)]);
    const next = runCli([...QUICK, '--out', out], { env });
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).not.toMatch(/had left its previous evidence/);
    expect(leftovers(out)).toEqual([]);
    expect(fs.readdirSync(path.join(out, '90-hold')).sort()).toEqual([
      'hold.pcap',
      'hold.pcapng',
      'report.html',
      'result.json',
      'timeline.json',
    ]);
    // the next run's own replace kept the first run's evidence, whole, and only it
    const kept = fs.readdirSync(path.join(out, 'earlier'));
    expect(kept).toHaveLength(1);
    expect(snapshot(path.join(out, 'earlier', kept[0]!, '90-hold'))).toEqual(before);
  }, 120_000);

  it('after the swap: the new evidence is in place, whole, with its report; the next run keeps the old under earlier/', async () => {
    const out = tmpDir('kill-exit');
    expect(runCli([...QUICK, '--out', out], { env }).code).toBe(0);
    const before = snapshot(path.join(out, '90-hold'));
    const old = JSON.parse(fs.readFileSync(path.join(out, '90-hold', 'result.json'), 'utf8')) as { startedAt: string };
    await killInsideReplace(out, ['renameat2:delay_exit=30000000'], /renameat2\(.*RENAME_EXCHANGE\) = 0/);
    const now = JSON.parse(fs.readFileSync(path.join(out, '90-hold', 'result.json'), 'utf8')) as { startedAt: string };
    expect(now.startedAt).not.toBe(old.startedAt);
    expect(fs.readdirSync(path.join(out, '90-hold')).sort()).toEqual([
      'hold.pcap',
      'hold.pcapng',
      'report.html',
      'result.json',
      'timeline.json',
    ]);
    // the killed run's swap folder now holds the old evidence: the next run keeps it under earlier/ and says so
    expect(leftovers(out)).toEqual([expect.stringMatching(/^\.90-hold\.swap-\d+-\d+$/)]);
    const next = runCli([...QUICK, '--out', out], { env });
    expect(next.code, next.stderr).toBe(0);
    const m =
      /twlab: a run killed while replacing \S*90-hold had left its previous evidence at \.90-hold\.swap-\d+-\d+: kept it in (\S+)\/\n/.exec(
        next.stderr,
      );
    expect(m, next.stderr).not.toBeNull();
    expect(path.relative(out, path.resolve(ROOT, m![1]!))).toMatch(/^earlier\/[^/]+\/90-hold$/);
    expect(snapshot(path.resolve(ROOT, m![1]!))).toEqual(before);
    expect(leftovers(out)).toEqual([]);
  }, 120_000);

  it('where the filesystem cannot swap (rename aside): a kill between the two renames, and the next run puts the old folder back', async () => {
    const out = tmpDir('kill-aside');
    expect(runCli([...QUICK, '--out', out], { env }).code).toBe(0);
    const before = snapshot(path.join(out, '90-hold'));
    // renameat2 fails as on 9p or NFS; the CLI's renames: the report's temporary, the staging folder
    // to its swap name, then the old folder aside (delayed)
    await killInsideReplace(
      out,
      ['renameat2:error=EINVAL', 'rename:delay_exit=30000000:when=3'],
      /rename\(".*90-hold", ".*\.90-hold\.old-\d+"\) = 0/,
    );
    expect(fs.existsSync(path.join(out, '90-hold'))).toBe(false);
    expect(leftovers(out).sort()).toEqual([
      expect.stringMatching(/^\.90-hold\.old-\d+$/),
      expect.stringMatching(/^\.90-hold\.swap-\d+-\d+$/),
    ]);
    // the next run (any lab) finds the final folder missing and puts the old one back, whole
    const next = runCli(
      ['run', '01', '--set', 'protocols=udp', '--set', 'uids=same', '--set', 'kinds=bound', '--set', 'addresses=127.0.0.1', '--out', out],
      { env },
    );
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toMatch(/twlab: put back .*90-hold: a run killed while replacing it had left it renamed aside/);
    expect(snapshot(path.join(out, '90-hold'))).toEqual(before);
    expect(leftovers(out)).toEqual([]);
  }, 120_000);
});

describe.skipIf(!run)('an interrupted run', () => {
  it('keeps the labs that finished, with their reports and the index, and names what it replaced and what it left', async () => {
    assertBuilt();
    const out = tmpDir('interrupt');
    expect(runCli([...QUICK, '--out', out], { env }).code).toBe(0);
    const held = snapshot(path.join(out, '90-hold'));
    const cli = spawn(
      process.execPath,
      [
        CLI,
        'run',
        '01',
        '90',
        '--set',
        'seconds=60',
        '--set',
        'helper=off',
        '--set',
        'protocols=udp',
        '--set',
        'uids=same',
        '--set',
        'kinds=bound',
        '--set',
        'addresses=127.0.0.1',
        '--out',
        out,
      ],
      { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    cli.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    cli.stdout!.resume();
    await waitFor('lab 01 to finish', () => fs.existsSync(path.join(out, '01-bind-matrix', 'result.json')), 60_000);
    cli.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => cli.on('exit', resolve));
    expect(code).toBe(130);
    const lines = stderr
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('[') && !l.startsWith('twlab: running'));
    expect(lines).toEqual([
      'twlab: interrupted by SIGINT; lab processes stopped; 01 bind-matrix had finished: their evidence and report.html replaced the earlier (index.html updated); earlier evidence of 90 hold left as it was',
    ]);
    expect(fs.existsSync(path.join(out, '01-bind-matrix', 'report.html'))).toBe(true);
    expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).toMatch(/01-bind-matrix\/report\.html/);
    expect(snapshot(path.join(out, '90-hold'))).toEqual(held);
    expect(leftovers(out)).toEqual([]);
  }, 120_000);
});

/** Runs `script` (sh) in a private mount namespace: its mounts vanish with it, the host's are never touched. */
function inMountNamespace(script: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env, NODE: process.execPath, CLI },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!run)('a full disk (a small tmpfs in a private mount namespace)', () => {
  const quick = QUICK.join(' ');
  it('no room for the evidence: the old evidence left exactly as it was, no temporaries, no verdict lines, one line saying so', () => {
    const dir = tmpDir('fulldisk');
    const result = path.join(dir, 'result.txt');
    // the first run fits; then a file fills the disk and the second run cannot write its evidence
    const r = inMountNamespace(`set -e
      mkdir -p "${dir}/mnt"
      mount -t tmpfs -o size=2m twlab-test "${dir}/mnt"
      "$NODE" "$CLI" ${quick} --out "${dir}/mnt/captures" >/dev/null 2>&1
      (cd "${dir}/mnt/captures" && find . -type f | sort | xargs sha256sum) > "${dir}/before.txt"
      dd if=/dev/zero of="${dir}/mnt/filler" bs=4k 2>/dev/null || true
      set +e
      "$NODE" "$CLI" ${quick} --out "${dir}/mnt/captures" > "${dir}/stdout.txt" 2> "${dir}/stderr.txt"; echo $? > "${result}"
      (cd "${dir}/mnt/captures" && find . -type f | sort | xargs sha256sum) > "${dir}/after.txt"
      ls -A "${dir}/mnt/captures" > "${dir}/ls.txt"`);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(result, 'utf8').trim()).toBe('1');
    expect(fs.readFileSync(path.join(dir, 'after.txt'), 'utf8')).toBe(fs.readFileSync(path.join(dir, 'before.txt'), 'utf8'));
    expect(fs.readFileSync(path.join(dir, 'ls.txt'), 'utf8').trim().split('\n')).toEqual(['90-hold', 'course.html', 'index.html']);
    expect(fs.readFileSync(path.join(dir, 'stdout.txt'), 'utf8')).not.toMatch(/held for|H1|Evidence:/);
    const errs = fs
      .readFileSync(path.join(dir, 'stderr.txt'), 'utf8')
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('twlab: running'));
    expect(errs[0]).toMatch(
      /^twlab: lab 90 hold failed: no space left on device while writing its evidence( \(\S+\))?: nothing of this run was kept; its earlier evidence is left as it was$/,
    );
    expect(errs.slice(1)).toEqual([expect.stringMatching(/^twlab: \S+index\.html could not be written \(no space left on device\)$/)]);
    expect(fs.readFileSync(path.join(dir, 'stderr.txt'), 'utf8')).not.toMatch(/\n\s+at /);
  });

  it('room for the evidence but not its report: the evidence is saved and said to be; the report and index are said not to be; no temporaries', () => {
    const dir = tmpDir('fullinodes');
    // tmpfs inodes: the root, captures/, the staging folder and its four files — none left for the report
    const r = inMountNamespace(`mkdir -p "${dir}/mnt" && mount -t tmpfs -o size=4m,nr_inodes=7 twlab-test "${dir}/mnt" || exit 9
      "$NODE" "$CLI" ${quick} --out "${dir}/mnt/captures" > "${dir}/stdout.txt" 2> "${dir}/stderr.txt"; echo $? > "${dir}/code.txt"
      (cd "${dir}/mnt/captures" && find . | sort) > "${dir}/files.txt"`);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'code.txt'), 'utf8').trim()).toBe('1');
    expect(fs.readFileSync(path.join(dir, 'files.txt'), 'utf8').trim().split('\n')).toEqual([
      '.',
      './90-hold',
      './90-hold/hold.pcap',
      './90-hold/hold.pcapng',
      './90-hold/result.json',
      './90-hold/timeline.json',
    ]);
    expect(fs.readFileSync(path.join(dir, 'stdout.txt'), 'utf8')).toMatch(
      /Evidence: \S+90-hold\/ \(result\.json, timeline\.json, hold\.pcap, hold\.pcapng\)\n/,
    );
    const errs = fs
      .readFileSync(path.join(dir, 'stderr.txt'), 'utf8')
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('twlab: running'));
    expect(errs).toEqual([
      expect.stringMatching(
        /^twlab: lab 90 hold: its evidence is saved, but its report\.html could not be written \(ENOSPC: no space left on device/,
      ),
      expect.stringMatching(/^twlab: \S+index\.html could not be written \(no space left on device\); the evidence of 90 is saved$/),
    ]);
  });
});
