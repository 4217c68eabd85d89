// pcap writer and reader, and the per-frame listing of `twlab show`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatListing, listFrames } from '../src/capture/listing';
import { analyzeTcp } from '../src/capture/flows';
import { LINKTYPE_ETHERNET, parsePcap, PcapError, PcapngWriter, PcapWriter, readPcap } from '../src/capture/pcap';
import { emitTcpFrame } from '../src/wire/frame';
import { seq } from '../src/wire/seq';
import { flags } from '../src/wire/tcp';
import { removeTmpDirs, tmpDir } from './helpers';

afterAll(removeTmpDirs);

function tcp(src: string, dst: string, sp: number, dp: number, s: number, a: number, f: string, payload = ''): Uint8Array {
  return emitTcpFrame(src, dst, {
    srcPort: sp,
    dstPort: dp,
    seq: seq(s),
    ack: seq(a),
    flags: flags(f),
    window: 512,
    urgent: 0,
    options: [],
    payload: Buffer.from(payload),
  });
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

// ---- pcapng built by hand, block by block (pcapng spec, draft-ietf-opsawg-pcapng)
type Order = 'le' | 'be';
const w32 = (o: Order, n: number): Buffer => {
  const b = Buffer.alloc(4);
  if (o === 'le') b.writeUInt32LE(n >>> 0);
  else b.writeUInt32BE(n >>> 0);
  return b;
};
const w16 = (o: Order, n: number): Buffer => {
  const b = Buffer.alloc(2);
  if (o === 'le') b.writeUInt16LE(n);
  else b.writeUInt16BE(n);
  return b;
};
const padded = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
function blk(o: Order, type: number, body: Buffer): Buffer {
  const total = 12 + body.length;
  return Buffer.concat([w32(o, type), w32(o, total), body, w32(o, total)]);
}
const opt = (o: Order, code: number, value: Buffer): Buffer => Buffer.concat([w16(o, code), w16(o, value.length), padded(value)]);
const shb = (o: Order): Buffer => blk(o, 0x0a0d0d0a, Buffer.concat([w32(o, 0x1a2b3c4d), w16(o, 1), w16(o, 0), Buffer.alloc(8, 0xff)]));
const idb = (o: Order, linkType: number, tsresol?: number): Buffer =>
  blk(
    o,
    1,
    Buffer.concat([
      w16(o, linkType),
      w16(o, 0),
      w32(o, 262144),
      ...(tsresol === undefined ? [] : [opt(o, 9, Buffer.of(tsresol)), Buffer.alloc(4)]),
    ]),
  );
const epb = (o: Order, iface: number, high: number, low: number, data: Buffer, comment?: string): Buffer =>
  blk(
    o,
    6,
    Buffer.concat([
      w32(o, iface),
      w32(o, high),
      w32(o, low),
      w32(o, data.length),
      w32(o, data.length),
      padded(data),
      ...(comment ? [opt(o, 1, Buffer.from(comment)), Buffer.alloc(4)] : []),
    ]),
  );
const spb = (o: Order, data: Buffer): Buffer => blk(o, 3, Buffer.concat([w32(o, data.length), padded(data)]));
const pcapng = (_o: Order, blocks: Buffer[]): Buffer => Buffer.concat(blocks);

describe('pcapng', () => {
  const syn = tcp('192.0.2.1', '192.0.2.2', 40000, 80, 1000, 0, 'syn');
  const synAck = tcp('192.0.2.2', '192.0.2.1', 80, 40000, 5000, 1001, 'syn,ack');
  const ack = tcp('192.0.2.1', '192.0.2.2', 40000, 80, 1001, 5001, 'ack');
  for (const o of ['le', 'be'] as const) {
    it(`${o === 'le' ? 'little' : 'big'}-endian: interfaces of different link types and time resolutions, every packet block kind, unknown blocks skipped, two sections`, () => {
      const eth = (ip: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(12), Buffer.from([0x08, 0x00]), ip]);
      const t = 1_700_000_000_123_456; // µs
      const ns = BigInt(t) * 1000n + 789n;
      const file = pcapng(o, [
        shb(o),
        idb(o, 101), // raw IP, microseconds (the default)
        idb(o, 1, 9), // Ethernet, nanoseconds
        blk(o, 4, Buffer.alloc(8)), // a name resolution block: skipped
        epb(o, 0, Math.floor(t / 2 ** 32), t % 2 ** 32, Buffer.from(syn), 'a comment'),
        epb(o, 1, Number(ns >> 32n), Number(ns & 0xffffffffn), eth(synAck)),
        blk(o, 0x80000001, Buffer.alloc(16)), // a custom block: skipped
        spb(o, Buffer.from(ack)), // no timestamp of its own
        shb(o), // a second section: its own interfaces
        idb(o, 101, 0x80 | 10), // 2^-10 s units
        epb(o, 0, 0, 1024 * 5, Buffer.from(ack)),
      ]);
      const p = parsePcap(file, 'x.pcapng');
      expect(p.format).toBe('pcapng');
      expect(p.linkType).toBe(101);
      expect(p.warnings).toEqual([]);
      expect(p.records.map((r) => [r.number, r.linkType, r.timeUs])).toEqual([
        [1, 101, t],
        [2, 1, t],
        [3, 101, t],
        [4, 101, 5_000_000],
      ]);
      expect(Buffer.from(p.records[1]!.data.subarray(14)).equals(Buffer.from(synAck))).toBe(true);
      const flows = analyzeTcp(p);
      expect(flows.segments.map((s) => s.flags)).toEqual(['SYN', 'SYN,ACK', 'ACK', 'ACK']);
    });
  }
  it('a pcapng cut short mid-frame: the whole frames, and one warning', () => {
    const second = epb('le', 0, 0, 2, Buffer.from(synAck));
    const file = pcapng('le', [shb('le'), idb('le', 101), epb('le', 0, 0, 1, Buffer.from(syn)), second]);
    const cut = parsePcap(file.subarray(0, file.length - 10), 'cut.pcapng');
    expect(cut.records).toHaveLength(1);
    expect(cut.warnings).toEqual([
      `cut.pcapng: frame 2 truncated at byte ${file.length - second.length} (${second.length - 10} of ${second.length} bytes); showing the 1 whole frame before it`,
    ]);
  });
  it("a block shorter than its type's fixed part, or whose two lengths disagree, is one error naming the block and its offset (never a RangeError)", () => {
    const o = 'le';
    const head = Buffer.concat([shb(o), idb(o, 101)]);
    const frame = epb(o, 0, 0, 1, Buffer.from(syn));
    /** a block of `type` whose both length fields say `total`, filled with zeros */
    const short = (type: number, total: number): Buffer =>
      Buffer.concat([w32(o, type), w32(o, total), Buffer.alloc(Math.max(0, total - 12)), w32(o, total)]);
    const cases: Array<[string, Buffer, RegExp]> = [
      [
        'an enhanced packet block of 28 bytes',
        Buffer.concat([head, frame, short(6, 28)]),
        /enhanced packet block at byte \d+ is 28 bytes, shorter than its 32-byte fixed part/,
      ],
      [
        'an enhanced packet block of 12 bytes',
        Buffer.concat([head, short(6, 12)]),
        /enhanced packet block at byte 48 is 12 bytes, shorter than its 32-byte fixed part/,
      ],
      [
        'an obsolete packet block of 24 bytes',
        Buffer.concat([head, short(2, 24)]),
        /obsolete packet block at byte 48 is 24 bytes, shorter than its 32-byte fixed part/,
      ],
      [
        'an interface description block of 16 bytes',
        Buffer.concat([shb(o), short(1, 16)]),
        /interface description block at byte 28 is 16 bytes, shorter than its 20-byte fixed part/,
      ],
      [
        'a simple packet block of 12 bytes',
        Buffer.concat([head, short(3, 12)]),
        /simple packet block at byte 48 is 12 bytes, shorter than its 16-byte fixed part/,
      ],
      [
        'a section header of 24 bytes',
        Buffer.concat([w32(o, 0x0a0d0d0a), w32(o, 24), w32(o, 0x1a2b3c4d), Buffer.alloc(12)]),
        /section header at byte 0 claims 24 bytes, shorter than its 28-byte fixed part/,
      ],
      ['a block of 10 bytes', Buffer.concat([head, short(4, 10)]), /block of type 0x4 at byte 48 claims 10 bytes \(not a multiple of 4\)/],
      [
        'lengths that disagree',
        Buffer.concat([head, frame.subarray(0, frame.length - 4), w32(o, frame.length + 4)]),
        /enhanced packet block at byte 48: its length fields disagree \(\d+ at the start, \d+ at the end\)/,
      ],
      [
        'an interface option running past its block',
        Buffer.concat([
          shb(o),
          blk(o, 1, Buffer.concat([w16(o, 101), w16(o, 0), w32(o, 65535), w16(o, 14), w16(o, 200), Buffer.alloc(8)])),
        ]),
        /interface description block at byte 28: option 14 of 200 bytes runs past the block/,
      ],
    ];
    for (const [what, bytes, message] of cases) {
      let err: unknown = null;
      try {
        parsePcap(bytes, 'bad.pcapng');
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeInstanceOf(PcapError);
      expect((err as PcapError).code, what).toBe('PCAP_BAD_RECORD');
      expect((err as Error).message, what).toMatch(/^bad\.pcapng: /);
      expect((err as Error).message, what).toMatch(message);
    }
  });
  it('a record that claims more bytes than the file holds is not read into memory: the frames before it, and one warning', () => {
    const file = path.join(tmpDir('ng'), 'claims.pcapng');
    const big = Buffer.concat([w32('le', 6), w32('le', 60 << 20)]);
    fs.writeFileSync(file, Buffer.concat([shb('le'), idb('le', 101), epb('le', 0, 0, 1, Buffer.from(syn)), big, Buffer.alloc(100)]));
    const before = process.memoryUsage().arrayBuffers;
    const p = readPcap(file);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 << 20);
    expect(p.records).toHaveLength(1);
    expect(p.warnings[0]).toMatch(/frame 2 truncated at byte \d+ \(108 of 62914560 bytes\); showing the 1 whole frame before it/);
  });
  it('twlab writes an annotated pcapng that reads back with its frames, times and original lengths', () => {
    const file = path.join(tmpDir('ng'), 'marks.pcapng');
    const w = new PcapngWriter(file);
    w.write(1_700_000_000_000_001, syn, syn.length, 'SYN');
    w.write(1_700_000_000_000_002, ack.subarray(0, 40), 1500);
    w.close();
    const p = readPcap(file);
    expect(p.records.map((r) => [r.timeUs, r.data.length, r.origLength])).toEqual([
      [1_700_000_000_000_001, syn.length, syn.length],
      [1_700_000_000_000_002, 40, 1500],
    ]);
  });
});

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
    const frame = emitTcpFrame('192.0.2.1', '192.0.2.2', {
      srcPort: 80,
      dstPort: 40000,
      seq: seq(1),
      ack: seq(1),
      flags: flags('ack'),
      window: 512,
      urgent: 0,
      options: [],
      payload: new Uint8Array(60000),
    });
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
    [
      'a pcapng with a bad byte-order magic',
      Buffer.from('0a0d0d0a1c00000011223344010000000000000000000000000000001c000000', 'hex'),
      'PCAP_BAD_MAGIC',
    ],
    ['a pcapng frame naming a missing interface', pcapng('le', [shb('le'), epb('le', 3, 0, 0, Buffer.alloc(20))]), 'PCAP_BAD_RECORD'],
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
    const rows = listFrames({
      format: 'pcap',
      linkType: LINKTYPE_ETHERNET,
      nanosecond: false,
      snaplen: 65535,
      warnings: [],
      records: [{ number: 1, timeUs: 0, data: eth, origLength: eth.length, linkType: LINKTYPE_ETHERNET }],
    });
    expect(rows[0]!.summary).toMatch(/^TCP \[SYN\] seq=0/);
  });
});

describe('twlab show listing', () => {
  it('prints time, direction, flags, relative seq/ack, length and a payload that reads as text', () => {
    const { file, dir } = handshakeCapture();
    const lines = formatListing(listFrames(readPcap(file)));
    expect(lines).toEqual([
      '  No.    Time (s)  Dir  Source             Destination      Info',
      '    1    0.000000  K→P  192.0.2.1:40000 →  192.0.2.2:80     TCP [SYN] seq=0 win=512 len=0',
      '    2    0.001500  P→K  192.0.2.2:80    →  192.0.2.1:40000  TCP [SYN,ACK] seq=0 ack=1 win=512 len=0',
      '    3    0.002000  K→P  192.0.2.1:40000 →  192.0.2.2:80     TCP [ACK] seq=1 ack=1 win=512 len=0',
      '    4    0.003000  K→P  192.0.2.1:40000 →  192.0.2.2:80     TCP [PSH,ACK] seq=1 ack=1 win=512 len=5 "hello"',
      '    5    0.004000  P→K  192.0.2.2:80    →  192.0.2.1:40000  TCP [RST,ACK] seq=1 ack=6 win=512 len=0',
    ]);
    fs.rmSync(dir, { recursive: true });
  });
});
