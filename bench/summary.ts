// `twlab show --summary` on a 10^6-frame capture, beside `tshark -q -z conv,tcp` on the same file
// in the same run: wall time and peak memory (max RSS) of each, as separate processes. The
// capture is generated here (20,000 connections of 50 frames: handshake, data both ways, an
// orderly close, some ending in RST) and kept in the temp folder between runs.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PcapWriter } from '../src/capture/pcap';
import { emitTcpFrame } from '../src/wire/frame';
import { seq } from '../src/wire/seq';
import { flags } from '../src/wire/tcp';

const CONNECTIONS = 20_000;
const FRAMES_PER = 50;
const CLI = path.resolve(__dirname, '..', '..', 'bin', 'twlab.js');

function generate(file: string): void {
  const w = new PcapWriter(file);
  const payload = new Uint8Array(512).fill(7);
  const none = new Uint8Array(0);
  let t = 1_700_000_000_000_000;
  for (let c = 0; c < CONNECTIONS; c++) {
    const client = `198.51.100.${1 + (c % 200)}`;
    const port = 20000 + Math.floor(c / 200);
    const mk = (fromClient: boolean, s: number, a: number, f: string, data = none): Uint8Array =>
      emitTcpFrame(fromClient ? client : '192.0.2.1', fromClient ? '192.0.2.1' : client, {
        srcPort: fromClient ? port : 80,
        dstPort: fromClient ? 80 : port,
        seq: seq(s),
        ack: seq(a),
        flags: flags(f),
        window: 502,
        urgent: 0,
        options: [],
        payload: data,
      });
    const ci = 1000 + c;
    const si = 5000 + c;
    const frames: Uint8Array[] = [mk(true, ci, 0, 'syn'), mk(false, si, ci + 1, 'syn,ack'), mk(true, ci + 1, si + 1, 'ack')];
    let cs = ci + 1;
    let ss = si + 1;
    // data and ACKs, then one more data segment the close acknowledges: 50 frames in all
    while (frames.length < FRAMES_PER - 5) {
      frames.push(mk(true, cs, ss, 'psh,ack', payload));
      cs += payload.length;
      frames.push(mk(false, ss, cs, 'ack'));
    }
    frames.push(mk(true, cs, ss, 'psh,ack', payload));
    cs += payload.length;
    if (c % 10 === 9) {
      frames.push(mk(true, cs, ss, 'rst,ack'), mk(true, cs, ss, 'rst'), mk(false, ss, cs, 'ack'), mk(true, cs, ss, 'rst'));
    } else {
      frames.push(mk(false, ss, cs, 'fin,ack'), mk(true, cs, ss + 1, 'ack'), mk(true, cs, ss + 1, 'fin,ack'), mk(false, ss + 1, cs + 1, 'ack'));
    }
    for (const f of frames) w.write((t += 7), f);
  }
  w.close();
  if (w.count !== CONNECTIONS * FRAMES_PER) throw new Error(`generated ${w.count} frames, meant ${CONNECTIONS * FRAMES_PER}`);
}

/** Runs a command; its wall time and peak RSS (from GNU time, or /proc when that is missing). */
function measure(cmd: string, args: string[]): { seconds: number; maxRssMiB: number | null; status: number | null; stdout: string } {
  const gnuTime = fs.existsSync('/usr/bin/time');
  const t0 = performance.now();
  const r = gnuTime
    ? spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', maxBuffer: 256 << 20 })
    : spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  const seconds = (performance.now() - t0) / 1000;
  const kib = gnuTime ? Number(r.stderr.trim().split('\n').pop()) : NaN;
  return { seconds, maxRssMiB: Number.isFinite(kib) ? kib / 1024 : null, status: r.status, stdout: r.stdout };
}

function main(): void {
  const file = path.join(os.tmpdir(), `twlab-bench-${CONNECTIONS * FRAMES_PER}-v2.pcap`);
  if (!fs.existsSync(file)) {
    const t0 = performance.now();
    generate(file);
    console.log(`generated ${file} (${CONNECTIONS * FRAMES_PER} frames, ${(fs.statSync(file).size / 1e6).toFixed(0)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  console.log(`\nSummary of a ${(CONNECTIONS * FRAMES_PER).toLocaleString('en')}-frame capture (${CONNECTIONS.toLocaleString('en')} connections), wall time and peak memory`);
  const mine = measure(process.execPath, [CLI, 'show', file, '--summary']);
  const lines = mine.stdout.split('\n').filter((l) => /^\s*\d+\s/.test(l)).length;
  const row = (name: string, m: ReturnType<typeof measure>, extra = ''): void =>
    console.log(`${name.padEnd(40)} ${m.seconds.toFixed(2).padStart(7)} s  ${m.maxRssMiB === null ? '   n/a' : `${m.maxRssMiB.toFixed(0).padStart(6)} MiB`}${m.status ? `  (exit ${m.status})` : ''}${extra}`);
  row('twlab show --summary', mine, `  (${lines} connection lines)`);
  const tshark = spawnSync('sh', ['-c', 'command -v tshark'], { encoding: 'utf8' }).stdout.trim();
  if (tshark) {
    const t = measure(tshark, ['-q', '-n', '-z', 'conv,tcp', '-r', file]);
    row('baseline: tshark -q -z conv,tcp', t);
    console.log(`twlab / tshark wall time: ${(mine.seconds / t.seconds).toFixed(2)}`);
  } else console.log('(tshark not installed: no baseline)');
}

main();
