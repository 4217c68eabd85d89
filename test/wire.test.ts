// Pure codecs: addresses, checksums, IP/TCP/UDP round trips, and frames the kernel really sent.
import { describe, expect, it } from 'vitest';
import { formatIPv6, parseAddress, parseIPv4, parseIPv6, formatAddress, isDocumentationAddress } from '../src/wire/address';
import { internetChecksum } from '../src/wire/checksum';
import { isWireError } from '../src/wire/errors';
import { emitTcpFrame, emitUdpFrame, parseFrame, type Segment } from '../src/wire/frame';
import { seq, seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt, seqRelative } from '../src/wire/seq';
import { flags, formatFlags, parseTcp, type TcpRepr } from '../src/wire/tcp';

// Frames read from the TUN device in a lab namespace on Linux 6.18 (test/ns tun-capture):
const KERNEL_SYN =
  '4500003c3bbd400040067afbc0000201c0000202809a00506823682a00000000a002faf0ffac0000020405b40402080a58ef1f34000000000103030a';
const KERNEL_UDP6 =
  '6008abf3001a114020010db800000000000000000000000120010db800000000000000000000000292f10009001a7e5576362066726f6d20746865206b65726e656c';
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

function tcpOf(s: Segment | ReturnType<typeof parseFrame>): Extract<Segment, { kind: 'tcp' }> {
  if (isWireError(s) || s.kind !== 'tcp') throw new Error(`not TCP: ${JSON.stringify(s)}`);
  return s;
}

describe('addresses', () => {
  it('parses and formats IPv4 and IPv6 (RFC 5952)', () => {
    expect(parseIPv4('192.0.2.1')).toEqual(Uint8Array.from([192, 0, 2, 1]));
    expect(parseIPv4('256.0.0.1')).toBeNull();
    expect(parseIPv4('1.2.3')).toBeNull();
    expect(formatIPv6(parseIPv6('2001:0db8:0:0:0:0:0:1')!)).toBe('2001:db8::1');
    expect(formatIPv6(parseIPv6('::')!)).toBe('::');
    expect(formatIPv6(parseIPv6('::ffff:127.0.0.1')!)).toBe('::ffff:127.0.0.1');
    expect(formatIPv6(parseIPv6('2001:db8:0:1:0:0:0:1')!)).toBe('2001:db8:0:1::1');
    expect(parseIPv6('1::2::3')).toBeNull();
    expect(parseIPv6('12345::')).toBeNull();
    expect(() => parseAddress('not-an-ip')).toThrow(/not an IP address/);
    expect(formatAddress(Uint8Array.from([198, 51, 100, 1]))).toBe('198.51.100.1');
  });
  it('knows the documentation ranges twlab may use', () => {
    for (const a of ['192.0.2.1', '198.51.100.200', '2001:db8::2']) expect(isDocumentationAddress(a)).toBe(true);
    for (const a of ['10.0.0.1', '8.8.8.8', '2001:4860::8888', '203.0.113.1']) expect(isDocumentationAddress(a)).toBe(false);
  });
});

describe('sequence numbers wrap modulo 2^32', () => {
  it('compares across the wrap', () => {
    const a = seq(0xfffffff0);
    const b = seqAdd(a, 0x20);
    expect(b).toBe(0x10);
    expect(seqLt(a, b)).toBe(true);
    expect(seqGt(b, a)).toBe(true);
    expect(seqLe(a, a) && seqGe(a, a)).toBe(true);
    expect(seqDiff(b, a)).toBe(0x20);
    expect(seqInRange(seq(2), a, b)).toBe(true);
    expect(seqInRange(b, a, b)).toBe(false);
    expect(seqRelative(b, a)).toBe(0x20);
  });
});

describe('checksums', () => {
  it("accepts 0xffff, one's-complement zero, in the TCP checksum field (Linux sends it)", () => {
    // a bare ACK Linux 6.18 sent with checksum 0xffff (captured in an interop run)
    const s = parseFrame(
      hex(
        '45000040f59c40004006c117c0000201c0000202dabc0050b1697bf694573900b010007bffff00000101080a9ea0abd208c8e61d0101050a94573ea8945745b2',
      ),
    );
    expect(!isWireError(s) && s.kind === 'tcp' && [s.tcp.checksum, s.tcp.checksumOk]).toEqual([0xffff, true]);
  });
  it('computes the RFC 1071 example', () => {
    // RFC 1071 §3: 0001 f203 f4f5 f6f7 → sum ddf2, checksum 220d
    expect(internetChecksum(Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]))).toBe(0x220d);
  });
});

describe('frames the kernel sent', () => {
  it('decodes the kernel SYN: options MSS, SACK-permitted, timestamps, window scale; checksum valid', () => {
    const s = tcpOf(parseFrame(hex(KERNEL_SYN)));
    expect(s.ip).toMatchObject({ version: 4, src: '192.0.2.1', dst: '192.0.2.2', ttl: 64, dontFragment: true });
    expect(s.tcp).toMatchObject({ dstPort: 80, window: 64240, checksumOk: true });
    expect(formatFlags(s.tcp.flags)).toBe('SYN');
    expect(s.tcp.options.filter((o) => o.kind !== 'nop')).toEqual([
      { kind: 'mss', value: 1460 },
      { kind: 'sackPermitted' },
      { kind: 'timestamps', tsval: 0x58ef1f34, tsecr: 0 },
      { kind: 'wscale', shift: 10 },
    ]);
  });
  it('re-emits the kernel SYN byte for byte', () => {
    const s = tcpOf(parseFrame(hex(KERNEL_SYN)));
    const again = emitTcpFrame(s.ip.src, s.ip.dst, s.tcp);
    // our IP header has id 0; compare the TCP part exactly and the IP addresses/protocol
    expect(Buffer.from(again.subarray(20)).toString('hex')).toBe(KERNEL_SYN.slice(40));
  });
  it('decodes a kernel UDP datagram over IPv6 with a valid checksum', () => {
    const s = parseFrame(hex(KERNEL_UDP6));
    if (isWireError(s) || s.kind !== 'udp') throw new Error('not UDP');
    expect(s.ip).toMatchObject({ version: 6, src: '2001:db8::1', dst: '2001:db8::2' });
    expect(Buffer.from(s.udp.payload).toString()).toBe('v6 from the kernel');
    expect(s.udp.checksumOk).toBe(true);
  });
});

