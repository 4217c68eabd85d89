// `twlab show` on captures twlab did not write: kernel-to-kernel connections on loopback captured
// by tcpdump (microsecond and nanosecond pcaps) and the same converted to pcapng by editcap.
// The summary must recognise how each connection ended, and every format must read the same.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST, hasTool, privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();
const tools = hasTool('tcpdump') && hasTool('editcap');
if (!tools && process.env.CI) throw new Error('tcpdump and editcap are needed: .ci/run installs them');

interface Capture {
  file: string;
  ports: Record<'orderly' | 'abort' | 'refused' | 'unread' | 'reuse', number>;
}

function capture(dir: string, precision: 'micro' | 'nano'): Capture {
  const r = spawnSync(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      'unshare',
      '--net',
      '--',
      process.execPath,
      path.join(DIST, 'test', 'ns', 'kernel-captures.js'),
      dir,
      precision,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Capture;
}

/** The summary line of the connection to `port`, and its explanation lines. */
function connection(summary: string, port: number): string {
  const lines = summary.split('\n');
  const i = lines.findIndex((l) => /^\s*\d+\s/.test(l) && l.includes(`127.0.0.1:${port} `));
  expect(i, `no connection to port ${port} in:\n${summary}`).toBeGreaterThanOrEqual(0);
  const out = [lines[i]!];
  for (let j = i + 1; j < lines.length && /^\s{6}\S/.test(lines[j]!); j++) out.push(lines[j]!);
  return out.join('\n');
}

describe.skipIf(!run || !tools)('twlab show on tcpdump captures of kernel-to-kernel connections', () => {
  let dir: string;
  let micro: Capture;
  let nano: Capture;
  let pcapng: string;
  beforeAll(() => {
    dir = tmpDir('kc');
    micro = capture(dir, 'micro');
    nano = capture(dir, 'nano');
    pcapng = path.join(dir, 'loopback.pcapng');
    const e = spawnSync('editcap', ['-F', 'pcapng', micro.file, pcapng], { encoding: 'utf8' });
    expect(e.status, e.stderr).toBe(0);
  }, 120_000);

  it('--explain recognises each close, with the lab that shows it', () => {
    const r = runCli(['show', micro.file, '--explain']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const p = micro.ports;
    expect(connection(r.stdout, p.orderly)).toMatch(
      /FIN\/FIN .* orderly close\n.*orderly close: 127\.0\.0\.1:\d+ closed first .* holds TIME_WAIT.*twlab run 02/,
    );
    expect(connection(r.stdout, p.abort)).toMatch(/RST from left .* abortive close\n.*instead of closing with FIN.*twlab run 05/);
    expect(connection(r.stdout, p.refused)).toMatch(/connection refused\n.*127\.0\.0\.1:9003 answered .*SYN with RST: nothing listening/);
    expect(connection(r.stdout, p.unread)).toMatch(/closed with received data unread.*twlab run 07/);
    expect(connection(r.stdout, p.reuse)).toMatch(
      /\s2\s+RST from left.*orderly close; four-tuple reused by the side in TIME_WAIT; abortive close[\s\S]*twlab run 04/,
    );
  });

  it('a nanosecond pcap and a pcapng made by editcap read as the same connections', () => {
    const summary = (file: string): string =>
      runCli(['show', file, '--summary'])
        .stdout.replace(/127\.0\.0\.1:\d{5}/g, 'client')
        .replace(/\d+\.\d{3} s/g, 't');
    const a = summary(micro.file);
    expect(summary(nano.file)).toBe(a);
    expect(summary(pcapng)).toBe(a);
    // the ladder of the pcapng is the classic file's, line for line
    const ladder = (file: string): string => runCli(['show', file]).stdout;
    expect(ladder(pcapng)).toBe(ladder(micro.file));
    expect(ladder(pcapng)).toMatch(/RST/);
  });

  it('--conn draws one connection, by number or four-tuple', () => {
    const byNumber = runCli(['show', micro.file, '--conn', '3']);
    expect(byNumber.code, byNumber.stderr).toBe(0);
    expect(byNumber.stdout).toMatch(/127\.0\.0\.1:9003/);
    expect(byNumber.stdout).not.toMatch(/127\.0\.0\.1:9001/);
    const orderly = runCli(['show', micro.file, '--summary'])
      .stdout.split('\n')
      .find((l) => l.includes(':9001 '))!;
    const tuple = /(127\.0\.0\.1:\d+) ↔ (127\.0\.0\.1:\d+)/.exec(orderly)!;
    const byTuple = runCli(['show', micro.file, '--conn', `${tuple[2]}-${tuple[1]}`]);
    expect(byTuple.code, byTuple.stderr).toBe(0);
    expect(byTuple.stdout.match(/FIN,ACK seq/g)?.length).toBe(2);
  });
});
