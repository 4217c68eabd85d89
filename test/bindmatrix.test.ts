// Lab 01: the seed's BSD model and the verdict logic in memory; then well-known cells as this
// kernel answers them, measured by a real `twlab run 01`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import lab01, { bsdPrediction, judgeClaims, type AfterBindTrial, type Cell } from '../labs/01-bind-matrix';
import type { LabResult } from '../src/lab/api/types';
import { privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const base = { kind: 'bound' as const, uidB: 'same' as const, reuseaddrA: false, reuseaddrB: false, reuseportA: false, reuseportB: false };

describe("the seed's BSD model", () => {
  it.each([
    ['same specific address, no flags', { addrA: '192.0.2.1', addrB: '192.0.2.1' }, 'EADDRINUSE'],
    ['same address, SO_REUSEADDR on both', { addrA: '192.0.2.1', addrB: '192.0.2.1', reuseaddrA: true, reuseaddrB: true }, 'EADDRINUSE'],
    ['same address, SO_REUSEPORT on both', { addrA: '192.0.2.1', addrB: '192.0.2.1', reuseportA: true, reuseportB: true }, 'OK'],
    ['same address, SO_REUSEPORT on B only', { addrA: '192.0.2.1', addrB: '192.0.2.1', reuseportB: true }, 'EADDRINUSE'],
    ['two specific addresses', { addrA: '192.0.2.1', addrB: '198.51.100.1' }, 'OK'],
    ['wildcard then specific, no flags', { addrA: '0.0.0.0', addrB: '192.0.2.1' }, 'EADDRINUSE'],
    ['wildcard then specific, SO_REUSEADDR on B', { addrA: '0.0.0.0', addrB: '192.0.2.1', reuseaddrB: true }, 'OK'],
    ['specific then wildcard, SO_REUSEADDR on A only', { addrA: '192.0.2.1', addrB: '0.0.0.0', reuseaddrA: true }, 'EADDRINUSE'],
    [
      'multicast, SO_REUSEADDR on A, SO_REUSEPORT on B',
      { kind: 'multicast' as const, addrA: '224.1.2.3', addrB: '224.1.2.3', reuseaddrA: true, reuseportB: true },
      'OK',
    ],
    ['multicast, no flags', { kind: 'multicast' as const, addrA: '224.1.2.3', addrB: '224.1.2.3' }, 'EADDRINUSE'],
  ])('%s → %s', (_name, cell, expected) => {
    expect(bsdPrediction({ ...base, ...cell })).toBe(expected);
  });
  it('does not speak of IPv6 or of other users', () => {
    expect(bsdPrediction({ ...base, addrA: '::', addrB: '0.0.0.0' })).toBeNull();
    expect(bsdPrediction({ ...base, addrA: '0.0.0.0', addrB: '0.0.0.0', uidB: 'other' })).toBeNull();
  });
});

/** Cells as a kernel that followed the BSD model exactly would answer them. */
function bsdCells(): Cell[] {
  const cells: Cell[] = [];
  const flags = [false, true];
  for (const kind of ['bound', 'listening'] as const)
    for (const [addrA, addrB] of <Array<[string, string]>>[
      ['0.0.0.0', '0.0.0.0'],
      ['0.0.0.0', '192.0.2.1'],
      ['192.0.2.1', '0.0.0.0'],
      ['192.0.2.1', '192.0.2.1'],
      ['192.0.2.1', '198.51.100.1'],
      ['198.51.100.1', '192.0.2.1'],
    ])
      for (const reuseaddrA of flags)
        for (const reuseaddrB of flags)
          for (const reuseportA of flags)
            for (const reuseportB of flags) {
              const c = { ...base, kind, addrA, addrB, reuseaddrA, reuseaddrB, reuseportA, reuseportB };
              const result = bsdPrediction(c)!;
              cells.push({ ...c, proto: 'tcp', v6onlyA: null, v6onlyB: null, port: 1, setupA: 'OK', result, bsd: result });
            }
  return cells;
}

describe('verdicts are computed from the cells', () => {
  it('a BSD-like kernel: C1, C2, C3, C5, C23, C24 hold; C8 is contradicted; C7, C9 and C22 are not tested', () => {
    const v = Object.fromEntries(judgeClaims(bsdCells(), '6.18.0').map((c) => [c.id, c.verdict]));
    // C8 is stated for Linux < 3.9: contradicted on 6.18 it "differs by OS", on 3.2 it "does not hold"
    expect(v).toEqual({
      C1: 'holds',
      C2: 'holds',
      C3: 'holds',
      C5: 'holds',
      C7: 'not tested',
      C8: 'differs by OS',
      C9: 'not tested',
      C23: 'holds',
      C24: 'holds',
      C22: 'not tested',
    });
    expect(judgeClaims(bsdCells(), '3.2.0').find((c) => c.id === 'C8')!.verdict).toBe('does not hold');
  });
  it('a claim not tested names the precondition that failed', () => {
    const c9 = judgeClaims(bsdCells()).find((c) => c.id === 'C9')!;
    expect(c9.evidence).toMatch(/^precondition failed: cells the claim speaks of were measured — needs uids=other/);
  });
  it('one cell changed changes the verdict', () => {
    const cells = bsdCells();
    const i = cells.findIndex(
      (c) => c.addrA === '192.0.2.1' && c.addrB === '192.0.2.1' && !c.reuseaddrA && !c.reuseaddrB && !c.reuseportA && !c.reuseportB,
    );
    cells[i] = { ...cells[i]!, result: 'OK' };
    const c1 = judgeClaims(cells).find((c) => c.id === 'C1')!;
    expect(c1.verdict).toBe('does not hold');
    expect(c1.evidence).toMatch(/1\/\d+ cells bound twice/);
  });
  it('every claim the lab declares gets a verdict', () => {
    expect(judgeClaims(bsdCells()).map((c) => c.id)).toEqual([...lab01.claims]);
  });
  it('C23: one specific address bound beside 0.0.0.0 without flags contradicts it; C24: one conflict between two specific addresses does', () => {
    const cells = bsdCells();
    const i = cells.findIndex((c) => c.kind === 'bound' && c.addrA === '0.0.0.0' && c.addrB === '198.51.100.1');
    expect(i).toBe(-1); // the BSD cells have no such pair: add one that binds
    cells.push({
      ...cells[0]!,
      addrA: '0.0.0.0',
      addrB: '198.51.100.1',
      reuseaddrA: false,
      reuseaddrB: false,
      reuseportA: false,
      reuseportB: false,
      result: 'OK',
      bsd: 'EADDRINUSE',
    });
    const j = cells.findIndex(
      (c) =>
        c.kind === 'listening' &&
        c.addrA === '192.0.2.1' &&
        c.addrB === '198.51.100.1' &&
        !c.reuseaddrA &&
        !c.reuseaddrB &&
        !c.reuseportA &&
        !c.reuseportB,
    );
    cells[j] = { ...cells[j]!, result: 'EADDRINUSE' };
    const v = Object.fromEntries(judgeClaims(cells, '6.18.0').map((c) => [c.id, c]));
    expect(v.C23!.verdict).toBe('does not hold');
    expect(v.C23!.evidence).toMatch(/1\/\d+ cells bound beside 0\.0\.0\.0: e\.g\. tcp bound 0\.0\.0\.0→198\.51\.100\.1/);
    expect(v.C24!.verdict).toBe('does not hold');
    expect(v.C24!.evidence).toMatch(/1\/\d+ pairs of different specific addresses conflicted/);
  });
});

/** Cells of B owned by another user, SO_REUSEPORT on both, as Linux answers them (refused). */
function otherUidCells(result = 'EADDRINUSE'): Cell[] {
  return bsdCells()
    .filter((c) => c.addrA === c.addrB && c.reuseportA && c.reuseportB && !c.reuseaddrA && !c.reuseaddrB)
    .map((c) => ({ ...c, uidB: 'other' as const, result, bsd: null }));
}

describe('C9: the same-owner control is a precondition', () => {
  const c9 = (cells: Cell[]) => judgeClaims(cells, '6.18.0').find((c) => c.id === 'C9')!;
  it('refused across users, bound by one owner: holds, and the evidence says both', () => {
    const c = c9([...bsdCells(), ...otherUidCells()]);
    expect(c.verdict).toBe('holds');
    expect(c.evidence).toMatch(/^all 4 SO_REUSEPORT-both cells with B owned by uid 65534 → EADDRINUSE; the same cells with one owner → OK/);
  });
  it('shared across users: does not hold', () => {
    expect(c9([...bsdCells(), ...otherUidCells('OK')]).verdict).toBe('does not hold');
  });
  it('no same-owner cells measured (uids=other): not tested, and the evidence does not claim them', () => {
    const c = c9(otherUidCells());
    expect(c.verdict).toBe('not tested');
    expect(c.evidence).toMatch(
      /^precondition failed: the control: the same cells with one owner were measured and bound .* — 4\/4 not measured \(uids=other\)/,
    );
    expect(c.evidence).toMatch(/the same cells with one owner: not measured/);
    expect(c.evidence).not.toMatch(/one owner → OK/);
  });
  it('the same-owner control refused: not tested (a refusal across users then says nothing of users)', () => {
    const same = bsdCells().map((c) => (c.addrA === c.addrB && c.reuseportA && c.reuseportB ? { ...c, result: 'EADDRINUSE' } : c));
    const c = c9([...same, ...otherUidCells()]);
    expect(c.verdict).toBe('not tested');
    expect(c.evidence).toMatch(/— 4\/4 refused, e\.g\. tcp bound 0\.0\.0\.0→0\.0\.0\.0 .* → EADDRINUSE/);
  });
});

describe('C22: SO_REUSEPORT set after bind()', () => {
  const probe = (over: Partial<AfterBindTrial> = {}): AfterBindTrial => ({
    proto: 'tcp',
    kind: 'bound',
    port: 1,
    control: { setupA: 'OK', bindB: 'OK' },
    setupA: 'OK',
    setAfter: 'OK',
    readBack: '1',
    bindB: 'EADDRINUSE',
    ...over,
  });
  const c22 = (trials: AfterBindTrial[]) => judgeClaims(bsdCells(), '6.18.0', trials).find((c) => c.id === 'C22')!;
  it('B refused: holds; B bound: does not hold (the claim is stated for Linux ≥ 3.9 too)', () => {
    expect(c22([probe(), probe()]).verdict).toBe('holds');
    expect(c22([probe({ bindB: 'OK' }), probe({ bindB: 'OK' })]).verdict).toBe('does not hold');
  });
  it('the control refused (sharing impossible even with the flag set before bind): not tested', () => {
    const c = c22([probe({ control: { setupA: 'OK', bindB: 'EADDRINUSE' } })]);
    expect(c.verdict).toBe('not tested');
    expect(c.evidence).toMatch(
      /the control: with SO_REUSEPORT set before A's bind, B binds the same address and port — A → OK, B → EADDRINUSE/,
    );
  });
  it('the flag not read back as set: not tested', () => {
    const c = c22([probe({ readBack: '0' })]);
    expect(c.verdict).toBe('not tested');
    expect(c.evidence).toMatch(/A reads SO_REUSEPORT back as 1 — 0/);
  });
});

describe.skipIf(!privileged())('lab 01 on this kernel', () => {
  let result: LabResult;
  let cells: Cell[];
  let out: string;
  let printed: string;
  beforeAll(() => {
    out = tmpDir('lab01');
    const r = runCli(['run', '01', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    printed = r.stdout;
    result = JSON.parse(fs.readFileSync(path.join(out, '01-bind-matrix', 'result.json'), 'utf8')) as LabResult;
    cells = result.variants[0]!.observations.cells as Cell[];
  });

  const find = (want: Partial<Cell>): Cell => {
    const c = cells.find((x) =>
      Object.entries({ ...base, proto: 'tcp', v6onlyA: null, v6onlyB: null, ...want }).every(([k, v]) => x[k as keyof Cell] === v),
    );
    if (!c) throw new Error(`no cell ${JSON.stringify(want)}`);
    return c;
  };

  it('writes result.json per the contract, with a cell for every combination', () => {
    expect(Object.keys(result)).toEqual([
      'lab',
      'slug',
      'title',
      'kernel',
      'startedAt',
      'durationMs',
      'params',
      'sysctls',
      'variants',
      'claims',
      'conclusion',
      'output',
      'questions',
    ]);
    expect(result).toMatchObject({ lab: '01', slug: 'bind-matrix' });
    expect(result.variants[0]!.pcap).toBe('matrix.pcap');
    expect(fs.existsSync(path.join(out, '01-bind-matrix', 'matrix.pcap'))).toBe(true);
    expect(fs.existsSync(path.join(out, '01-bind-matrix', 'timeline.json'))).toBe(true);
    // (64 address pairs × 3 kinds + 1 multicast group) × 16 flag combinations × 2 owners
    expect(cells).toHaveLength((64 * 3 + 1) * 16 * 2);
    for (const k of [
      'proto',
      'kind',
      'reuseaddrA',
      'reuseaddrB',
      'reuseportA',
      'reuseportB',
      'addrA',
      'addrB',
      'v6onlyA',
      'v6onlyB',
      'uidB',
      'result',
    ])
      expect(cells[0]).toHaveProperty(k);
    expect(result.variants.map((v) => v.name)).toEqual(['matrix', 'reuseport-after-bind']);
  });

  it('prints the seed table with this kernel beside it, and the claims', () => {
    expect(printed).toContain("The seed's SO_REUSEADDR table (BSD) on this kernel");
    expect(printed).toMatch(/^ {2}C9 HOLDS: /m);
    expect(printed).toMatch(
      /^ {6}all 24 SO_REUSEPORT-both cells with B owned by uid 65534 → EADDRINUSE; the same cells with one owner → OK/m,
    );
    expect(printed).toMatch(/Evidence: .*01-bind-matrix\//);
  });

  it('no flags, same address: EADDRINUSE', () => {
    expect(find({ addrA: '0.0.0.0', addrB: '0.0.0.0' }).result).toBe('EADDRINUSE');
    expect(find({ addrA: '192.0.2.1', addrB: '192.0.2.1', proto: 'udp' }).result).toBe('EADDRINUSE');
  });
  it('two specific addresses never conflict', () => {
    expect(find({ addrA: '192.0.2.1', addrB: '198.51.100.1' }).result).toBe('OK');
  });
  it('SO_REUSEADDR on both, not listening: both bind, but only the first listen() succeeds', () => {
    const c = find({ addrA: '192.0.2.1', addrB: '192.0.2.1', reuseaddrA: true, reuseaddrB: true });
    expect([c.result, c.listenA, c.listenB]).toEqual(['OK', 'OK', 'EADDRINUSE']);
  });
  it('SO_REUSEADDR on both, A already listening: EADDRINUSE', () => {
    expect(find({ kind: 'listening', addrA: '192.0.2.1', addrB: '192.0.2.1', reuseaddrA: true, reuseaddrB: true }).result).toBe(
      'EADDRINUSE',
    );
  });
  it('SO_REUSEADDR on B only, wildcard then specific: EADDRINUSE (BSD says OK)', () => {
    const c = find({ addrA: '0.0.0.0', addrB: '192.0.2.1', reuseaddrB: true });
    expect([c.result, c.bsd]).toEqual(['EADDRINUSE', 'OK']);
  });
  it('SO_REUSEPORT on both: both bind and both listen; on one only: EADDRINUSE', () => {
    const c = find({ addrA: '192.0.2.1', addrB: '192.0.2.1', reuseportA: true, reuseportB: true });
    expect([c.result, c.listenA, c.listenB]).toEqual(['OK', 'OK', 'OK']);
    expect(find({ addrA: '192.0.2.1', addrB: '192.0.2.1', reuseportB: true }).result).toBe('EADDRINUSE');
  });
  it('SO_REUSEPORT across users: EADDRINUSE', () => {
    expect(find({ addrA: '192.0.2.1', addrB: '192.0.2.1', reuseportA: true, reuseportB: true, uidB: 'other' }).result).toBe('EADDRINUSE');
    expect(find({ proto: 'udp', addrA: '192.0.2.1', addrB: '192.0.2.1', reuseportA: true, reuseportB: true, uidB: 'other' }).result).toBe(
      'EADDRINUSE',
    );
  });
  it(':: covers 0.0.0.0 unless IPV6_V6ONLY; ::ffff:127.0.0.1 is 127.0.0.1', () => {
    expect(find({ addrA: '0.0.0.0', addrB: '::', v6onlyB: false }).result).toBe('EADDRINUSE');
    expect(find({ addrA: '0.0.0.0', addrB: '::', v6onlyB: true }).result).toBe('OK');
    expect(find({ addrA: '127.0.0.1', addrB: '::ffff:127.0.0.1', v6onlyB: false }).result).toBe('EADDRINUSE');
    expect(find({ addrA: '127.0.0.1', addrB: '::1', v6onlyB: false }).result).toBe('OK');
  });
  it('UDP multicast: SO_REUSEADDR on both, or SO_REUSEPORT on both, shares the group', () => {
    const m = { proto: 'udp' as const, kind: 'multicast' as const, addrA: '224.1.2.3', addrB: '224.1.2.3' };
    expect(find({ ...m }).result).toBe('EADDRINUSE');
    expect(find({ ...m, reuseaddrA: true, reuseaddrB: true }).result).toBe('OK');
    expect(find({ ...m, reuseportA: true, reuseportB: true }).result).toBe('OK');
  });
  it('0.0.0.0 keeps every specific IPv4 address off the port without flags; two specific addresses never conflict', () => {
    for (const addrB of ['127.0.0.1', '192.0.2.1', '198.51.100.1']) {
      expect(find({ addrA: '0.0.0.0', addrB }).result, addrB).toBe('EADDRINUSE');
      expect(find({ proto: 'udp', addrA: '0.0.0.0', addrB }).result, addrB).toBe('EADDRINUSE');
      expect(find({ kind: 'listening', addrA: '0.0.0.0', addrB }).result, addrB).toBe('EADDRINUSE');
    }
    expect(find({ kind: 'listening', addrA: '198.51.100.1', addrB: '127.0.0.1' }).result).toBe('OK');
    expect(find({ addrA: '127.0.0.1', addrB: '::1', v6onlyB: false }).result).toBe('OK');
  });
  it('SO_REUSEPORT set after A bound lets B share the port, as when it was set before', () => {
    const probes = result.variants[1]!.observations.trials as AfterBindTrial[];
    expect(probes).toHaveLength(5 * 3); // tcp bound, tcp listening, udp bound
    for (const p of probes)
      expect(p, `${p.proto} ${p.kind}`).toMatchObject({
        setupA: 'OK',
        setAfter: 'OK',
        readBack: '1',
        bindB: 'OK',
        control: { setupA: 'OK', bindB: 'OK' },
      });
  });
  it('verdicts follow from those cells', () => {
    const v = Object.fromEntries(result.claims.map((c) => [c.id, c.verdict]));
    expect(v).toEqual({
      C1: 'holds',
      C2: 'differs by OS',
      C3: 'differs by OS',
      C5: 'holds',
      C7: 'differs by OS',
      C8: 'holds',
      C9: 'holds',
      C23: 'holds',
      C24: 'holds',
      C22: 'does not hold',
    });
  });

  it('--set changes what is measured', () => {
    const r = runCli([
      'run',
      '01',
      '--json',
      '--set',
      'protocols=udp',
      '--set',
      'addresses=0.0.0.0,192.0.2.1',
      '--set',
      'uids=same',
      '--set',
      'kinds=bound',
      '--out',
      tmpDir('set'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [res] = JSON.parse(r.stdout) as LabResult[];
    const cs = res!.variants[0]!.observations.cells as Cell[];
    expect(cs).toHaveLength(4 * 16);
    expect(new Set(cs.map((c) => c.proto))).toEqual(new Set(['udp']));
    expect(new Set(cs.flatMap((c) => [c.addrA, c.addrB]))).toEqual(new Set(['0.0.0.0', '192.0.2.1']));
    expect(res!.params).toMatchObject({ protocols: ['udp'], uids: ['same'] });
    // claims whose cells the parameters left out say so instead of guessing
    expect(res!.claims.find((c) => c.id === 'C9')).toMatchObject({ verdict: 'not tested' });
    expect(res!.claims.find((c) => c.id === 'C9')!.evidence).toMatch(/needs uids=other/);
  });

  it('--set uids=other: C9 is not tested, its same-owner control unmeasured, and the evidence says so', () => {
    const r = runCli([
      'run',
      '01',
      '--json',
      '--set',
      'protocols=tcp',
      '--set',
      'addresses=0.0.0.0,192.0.2.1',
      '--set',
      'uids=other',
      '--set',
      'kinds=bound',
      '--set',
      'trials=1',
      '--out',
      tmpDir('set'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [res] = JSON.parse(r.stdout) as LabResult[];
    const c9 = res!.claims.find((c) => c.id === 'C9')!;
    expect(c9.verdict).toBe('not tested');
    expect(c9.evidence).toMatch(
      /^precondition failed: the control: the same cells with one owner were measured and bound \(SO_REUSEPORT shares the port within one user\) — 2\/2 not measured \(uids=other\)/,
    );
    expect(c9.evidence).toMatch(
      /all 2 SO_REUSEPORT-both cells with B owned by uid 65534 → EADDRINUSE; the same cells with one owner: not measured/,
    );
  });
});