describe('round trips', () => {
  const seg: TcpRepr = {
    srcPort: 40000,
    dstPort: 80,
    seq: seq(0xfffffffe),
    ack: seq(7),
    flags: flags('psh,ack'),
    window: 1234,
    urgent: 0,
    options: [
      { kind: 'nop' },
      { kind: 'nop' },
      { kind: 'timestamps', tsval: 1, tsecr: 2 },
      { kind: 'nop' },
      { kind: 'nop' },
      { kind: 'sack', blocks: [[seq(10), seq(20)]] },
    ],
    payload: Buffer.from('hello'),
  };
  for (const [src, dst] of [
    ['192.0.2.2', '192.0.2.1'],
    ['2001:db8::2', '2001:db8::1'],
  ] as const) {
    it(`TCP over ${src.includes(':') ? 'IPv6' : 'IPv4'}`, () => {
      const s = tcpOf(parseFrame(emitTcpFrame(src, dst, seg)));
      expect(s.tcp.checksumOk).toBe(true);
      expect({ ...s.tcp, payload: Buffer.from(s.tcp.payload).toString(), checksum: undefined, checksumOk: undefined }).toEqual({
        ...seg,
        payload: 'hello',
        checksum: undefined,
        checksumOk: undefined,
      });
    });
  }
  it('UDP', () => {
    const s = parseFrame(emitUdpFrame('192.0.2.2', '192.0.2.1', { srcPort: 9, dstPort: 53, payload: Buffer.from('x') }));
    expect(!isWireError(s) && s.kind === 'udp' && s.udp.checksumOk).toBe(true);
  });
  it('keeps unknown options as bytes', () => {
    const withUnknown = { ...seg, options: [{ kind: 'unknown' as const, type: 254, bytes: Uint8Array.from([254, 4, 0xab, 0xcd]) }] };
    const s = tcpOf(parseFrame(emitTcpFrame('192.0.2.2', '192.0.2.1', withUnknown)));
    expect(s.tcp.options[0]).toEqual({ kind: 'unknown', type: 254, bytes: Uint8Array.from([254, 4, 0xab, 0xcd]) });
  });
});

describe('malformed input is a value, not an exception', () => {
  it.each([
    ['empty', ''],
    ['IP version 5', '50'],
    ['truncated IPv4 header', '450000'],
    ['IPv4 total length beyond the frame', KERNEL_SYN.slice(0, 60)],
    ['truncated IPv6 header', '6000'],
  ])('%s', (_name, h) => {
    const r = parseFrame(hex(h));
    expect(isWireError(r)).toBe(true);
  });
  it('a TCP option overrunning the header', () => {
    const b = hex(KERNEL_SYN.slice(40));
    b[b.length - 2] = 40; // wscale option length 40
    const r = parseTcp(b);
    expect(isWireError(r) && r.reason).toMatch(/overruns/);
  });
});

describe('frames cut by a snaplen (tcpdump -s, twlab bulk phases)', () => {
  const seg: TcpRepr = {
    srcPort: 80,
    dstPort: 40000,
    seq: seq(1000),
    ack: seq(2000),
    flags: flags('psh,ack'),
    window: 512,
    urgent: 0,
    options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', tsval: 7, tsecr: 9 }],
    payload: new Uint8Array(1448).fill(5),
  };
  for (const [family, src, dst, ipHeader] of [
    ['IPv4', '192.0.2.1', '192.0.2.2', 20],
    ['IPv6', '2001:db8::1', '2001:db8::2', 40],
  ] as const) {
    it(`${family}: the headers' length, and a cut frame parses with its true payload length`, async () => {
      const { tcpHeadersLength } = await import('../src/wire/frame');
      const frame = emitTcpFrame(src, dst, seg);
      const headers = tcpHeadersLength(frame)!;
      expect(headers).toBe(ipHeader + 32);
      const cut = frame.subarray(0, headers);
      expect(isWireError(parseFrame(cut))).toBe(true); // a whole frame is expected unless told otherwise
      const s = tcpOf(parseFrame(cut, { snapped: true }));
      expect(s.missing).toBe(1448);
      expect(s.tcp.payload.length + s.missing).toBe(1448);
      expect(s.tcp.checksumOk).toBeNull(); // nothing to verify it against
      expect(s.tcp.seq).toBe(1000);
      expect(tcpOf(parseFrame(frame, { snapped: true })).missing).toBe(0);
    });
  }
  it('a frame cut inside its TCP header is malformed even when snapped', async () => {
    const { tcpHeadersLength } = await import('../src/wire/frame');
    const frame = emitTcpFrame('192.0.2.1', '192.0.2.2', seg);
    expect(isWireError(parseFrame(frame.subarray(0, 30), { snapped: true }))).toBe(true);
    expect(tcpHeadersLength(frame.subarray(0, 30))).toBeNull();
  });
});
