// Benchmarks: print figures, assert nothing. `npm run bench`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { listFrames } from '../src/capture/listing';
import { PcapWriter, readPcap } from '../src/capture/pcap';
import { emitTcpFrame, parseFrame } from '../src/wire/frame';
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

bench('emit TCP/IPv4 frame (1448 B payload)', 200_000, () => emitTcpFrame('192.0.2.1', '192.0.2.2', seg), 'frames');
bench('parse TCP/IPv4 frame + checksum', 200_000, () => parseFrame(frame), 'frames');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twlab-bench-'));
const file = path.join(dir, 'bench.pcap');
const w = new PcapWriter(file);
const N = 100_000;
bench('pcap write (one write(2) per frame)', N, (i) => w.write(1e15 + i, frame), 'frames');
w.close();
let parsed = 0;
bench('pcap read 100,000 frames', 1, () => (parsed = readPcap(file).records.length), 'files');
bench('listing of 100,000 frames', 1, () => listFrames(readPcap(file)), 'files');
console.log(`(${parsed} frames, ${(fs.statSync(file).size / 1e6).toFixed(1)} MB)`);
fs.rmSync(dir, { recursive: true });

// Over the TUN device: needs root (a fresh namespace); the figures come from bench/goodput.ts.
import { spawnSync } from 'node:child_process';
if (process.geteuid?.() === 0) {
  const r = spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', '--net', '--', process.execPath, path.join(__dirname, 'goodput.js')], { stdio: 'inherit', env: { ...process.env, UV_THREADPOOL_SIZE: '16' } });
  if (r.status !== 0) process.exitCode = 1;
} else {
  console.log('\n(goodput over TUN skipped: it needs root for a private namespace)');
}
