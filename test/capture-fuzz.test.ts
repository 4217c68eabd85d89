// `twlab show` against hostile captures: a few hundred files mutated from the labs' own captures
// (when the suite runs as root: labs 05, 07, 12 and 13, one trial each) and from captures built
// here (every format and block kind twlab reads), plus hand-made malformed blocks. Each goes
// through every mode in-process — ladders, --list, --summary, --explain, --conn 1 — and a sample
// through the CLI. What must hold: the only errors are twlab's own one-line ones (the CLI's exit 2),
// at most one warning, no stack trace, and memory that stays bounded whatever a length field
// claims. Seeded: a failure names its case and replays exactly.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PcapError, PcapngWriter, PcapWriter } from '../src/capture/pcap';
import { ShowError, showCapture, type ShowOptions } from '../src/capture/show';
import { seededRandom } from '../src/stack/clock';
import { emitTcpFrame } from '../src/wire/frame';
import { seq } from '../src/wire/seq';
import { flags, type TcpOption } from '../src/wire/tcp';
import { CLI, ROOT, privileged, runCli, removeTmpDirs, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();
const MUTANTS = 400;
const MODES: ShowOptions[] = [{}, { list: true }, { summary: true }, { explain: true }, { conn: '1' }];

/** Frames of two incarnations of one four-tuple and an IPv6 connection: every flag, option and mark the analysis has. */
function frames(): Array<[number, Uint8Array]> {
  const t0 = 1_700_000_000_000_000;
  const out: Array<[number, Uint8Array]> = [];
  const opts = (ts: number): TcpOption[] => [
    { kind: 'mss', value: 1460 },
    { kind: 'sackPermitted' },
    { kind: 'timestamps', tsval: ts, tsecr: 0 },
    { kind: 'nop' },
    { kind: 'wscale', shift: 7 },
  ];
  const f = (
    t: number,
    src: string,
    dst: string,
    sp: number,
    dp: number,
    s: number,
    a: number,
    fl: string,
    len = 0,
    options: TcpOption[] = [],
    window = 512,
  ): void => {
    out.push([
      t0 + t,
      emitTcpFrame(src, dst, {
        srcPort: sp,
        dstPort: dp,
        seq: seq(s >>> 0),
        ack: seq(a >>> 0),
        flags: flags(fl),
        window,
        urgent: 0,
        options,
        payload: new Uint8Array(len).fill(0x42),
      }),
    ]);
  };
  const [k, p] = ['192.0.2.1', '192.0.2.2'];
  f(0, k, p, 40000, 80, 1000, 0, 'syn', 0, opts(1));
  f(10, p, k, 80, 40000, 9000, 1001, 'syn,ack', 0, opts(2));
  f(20, k, p, 40000, 80, 1001, 9001, 'ack');
  f(30, k, p, 40000, 80, 1001, 9001, 'psh,ack', 100);
  f(40, p, k, 80, 40000, 9001, 1101, 'ack', 0, [], 0); // zero window
  f(50, k, p, 40000, 80, 1100, 9001, 'ack'); // probe
  f(60, k, p, 40000, 80, 1001, 9001, 'psh,ack', 100); // retransmission
  f(70, p, k, 80, 40000, 9001, 1101, 'fin,ack');
  f(80, k, p, 40000, 80, 1101, 9002, 'fin,ack');
  f(90, p, k, 80, 40000, 9002, 1102, 'ack');
  f(100, k, p, 40000, 80, 0xfffffff0, 0, 'syn'); // a new incarnation, sequence numbers about to wrap
  f(110, p, k, 80, 40000, 5, 0xfffffff1, 'syn,ack');
  f(120, k, p, 40000, 80, 1001, 9001, 'psh,ack', 100); // a stray of the first
  f(130, k, p, 40000, 80, 0xfffffff1, 6, 'rst');
  f(140, '2001:db8::1', '2001:db8::2', 5000, 443, 7, 0, 'syn');
  f(150, '2001:db8::2', '2001:db8::1', 443, 5000, 70, 8, 'rst,ack');
  return out;
}

/** Captures built here: classic pcap, and twlab's pcapng with comments. */
function builtSeeds(dir: string): string[] {
  const pcap = path.join(dir, 'built.pcap');
  const ng = path.join(dir, 'built.pcapng');
  const w = new PcapWriter(pcap);
  const n = new PcapngWriter(ng);
  for (const [t, fr] of frames()) {
    w.write(t, fr);
    n.write(t, fr, fr.length, 'a comment');
  }
  w.close();
  n.close();
  return [pcap, ng];
}

// hand-made pcapng blocks (little-endian)
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const block = (type: number, body: Buffer, total = 12 + body.length, trailer = total): Buffer =>
  Buffer.concat([u32(type), u32(total), body, u32(trailer)]);
const SHB = block(0x0a0d0d0a, Buffer.concat([u32(0x1a2b3c4d), Buffer.from([1, 0, 0, 0]), Buffer.alloc(8, 0xff)]));
const IDB = block(1, Buffer.concat([Buffer.from([101, 0, 0, 0]), u32(65535)]));
const EPB = (data: Buffer): Buffer =>
  block(6, Buffer.concat([u32(0), u32(0), u32(1), u32(data.length), u32(data.length), data, Buffer.alloc((4 - (data.length % 4)) % 4)]));

/** Malformed blocks, each in an otherwise good capture. */
function handMade(): Array<[string, Buffer]> {
  const frame = Buffer.from(frames()[0]![1]);
  const good = EPB(frame);
  const zeros = (type: number, total: number): Buffer => block(type, Buffer.alloc(Math.max(0, total - 12)), total);
  const cases: Array<[string, Buffer]> = [];
  for (const [type, name, fixed] of [
    [6, 'EPB', 32],
    [2, 'OPB', 32],
    [1, 'IDB', 20],
    [3, 'SPB', 16],
  ] as const) {
    for (let total = 12; total < fixed; total += 4)
      cases.push([`${name} of ${total} bytes`, Buffer.concat([SHB, IDB, good, zeros(type, total)])]);
  }
  cases.push(
    ['a block of 0 bytes', Buffer.concat([SHB, IDB, good, u32(6), u32(0)])],
    ['a block of 8 bytes', Buffer.concat([SHB, IDB, good, u32(6), u32(8)])],
    ['a block of 4 GiB − 4', Buffer.concat([SHB, IDB, good, u32(6), u32(0xfffffffc), Buffer.alloc(64)])],
    [
      'a block whose trailer disagrees',
      Buffer.concat([SHB, IDB, block(6, good.subarray(8, good.length - 4), good.length, good.length + 8)]),
    ],
    [
      'a frame longer than its block',
      Buffer.concat([SHB, IDB, block(6, Buffer.concat([u32(0), u32(0), u32(0), u32(4000), u32(4000), Buffer.alloc(40)]))]),
    ],
    [
      'a frame on an interface never described',
      Buffer.concat([SHB, IDB, block(6, Buffer.concat([u32(9), u32(0), u32(0), u32(4), u32(4), Buffer.alloc(4)]))]),
    ],
    ['a packet before any interface', Buffer.concat([SHB, good])],
    [
      'an interface option running past its block',
      Buffer.concat([
        SHB,
        block(1, Buffer.concat([Buffer.from([101, 0, 0, 0]), u32(65535), Buffer.from([9, 0, 200, 0]), Buffer.alloc(4)])),
        good,
      ]),
    ],
    [
      'an if_tsresol of 2^-127 s',
      Buffer.concat([
        SHB,
        block(1, Buffer.concat([Buffer.from([101, 0, 0, 0]), u32(65535), Buffer.from([9, 0, 1, 0, 0xff, 0, 0, 0]), Buffer.alloc(4)])),
        good,
      ]),
    ],
    ['a section header cut short after a frame', Buffer.concat([SHB, IDB, good, SHB.subarray(0, 10)])],
    ['a section header of a bad byte order', Buffer.concat([SHB, IDB, good, u32(0x0a0d0d0a), u32(28), u32(0x12345678), Buffer.alloc(16)])],
    [
      'a classic pcap frame of 2^31 bytes',
      Buffer.concat([
        Buffer.from('d4c3b2a1020004000000000000000000ffff000065000000', 'hex'),
        u32(0),
        u32(0),
        u32(0x80000000),
        u32(0x80000000),
        Buffer.alloc(32),
      ]),
    ],
    ['four bytes of magic only', u32(0x0a0d0d0a)],
    ['nothing at all', Buffer.alloc(0)],
  );
  return cases;
}

/** Byte flips, random words, length fields set to edges, truncations, blocks repeated or dropped. */
function mutate(src: Buffer, r: () => number): Buffer {
  let b = Buffer.from(src);
  const pick = (n: number): number => Math.floor(r() * n);
  const edges = [0, 1, 4, 8, 12, 16, 20, 24, 28, 32, 36, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff];
  for (let k = 1 + pick(4); k > 0 && b.length >= 8; k--) {
    const at = pick(b.length - 3);
    const what = r();
    if (what < 0.3) b[at] = pick(256);
    else if (what < 0.45) b[at]! ^= 1 << pick(8);
    else if (what < 0.75) b.writeUInt32LE(edges[pick(edges.length)]!, at & ~3);
    else if (what < 0.85) b.writeUInt32LE(pick(2 ** 32) >>> 0, at & ~3);
    else if (what < 0.93) b = b.subarray(0, at);
    else {
      const from = pick(b.length);
      const len = pick(Math.min(64, b.length - from));
      b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + len), b.subarray(at)]);
    }
  }
  return b;
}

