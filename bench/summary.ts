// `twlab show --summary` on big captures, beside `tshark -q -z conv,tcp` on the same files in the
// same run: wall time and peak memory (max RSS) of each, as separate processes. Figures, not
// assertions (the goals — 200,000 connections in ≤ 256 MiB, a gigabyte no slower than tshark —
// are judged by reading them). The captures are generated here and kept in the temp folder
// between runs (about 2 GB; `TWLAB_BENCH_CLEAN=1` removes them after the run):
//  - many: 200,000 short connections (SYN, SYN-ACK, ACK, a request, a response, the close; one in
//    ten reset) within 30 s — all inside one TIME_WAIT, so none can be dropped early: the state
//    each connection leaves behind must be small;
//  - spread: the same 200,000 connections over an hour (55 a second): connections end and are
//    written out and forgotten once their TIME_WAIT would be over, so memory is bounded by the
//    connections of the last few minutes;
//  - gigabyte: 14,000 bulk connections of 47 full-sized data segments each, ~1 GB.
//  - one: a single connection of 1,000,000 segments (`--conn 1` draws at most the ladder limit).
//  `TWLAB_BENCH_SUMMARY=many|spread|gigabyte|one` runs one of them.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PcapWriter } from '../src/capture/pcap';
import { emitTcpFrame } from '../src/wire/frame';
import { seq } from '../src/wire/seq';
import { flags } from '../src/wire/tcp';

const CLI = path.resolve(__dirname, '..', '..', 'bin', 'twlab.js');
const T0 = 1_700_000_000_000_000;

interface Shape {
  connections: number;
  /** data segments each way after the handshake (a request and its response = 1) */
  exchanges: number;
  payload: number;
  /** µs between the starts of two connections */
  spacingUs: number;
}

/** Writes `shape` as a classic pcap: each connection's frames, connections interleaved 8 at a time. */
function generate(file: string, shape: Shape): number {
  const w = new PcapWriter(file + '.tmp');
  const payload = new Uint8Array(shape.payload).fill(7);
  const none = new Uint8Array(0);
  const BATCH = 8;
  for (let c0 = 0; c0 < shape.connections; c0 += BATCH) {
    const lists: Uint8Array[][] = [];
    for (let c = c0; c < Math.min(c0 + BATCH, shape.connections); c++) {
      // 500 clients (documentation addresses), each connecting from its next port: all four-tuples distinct
      const client = `${c % 500 < 250 ? '198.51.100' : '203.0.113'}.${1 + (c % 250)}`;
      const port = 1024 + Math.floor(c / 500);
      const mk = (fromClient: boolean, s: number, a: number, f: string, data = none): Uint8Array =>
        emitTcpFrame(fromClient ? client : '192.0.2.1', fromClient ? '192.0.2.1' : client, {
          srcPort: fromClient ? port : 80,
          dstPort: fromClient ? 80 : port,
          seq: seq(s >>> 0),
          ack: seq(a >>> 0),
          flags: flags(f),
          window: 502,
          urgent: 0,
          options: [],
          payload: data,
        });
      const ci = (1000 + c * 7919) >>> 0;
      const si = (5000 + c * 104729) >>> 0;
      const frames: Uint8Array[] = [mk(true, ci, 0, 'syn'), mk(false, si, ci + 1, 'syn,ack'), mk(true, ci + 1, si + 1, 'ack')];
      let cs = ci + 1;
      const ss = si + 1;
      for (let i = 0; i < shape.exchanges; i++) {
        frames.push(mk(true, cs, ss, 'psh,ack', payload));
        cs += payload.length;
        frames.push(mk(false, ss, cs, 'ack'));
      }
      if (c % 10 === 9) frames.push(mk(true, cs, ss, 'rst,ack'));
      else frames.push(mk(false, ss, cs, 'fin,ack'), mk(true, cs, ss + 1, 'fin,ack'), mk(false, ss + 1, cs + 1, 'ack'));
      lists.push(frames);
    }
    // the batch's frames interleaved, each connection's in order, 1 µs apart from the batch's start
    const start = T0 + c0 * shape.spacingUs;
    let t = start;
    for (let i = 0; lists.some((l) => i < l.length); i++) for (const l of lists) if (i < l.length) w.write(t++, l[i]!);
  }
  const n = w.count;
  w.close();
  fs.renameSync(file + '.tmp', file);
  return n;
}

