// A new user's first commands in a fresh clone, in the order they may type them (issue 23):
// `npx twlab list` before `npm install` must print one line saying what to do and leave nothing
// behind that breaks a later command; after `npm install`, `npx twlab`, `npm exec twlab` and a
// global `npm link` all run twlab. npm gets a private cache (and a private global prefix) in a
// temporary folder, so the machine's own ~/.npm is never touched. The clone is of the committed
// tree (what a user clones), and its `npm install` fetches the dependencies from the registry.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, hasTool, removeTmpDirs, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const canClone = hasTool('git') && fs.existsSync(path.join(ROOT, '.git'));
if (!canClone && process.env.CI) throw new Error('the fresh-clone test needs git and a git checkout');

/** The environment of a user's shell: none of the npm_* variables `npm test` gave this process. */
function userEnv(cache: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  return {
    ...env,
    npm_config_cache: cache,
    npm_config_update_notifier: 'false',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    ...extra,
  };
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 120_000) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  const lines = (s: string | null): string[] => (s ?? '').split('\n').filter((l) => l.trim() !== '');
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', errLines: lines(r.stderr), error: r.error };
}

/** npx's cache folder for a local directory: the first 16 hex digits of the SHA-512 of its path (libnpmexec). */
const npxDir = (cache: string, dir: string): string =>
  path.join(cache, '_npx', createHash('sha512').update(dir).digest('hex').slice(0, 16));

const LAB_LIST = /^01\s+bind-matrix\s/m;

describe.skipIf(!canClone)('a fresh clone, commands in any order', () => {
  it('npx twlab list before npm install prints one line naming the fix; after npm install, npx, npm exec and npm link each run twlab', {
    timeout: 900_000,
  }, () => {
    const dir = fs.realpathSync(tmpDir('clone'));
    const repo = path.join(dir, 'twlab');
    const cache = path.join(dir, 'npm-cache');
    expect(run('git', ['clone', '--quiet', ROOT, repo], dir, process.env).code).toBe(0);
    const env = userEnv(cache);

    // 1. before installing: one line, what to do; no stack trace, no npm error
    const before = run('npx', ['twlab', 'list'], repo, env);
    expect(before.code).not.toBe(0);
    expect(before.stdout).toBe('');
    expect(before.errLines).toEqual([
      `twlab: not installed yet; run \`npm install\` in ${repo} first (it installs the dependencies and builds twlab)`,
    ]);
    // npx's cache entry for this clone is whole (the half-made one of issue 23 had no package.json)
    expect(fs.existsSync(path.join(npxDir(cache, repo), 'package.json'))).toBe(true);
    // and the machine's own cache has none
    expect(fs.existsSync(npxDir(path.join(os.homedir(), '.npm'), repo))).toBe(false);

    // 2. the README's install
    const install = run('npm', ['install'], repo, env, 840_000);
    expect(install.code, install.stderr.slice(-2000)).toBe(0);

    // 3. the same command again now lists the labs
    const after = run('npx', ['twlab', 'list'], repo, env);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toMatch(LAB_LIST);

    // 4. npm exec, and a first npx after the install (a cache that never saw this clone): no rebuild, the list
    const exec = run('npm', ['exec', '--', 'twlab', 'list'], repo, env);
    expect([exec.code, exec.stdout]).toEqual([0, expect.stringMatching(LAB_LIST)]);
    const fresh = run('npx', ['twlab', 'list'], repo, userEnv(path.join(dir, 'npm-cache-2')));
    expect([fresh.code, fresh.stdout]).toEqual([0, expect.stringMatching(LAB_LIST)]);

    // 5. a global link (into a private prefix): `twlab` from anywhere
    const prefix = path.join(dir, 'prefix');
    const link = run('npm', ['link'], repo, userEnv(cache, { npm_config_prefix: prefix }));
    expect(link.code, link.stderr).toBe(0);
    const linked = run(path.join(prefix, 'bin', 'twlab'), ['list'], dir, env);
    expect([linked.code, linked.stdout]).toEqual([0, expect.stringMatching(LAB_LIST)]);
  });
});
