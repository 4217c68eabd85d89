// pcap writer and reader, and the per-frame listing of `twlab show`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatListing, listFrames } from '../src/capture/listing';
import { LINKTYPE_ETHERNET, parsePcap, PcapError, PcapWriter, readPcap } from '../src/capture/pcap';
import { emitTcpFrame } from '../src/wire/frame';
import { seq } from '../src/wire/seq';
import { flags } from '../src/wire/tcp';
import { removeTmpDirs, tmpDir } from './helpers';

afterAll(removeTmpDirs);

function tcp(src: string, dst: string, sp: number, dp: number, s: number, a: number, f: string, payload = ''): Uint8Array {
  return emitTcpFrame(src, dst, { srcPort: sp, dstPort: dp, seq: seq(s), ack: seq(a), flags: flags(f), window: 512, urgent: 0, options: [], payload: Buffer.from(payload) });
}

function handshakeCapture(): { file: string; dir: string } {
  const dir = tmpDir('pcap');
  const file = path.join(dir, 'hs.pcap');
  const w = new PcapWriter(file);
  const t0 = 1_700_000_000_000_000;
  w.write(t0, tcp('192.0.2.1', '192.0.2.2', 40000, 80, 1000, 0, 'syn'));
  w.write(t0 + 1500, tcp('192.0.2.2', '192.0.2.1', 80, 40000, 5000, 1001, 'syn,ack'));
  w.write(t0 + 2000, tcp('192.0.2.1', '192.0.2.2', 40000, 80, 1001, 5001, 'ack'));
  w.write(t0 + 3000, tcp('192.0.2.1', '192.0.2.2', 40000, 80, 1001, 5001, 'psh,ack', 'hello'));
  w.write(t0 + 4000, tcp('192.0.2.2', '192.0.2.1', 80, 40000, 5001, 1006, 'rst,ack'));
  w.close();
  return { file, dir };
}

