// Labs 02–17 run for real, all at once (as `twlab run all` runs them), each in its own namespace,
// in fast settings where a lab has them. The tests assert what this kernel measured — errno,
// bytes, frames in the capture, counters — not only the verdict words, and that every capture
// opens in tshark with its frames in time order.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeTcp } from '../src/capture/flows';
import { ipPayloadOf, readPcap } from '../src/capture/pcap';
import { parseFoundHereCell, readmeCells } from '../src/lab/report/foundhere';
import { newTcpView, viewTcp } from '../src/wire/view';
import type { LabResult } from '../src/lab/api/types';
import { hasTool, privileged, removeTmpDirs, ROOT, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();
const canTshark = hasTool('tshark') || !!process.env.CI;

function tshark(pcap: string, filter: string, fields: string[]): string[][] {
  const t = spawnSync('tshark', ['-r', pcap, '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8' });
  expect(t.status, t.stderr).toBe(0);
  return t.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
}
const count = (pcap: string, filter: string): number => tshark(pcap, filter, ['frame.number']).length;

// wait=none: lab 17 glimpses its orphans instead of waiting them out, so C25 is not tested here
// (and says why); the full wait is below, beside lab 02's
const UNWAITED: Record<string, string[]> = { '17': ['C25'] };

describe.skipIf(!run)('labs 02–17 on this kernel', () => {
  let out: string;
  let results: Map<string, LabResult>;
  let stderr: string;
  beforeAll(() => {
    out = tmpDir('labs');
    const r = runCli(
      [
        'run',
        '02',
        '03',
        '04',
        '05',
        '06',
        '07',
        '08',
        '09',
        '10',
        '11',
        '12',
        '13',
        '14',
        '15',
        '16',
        '17',
        '--json',
        '--out',
        out,
        '--set',
        'wait=none',
        '--set',
        'fin_timeout=3',
        '--set',
        'linger=2',
        '--set',
        'connections=40',
        '--set',
        'burst=20',
      ],
      { timeoutMs: 240_000 },
    );
    stderr = r.stderr;
    expect(r.code, r.stderr).toBe(0);
    results = new Map((JSON.parse(r.stdout) as LabResult[]).map((x) => [x.lab, x]));
  }, 260_000);

  const verdicts = (id: string): Record<string, string> => Object.fromEntries(results.get(id)!.claims.map((c) => [c.id, c.verdict]));
  const claim = (id: string, c: string): LabResult['claims'][number] => results.get(id)!.claims.find((x) => x.id === c)!;
  const variant = (id: string, name: string): Record<string, unknown> =>
    results.get(id)!.variants.find((v) => v.name === name)!.observations;
  const trials = <T>(id: string, name: string): T[] => variant(id, name).trials as T[];
  const dirOf = (id: string): string => path.join(out, `${id}-${results.get(id)!.slug}`);
  const pcapOf = (id: string, name: string): string => path.join(dirOf(id), `${name}.pcap`);

  it('runs all sixteen at once, each leaving result.json, timeline.json and one pcap per variant', () => {
    expect([...results.keys()]).toEqual(['02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12', '13', '14', '15', '16', '17']);
    expect(stderr).toBe(''); // --json: nothing but JSON, no progress lines
    for (const r of results.values()) {
      for (const f of ['result.json', 'timeline.json', ...r.variants.map((v) => v.pcap!)])
        expect(fs.existsSync(path.join(dirOf(r.lab), f)), `${r.lab}/${f}`).toBe(true);
      const timeline = JSON.parse(fs.readFileSync(path.join(dirOf(r.lab), 'timeline.json'), 'utf8')) as { events: Array<{ kind: string }> };
      const kinds = new Set(timeline.events.map((e) => e.kind));
      for (const k of ['syscall', 'frame', 'kernel', 'counters', 'peer-state', 'peer-segment'])
        expect(kinds.has(k), `${r.lab} timeline has ${k}`).toBe(true);
    }
  });

  /**
   * On the host lab 11 lines the old ACK up by outrunning the kernel's ISN clock (15.6 MB/s); a
   * machine too busy to send that fast leaves those trials out, with the numbers — measured, per
   * skip variant, as an old ACK below the new ISN. What depends on them is checked in lab 11's own test.
   */
  const outrun11 = (): { aligned: number; slow: number } => {
    const leads = ['linger-abort', 'no-tw-buckets', 'peer-time-wait-short'].map(
      (v) => trials<{ oldAckLead: number }>('11', v)[0]!.oldAckLead,
    );
    return { aligned: leads.filter((l) => l >= 0).length, slow: leads.filter((l) => l < 0).length };
  };
  const speedBound = (lab: string, id: string): boolean =>
    lab === '11' && outrun11().slow > 0 && (id === 'C13' || id === 'q1' || (id === 'C14' && outrun11().aligned === 0));

  it('every claim carries its scope and the preconditions checked, each met', () => {
    for (const r of results.values()) {
      for (const c of r.claims) {
        if (UNWAITED[r.lab]?.includes(c.id)) continue;
        expect(c.scope, `${r.lab} ${c.id}`).toMatch(/\w/);
        expect(c.preconditions.length + (c.trials ? 1 : 0), `${r.lab} ${c.id} checked something`).toBeGreaterThan(0);
        if (speedBound(r.lab, c.id)) continue;
        expect(
          c.preconditions.every((p) => p.met),
          `${r.lab} ${c.id}: ${c.evidence}`,
        ).toBe(true);
        if (c.trials) expect(c.trials.excluded, `${r.lab} ${c.id}: ${c.evidence}`).toBe(0);
      }
    }
  });

  it('every lab answers its questions from what it measured: one of the choices, with why', () => {
    for (const r of results.values()) {
      expect(r.questions?.length, `${r.lab} asks questions`).toBeGreaterThan(0);
      for (const q of r.questions!) {
        if (UNWAITED[r.lab]) {
          expect(q.notScored, `${r.lab} ${q.id}`).toMatch(/watched until it went — wait=none/);
          continue;
        }
        if (speedBound(r.lab, q.id)) continue;
        expect(q.answer, `${r.lab} ${q.id}: ${q.notScored}`).not.toBeNull();
        expect(q.choices, `${r.lab} ${q.id}`).toContain(q.answer);
        expect(q.why).toMatch(/measured|the socket table|sampled/);
      }
    }
  });

  it('every capture has its frames in time order, and opens in tshark without a malformed frame', () => {
    for (const r of results.values()) {
      for (const v of r.variants) {
        const file = path.join(dirOf(r.lab), v.pcap!);
        const { records } = readPcap(file);
        expect(records.length, file).toBe(v.frames);
        const backwards = records.filter((x, i) => i > 0 && x.timeUs < records[i - 1]!.timeUs).map((x) => x.number);
        expect(backwards, file).toEqual([]);
        if (canTshark && records.length) expect(count(file, '_ws.malformed || _ws.expert.severity == "error"'), file).toBe(0);
      }
    }
  }, 300_000); // a tshark per capture: seconds each on a loaded machine

  it("every frame's time in every capture agrees with its TCP timestamp option: TSval deltas against frame-time deltas, per sender", () => {
    // Frames are stamped by the kernel where they cross the TUN (an AF_PACKET socket, as tcpdump's).
    // A sender's TSval is its clock in ms when its TCP built the segment: between two segments of
    // one sender the deltas agree to the TSval's millisecond, unless the sender was held up between
    // building a segment and handing it to the device. The kernel's answers to the peer's segments
    // are built and sent inside the peer's write(), with bottom halves off: nearly nothing comes
    // between, yet under a load of 5–7 one pair in a hundred or so was seen 5–7 ms off (labs 03, 06,
    // 10; the cause inside the kernel is not pinned down),
    // so 97 % must agree within 3 ms, and the median within 1 ms. What the kernel sends from a syscall (a SYN from
    // connect(), a FIN from close()) can be preempted in between on a loaded machine (seen: a SYN 9 ms
    // late under a load of 20), and the peer, one process among many, likewise (~1 % of its frames
    // by 30–60 ms): those are asserted in bulk. A segment a lab holds back on purpose (the peer's
    // heldMs in the timeline) and a segment of an earlier incarnation (a stray) are left out.
    const KERNEL = new Set(['192.0.2.1', '198.51.100.1', '2001:db8::1']);
    const answersOff: string[] = [];
    let answerPairs = 0;
    const answerDevs: number[] = [];
    const kernelDevs: number[] = [];
    const peerDevs: number[] = [];
    for (const r of results.values()) {
      const events = (
        JSON.parse(fs.readFileSync(path.join(dirOf(r.lab), 'timeline.json'), 'utf8')) as { events: Array<Record<string, unknown>> }
      ).events;
      for (const v of r.variants) {
        const held = new Set(
          events
            .filter((e) => e.kind === 'peer-segment' && e.variant === v.name && e.direction === 'out' && typeof e.heldMs === 'number')
            .map((e) => `${e.local}>${e.remote}|${e.flags}|${(e.seq as number) >>> 0}|${(e.ack as number) >>> 0}|${e.len}`),
        );
        const file = readPcap(path.join(dirOf(r.lab), v.pcap!));
        const flows = analyzeTcp(file);
        const byNumber = new Map(flows.segments.map((x) => [x.number, x]));
        const last = new Map<string, { t: number; ts: number }>();
        const lastAnswer = new Map<string, { t: number; ts: number; n: number }>();
        const lastPeerFrame = new Map<string, number>();
        const view = newTcpView();
        for (const rec of file.records) {
          const seg = byNumber.get(rec.number);
          if (!seg || !viewTcp(ipPayloadOf(file.linkType, rec.data)!, rec.data.length < rec.origLength, view) || view.tsval < 0) continue;
          if (seg.strayFrom !== undefined) continue;
          const key = `${seg.direction}#${seg.incarnation}`;
          const fromKernel = KERNEL.has(seg.srcAddress);
          if (!fromKernel) lastPeerFrame.set(seg.flow, rec.timeUs);
          if (!fromKernel && held.has(`${seg.src}>${seg.dst}|${seg.flags}|${seg.seq >>> 0}|${seg.ack >>> 0}|${seg.len}`)) {
            last.delete(key);
            continue;
          }
          const dev = (p: { t: number; ts: number }): number => (rec.timeUs - p.t) / 1000 - ((view.tsval - p.ts) | 0);
          const prev = last.get(key);
          last.set(key, { t: rec.timeUs, ts: view.tsval });
          if (prev) (fromKernel ? kernelDevs : peerDevs).push(dev(prev));
          // the kernel's answer to a peer's segment: within 1 ms of it, sent inside its write()
          const peerAt = lastPeerFrame.get(seg.flow);
          if (!fromKernel || peerAt === undefined || rec.timeUs - peerAt > 1000) continue;
          const prevAnswer = lastAnswer.get(key);
          lastAnswer.set(key, { t: rec.timeUs, ts: view.tsval, n: rec.number });
          if (!prevAnswer) continue;
          answerPairs++;
          answerDevs.push(dev(prevAnswer));
          if (Math.abs(dev(prevAnswer)) > 3)
            answersOff.push(
              `${r.lab} ${v.pcap} #${prevAnswer.n}→#${rec.number} (${seg.direction}): frames ${((rec.timeUs - prevAnswer.t) / 1000).toFixed(3)} ms apart, TSval ${(view.tsval - prevAnswer.ts) | 0} ms`,
            );
        }
      }
    }
    expect(answerPairs).toBeGreaterThan(100);
    expect(
      1 - answersOff.length / answerPairs,
      `${answersOff.length} of ${answerPairs} answer pairs off by more than 3 ms:\n${answersOff.join('\n')}`,
    ).toBeGreaterThanOrEqual(0.97);
    const median = (devs: number[]): number => [...devs].map(Math.abs).sort((a, b) => a - b)[devs.length >> 1]!;
    expect(median(answerDevs), 'the median answer pair').toBeLessThanOrEqual(1);
    const within = (devs: number[]): number => devs.filter((d) => Math.abs(d) <= 3).length / devs.length;
    expect(kernelDevs.length).toBeGreaterThan(500);
    expect(
      within(kernelDevs),
      `kernel pairs within 3 ms: ${(within(kernelDevs) * 100).toFixed(2)} % of ${kernelDevs.length}`,
    ).toBeGreaterThanOrEqual(0.97);
    expect(peerDevs.length).toBeGreaterThan(100);
    expect(
      within(peerDevs),
      `peer pairs within 3 ms: ${(within(peerDevs) * 100).toFixed(2)} % of ${peerDevs.length}; worst ${Math.max(...peerDevs.map(Math.abs)).toFixed(1)} ms`,
    ).toBeGreaterThanOrEqual(0.8);
  });

  it("twlab show --summary recognises each lab's capture as the close pattern it demonstrates", () => {
    const cases: Array<[string, string, RegExp]> = [
      ['02', 'kernel-closes-first', /FIN\/FIN\s+left .*orderly close$/m],
      ['04', 'same-remote', /four-tuple reused by the side in TIME_WAIT/],
      ['05', 'established-idle', /RST from left .*abortive close$/m],
      ['05', 'unsent-data', /abortive close with data unsent/],
      ['06', 'peer-stalls', /orderly close; zero window, probed/],
      ['07', 'linger-off', /RST after received data/],
      ['08', 'closed-orphaned', /RST to late data after a FIN/],
      ['09', 'crossing-fins', /FIN\/FIN\s+left\+right .*simultaneous close/],
      ['11', 'linger-abort', /old duplicate after reuse of the four-tuple/],
      ['12', 'seq-above', /SYN into TIME_WAIT accepted/],
      ['12', 'seq-below-no-ts', /SYN into TIME_WAIT refused/],
      ['13', 'rfc1337-0', /RST into TIME_WAIT/],
      ['14', 'probes', /challenge ACKs/],
    ];
    for (const [id, v, pattern] of cases) {
      const r = runCli(['show', pcapOf(id, v), '--summary']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout, `${id} ${v}`).toMatch(pattern);
    }
  });

  it('the annotated pcapng beside each capture carries the marks as packet comments (tshark -e frame.comment)', () => {
    for (const r of results.values())
      for (const v of r.variants) expect(fs.existsSync(path.join(dirOf(r.lab), v.pcapng!)), `${r.lab}/${v.pcapng}`).toBe(true);
    if (!canTshark) return;
    const comments = tshark(path.join(dirOf('05'), 'established-idle.pcapng'), 'frame.comment', ['frame.number', 'frame.comment']);
    expect(comments).toHaveLength(5); // one RST per trial
    for (const [, c] of comments) expect(c).toMatch(/^RST; abortive close: 192\.0\.2\.1:\d+ reset the connection .* \(twlab run 05\)$/);
    const stray = tshark(path.join(dirOf('11'), 'linger-abort.pcapng'), 'frame.comment contains "STRAY"', ['frame.comment']);
    expect(stray.map((x) => x[0])).toEqual([
      expect.stringMatching(/STRAY: a segment of incarnation 1 of 192\.0\.2\.1:7001 ↔ 192\.0\.2\.2:45100, seen in incarnation 2/),
    ]);
    // the pcapng holds the same frames as the pcap
    expect(count(path.join(dirOf('05'), 'unsent-data.pcapng'), 'frame')).toBe(readPcap(pcapOf('05', 'unsent-data')).records.length);
  });

  it('02: only the closer holds TIME_WAIT; 60 s whatever tcp_fin_timeout says', () => {
    expect(verdicts('02')).toEqual({ T1: 'holds', T2: 'holds' });
    expect(claim('02', 'T1').trials).toEqual({ agree: 10, valid: 10, excluded: 0 });
    expect(results.get('02')!.sysctls['net.ipv4.tcp_fin_timeout']).toBe('3');
    for (const v of ['kernel-closes-first', 'fin-timeout-changed']) {
      for (const c of trials<{ timerAtEntryMs: number; peerStates: string[] }>('02', v)) {
        expect(c.timerAtEntryMs).toBeGreaterThan(58_000);
        expect(c.peerStates.slice(-2)).toEqual(['LAST-ACK', 'CLOSED']);
      }
    }
    for (const c of trials<{ kernelStates: string[]; kernelEntries: string[]; peerStates: string[] }>('02', 'peer-closes-first')) {
      // the kernel's side: CLOSE_WAIT once it read the peer's FIN, then gone, never TIME_WAIT
      expect(c.kernelStates[0]).toBe('CLOSE_WAIT');
      expect(c.kernelStates).not.toContain('TIME_WAIT');
      expect(c.kernelEntries).toEqual([]);
      expect(c.peerStates[c.peerStates.length - 1]).toBe('TIME-WAIT');
    }
    // one FIN per connection (a FIN the kernel resent under load is a retransmission, not a new close)
    if (canTshark)
      expect(count(pcapOf('02', 'kernel-closes-first'), 'ip.src == 192.0.2.1 && tcp.flags.fin == 1 && !tcp.analysis.retransmission')).toBe(
        5,
      );
  });

  it('03: Linux wants SO_REUSEADDR on the old listener too; SO_REUSEPORT on both works', () => {
    expect(verdicts('03')).toEqual({ C4: 'differs by OS', C17: 'holds' });
    const cells = variant('03', 'specific-address').cells as Array<{
      oldListener: string;
      newSocket: string;
      bind: string;
      timeWait: boolean;
    }>;
    expect(cells).toHaveLength(16 * 3);
    expect(cells.every((c) => c.timeWait)).toBe(true);
    const at = (o: string, n: string): string[] => [
      ...new Set(cells.filter((c) => c.oldListener === o && c.newSocket === n).map((c) => c.bind)),
    ];
    expect([at('none', 'reuseaddr'), at('reuseaddr', 'reuseaddr'), at('reuseport', 'reuseport'), at('none', 'none')]).toEqual([
      ['EADDRINUSE'],
      ['OK'],
      ['OK'],
      ['EADDRINUSE'],
    ]);
  });

  it('04: a second connect() on an existing four-tuple is EADDRNOTAVAIL; tcp_tw_reuse governs kernel-chosen ports only', () => {
    expect(verdicts('04')).toEqual({ C6: 'differs by OS', T3: 'holds', T16: 'holds' });
    for (const t of trials<{ connectA: string; firstState: string; connectB: string }>('04', 'two-sockets-one-tuple'))
      expect(t).toMatchObject({ connectA: 'OK', firstState: 'ESTABLISHED', connectB: 'EADDRNOTAVAIL' });
    const cells = variant('04', 'tw-reuse-compare').cells as Array<{
      how: string;
      twReuse: string;
      connect: string;
      twBefore: boolean;
      delayMs: number;
    }>;
    const at = (how: string, tw: string): string[] => [
      ...new Set(cells.filter((c) => c.how === how && c.twReuse === tw).map((c) => c.connect)),
    ];
    expect([at('range', '0'), at('range', '1'), at('bind', '0'), at('bind', '1')]).toEqual([['EADDRNOTAVAIL'], ['OK'], ['OK'], ['OK']]);
    // the delay counts from the TIME_WAIT entry's first sighting
    expect(cells.every((c) => c.twBefore && c.delayMs >= 1000)).toBe(true);
    const delay = results.get('04')!.sysctls['net.ipv4.tcp_tw_reuse_delay'];
    expect(claim('04', 'T3').evidence).toMatch(
      delay === undefined ? /tcp_tw_reuse_delay does not exist on this kernel/ : new RegExp(`tcp_tw_reuse_delay ${delay} ms`),
    );
  });

  it('05: SO_LINGER {1,0} resets, drops unsent data, no TIME_WAIT — also when the process is killed', () => {
    expect(verdicts('05')).toEqual({ C11: 'holds', C16: 'differs by OS' });
    for (const t of trials<{ linger: string; sendQueueAtClose: number; discarded: number }>('05', 'unsent-data')) {
      expect(t.linger).toBe('{1,0}');
      expect(t.sendQueueAtClose).toBeGreaterThan(0);
      expect(t.discarded).toBeGreaterThan(0);
    }
    for (const t of trials<{ signal: string }>('05', 'process-killed')) expect(t.signal).toBe('SIGKILL');
    if (!canTshark) return;
    for (const v of ['established-idle', 'unsent-data', 'process-killed']) {
      expect(count(pcapOf('05', v), 'ip.src == 192.0.2.1 && tcp.flags.reset == 1'), v).toBe(5);
      expect(count(pcapOf('05', v), 'ip.src == 192.0.2.1 && tcp.flags.fin == 1'), v).toBe(0);
    }
  });

  it('06: a lingering close() blocks N s (non-blocking too), returns 0, and the data still arrives; TIME_WAIT is 60 s', () => {
    expect(verdicts('06')).toEqual({ C12: 'differs by OS', C18: 'differs by OS' });
    // C18 is judged on the kernel's segments: every queued byte on the wire, then its FIN, no RST
    expect(claim('06', 'C18').evidence).toMatch(/sent 0 RST, all the queued bytes and then its FIN in 10\/10/);
    for (const v of ['peer-stalls', 'non-blocking']) {
      for (const t of trials<{ close: { ret: number; elapsedMs: number }; peerGotEverything: boolean; afterClose: { sendQueue: number } }>(
        '06',
        v,
      )) {
        expect(t.close.elapsedMs, v).toBeGreaterThanOrEqual(1950);
        expect(t.close.ret).toBe(0);
        expect(t.afterClose.sendQueue).toBeGreaterThan(0);
        expect(t.peerGotEverything).toBe(true);
      }
      expect(variant('06', v).loopTicksDuringClose as number).toBeGreaterThan(10); // the loop ran while close() blocked
    }
    for (const t of trials<{ timeWaitTimerMs: number }>('06', 'all-acknowledged')) expect(t.timeWaitTimerMs).toBeGreaterThan(58_000);
    if (!canTshark) return;
    const pcap = pcapOf('06', 'peer-stalls');
    // the peer's zero windows, and the kernel's probes: Linux probes with an ACK at SND.UNA−1 and no
    // data (tcp_xmit_probe_skb), which Wireshark labels "Keep-Alive"
    expect(count(pcap, 'ip.src == 192.0.2.2 && tcp.analysis.zero_window')).toBeGreaterThan(0);
    expect(count(pcap, 'ip.src == 192.0.2.1 && tcp.analysis.keep_alive')).toBeGreaterThan(0);
    expect(count(pcap, 'ip.src == 192.0.2.1 && tcp.flags.reset == 1')).toBe(0);
  });

  it('07: unread data turns every close() into a RST', () => {
    expect(verdicts('07')).toEqual({ T15: 'holds' });
    expect((variant('07', 'linger-off').counters as Record<string, number>)['TcpExt.TCPAbortOnClose']).toBe(5);
    if (!canTshark) return;
    for (const v of ['linger-off', 'linger-on', 'linger-zero']) {
      expect(count(pcapOf('07', v), 'ip.src == 192.0.2.1 && tcp.flags.reset == 1'), v).toBe(5);
      expect(count(pcapOf('07', v), 'ip.src == 192.0.2.1 && tcp.flags.fin == 1'), v).toBe(0);
    }
  });

  it('08: an orphaned FIN_WAIT_2 lives tcp_fin_timeout; a shutdown() one does not time out', () => {
    expect(verdicts('08')).toEqual({ T5: 'holds' });
    for (const t of trials<{ lifetimeMs: number }>('08', 'closed-orphaned')) expect(Math.abs(t.lifetimeMs - 3000)).toBeLessThan(1500);
    for (const t of trials<{ lateData: { readByApplication: string }; stillAfterWatch: string }>('08', 'shutdown-kept-open')) {
      expect(t.lateData.readByApplication).toBe('late data');
      expect(t.stillAfterWatch).toMatch(/^FIN_WAIT2/);
    }
  });

  it('09: both sides pass CLOSING into TIME_WAIT; the capture shows the FINs crossing', () => {
    expect(verdicts('09')).toEqual({ T6: 'holds' });
    expect(claim('09', 'T6').trials).toEqual({ agree: 5, valid: 5, excluded: 0 });
    expect(claim('09', 'T6').evidence).toMatch(
      /CLOSING→TIME_WAIT \(the socket table\), the peer's FIN acknowledged by the kernel in 5\/5 \(the capture\)/,
    );
    if (!canTshark) return;
    const pcap = pcapOf('09', 'crossing-fins');
    const fins = tshark(pcap, 'tcp.flags.fin == 1 && !tcp.analysis.retransmission', [
      'ip.src',
      'tcp.seq_raw',
      'tcp.ack_raw',
      'tcp.srcport',
      'tcp.dstport',
    ]);
    // per connection: the kernel's FIN, then the peer's, each acknowledging the other side's data
    // but not the other FIN
    const kernelPorts = [...new Set(fins.filter((f) => f[0] === '192.0.2.1').map((f) => f[3]))];
    expect(kernelPorts).toHaveLength(5);
    for (const port of kernelPorts) {
      const kernelFin = fins.find((f) => f[0] === '192.0.2.1' && f[3] === port)!;
      const peerFin = fins.find((f) => f[0] === '192.0.2.2' && f[4] === port)!;
      expect(peerFin[2], port).toBe(kernelFin[1]);
      expect(kernelFin[2], port).toBe(peerFin[1]);
    }
  });

  it('10: beyond tcp_max_tw_buckets TIME_WAIT is skipped, counted, and the port is free', () => {
    expect(verdicts('10')).toEqual({ T7: 'holds' });
    const zero = variant('10', 'close-many-limit-0');
    expect(zero).toMatchObject({ timeWaitEntries: 0, skipped: 40 });
    expect((zero.counters as Record<string, number>)['TcpExt.TCPTimeWaitOverflow']).toBe(40);
    const eight = variant('10', 'close-many-limit-8');
    expect(eight).toMatchObject({ timeWaitEntries: 8, skipped: 32, bindHeld: 'EADDRINUSE' });
    expect((eight.counters as Record<string, number>)['TcpExt.TCPTimeWaitOverflow']).toBe(32);
    expect(new Set(eight.bindSkipped as string[])).toEqual(new Set(['OK']));
  });

  it("README's found-here column gives the verdicts this run measured (else: npm run readme:table after a run)", () => {
    const cells = readmeCells(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    // (a claim this run did not wait out is left out: the README's comes from a default run)
    const judged = (id: string, v: Record<string, string>): Record<string, string> =>
      Object.fromEntries(Object.entries(v).filter(([c]) => !UNWAITED[id]?.includes(c)));
    for (const id of results.keys()) {
      const readme = judged(id, parseFoundHereCell(cells.get(id) ?? ''));
      const measured = judged(id, verdicts(id));
      expect(Object.keys(readme).sort(), `lab ${id}: ${cells.get(id)}`).toEqual(Object.keys(measured).sort());
      // a claim this run could not judge (its evidence names why; the lab's own test checks it) is no contradiction
      for (const [c, v] of Object.entries(measured)) if (v !== 'not tested') expect(readme[c], `lab ${id} ${c}: ${cells.get(id)}`).toBe(v);
    }
  });

  it('11: with TIME_WAIT skipped, the old "BBBB" is read as the new connection\'s data; TIME_WAIT blocks the reuse; under 10 MB of evidence', () => {
    const c13 = claim('11', 'C13');
    // every trial whose old segment lined up read the old bytes; one that did not line up (a busy
    // machine's transfer slower than the ISN clock) is left out with its numbers, never counted against
    const skipped = ['linger-abort', 'no-tw-buckets', 'peer-time-wait-short'].map((v) => ({
      v,
      o: trials<{ kernelRead: string; timeWaitBeforeSecond: boolean; oldAckLead: number; isnAlign: string }>('11', v)[0]!,
    }));
    const aligned = skipped.filter(({ o }) => o.oldAckLead >= 0);
    for (const { v, o } of aligned) expect(o.kernelRead, v).toBe('BBBB');
    for (const { o } of skipped) {
      expect(o.timeWaitBeforeSecond).toBe(false);
      expect(o.isnAlign).toBe('outrun'); // the host's clock is never set
    }
    expect(c13.trials).toEqual({ agree: aligned.length, valid: aligned.length, excluded: 3 - aligned.length });
    // a claim of possibility: one valid trial that shows it is enough; none, and it is not tested (never "does not hold")
    expect(c13.verdict).toBe(aligned.length > 0 ? 'holds' : 'not tested');
    if (aligned.length === 0)
      expect(c13.evidence).toMatch(
        /^precondition failed in all 3 trials: the old segment's ACK fell inside the new connection — it lies [\d.]+ MB below the new ISN/,
      );
    expect(claim('11', 'T8').verdict).toBe('holds');
    for (const o of trials('11', 'with-time-wait')) expect(o).toMatchObject({ opened: false, timeWaitBeforeSecond: true });
    // the control's SYN met the TIME_WAIT: the kernel re-acknowledged the old connection and sent no SYN-ACK (in the capture)
    expect(count(pcapOf('11', 'with-time-wait'), 'tcp.flags.syn == 1 && tcp.flags.ack == 1 && ip.src == 192.0.2.1')).toBe(3); // the three first incarnations only
    const c14 = claim('11', 'C14');
    if (aligned.length > 0) expect(c14).toMatchObject({ verdict: 'holds', trials: { agree: 3, valid: 3, excluded: 0 } });
    else expect(c14.evidence).toMatch(/^precondition failed: without TIME_WAIT an old segment was taken for new data — 0 of 3/);
    for (const o of trials<{ kernelRead: string; timestamps: boolean; pawsEstab: number }>('11', 'paws-with-timestamps')) {
      expect(o).toMatchObject({ kernelRead: 'NEW!', timestamps: true });
      expect(o.pawsEstab).toBe(1);
    }
    expect(variant('11', 'isn-clock').perSecond as number).toBeGreaterThan(1e6);
    const bytes = fs.readdirSync(dirOf('11')).reduce((n, f) => n + fs.statSync(path.join(dirOf('11'), f)).size, 0);
    expect(bytes).toBeLessThan(10 << 20);
    // the bulk frames are kept headers-only, with their true length
    const cut = readPcap(pcapOf('11', 'linger-abort')).records.filter((r) => r.data.length < r.origLength);
    expect(cut.length).toBeGreaterThan(100);
  });

  it('12: a higher sequence number or a newer timestamp gets a SYN into TIME_WAIT; the new ISN is old SND.NXT + 65537', () => {
    expect(verdicts('12')).toEqual({ T9: 'holds', T10: 'holds' });
    for (const p of trials<{ newIssMinusOldSndNxt: number; accepted: boolean }>('12', 'seq-above'))
      expect(p).toMatchObject({ newIssMinusOldSndNxt: 65537, accepted: true });
    for (const p of trials<{ accepted: boolean; repliesToSyn: string[] }>('12', 'seq-below-no-ts'))
      expect(p).toMatchObject({ accepted: false, repliesToSyn: ['ACK ack=0'] });
    // the refusals on the wire: one bare ACK from the kernel per refused SYN, no SYN-ACK after the first handshakes
    expect(count(pcapOf('12', 'seq-below-no-ts'), 'tcp.flags.syn == 1 && tcp.flags.ack == 1 && ip.src == 192.0.2.1')).toBe(5);
    expect(claim('12', 'T10').evidence).toMatch(/with a newer timestamp \(TSval \+\d+/);
  });

  it('13: an in-window RST kills TIME_WAIT (the port is free at once) unless tcp_rfc1337=1; a late segment beside a new listener goes to the TIME_WAIT', () => {
    expect(verdicts('13')).toEqual({ T11: 'holds', C19: 'differs by OS' });
    for (const t of trials('13', 'rfc1337-0'))
      expect(t).toMatchObject({ timeWaitBefore: true, timeWaitAfterRst: false, rebindWithoutFlags: 'OK' });
    for (const t of trials('13', 'rfc1337-1'))
      expect(t).toMatchObject({ timeWaitBefore: true, timeWaitAfterRst: true, rebindWithoutFlags: 'EADDRINUSE' });
    expect(claim('13', 'T11').trials).toEqual({ agree: 10, valid: 10, excluded: 0 });
    const beside = trials<{
      late: string;
      bind: string;
      listen: string;
      timeWaitBefore: boolean;
      timeWaitAfter: boolean;
      listeningAfter: boolean;
      accept: string;
    }>('13', 'beside-new-listener');
    for (const b of beside)
      expect(b).toMatchObject({
        bind: 'OK',
        listen: 'OK',
        timeWaitBefore: true,
        listeningAfter: true,
        accept: 'EAGAIN',
        timeWaitAfter: b.late === 'data',
      });
    expect(claim('13', 'C19').trials).toEqual({ agree: 0, valid: 10, excluded: 0 });
    // the late data drew the TIME_WAIT's ACK of the old connection, never an RST from the listener
    expect(count(pcapOf('13', 'beside-new-listener'), 'tcp.flags.reset == 1 && ip.src == 192.0.2.1')).toBe(0);
  });

  it('14: challenge ACKs for in-window RST, SYN and ACK beyond SND.NXT; rate-limited per socket', () => {
    expect(verdicts('14')).toEqual({ T12: 'holds', T13: 'holds', T14: 'holds' });
    for (const id of ['T12', 'T13', 'T14']) expect(claim('14', id).trials).toEqual({ agree: 5, valid: 5, excluded: 0 });
    for (const p of trials<{ kind: string; injectedRead?: string }>('14', 'probes')) if (p.kind === 'ack') expect(p.injectedRead).toBe('');
    const rate = variant('14', 'rate-limit');
    const rc = rate.counters as Record<string, number>;
    expect(rc['TcpExt.TCPACKSkippedChallenge']).toBeGreaterThan(0);
    // the capture and the kernel's own counter agree: the kernel's bare ACKs in the burst's capture
    // are its handshake ACK and one per challenge ACK it counted
    expect(count(pcapOf('14', 'rate-limit'), 'ip.src == 192.0.2.1 && tcp.flags == 0x010 && tcp.len == 0')).toBe(
      1 + rc['TcpExt.TCPChallengeACK']!,
    );
    expect(rc['TcpExt.TCPChallengeACK']).toBeLessThan(20);
    expect(claim('14', 'T12').evidence).toMatch(/5\/5 answered with a challenge ACK/);
  });

  it('15: SO_REUSEPORT spreads connections and datagrams evenly; a connected UDP socket gets its endpoint; another uid may not join', () => {
    expect(verdicts('15')).toEqual({ C10: 'holds', C9: 'holds', C20: 'holds' });
    const tcp = variant('15', 'tcp-connections');
    const udp = variant('15', 'udp-datagrams');
    // every setup call returned 0: four listeners bound and listening, four UDP sockets bound
    for (const x of [...(tcp.setup as Array<Record<string, string>>), ...(udp.setup as Array<Record<string, string>>)])
      expect(x).toMatchObject({ reuseport: 'OK', bind: 'OK' });
    expect((tcp.setup as Array<{ listen: string }>).map((x) => x.listen)).toEqual(['OK', 'OK', 'OK', 'OK']);
    expect((tcp.counts as number[]).reduce((a, b) => a + b, 0)).toBe(40);
    expect(tcp.pValue as number).toBeGreaterThanOrEqual(0.001);
    expect(new Set(tcp.otherUidBinds as string[])).toEqual(new Set(['EADDRINUSE']));
    expect((udp.counts as number[]).reduce((a, b) => a + b, 0)).toBe(40);
    expect(claim('15', 'C10').evidence).toMatch(
      /with 40 over 4 sockets the test rejects, 90 times in 100, a spread where one socket gets [\d.]+ % or [\d.]+ % instead of 25\.0 %/,
    );
    for (const t of trials<{ connected: number; fromEndpoint: number[]; fromOthers: number[] }>('15', 'udp-connected')) {
      expect(t.fromEndpoint[t.connected - 1]).toBe(20);
      expect(t.fromEndpoint.reduce((a, b) => a + b, 0)).toBe(20);
      expect(t.fromOthers[t.connected - 1]).toBe(0);
      expect(t.fromOthers.reduce((a, b) => a + b, 0)).toBe(20);
    }
  });

  it('16: the specific address wins over the wildcard, for datagrams and connections, in either binding order', () => {
    expect(verdicts('16')).toEqual({ C21: 'holds' });
    for (const proto of ['udp', 'tcp']) {
      const ts = trials<{ order: string; wildcardSetup: string; specificSetup: string; toSpecific: object; toOther: object }>('16', proto);
      expect(ts.map((t) => t.order)).toEqual(['wildcard first', 'specific first', 'wildcard first', 'specific first', 'wildcard first']);
      for (const t of ts) {
        expect(t).toMatchObject({
          wildcardSetup: 'OK',
          specificSetup: 'OK',
          toSpecific: { bySpecific: 10, byWildcard: 0 },
          toOther: { bySpecific: 0, byWildcard: 10 },
        });
      }
    }
    if (!canTshark) return;
    expect(count(pcapOf('16', 'udp'), 'udp && ip.dst == 192.0.2.1')).toBe(50);
    expect(count(pcapOf('16', 'tcp'), 'ip.src == 192.0.2.1 && tcp.flags.syn == 1 && tcp.flags.ack == 1')).toBe(50);
    expect(count(pcapOf('16', 'tcp'), 'ip.src == 198.51.100.1 && tcp.flags.syn == 1 && tcp.flags.ack == 1')).toBe(50);
  });

  it('17: close() with data unsent to a silent peer returns at once; the orphan retransmits (wait=none: not waited out, so not tested)', () => {
    const c = claim('17', 'C25');
    expect(c.verdict).toBe('not tested');
    expect(c.evidence).toMatch(
      /^precondition failed in all 3 trials: the orphan was watched until it went \(watch 3 s\) — still FIN_WAIT1/,
    );
    for (const o of variant('17', 'silent-peer').orphans as Array<{
      close: { ret: number; elapsedMs: number };
      afterClose: { state: string; sendQueue: number };
      lifetimeMs: number | null;
    }>) {
      expect(o.close.ret).toBe(0);
      expect(o.afterClose.state).toBe('FIN_WAIT1');
      expect(o.afterClose.sendQueue).toBeGreaterThan(0);
      expect(o.lifetimeMs).toBeNull();
    }
    if (!canTshark) return;
    expect(count(pcapOf('17', 'silent-peer'), 'ip.src == 192.0.2.1 && tcp.analysis.retransmission')).toBeGreaterThan(0);
    expect(count(pcapOf('17', 'silent-peer'), 'ip.src == 192.0.2.1 && tcp.flags.reset == 1')).toBe(0);
  });
});

// The two long waits, at once: lab 02's TIME_WAIT minute and lab 17's orphans (about two minutes)
describe.skipIf(!run)('waited out: a full TIME_WAIT, and orphans until the kernel gives up', () => {
  let results: Map<string, LabResult>;
  let out: string;
  beforeAll(() => {
    out = tmpDir('waited');
    const r = runCli(['run', '02', '17', '--set', 'wait=full', '--set', 'trials=3', '--json', '--out', out], { timeoutMs: 280_000 });
    expect(r.code, r.stderr).toBe(0);
    results = new Map((JSON.parse(r.stdout) as LabResult[]).map((x) => [x.lab, x]));
  }, 300_000);

  it('02 with wait=full: the kernel entries vanish 60 s after close()', () => {
    const res = results.get('02')!;
    for (const c of res.variants.find((v) => v.name === 'kernel-closes-first')!.observations.trials as Array<{ lifetimeMs: number }>) {
      expect(c.lifetimeMs).toBeGreaterThan(59_000);
      expect(c.lifetimeMs).toBeLessThan(63_000);
    }
    expect(res.claims.find((c) => c.id === 'T2')!.verdict).toBe('holds');
  });

  it('02: timeline.json follows each closing socket through ESTABLISHED → FIN_WAIT1 → FIN_WAIT2 → TIME_WAIT → gone; the report draws a 60 s band and the ladder those states', () => {
    const res = results.get('02')!;
    const dir = path.join(out, '02-time-wait-basics');
    type K = { kind: string; variant: string | null; at: number; local: string; remote: string; state: string | null };
    const events = (JSON.parse(fs.readFileSync(path.join(dir, 'timeline.json'), 'utf8')) as { events: K[] }).events;
    const trials = res.variants.find((v) => v.name === 'kernel-closes-first')!.observations.trials as Array<{
      local: number;
      lifetimeMs: number;
    }>;
    const closes = events.filter(
      (e) => e.kind === 'syscall' && e.variant === 'kernel-closes-first' && (e as unknown as { call: string }).call === 'close',
    );
    expect(trials).toHaveLength(3);
    for (const t of trials) {
      const mine = events.filter(
        (e) =>
          e.kind === 'kernel' && e.variant === 'kernel-closes-first' && e.local === `192.0.2.1:${t.local}` && e.remote === '192.0.2.2:80',
      );
      const states = mine.map((e) => e.state).filter((st, i, all) => i === 0 || st !== all[i - 1]);
      // the socket is followed by its four-tuple through close(): no "gone" between its states
      expect(states.slice(states.indexOf('ESTABLISHED')), `${t.local}: ${states.join(' → ')}`).toEqual([
        'ESTABLISHED',
        'FIN_WAIT1',
        'FIN_WAIT2',
        'TIME_WAIT',
        null,
      ]);
      const tw = mine.find((e) => e.state === 'TIME_WAIT')!;
      const gone = mine[mine.length - 1]!;
      expect(gone.at - tw.at).toBeGreaterThan(59_000_000);
      expect(gone.at - tw.at).toBeLessThan(63_000_000);
      // gone when the table says so: the lab's own watch found it gone at the same moment (its precision: 1 s)
      const closedAt = Math.max(...closes.map((c) => c.at));
      expect(Math.abs((gone.at - closedAt) / 1000 - t.lifetimeMs)).toBeLessThan(1500);
    }
    // the report: the state timeline's TIME_WAIT bands run about 60 s of the axis, and each ladder names the states
    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    const section = html.slice(html.indexOf('id="variant-kernel-closes-first"'), html.indexOf('id="variant-peer-closes-first"'));
    const timeline = section.slice(
      section.indexOf('<svg xmlns="http://www.w3.org/2000/svg" class="timeline"'),
      section.indexOf('</svg>') + 6,
    );
    const bands = [
      ...timeline.matchAll(
        /<g class="band" data-state="TIME_WAIT"><rect x="[\d.]+" y="\d+" width="([\d.]+)"[^>]*><title>TIME_WAIT: ([\d.]+) s<\/title>/g,
      ),
    ].map((m) => ({ width: Number(m[1]), seconds: Number(m[2]) }));
    const axis = 860 - 230 - 20; // the timeline's drawing width (src/capture/timeline-svg.ts)
    expect(bands).toHaveLength(3);
    for (const b of bands) {
      expect(b.seconds).toBeGreaterThan(59);
      expect(b.seconds).toBeLessThan(63);
      expect(b.width / axis).toBeGreaterThan(0.9); // most of the variant's ~62 s: a band, not a 1 px line
    }
    const ladders = [...section.matchAll(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" class="ladder"[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    expect(ladders).toHaveLength(3); // the first drawn, the other two folded under it (the same shape)
    // The peer answers the kernel's FIN with a bare ACK, then its own FIN; on a loaded machine the
    // two can leave in one segment, and then the kernel goes from FIN_WAIT1 straight to TIME_WAIT
    // (RFC 9293 §3.10.7.4): a ladder may lack FIN_WAIT2 then, never anything else, and one at least shows it.
    const paths = ladders.map((svg) => {
      const left = [...svg.matchAll(/<text class="state" x="\d+" y="\d+" text-anchor="end" font-weight="bold">([^<]+)<\/text>/g)].map(
        (m) => m[1]!,
      );
      expect(left.find((l) => l.startsWith('TIME_WAIT'))).toMatch(/^TIME_WAIT (59\.\d|60\.0) s$/);
      return left.slice(left.indexOf('ESTABLISHED')).map((l) => l.replace(/^TIME_WAIT .*/, 'TIME_WAIT'));
    });
    const full = ['ESTABLISHED', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'gone'];
    for (const p of paths) expect([full, full.filter((x) => x !== 'FIN_WAIT2')]).toContainEqual(p);
    expect(paths).toContainEqual(full);
  });

  it('17 with wait=full: the orphans retransmit and leave the socket table no sooner than 8 backed-off retries allow; C25 holds', () => {
    const res = results.get('17')!;
    const c = res.claims.find((x) => x.id === 'C25')!;
    expect(c.verdict, c.evidence).toBe('holds');
    for (const o of res.variants[0]!.observations.orphans as Array<{
      close: { elapsedMs: number };
      afterClose: { state: string } | null;
      lifetimeMs: number;
    }>) {
      expect(o.close.elapsedMs).toBeLessThan(1000);
      expect(o.afterClose?.state).toBe('FIN_WAIT1');
      // tcp_orphan_retries=0 means 8 retries: the kernel gives up once (2^9 − 1) × TCP_RTO_MIN =
      // 102.2 s have passed since the first unacknowledged segment (sent 300 ms before close());
      // a longer measured round trip only makes it later
      expect(o.lifetimeMs).toBeGreaterThan(101_000);
      expect(o.lifetimeMs).toBeLessThan(240_000);
    }
    expect(c.evidence).toMatch(/with 0 RST; net\.ipv4\.tcp_orphan_retries=0 \(0 means 8\)/);
    if (!canTshark) return;
    // the kernel kept sending after close(), and never reset
    expect(
      count(path.join(out, '17-orphan-lifetime', 'silent-peer.pcap'), 'ip.src == 192.0.2.1 && tcp.analysis.retransmission'),
    ).toBeGreaterThan(3);
    expect(count(path.join(out, '17-orphan-lifetime', 'silent-peer.pcap'), 'ip.src == 192.0.2.1 && tcp.flags.reset == 1')).toBe(0);
  });
});
