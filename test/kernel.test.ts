// The native addon against the real kernel, inside fresh namespaces.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { readPcap } from '../src/capture/pcap';
import { parseFrame } from '../src/wire/frame';
import { hasTool, inNamespace, privileged, removeTmpDirs, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();

describe.skipIf(!run)('native addon: syscalls and errno names', () => {
  it('returns { ret, errno } with errno names, never throwing for an errno', async () => {
    const r = await inNamespace('addon-basics');
    expect(r.getReuse).toEqual({ ret: 0, errno: null, value: true });
    expect(r.getLinger).toEqual({ ret: 0, errno: null, value: { onoff: true, seconds: 7 } });
    expect(r.getPortRange).toEqual({ ret: 0, errno: null, value: { lo: 40000, hi: 40010 } });
    expect(r.bindA).toEqual({ ret: 0, errno: null });
    expect(r.infoListening).toBe('LISTEN');
    expect(r.localA).toEqual({ family: 'ipv4', address: '192.0.2.1', port: 7001 });
    expect(r.bindInUse).toEqual({ ret: -1, errno: 'EADDRINUSE' });
    expect(r.bindNotAvail).toEqual({ ret: -1, errno: 'EADDRNOTAVAIL' });
    expect(r.listenUdp).toEqual({ ret: -1, errno: 'EOPNOTSUPP' });
    expect(r.membership).toEqual({ ret: 0, errno: null });
    expect(r.localV6).toEqual({ family: 'ipv6', address: '2001:db8::1', port: 7001 });
    expect(r.badFd).toEqual({ ret: -1, errno: 'EBADF' });
    expect(r.connectRefused).toMatchObject({ ret: -1, errno: 'ECONNREFUSED' });
    expect(r.connect).toMatchObject({ ret: 0, errno: null });
    expect(typeof (r.connect as { elapsedMs: number }).elapsedMs).toBe('number');
    expect(r.infoEstablished).toBe('ESTABLISHED');
    expect(r.recvText).toBe('twlab');
    expect(r.recvTimeout).toMatchObject({ ret: -1, errno: 'ETIMEDOUT' });
    expect(r.recvEof).toMatchObject({ ret: 0, errno: null });
    expect(r.acceptTimeout).toMatchObject({ ret: -1, errno: 'ETIMEDOUT' });
  });
});

describe.skipIf(!run)('blocking calls run on a worker', () => {
  it('close() with SO_LINGER {1,3} waits for the unacknowledged FIN while the event loop keeps running', async () => {
    const r = await inNamespace<{
      close: { ret: number; errno: string | null; elapsedMs: number };
      ticks: number;
      stateAfterConnect: string;
      seen: string[];
    }>('linger-close', { linger: 3 });
    expect(r.stateAfterConnect).toBe('ESTABLISHED');
    // the kernel sent SYN, then the ACK of the handshake, then its FIN (retransmitted: nobody ACKs it)
    expect(r.seen.slice(0, 3)).toEqual(['S', '.', 'F.']);
    expect(r.close.elapsedMs).toBeGreaterThanOrEqual(2900);
    expect(r.close.elapsedMs).toBeLessThan(6000);
    // a 100 ms interval kept firing during the 3 s close: the loop was never blocked
    expect(r.ticks).toBeGreaterThanOrEqual(20);
  });
});

describe.skipIf(!run)('TUN device and capture', () => {
  it('a frame the kernel writes appears on the TUN fd and in the pcap; a frame written in reaches the kernel', async () => {
    const dir = tmpDir('tun');
    const pcap = path.join(dir, 'tun.pcap');
    const r = await inNamespace<{
      quietFrames: number;
      polled: Array<string | undefined>;
      fromKernel: Array<{ kind: string; src: string; dst: string; dstPort?: number; payload?: string; checksumOk?: boolean }>;
      received: { ret: number; text: string };
      captured: number;
    }>('tun-capture', { pcap });
    expect(r.quietFrames).toBe(0);
    expect(r.polled).toEqual(['from the kernel']); // TunLink.poll() read it synchronously
    expect(r.fromKernel).toContainEqual({
      kind: 'udp',
      src: '192.0.2.1',
      dst: '192.0.2.2',
      dstPort: 9,
      payload: 'from the kernel',
      checksumOk: true,
    });
    expect(r.fromKernel).toContainEqual({
      kind: 'udp',
      src: '2001:db8::1',
      dst: '2001:db8::2',
      dstPort: 9,
      payload: 'v6 from the kernel',
      checksumOk: true,
    });
    expect(r.fromKernel.some((f) => f.kind === 'tcp' && f.dstPort === 80)).toBe(true);
    expect(r.fromKernel.every((f) => !f.kind.startsWith('error'))).toBe(true);
    expect(r.received).toMatchObject({ ret: 13, text: 'from the peer' });

    const file = readPcap(pcap);
    expect(file.linkType).toBe(101);
    expect(file.records.length).toBe(r.captured);
    const payloads = file.records
      .map((rec) => parseFrame(rec.data))
      .map((s) => ('kind' in s && s.kind === 'udp' ? Buffer.from(s.udp.payload).toString() : null));
    expect(payloads).toContain('from the kernel');
    expect(payloads).toContain('from the peer');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!hasTool('tshark') && !process.env.CI)('the capture opens in tshark with no malformed frames', async () => {
    const dir = tmpDir('tshark');
    const pcap = path.join(dir, 'tun.pcap');
    await inNamespace('tun-capture', { pcap });
    const t = spawnSync(
      'tshark',
      ['-r', pcap, '-T', 'fields', '-e', 'frame.number', '-e', 'frame.protocols', '-e', '_ws.malformed', '-e', '_ws.expert.severity'],
      { encoding: 'utf8' },
    );
    expect(t.status, t.stderr).toBe(0);
    const rows = t.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    expect(rows.length).toBe(4);
    for (const [num, protocols, malformed] of rows) {
      expect(protocols, `frame ${num}`).toMatch(/^raw:ip(v6)?:(udp|tcp)/);
      expect(malformed ?? '', `frame ${num}`).toBe('');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
