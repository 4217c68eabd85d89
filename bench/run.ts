// Benchmarks: print figures, assert nothing. `npm run bench`.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeTcp } from '../src/capture/flows';
import { layoutLadders, renderLadderSvg, renderLadderText } from '../src/capture/ladder';
import { listFrames } from '../src/capture/listing';
import { PcapWriter, readPcap } from '../src/capture/pcap';
import { emitTcpFrame, parseFrame, parseTcpPacket, TcpFramer } from '../src/wire/frame';
import { stackPath } from './stackpath';
import { seq } from '../src/wire/seq';
import { flags } from '../src/wire/tcp';

function bench(name: string, n: number, fn: (i: number) => void, unit = 'ops'): void {
  for (let i = 0; i < Math.min(1000, n); i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${name.padEnd(40)} ${(n / s).toFixed(0).padStart(12)} ${unit}/s  (${n} in ${(s * 1000).toFixed(1)} ms)`);
}

const seg = {
  srcPort: 40000,
  dstPort: 80,
  seq: seq(1),
  ack: seq(2),
  flags: flags('psh,ack'),
  window: 512,
  urgent: 0,
  options: [{ kind: 'nop' as const }, { kind: 'nop' as const }, { kind: 'timestamps' as const, tsval: 1, tsecr: 2 }],
  payload: new Uint8Array(1448),
};
const frame = emitTcpFrame('192.0.2.1', '192.0.2.2', seg);

/**
 * Heap bytes `fn` allocates per call, from heapUsed growth over runs no collection interrupted
 * (the best of 20): what the stack allocates per frame, bounded and small. Frame memory itself
 * is outside the heap (ArrayBuffers), counted separately by the framer's pool.
 */
function heapPerCall(fn: () => void): number {
  for (let i = 0; i < 20_000; i++) fn();
  let best = Infinity;
  for (let r = 0; r < 20; r++) {
    const h0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 1000; i++) fn();
    const h1 = process.memoryUsage().heapUsed;
    if (h1 >= h0) best = Math.min(best, (h1 - h0) / 1000);
  }
  return best;
}

// the stack's path: addresses as bytes, one TcpFramer per four-tuple
const framer = new TcpFramer('192.0.2.1', '192.0.2.2');
bench('emit TCP/IPv4 frame (1448 B payload)', 500_000, () => framer.emit(seg), 'frames');
bench('  … from address text (emitTcpFrame)', 200_000, () => emitTcpFrame('192.0.2.1', '192.0.2.2', seg), 'frames');
bench('parse TCP/IPv4 frame + checksum', 200_000, () => parseFrame(frame), 'frames');
bench('  … for the stack (parseTcpPacket)', 500_000, () => parseTcpPacket(frame), 'frames');
console.log(
  `${'heap allocated per emitted frame'.padEnd(40)} ${heapPerCall(() => framer.emit(seg))
    .toFixed(0)
    .padStart(12)} bytes (+ ${frame.length} B of frame in pooled ArrayBuffers)`,
);
console.log(
  `${'heap allocated per parsed frame (stack)'.padEnd(40)} ${heapPerCall(() => parseTcpPacket(frame))
    .toFixed(0)
    .padStart(12)} bytes`,
);
{
  for (let i = 0; i < 3; i++) stackPath(8 << 20); // warm up
  const f = stackPath(32 << 20);
  console.log(
    `${'stack ↔ stack in memory, per segment'.padEnd(40)} ${f.usPerSegment.toFixed(2).padStart(12)} µs CPU (both stacks: segment out, ACKs back; ${f.framesPerSegment.toFixed(2)} frames per segment), ${f.heapPerFrame.toFixed(0)} heap bytes per frame`,
  );
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twlab-bench-'));
const file = path.join(dir, 'bench.pcap');
const w = new PcapWriter(file);
const N = 100_000;
bench('pcap write (one write(2) per frame)', N, (i) => w.write(1e15 + i, frame), 'frames');
w.close();
let parsed = 0;
bench('pcap read 100,000 frames', 1, () => (parsed = readPcap(file).records.length), 'files');
bench('listing of 100,000 frames', 1, () => listFrames(readPcap(file)), 'files');

// the renderers on a 100,000-packet capture of one connection
{
  const big = path.join(dir, 'conversation.pcap');
  const wr = new PcapWriter(big);
  const mk = (src: string, dst: string, sp: number, dp: number, s: number, a: number, f: string, len: number): Uint8Array =>
    emitTcpFrame(src, dst, {
      srcPort: sp,
      dstPort: dp,
      seq: seq(s),
      ack: seq(a),
      flags: flags(f),
      window: 500,
      urgent: 0,
      options: [],
      payload: new Uint8Array(len),
    });
  wr.write(1e15, mk('192.0.2.1', '192.0.2.2', 40000, 80, 0, 0, 'syn', 0));
  wr.write(1e15 + 1, mk('192.0.2.2', '192.0.2.1', 80, 40000, 0, 1, 'syn,ack', 0));
  for (let i = 0; i < 49_999; i++) {
    wr.write(1e15 + 10 + 2 * i, mk('192.0.2.1', '192.0.2.2', 40000, 80, 1 + i * 100, 1, 'ack', 100));
    wr.write(1e15 + 11 + 2 * i, mk('192.0.2.2', '192.0.2.1', 80, 40000, 1, 101 + i * 100, 'ack', 0));
  }
  wr.close();
  const t = process.hrtime.bigint();
  const flows = analyzeTcp(readPcap(big));
  const ladders = layoutLadders(flows);
  const text = renderLadderText(ladders[0]!).length;
  const svg = renderLadderSvg(ladders[0]!).length;
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  console.log(
    `${'ladder of a 100,000-packet capture'.padEnd(40)} ${ms.toFixed(0).padStart(12)} ms  (analysis, layout, text ${text} lines, SVG ${(svg / 1024).toFixed(0)} KiB)`,
  );
}
console.log(`(${parsed} frames, ${(fs.statSync(file).size / 1e6).toFixed(1)} MB)`);
fs.rmSync(dir, { recursive: true });

// Over the TUN device: needs root (a fresh namespace); the figures come from bench/goodput.ts.
if (process.geteuid?.() === 0) {
  const r = spawnSync(
    'setpriv',
    ['--pdeathsig', 'KILL', '--', 'unshare', '--net', '--', process.execPath, path.join(__dirname, 'goodput.js')],
    { stdio: 'inherit', env: { ...process.env, UV_THREADPOOL_SIZE: '16' } },
  );
  if (r.status !== 0) process.exitCode = 1;
} else {
  console.log('\n(goodput over TUN skipped: it needs root for a private namespace)');
}
