// Ladder diagrams over a fixed, normalized trace: golden files for the text and the SVG.
// Regenerate after an intended change with:  UPDATE_GOLDEN=1 npx vitest run test/ladder.test.ts
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeTcp } from '../src/capture/flows';
import {
  condense,
  layoutLadders,
  renderLadderSvg,
  renderLadderText,
  type LadderEvent as TimelineEvent,
  type LadderRow,
} from '../src/capture/ladder';
import { parsePcap, PcapWriter } from '../src/capture/pcap';
import { emitTcpFrame } from '../src/wire/frame';
import { seq } from '../src/wire/seq';
import { flags } from '../src/wire/tcp';
import { removeTmpDirs, tmpDir } from './helpers';
import { afterAll } from 'vitest';

afterAll(removeTmpDirs);

const GOLDEN = path.join(__dirname, 'golden');
const K = '192.0.2.1';
const P = '192.0.2.2';
const T0 = 1_700_000_000_000_000;

function frame(
  src: string,
  dst: string,
  sp: number,
  dp: number,
  s: number,
  a: number,
  f: string,
  opts: { len?: number; win?: number } = {},
): Uint8Array {
  return emitTcpFrame(src, dst, {
    srcPort: sp,
    dstPort: dp,
    seq: seq(s),
    ack: seq(a),
    flags: flags(f),
    window: opts.win ?? 512,
    urgent: 0,
    options: [],
    payload: new Uint8Array(opts.len ?? 0),
  });
}

/** A kernel client: handshake, data, a zero window and its probe, a retransmission, an abort; then a second incarnation and a stray. */
function trace(): { bytes: Uint8Array; timeline: TimelineEvent[] } {
  const dir = tmpDir('golden');
  const file = path.join(dir, 'g.pcap');
  const w = new PcapWriter(file);
  const k = (us: number, s: number, a: number, f: string, o?: { len?: number; win?: number }): void =>
    w.write(T0 + us, frame(K, P, 40000, 80, s, a, f, o));
  const p = (us: number, s: number, a: number, f: string, o?: { len?: number; win?: number }): void =>
    w.write(T0 + us, frame(P, K, 80, 40000, s, a, f, o));
  k(0, 1000, 0, 'syn');
  p(300, 5000, 1001, 'syn,ack');
  k(400, 1001, 5001, 'ack');
  k(1000, 1001, 5001, 'psh,ack', { len: 100 });
  p(1300, 5001, 1101, 'ack', { win: 0 });
  k(201_000, 1100, 5001, 'ack'); // zero-window probe (SND.UNA − 1)
  k(202_000, 1001, 5001, 'psh,ack', { len: 100 }); // retransmission
  k(300_000, 1101, 5001, 'rst,ack');
  k(1_000_000, 90_000, 0, 'syn'); // a second incarnation
  p(1_000_300, 70_000, 90_001, 'syn,ack');
  k(1_000_400, 90_001, 70_001, 'ack');
  k(1_100_000, 1001, 5001, 'psh,ack', { len: 100 }); // an old segment arrives: stray
  w.close();
  const timeline: TimelineEvent[] = [
    { kind: 'kernel', at: T0 + 350, local: `${K}:40000`, remote: `${P}:80`, state: 'ESTABLISHED', timer: 'none', timerMs: 0 },
    { kind: 'peer-state', at: T0 + 250, local: `${P}:80`, remote: `${K}:40000`, to: 'SYN-RECEIVED' },
    { kind: 'peer-state', at: T0 + 450, local: `${P}:80`, remote: `${K}:40000`, to: 'ESTABLISHED' },
    { kind: 'kernel', at: T0 + 300_100, local: `${K}:40000`, remote: `${P}:80`, state: null, timer: null, timerMs: null },
    { kind: 'peer-state', at: T0 + 300_200, local: `${P}:80`, remote: `${K}:40000`, to: 'CLOSED' },
  ];
  return { bytes: fs.readFileSync(file), timeline };
}

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN) {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(file, actual);
  }
  expect(fs.existsSync(file), `${file} missing: run with UPDATE_GOLDEN=1 to create it`).toBe(true);
  expect(actual).toBe(fs.readFileSync(file, 'utf8'));
}