/** A single long connection: the handshake, `segments` data segments and their ACKs, the close. */
function generateOne(file: string, segments: number): number {
  const w = new PcapWriter(file + '.tmp');
  const payload = new Uint8Array(1448).fill(1);
  const mk = (fromClient: boolean, s: number, a: number, f: string, data = new Uint8Array(0)): Uint8Array =>
    emitTcpFrame(fromClient ? '198.51.100.7' : '192.0.2.1', fromClient ? '192.0.2.1' : '198.51.100.7', {
      srcPort: fromClient ? 40000 : 80,
      dstPort: fromClient ? 80 : 40000,
      seq: seq(s >>> 0),
      ack: seq(a >>> 0),
      flags: flags(f),
      window: 502,
      urgent: 0,
      options: [],
      payload: data,
    });
  let t = T0;
  w.write(t++, mk(true, 1, 0, 'syn'));
  w.write(t++, mk(false, 9, 2, 'syn,ack'));
  w.write(t++, mk(true, 2, 10, 'ack'));
  let cs = 2;
  for (let i = 0; i < segments; i += 2) {
    w.write(t++, mk(true, cs, 10, 'ack', payload));
    cs += payload.length;
    w.write(t++, mk(false, 10, cs, 'ack'));
  }
  w.write(t++, mk(true, cs, 10, 'fin,ack'));
  w.write(t++, mk(false, 10, cs + 1, 'fin,ack'));
  w.write(t++, mk(true, cs + 1, 11, 'ack'));
  const n = w.count;
  w.close();
  fs.renameSync(file + '.tmp', file);
  return n;
}

interface Measured {
  seconds: number;
  maxRssMiB: number | null;
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command; its wall time and peak RSS (from GNU time when installed). */
function measure(cmd: string, args: string[]): Measured {
  const gnuTime = fs.existsSync('/usr/bin/time');
  const t0 = performance.now();
  const r = gnuTime
    ? spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 })
    : spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  const seconds = (performance.now() - t0) / 1000;
  const lines = r.stderr.trim().split('\n');
  const kib = gnuTime ? Number(lines.pop()) : NaN;
  return { seconds, maxRssMiB: Number.isFinite(kib) ? kib / 1024 : null, status: r.status, stdout: r.stdout, stderr: lines.join('\n') };
}

const row = (name: string, m: Measured, extra = ''): void =>
  console.log(
    `  ${name.padEnd(38)} ${m.seconds.toFixed(2).padStart(7)} s  ${m.maxRssMiB === null ? '   n/a' : `${m.maxRssMiB.toFixed(0).padStart(6)} MiB`}${m.status ? `  (exit ${m.status}: ${m.stderr.split('\n')[0]})` : ''}${extra}`,
  );

const tshark = spawnSync('sh', ['-c', 'command -v tshark'], { encoding: 'utf8' }).stdout.trim();

function captureFile(name: string, make: (file: string) => number): string {
  const file = path.join(os.tmpdir(), `twlab-bench-${name}-v3.pcap`);
  if (!fs.existsSync(file)) {
    const t0 = performance.now();
    const frames = make(file);
    console.log(
      `(generated ${file}: ${frames.toLocaleString('en')} frames, ${(fs.statSync(file).size / 1e6).toFixed(0)} MB, in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  return file;
}

function summaryBench(title: string, file: string, vsTshark: boolean): void {
  console.log(`\n${title} (${(fs.statSync(file).size / 1e6).toFixed(0)} MB)`);
  const mine = measure(process.execPath, [CLI, 'show', file, '--summary']);
  const lines = mine.stdout.split('\n').filter((l) => /^\s*\d+\s/.test(l)).length;
  row('twlab show --summary', mine, `  (${lines.toLocaleString('en')} connection lines)`);
  if (!vsTshark) return;
  if (!tshark) return console.log('  (tshark not installed: no baseline)');
  const t = measure(tshark, ['-q', '-n', '-z', 'conv,tcp', '-r', file]);
  row('baseline: tshark -q -z conv,tcp', t);
  console.log(
    `  twlab / tshark: wall time ${(mine.seconds / t.seconds).toFixed(2)}, peak memory ${mine.maxRssMiB && t.maxRssMiB ? (mine.maxRssMiB / t.maxRssMiB).toFixed(2) : 'n/a'}`,
  );
}

function main(): void {
  const only = process.env.TWLAB_BENCH_SUMMARY;
  const files: string[] = [];
  if (!only || only === 'many') {
    const f = captureFile('many', (file) => generate(file, { connections: 200_000, exchanges: 1, payload: 200, spacingUs: 150 }));
    files.push(f);
    summaryBench('200,000 connections within 30 s (none can be forgotten early)', f, true);
  }
  if (!only || only === 'spread') {
    const f = captureFile('spread', (file) => generate(file, { connections: 200_000, exchanges: 1, payload: 200, spacingUs: 18_000 }));
    files.push(f);
    summaryBench('200,000 connections over an hour (55 a second)', f, true);
  }
  if (!only || only === 'gigabyte') {
    const f = captureFile('gigabyte', (file) => generate(file, { connections: 14_000, exchanges: 47, payload: 1448, spacingUs: 1000 }));
    files.push(f);
    summaryBench('a gigabyte: 14,000 bulk connections', f, true);
  }
  if (!only || only === 'one') {
    const f = captureFile('one', (file) => generateOne(file, 1_000_000));
    files.push(f);
    console.log(`\none connection of 1,000,000 segments (${(fs.statSync(f).size / 1e6).toFixed(0)} MB)`);
    const m = measure(process.execPath, [CLI, 'show', f, '--conn', '1']);
    row('twlab show --conn 1', m, `  (${m.stdout.split('\n').length.toLocaleString('en')} lines)`);
  }
  if (process.env.TWLAB_BENCH_CLEAN) for (const f of files) fs.rmSync(f, { force: true });
}

main();
