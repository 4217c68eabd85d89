// Shared by the test files: run the CLI, run a scenario in a fresh namespace, look for leftovers.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..');
export const CLI = path.join(ROOT, 'bin', 'twlab.js');
export const DIST = path.join(ROOT, 'dist');
export const FIXTURE_LABS = path.join(DIST, 'test', 'fixtures', 'labs');

export const isRoot = process.geteuid?.() === 0;

/**
 * Privileged tests need root (namespaces, TUN). Outside CI they are skipped without it; under
 * CI=true a privileged test that cannot run is a failure, never a skip.
 */
export function privileged(): boolean {
  if (!isRoot && process.env.CI) throw new Error('privileged tests must run in CI, but this process is not root');
  return isRoot;
}

export function assertBuilt(): void {
  if (!fs.existsSync(path.join(DIST, 'src', 'cli', 'main.js')) || !fs.existsSync(path.join(DIST, 'test', 'ns', 'entry.js'))) {
    throw new Error('dist/ is missing: run the tests with `npm test` (it compiles first)');
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): CliResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 1 << 28, // lab 01's results on two systems are several MB of JSON
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs test/ns/scenarios.ts[name] in a fresh network namespace and returns what it measured. */
export async function inNamespace<T = Record<string, unknown>>(name: string, input: Record<string, unknown> = {}): Promise<T> {
  assertBuilt();
  const child = spawn(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      'unshare',
      '--net',
      '--',
      process.execPath,
      path.join(DIST, 'test', 'ns', 'entry.js'),
      name,
      JSON.stringify(input),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, UV_THREADPOOL_SIZE: '16' },
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`scenario ${name} failed (exit ${code}): ${stderr.trim()}`);
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as T;
}

const made: string[] = [];

/** A fresh temporary folder; removeTmpDirs() (in afterAll) removes every one this file made. */
export function tmpDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twlab-test-${prefix}-`));
  made.push(dir);
  return dir;
}

export function removeTmpDirs(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

export { pidAlive } from '../src/host/pid';

/** Network-namespace inode of a process, or null if it is gone. */
export function netnsOf(pid: number): number | null {
  try {
    return fs.statSync(`/proc/${pid}/ns/net`).ino;
  } catch {
    return null;
  }
}

/** Live pids (other than this one) for which `test` holds; a process that vanishes meanwhile is skipped. */
function pidsWhere(test: (pid: number) => boolean): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (test(Number(name))) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

/** Every live process whose network namespace is `ino`. */
export function processesInNetns(ino: number): number[] {
  return pidsWhere((pid) => netnsOf(pid) === ino);
}

/** Pids whose command line contains `needle`. */
export function pidsMatching(needle: string): number[] {
  return pidsWhere((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(needle));
}

export function childrenOf(parent: number): number[] {
  return pidsWhere((pid) => {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
  });
}

export async function waitFor<T>(what: string, probe: () => T | null | undefined | false, timeoutMs = 20_000, stepMs = 50): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export function hasTool(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}