describe('pcap', () => {
  it('round-trips frames with microsecond times, LINKTYPE_RAW', () => {
    const { file, dir } = handshakeCapture();
    const p = readPcap(file);
    expect(p.linkType).toBe(101);
    expect(p.nanosecond).toBe(false);
    expect(p.records.map((r) => r.timeUs - p.records[0]!.timeUs)).toEqual([0, 1500, 2000, 3000, 4000]);
    expect(p.records.map((r) => r.number)).toEqual([1, 2, 3, 4, 5]);
    fs.rmSync(dir, { recursive: true });
  });

  it('a frame cut by a snaplen keeps its original length, and the flow analysis counts its bytes', async () => {
    const { analyzeTcp } = await import('../src/capture/flows');
    const { tcpHeadersLength } = await import('../src/wire/frame');
    const file = path.join(tmpDir('snapped'), 'snapped.pcap');
    const w = new PcapWriter(file);
    const frame = emitTcpFrame('192.0.2.1', '192.0.2.2', { srcPort: 80, dstPort: 40000, seq: seq(1), ack: seq(1), flags: flags('ack'), window: 512, urgent: 0, options: [], payload: new Uint8Array(60000) });
    const h = tcpHeadersLength(frame)!;
    w.write(1_000_000, frame.subarray(0, h), frame.length);
    w.close();
    const [rec] = readPcap(file).records;
    expect([rec!.data.length, rec!.origLength]).toEqual([40, frame.length]);
    const flows = analyzeTcp(readPcap(file));
    expect(flows.other).toEqual([]);
    expect(flows.segments[0]!.len).toBe(60000);
    expect(flows.directions['192.0.2.1:80>192.0.2.2:40000']!.bytes).toBe(60000);
  });
  it('every frame is on disk as soon as it is written (a killed run leaves a readable capture)', () => {
    const dir = tmpDir('flush');
    const file = path.join(dir, 'live.pcap');
    const w = new PcapWriter(file);
    w.write(1e15, tcp('192.0.2.1', '192.0.2.2', 1, 2, 3, 4, 'syn'));
    expect(readPcap(file).records.length).toBe(1); // read while the writer is still open
    w.close();
    fs.rmSync(dir, { recursive: true });
  });

  it('reads nanosecond and big-endian pcaps', () => {
    const frame = tcp('192.0.2.1', '192.0.2.2', 1, 2, 3, 4, 'syn');
    const h = Buffer.alloc(24 + 16 + frame.length);
    h.writeUInt32BE(0xa1b23c4d, 0);
    h.writeUInt16BE(2, 4);
    h.writeUInt16BE(4, 6);
    h.writeUInt32BE(65535, 16);
    h.writeUInt32BE(101, 20);
    h.writeUInt32BE(10, 24);
    h.writeUInt32BE(123456789, 28);
    h.writeUInt32BE(frame.length, 32);
    h.writeUInt32BE(frame.length, 36);
    h.set(frame, 40);
    const p = parsePcap(h);
    expect(p.nanosecond).toBe(true);
    expect(p.records[0]!.timeUs).toBe(10_123_456);
  });

  it.each([
    ['empty file', Buffer.alloc(0), 'PCAP_TRUNCATED'],
    ['not a pcap', Buffer.from('hello, this is not a capture file'), 'PCAP_BAD_MAGIC'],
    ['pcapng', Buffer.from('0a0d0d0a000000000000000000000000000000000000000000000000', 'hex'), 'PCAP_PCAPNG'],
  ])('rejects %s with a typed one-line error', (_n, bytes, code) => {
    try {
      parsePcap(bytes, 'x.pcap');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PcapError);
      expect((e as PcapError).code).toBe(code);
      expect((e as Error).message).not.toContain('\n');
    }
  });

  it('a truncated last frame: every whole frame before it, and one warning naming it', () => {
    const { file, dir } = handshakeCapture();
    const bytes = fs.readFileSync(file);
    const cut = parsePcap(bytes.subarray(0, bytes.length - 3), 'cut.pcap');
    expect(cut.records.map((r) => r.number)).toEqual([1, 2, 3, 4]);
    expect(cut.warnings).toEqual(['cut.pcap: frame 5 truncated (37 of 40 bytes); showing the 4 whole frames before it']);
    const inHeader = parsePcap(bytes.subarray(0, 24 + 16 + 40 + 10), 'cut2.pcap');
    expect(inHeader.records).toHaveLength(1);
    expect(inHeader.warnings[0]).toMatch(/^cut2.pcap: frame 2 cut short in its record header at byte 80 \(10 of 16 bytes\)/);
    expect(parsePcap(bytes).warnings).toEqual([]);
    fs.rmSync(dir, { recursive: true });
  });

  it('unwraps Ethernet captures (tcpdump -i eth0 -w)', () => {
    const ip = tcp('192.0.2.1', '192.0.2.2', 1, 2, 3, 4, 'syn');
    const eth = Buffer.concat([Buffer.alloc(12), Buffer.from([0x08, 0x00]), ip]);
    const rows = listFrames({ format: 'pcap', linkType: LINKTYPE_ETHERNET, nanosecond: false, snaplen: 65535, warnings: [], records: [{ number: 1, timeUs: 0, data: eth, origLength: eth.length, linkType: LINKTYPE_ETHERNET }] });
    expect(rows[0]!.summary).toMatch(/^TCP \[SYN\] seq=0/);
  });
});

describe('twlab show listing', () => {
  it('prints time, direction, flags, relative seq/ack and length', () => {
    const { file, dir } = handshakeCapture();
    const lines = formatListing(listFrames(readPcap(file)));
    expect(lines).toEqual([
      '  No.    Time (s)  Dir  Source             Destination      Info',
      '    1    0.000000  K→P  192.0.2.1:40000 →  192.0.2.2:80     TCP [SYN] seq=0 win=512 len=0',
      '    2    0.001500  P→K  192.0.2.2:80    →  192.0.2.1:40000  TCP [SYN,ACK] seq=0 ack=1 win=512 len=0',
      '    3    0.002000  K→P  192.0.2.1:40000 →  192.0.2.2:80     TCP [ACK] seq=1 ack=1 win=512 len=0',
      '    4    0.003000  K→P  192.0.2.1:40000 →  192.0.2.2:80     TCP [PSH,ACK] seq=1 ack=1 win=512 len=5',
      '    5    0.004000  P→K  192.0.2.2:80    →  192.0.2.1:40000  TCP [RST,ACK] seq=1 ack=6 win=512 len=0',
    ]);
    fs.rmSync(dir, { recursive: true });
  });
});
