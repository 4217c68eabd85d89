// Ladders of a capture twlab did not write (kernel-to-kernel connections on loopback, captured by
// tcpdump): the ends named client and server, their states inferred from the segments and said
// to be, the loopback's offloaded checksums not flagged bad, the window in bytes, a payload
// snippet, and every line within 80 columns.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST, hasTool, privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();
const tools = hasTool('tcpdump');
if (!tools && process.env.CI) throw new Error('tcpdump is needed: .ci/run installs it');

describe.skipIf(!run || !tools)('twlab show on a loopback capture made by tcpdump', () => {
  let file: string;
  let ports: Record<string, number>;
  beforeAll(() => {
    const dir = tmpDir('foreign');
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
        'micro',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    ({ file, ports } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { file: string; ports: Record<string, number> });
  }, 90_000);

  it('the ladder names the ends client and server and infers their states: the client that closed first holds TIME-WAIT', () => {
    const r = runCli(['show', file, '--conn', '1']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^\s+client\s+server$/);
    expect(lines[1]).toMatch(new RegExp(`127\\.0\\.0\\.1:\\d+\\s+127\\.0\\.0\\.1:${ports.orderly}$`));
    // the client's states down the left, the server's down the right, in the order they came
    const left = lines.map((l) => /^\s+#\d+\s+[\d.]+\s+(\S+)\s+│/.exec(l)?.[1]).filter(Boolean);
    const right = lines.map((l) => /│ ([A-Z][A-Z-]+)\s*$/.exec(l)?.[1]).filter(Boolean);
    expect(left).toEqual(['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'TIME-WAIT']);
    expect(right).toEqual(['SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED']);
    expect(r.stdout).toMatch(/states of both sides inferred from the segments/);
    expect(r.stdout).toContain('"hello"');
  });

  it('fits 80 columns', () => {
    const r = runCli(['show', file]);
    expect(r.code, r.stderr).toBe(0);
    const wide = r.stdout.split('\n').filter((l) => [...l].length > 80);
    expect(wide).toEqual([]);
  });

  it('the listing flags no checksum the loopback left to the device, and gives the window in bytes with the field beside it', () => {
    const r = runCli(['show', file, '--list']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('BAD-CHECKSUM');
    // the handshake's windows are not scaled; after it, Linux's default shift of 7 on loopback
    expect(r.stdout).toMatch(/\[SYN\] seq=0 win=\d+ len=0/);
    expect(r.stdout).toMatch(/\[ACK\] seq=1 ack=1 win=(\d+) \(field (\d+) ×2\^(\d+)\)/);
    const m = /\[ACK\] seq=1 ack=1 win=(\d+) \(field (\d+) ×2\^(\d+)\)/.exec(r.stdout)!;
    expect(Number(m[1])).toBe(Number(m[2]) * 2 ** Number(m[3]));
  });
});