let seeds: string[] = [];
let dir = '';

beforeAll(() => {
  dir = tmpDir('capfuzz');
  seeds = builtSeeds(dir);
  if (run) {
    // the labs' own captures: four short labs, one trial each
    const out = path.join(dir, 'labs');
    const r = runCli(['run', '05', '07', '12', '13', '--set', 'trials=1', '--json', '--out', out], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    for (const lab of fs.readdirSync(out)) {
      const labDir = path.join(out, lab);
      if (fs.statSync(labDir).isDirectory())
        for (const f of fs.readdirSync(labDir)) if (/\.pcap(ng)?$/.test(f)) seeds.push(path.join(labDir, f));
    }
    expect(seeds.length).toBeGreaterThan(10);
  }
}, 180_000);

/** Runs every mode on `file` in-process; returns what went wrong (nothing: null). */
function tryAllModes(file: string): string | null {
  for (const mode of MODES) {
    let warnings = 0;
    try {
      showCapture(file, mode, { out: () => undefined, warn: () => void warnings++ });
    } catch (e) {
      if (e instanceof PcapError || e instanceof ShowError) {
        if (e.message.includes('\n')) return `${JSON.stringify(mode)}: a two-line error: ${e.message}`;
        continue;
      }
      return `${JSON.stringify(mode)}: ${(e as Error).stack ?? e}`;
    }
    if (warnings > 1) return `${JSON.stringify(mode)}: ${warnings} warnings`;
  }
  return null;
}

describe('twlab show on hostile captures', () => {
  it("hand-made malformed blocks: twlab's own one-line errors or warnings, nothing else", () => {
    const failures: string[] = [];
    for (const [name, bytes] of handMade()) {
      const file = path.join(dir, 'hand.pcapng');
      fs.writeFileSync(file, bytes);
      const problem = tryAllModes(file);
      if (problem) failures.push(`${name}: ${problem}`);
    }
    expect(failures).toEqual([]);
  });

  it(`${MUTANTS} mutated captures: no crash, at most one warning, memory bounded`, () => {
    const r = seededRandom(21);
    const failures: string[] = [];
    let peakBuffers = 0;
    for (let i = 0; i < MUTANTS; i++) {
      const seed = seeds[i % seeds.length]!;
      const bytes = mutate(fs.readFileSync(seed), r);
      const file = path.join(dir, `m${i % 50}.bin`); // the last 50 kept for the CLI sample
      fs.writeFileSync(file, bytes);
      const problem = tryAllModes(file);
      if (problem) {
        fs.copyFileSync(file, path.join(dir, `failed-${i}.bin`));
        failures.push(`mutant ${i} of ${path.basename(seed)}: ${problem.split('\n').slice(0, 3).join(' | ')}`);
      }
      peakBuffers = Math.max(peakBuffers, process.memoryUsage().arrayBuffers);
    }
    expect(failures).toEqual([]);
    // no length field made the reader take more than its 4 MiB chunk (and the slabs)
    expect(peakBuffers).toBeLessThan(64 << 20);
  }, 120_000);

  it('a sample through the CLI: exit 0 or 2, at most one line on stderr, no stack trace, bounded memory', () => {
    const time = fs.existsSync('/usr/bin/time');
    const failures: string[] = [];
    for (let i = 0; i < 15; i++) {
      const file = path.join(dir, `m${(i * 7) % 50}.bin`);
      const mode = [[], ['--summary'], ['--list'], ['--explain'], ['--conn', '1']][i % 5]!;
      const args = [CLI, 'show', file, ...mode];
      const r = time
        ? spawnSync('/usr/bin/time', ['-f', 'maxrss %M', process.execPath, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 60_000 })
        : spawnSync(process.execPath, args, { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
      const lines = r.stderr
        .split('\n')
        .filter((l) => l && !l.startsWith('maxrss ') && !l.startsWith('Command exited with non-zero status'));
      const rss = Number(/maxrss (\d+)/.exec(r.stderr)?.[1] ?? 0) / 1024;
      if (r.status !== 0 && r.status !== 2) failures.push(`${path.basename(file)} ${mode.join(' ')}: exit ${r.status}`);
      if (lines.length > 1 || /\n\s+at /.test(r.stderr) || (lines[0] && !/^twlab: /.test(lines[0])))
        failures.push(`${path.basename(file)} ${mode.join(' ')}: stderr ${JSON.stringify(r.stderr)}`);
      if (rss > 256) failures.push(`${path.basename(file)} ${mode.join(' ')}: ${rss.toFixed(0)} MiB`);
    }
    expect(failures).toEqual([]);
  }, 180_000);
});
