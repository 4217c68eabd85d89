// The observer of the kernel's own view (/proc/net/tcp{,6}, snmp, netstat): a file it cannot
// read is an error naming the file, never an empty table or no counters; a counter the kernel
// does not have is null, never 0.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { counterChange, counters, ObserverError, parseCounters, socketTable } from '../src/host/observe';
import { removeTmpDirs, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const TCP = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 010200C0:1C20 020200C0:B798 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000',
].join('\n');
const TCP6 =
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const SNMP = 'Tcp: RtoAlgorithm ActiveOpens\nTcp: 1 7\n';
const NETSTAT = 'TcpExt: PAWSEstab TWRecycled\nTcpExt: 2 0\n';

function procDir(files: Record<string, string | null>): string {
  const dir = tmpDir('proc');
  for (const [name, text] of Object.entries(files)) {
    if (text === null)
      fs.mkdirSync(path.join(dir, name)); // a directory where the file should be: EISDIR
    else fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

describe('the socket table', () => {
  it('reads a TIME_WAIT entry with its timer', () => {
    const [e] = socketTable(procDir({ tcp: TCP, tcp6: TCP6 }));
    expect(e).toMatchObject({
      state: 'TIME_WAIT',
      local: { address: '192.0.2.1', port: 7200 },
      remote: { address: '192.0.2.2', port: 47000 },
      timer: 'time-wait',
      timerMs: 60_000,
    });
  });
  it('an unreadable table is an error naming the file, not an empty table', () => {
    const missing = procDir({ tcp6: TCP6 });
    expect(() => socketTable(missing)).toThrow(ObserverError);
    expect(() => socketTable(missing)).toThrow(`the kernel's socket table could not be read: ${path.join(missing, 'tcp')}: ENOENT`);
    const isDir = procDir({ tcp: null, tcp6: TCP6 });
    expect(() => socketTable(isDir)).toThrow(/tcp: EISDIR/);
    // the IPv6 table is read as strictly
    expect(() => socketTable(procDir({ tcp: TCP }))).toThrow(/tcp6: ENOENT/);
  });
  it('a table without its header line was not read whole: an error', () => {
    expect(() => socketTable(procDir({ tcp: TCP.split('\n')[1]!, tcp6: TCP6 }))).toThrow(/tcp: no header line/);
    expect(() => socketTable(procDir({ tcp: '', tcp6: TCP6 }))).toThrow(/tcp: no header line \(read 0 bytes\)/);
  });
  it("this process's namespace reads (the real files)", () => {
    expect(Array.isArray(socketTable())).toBe(true);
  });
});

describe('the counters', () => {
  it('reads header/value pairs', () => {
    expect(counters(procDir({ snmp: SNMP, netstat: NETSTAT }))).toEqual({
      'Tcp.RtoAlgorithm': 1,
      'Tcp.ActiveOpens': 7,
      'TcpExt.PAWSEstab': 2,
      'TcpExt.TWRecycled': 0,
    });
  });
  it('an unreadable file is an error naming it, never {}', () => {
    const dir = procDir({ snmp: SNMP });
    expect(() => counters(dir)).toThrow(`the kernel's counters could not be read: ${path.join(dir, 'netstat')}: ENOENT`);
    expect(() => counters(procDir({ snmp: null, netstat: NETSTAT }))).toThrow(/snmp: EISDIR/);
  });
  it('text that is not header/value pairs is an error, never counters made up or left out', () => {
    expect(() => parseCounters('', 'netstat')).toThrow(/netstat: 0 lines/);
    expect(() => parseCounters('TcpExt: A B\n', 'netstat')).toThrow(/1 lines, not header\/value pairs/);
    expect(() => parseCounters('TcpExt: A B\nTcpExt: 1\n', 'netstat')).toThrow(/line 2 does not match its header/);
    expect(() => parseCounters('TcpExt: A B\nIpExt: 1 2\n', 'netstat')).toThrow(/line 2 does not match its header/);
    expect(() => parseCounters('TcpExt: A B\nTcpExt: 1 x\n', 'netstat')).toThrow(/TcpExt.B is "x"/);
  });
  it('a counter the kernel does not have changes by null, not by 0', () => {
    const before = { 'TcpExt.PAWSEstab': 3 };
    expect(counterChange(before, { 'TcpExt.PAWSEstab': 5 }, 'TcpExt.PAWSEstab')).toBe(2);
    expect(counterChange(before, { 'TcpExt.PAWSEstab': 3 }, 'TcpExt.PAWSEstab')).toBe(0);
    expect(counterChange(before, { 'TcpExt.PAWSEstab': 3 }, 'TcpExt.TCPTimeWaitOverflow')).toBeNull();
    expect(counterChange({}, { 'TcpExt.PAWSEstab': 3 }, 'TcpExt.PAWSEstab')).toBeNull();
  });
  it("this process's namespace has the counters the labs need", () => {
    const c = counters();
    for (const name of [
      'TcpExt.PAWSEstab',
      'TcpExt.TCPChallengeACK',
      'TcpExt.TCPTimeWaitOverflow',
      'TcpExt.TWRecycled',
      'TcpExt.TCPAbortOnClose',
    ])
      expect(c, name).toHaveProperty([name]);
  });
});