describe('ladder diagrams', () => {
  const { bytes, timeline } = trace();
  const flows = analyzeTcp(parsePcap(bytes));
  const [ladder] = layoutLadders(flows, timeline);

  it('marks what matters: zero window, window probe, retransmission, RST, a second incarnation and a stray', () => {
    expect(
      flows.segments.map((s) => `${s.number}:${s.incarnation}:${s.marks.filter((m) => m !== 'syn' && m !== 'fin').join('+')}`),
    ).toEqual([
      '1:1:',
      '2:1:',
      '3:1:',
      '4:1:',
      '5:1:zero-window',
      '6:1:window-probe',
      '7:1:retransmission',
      '8:1:rst',
      '9:2:',
      '10:2:',
      '11:2:',
      '12:1:retransmission+stray',
    ]);
  });

  it('text rendering (golden)', () => {
    golden('ladder.txt', renderLadderText(ladder!).join('\n') + '\n');
  });

  it('text rendering in colour on a terminal: the RST line in red, the stray in magenta', () => {
    const lines = renderLadderText(ladder!, { colour: true });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the ANSI escape is what is tested
    expect(lines.find((l) => l.includes('RST,ACK'))).toMatch(/^\x1b\[31;1m/);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the ANSI escape is what is tested
    expect(lines.find((l) => l.includes('STRAY'))).toMatch(/^\x1b\[35;1m/);
  });

  it('SVG rendering (golden)', () => {
    const svg = renderLadderSvg(ladder!);
    expect(svg.match(/<g class="row segment/g)).toHaveLength(12);
    expect(svg).toContain('class="row segment rst"');
    expect(svg).toContain('stroke-dasharray'); // the stray arrow
    golden('ladder.svg', svg + '\n');
  });

  it('marks a segment beyond the advertised window, and one carrying an older timestamp than its sender already used', () => {
    const dir = tmpDir('marks');
    const file = path.join(dir, 'm.pcap');
    const w = new PcapWriter(file);
    const ts = (v: number): Array<{ kind: 'timestamps'; tsval: number; tsecr: number }> => [{ kind: 'timestamps', tsval: v, tsecr: 0 }];
    const f = (
      src: string,
      dst: string,
      sp: number,
      dp: number,
      s: number,
      a: number,
      fl: string,
      len: number,
      win: number,
      tsval: number,
    ): Uint8Array =>
      emitTcpFrame(src, dst, {
        srcPort: sp,
        dstPort: dp,
        seq: seq(s),
        ack: seq(a),
        flags: flags(fl),
        window: win,
        urgent: 0,
        options: ts(tsval),
        payload: new Uint8Array(len),
      });
    w.write(T0, f(K, P, 1, 2, 100, 0, 'syn', 0, 1000, 10));
    w.write(T0 + 1, f(P, K, 2, 1, 500, 101, 'syn,ack', 0, 50, 20));
    w.write(T0 + 2, f(K, P, 1, 2, 101, 501, 'ack', 40, 1000, 11));
    w.write(T0 + 3, f(K, P, 1, 2, 141, 501, 'ack', 40, 1000, 12)); // 101 + 50 is the edge: 141 + 40 is beyond
    w.write(T0 + 4, f(P, K, 2, 1, 501, 141, 'ack', 4, 50, 15)); // TSval 15 < 20 sent before
    w.close();
    const marks = analyzeTcp(parsePcap(fs.readFileSync(file))).segments.map((x) => x.marks.filter((m) => m !== 'syn'));
    expect(marks).toEqual([[], [], [], ['out-of-window'], ['old-timestamp']]);
  });

  it('a long capture is condensed around eventful rows', () => {
    const plain = (n: number, label = 'ACK seq=1 ack=1 win=1'): LadderRow => ({
      number: n,
      timeUs: n,
      timeS: n,
      leftToRight: true,
      label,
      marks: [],
      incarnation: 1,
    });
    const rows = Array.from({ length: 1000 }, (_, i) => plain(i + 1));
    rows[500] = { ...rows[500]!, marks: ['rst'], label: 'RST seq=1 win=0' };
    const { rows: out, omitted } = condense(rows, 100);
    expect(out.length).toBeLessThan(30);
    expect(out.some((r) => r.number === 501 && r.marks.includes('rst'))).toBe(true);
    expect(omitted + out.filter((r) => !r.elided).length).toBe(1000);
  });
});
