// `twlab show` on captures too big to keep: connections forgotten (their line written) once they
// have ended and a TIME_WAIT is over, numbers that stay the same between --summary and --conn,
// --conn capped like the ladders, and a summary of more connections than a spread can take.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PcapWriter } from '../src/capture/pcap';
import { LADDER_LIMIT, showCapture, type ShowOptions } from '../src/capture/show';
import { formatSummary, type ConnectionSummary } from '../src/capture/summary';
import { TIME_WAIT_BOUND_US } from '../src/capture/flows';
import { emitTcpFrame } from '../src/wire/frame';
import { seq } from '../src/wire/seq';
import { flags } from '../src/wire/tcp';
import { removeTmpDirs, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const T0 = 1_700_000_000_000_000;
const S = '192.0.2.1';

/** Writes frames (time, from client?, seq, ack, flags, client, port) to a pcap; returns its path. */
function capture(frames: Array<[number, boolean, number, number, string, string, number, number?]>): string {
  const file = path.join(tmpDir('big'), 'c.pcap');
  const w = new PcapWriter(file);
  for (const [us, fromClient, s, a, f, client, port, len] of frames) {
    w.write(
      T0 + us,
      emitTcpFrame(fromClient ? client : S, fromClient ? S : client, {
        srcPort: fromClient ? port : 80,
        dstPort: fromClient ? 80 : port,
        seq: seq(s >>> 0),
        ack: seq(a >>> 0),
        flags: flags(f),
        window: 512,
        urgent: 0,
        options: [],
        payload: new Uint8Array(len ?? 0),
      }),
    );
  }
  w.close();
  return file;
}

/** A whole connection from `client:port` at time `t` µs: handshake, one data segment, an orderly close. */
function orderly(
  t: number,
  client: string,
  port: number,
  isn = 1000,
): Array<[number, boolean, number, number, string, string, number, number?]> {
  return [
    [t, true, isn, 0, 'syn', client, port],
    [t + 10, false, 9000, isn + 1, 'syn,ack', client, port],
    [t + 20, true, isn + 1, 9001, 'ack', client, port],
    [t + 30, true, isn + 1, 9001, 'psh,ack', client, port, 10],
    [t + 40, false, 9001, isn + 11, 'fin,ack', client, port],
    [t + 50, true, isn + 11, 9002, 'fin,ack', client, port],
    [t + 60, false, 9002, isn + 12, 'ack', client, port],
  ];
}

function show(file: string, opts: ShowOptions): string[] {
  const out: string[] = [];
  showCapture(file, opts, { out: (l = '') => out.push(l), warn: (l) => out.push(`warning: ${l}`) });
  return out;
}

const rows = (lines: string[]): string[] => lines.filter((l) => /^\s+\d+\s{2}\S/.test(l));

describe('connections forgotten once their TIME_WAIT would be over', () => {
  it('a four-tuple opened again within 240 s of its close is a second incarnation; after it, a new connection with its own number', () => {
    const soon = capture([...orderly(0, '198.51.100.7', 40000), ...orderly(60e6, '198.51.100.7', 40000, 50_000)]);
    const one = rows(show(soon, { summary: true }));
    expect(one).toHaveLength(1);
    expect(one[0]).toMatch(/^\s+1\s+192\.0\.2\.1:80 ↔ 198\.51\.100\.7:40000\s+2\s+FIN\/FIN/);

    const late = capture([...orderly(0, '198.51.100.7', 40000), ...orderly(TIME_WAIT_BOUND_US + 61e6, '198.51.100.7', 40000, 50_000)]);
    const two = rows(show(late, { summary: true }));
    expect(two.map((l) => l.trim().split(/\s+/).slice(0, 5).join(' '))).toEqual([
      '1 192.0.2.1:80 ↔ 198.51.100.7:40000 1',
      '2 192.0.2.1:80 ↔ 198.51.100.7:40000 1',
    ]);
    // --conn takes the same numbers; by four-tuple it draws both, as incarnations 1 and 2 of one ladder
    expect(show(late, { conn: '2' }).join('\n')).toMatch(/SYN seq=0/);
    expect(show(late, { conn: '2' }).filter((l) => /#\d+ /.test(l))).toHaveLength(7);
    const both = show(late, { conn: '198.51.100.7:40000-192.0.2.1:80' });
    expect(both.filter((l) => /#\d+ /.test(l))).toHaveLength(14);
    // the ladders (no option) agree: one ladder for the four-tuple, the second connection's
    // sequence numbers relative to its own ISN
    const ladder = show(late, {}).join('\n');
    expect(ladder.match(/192\.0\.2\.1:80/g)?.length).toBe(1);
    expect(ladder).toMatch(/#9 .*SYN,ACK seq=0 ack=1/);
  });

  it('lines of connections long over come out while the capture is read; open ones at the end; the count is all of them', () => {
    const frames = [
      ...orderly(0, '198.51.100.1', 40001), // over at 60 µs: forgotten 240 s later
      [10, true, 5, 0, 'syn', '198.51.100.2', 40002] as [number, boolean, number, number, string, string, number], // never closes
      ...orderly(300e6, '198.51.100.3', 40003), // a later one: its arrival forgets the first
    ];
    const lines = show(capture(frames), { summary: true });
    const r = rows(lines);
    // the first connection's line was written when it was forgotten, before the others
    expect(r.map((l) => l.trim().split(/\s+/)[0])).toEqual(['1', '2', '3']);
    expect(r[1]).toMatch(/open/);
    expect(lines.at(-1)).toMatch(/^\(3 connections;/);
  });
});

describe('--conn on a connection bigger than the ladder limit', () => {
  it('draws the first and the last halves and says which frames were left out', () => {
    const frames: Array<[number, boolean, number, number, string, string, number, number?]> = [
      [0, true, 1, 0, 'syn', '198.51.100.9', 40009],
      [1, false, 100, 2, 'syn,ack', '198.51.100.9', 40009],
      [2, true, 2, 101, 'ack', '198.51.100.9', 40009],
    ];
    let s = 2;
    for (let i = 0; i < 100; i++) {
      frames.push(
        [10 + 2 * i, true, s, 101, 'ack', '198.51.100.9', 40009, 100],
        [11 + 2 * i, false, 101, s + 100, 'ack', '198.51.100.9', 40009],
      );
      s += 100;
    }
    frames.push(
      [500, true, s, 101, 'fin,ack', '198.51.100.9', 40009],
      [501, false, 101, s + 1, 'fin,ack', '198.51.100.9', 40009],
      [502, true, s + 1, 102, 'ack', '198.51.100.9', 40009],
    );
    const lines = show(capture(frames), { conn: '1', ladderLimit: 20 });
    expect(lines[0]).toBe(
      '(connection 1 has 206 segments, more than 20 to draw: the first 10 and the last 10 are drawn; 186 between frames #10 and #197 are left out)',
    );
    const drawn = lines.join('\n');
    expect(drawn).toMatch(/#1 /);
    expect(drawn).toMatch(/#206 /);
    expect(drawn).not.toMatch(/#100 /);
    expect(LADDER_LIMIT).toBeGreaterThan(1000);
  });
});

describe('a summary of more connections than a spread into Math.max can take', () => {
  it('formats 200,000 connections', () => {
    const conns: ConnectionSummary[] = [];
    for (let i = 1; i <= 200_000; i++) {
      conns.push({
        index: i,
        flow: `a<>b`,
        endpoints: [`192.0.2.1:80`, `198.51.100.${i % 250}:${1024 + (i % 60000)}`],
        incarnations: 1,
        firstUs: 0,
        lastUs: 1000,
        segments: 3,
        strays: 0,
        retransmissions: 0,
        closedFirst: null,
        ended: 'open',
        timeWait: [],
        patterns: [],
      });
    }
    const lines = formatSummary(conns);
    expect(lines).toHaveLength(200_001);
    expect(lines[200_000]).toMatch(/^200000 {2}192\.0\.2\.1:80 ↔ /);
  });
});
