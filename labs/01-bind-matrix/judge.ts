// Lab 01's verdicts: each claim judged from the matrix's cells (and C22 from its own variant).
import * as os from 'node:os';
import { claimById, decide, familyOf, requires, type IpFamily, type Judgement, type Verdict, distinct, sum } from '../../src/lab';
import { isWildcard, type AfterBindTrial, type Cell, type Kind } from './cells';
import type { ClaimId } from './index';

// ---------------------------------------------------------------- verdicts
export type Cells = readonly Cell[];
export const flagText = (a: boolean, b: boolean): string => (a && b ? 'both' : a ? 'A only' : b ? 'B only' : 'neither');
export const family = (addr: string): IpFamily | null => familyOf(addr);
export const sameAddr = (c: Cell): boolean => c.addrA === c.addrB && c.v6onlyA === c.v6onlyB;
export const noReuse = (c: Cell): boolean => !c.reuseaddrA && !c.reuseaddrB && !c.reuseportA && !c.reuseportB;
export const measured = (cs: Cells): Cell[] => cs.filter((c) => c.setupA === 'OK');

/** ::ffff:a.b.c.d is the IPv4 address a.b.c.d (the kernel binds it as such). */
export const unmapped = (address: string): string => address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
export const kindsOf = (cs: Cells): string =>
  distinct(
    cs.map((c) => `${c.proto} ${c.kind}`),
    ', ',
  );

/** A claim judged over many cells: agrees when no cell contradicts it. */
export function judge(id: ClaimId, agrees: boolean, evidence: string, cells: number): [ClaimId, Judgement] {
  return [id, { requires: [requires('cells the claim speaks of were measured', cells > 0, `${cells} cells`)], agrees, evidence }];
}

/** The cells a claim needs were left out (by --set): not tested, and which ones. */
export function notTested(id: ClaimId, why: string): [ClaimId, Judgement] {
  return [
    id,
    {
      requires: [requires('cells the claim speaks of were measured', false, why)],
      agrees: false,
      evidence: 'nothing measured for this claim',
    },
  ];
}

/** Compares measured cells with what a claim predicts; returns mismatches. */
export function mismatches(cs: Cells, predict: (c: Cell) => string | null): Array<{ cell: Cell; expected: string }> {
  const out: Array<{ cell: Cell; expected: string }> = [];
  for (const c of cs) {
    const e = predict(c);
    if (e !== null && e !== c.result) out.push({ cell: c, expected: e });
  }
  return out;
}

export function describe(c: Cell): string {
  const v6 = (addr: string, v: boolean | null): string => (v ? `${addr}+v6only` : addr);
  const flags = `SO_REUSEADDR ${flagText(c.reuseaddrA, c.reuseaddrB)}, SO_REUSEPORT ${flagText(c.reuseportA, c.reuseportB)}`;
  return `${c.proto} ${c.kind} ${v6(c.addrA, c.v6onlyA)}→${v6(c.addrB, c.v6onlyB)} ${flags}${c.uidB === 'other' ? ', B other uid' : ''}`;
}

/**
 * Each claim's judgement: from the matrix (which cells it speaks of, and whether any contradicts
 * it), and C22 from the SO_REUSEPORT-after-bind trials (not tested when there are none).
 */
export function judgements(all: Cells, afterBind: readonly AfterBindTrial[] = []): Array<[ClaimId, Judgement]> {
  const cells = measured(all);
  const same = cells.filter((c) => c.uidB === 'same');
  const unicast = same.filter((c) => c.kind !== 'multicast');
  const out: Array<[ClaimId, Judgement]> = [];

  // C1: same address, no flags → EADDRINUSE
  {
    const cs = unicast.filter((c) => sameAddr(c) && noReuse(c));
    const bad = mismatches(cs, () => 'EADDRINUSE');
    out.push(
      cs.length === 0
        ? notTested('C1', 'no same-address cells without flags were measured (see --set addresses/kinds)')
        : judge(
            'C1',
            bad.length === 0,
            bad.length
              ? `${bad.length}/${cs.length} cells bound twice: e.g. ${describe(bad[0]!.cell)} → ${bad[0]!.cell.result}`
              : `all ${cs.length} same-address cells without flags → EADDRINUSE`,
            cs.length,
          ),
    );
  }
  // C2: wildcard vs specific (IPv4), no SO_REUSEPORT: OK iff SO_REUSEADDR on B
  {
    const cs = unicast.filter(
      (c) =>
        family(c.addrA) === 'ipv4' &&
        family(c.addrB) === 'ipv4' &&
        isWildcard(c.addrA) !== isWildcard(c.addrB) &&
        !c.reuseportA &&
        !c.reuseportB,
    );
    const bad = mismatches(cs, (c) => (c.reuseaddrB ? 'OK' : 'EADDRINUSE'));
    const byFlags = (a: boolean, b: boolean, kind: Kind): string => {
      const sel = cs.filter((c) => c.reuseaddrA === a && c.reuseaddrB === b && c.kind === kind);
      const results = [...new Set(sel.map((c) => c.result))];
      return results.join('/');
    };
    const listening = cs.some((c) => c.kind === 'listening') ? `; A listening, both set → ${byFlags(true, true, 'listening')}` : '';
    out.push(
      cs.length === 0
        ? notTested('C2', 'needs a wildcard and a specific IPv4 address in --set addresses')
        : judge(
            'C2',
            bad.length === 0,
            bad.length
              ? `Linux, bound: SO_REUSEADDR on B only → ${byFlags(false, true, 'bound')}, on both ` +
                  `→ ${byFlags(true, true, 'bound')}${listening} (${bad.length}/${cs.length} cells differ from BSD)`
              : `all ${cs.length} wildcard/specific cells follow SO_REUSEADDR on B`,
            cs.length,
          ),
    );
  }
  // C3: the seed's table rows
  {
    const rows = seedTableRows(unicast);
    const tested = rows.filter((r) => r.cells.length > 0);
    const failing = tested.filter((r) => r.mismatch.length > 0);
    const example = failing[0]?.mismatch[0];
    out.push(
      tested.length === 0
        ? notTested('C3', 'needs 0.0.0.0, 192.0.2.1 and 198.51.100.1 in --set addresses')
        : judge(
            'C3',
            failing.length === 0,
            failing.length
              ? `rows ${failing.map((r) => r.n).join(', ')} of ${tested.length} differ on Linux, e.g. ` +
                  `row ${failing[0]!.n}: ${describe(example!.cell)} → ${example!.cell.result} (BSD: ${example!.expected})`
              : `all ${tested.length} rows match on ${sum(tested, (r) => r.cells.length)} cells`,
            sum(tested, (r) => r.cells.length),
          ),
    );
  }
  // C5: same address, no SO_REUSEADDR: OK iff SO_REUSEPORT on both
  {
    const cs = unicast.filter((c) => sameAddr(c) && !c.reuseaddrA && !c.reuseaddrB);
    const bad = mismatches(cs, (c) => (c.reuseportA && c.reuseportB ? 'OK' : 'EADDRINUSE'));
    out.push(
      cs.length === 0
        ? notTested('C5', 'no same-address cells were measured')
        : judge(
            'C5',
            bad.length === 0,
            bad.length
              ? `${bad.length}/${cs.length} cells differ: e.g. ${describe(bad[0]!.cell)} → ${bad[0]!.cell.result}`
              : `${cs.length} same-address cells: OK exactly when both set SO_REUSEPORT (bound and listening)`,
            cs.length,
          ),
    );
  }
  // C7: multicast: either flag counts as SO_REUSEPORT
  {
    const cs = same.filter((c) => c.kind === 'multicast');
    const bad = mismatches(cs, (c) => ((c.reuseaddrA || c.reuseportA) && (c.reuseaddrB || c.reuseportB) ? 'OK' : 'EADDRINUSE'));
    out.push(
      cs.length === 0
        ? notTested('C7', 'the multicast kind was not measured (see --set kinds/protocols)')
        : judge(
            'C7',
            bad.length === 0,
            bad.length
              ? `${bad.length}/${cs.length} multicast cells differ from BSD, ` +
                  `e.g. ${describe(bad[0]!.cell)} → ${bad[0]!.cell.result}; on Linux the two flags do not mix`
              : `all ${cs.length} multicast cells: OK when each socket set either flag`,
            cs.length,
          ),
    );
  }
  // C8: (a) listening: SO_REUSEADDR changes nothing; (b) not listening: REUSEADDR both ≡ REUSEPORT both
  {
    const listening = unicast.filter((c) => c.kind === 'listening' && !c.reuseportA && !c.reuseportB);
    const key = (c: Cell): string => `${c.proto}|${c.kind}|${c.addrA}|${c.v6onlyA}|${c.addrB}|${c.v6onlyB}`;
    const plain = new Map(listening.filter((c) => !c.reuseaddrA && !c.reuseaddrB).map((c) => [key(c), c.result]));
    const badA = listening.filter((c) => plain.has(key(c)) && plain.get(key(c)) !== c.result);
    const bound = unicast.filter((c) => c.kind === 'bound');
    const viaPort = new Map(
      bound.filter((c) => !c.reuseaddrA && !c.reuseaddrB && c.reuseportA && c.reuseportB).map((c) => [key(c), c.result]),
    );
    const viaAddr = bound.filter((c) => c.reuseaddrA && c.reuseaddrB && !c.reuseportA && !c.reuseportB && viaPort.has(key(c)));
    const badB = viaAddr.filter((c) => viaPort.get(key(c)) !== c.result);
    // pairs that share a port only thanks to SO_REUSEADDR (without flags they conflict)
    const conflicting = new Set(bound.filter((c) => noReuse(c) && c.result !== 'OK').map(key));
    const listenB = bound.filter(
      (c) =>
        c.reuseaddrA && c.reuseaddrB && !c.reuseportA && !c.reuseportB && c.proto === 'tcp' && c.result === 'OK' && conflicting.has(key(c)),
    );
    const secondListen = distinct(listenB.map((c) => c.listenB));
    if (listening.length === 0 && viaAddr.length === 0) out.push(notTested('C8', 'needs the listening or bound kinds'));
    else {
      const holds = badA.length === 0 && badB.length === 0;
      const parts: string[] = [];
      parts.push(
        listening.length
          ? badA.length
            ? `A listening: SO_REUSEADDR changed ${badA.length} results, e.g. ${describe(badA[0]!)} → ${badA[0]!.result}`
            : `A listening: SO_REUSEADDR changed none of ${listening.length} results`
          : 'listening kind not measured',
      );
      parts.push(
        viaAddr.length
          ? badB.length
            ? `not listening: REUSEADDR-both ≠ REUSEPORT-both ` +
              `in ${badB.length}/${viaAddr.length} pairs, e.g. ${describe(badB[0]!)} → ${badB[0]!.result}`
            : `not listening: REUSEADDR on both = REUSEPORT on both in all ${viaAddr.length} pairs`
          : 'bound kind not measured',
      );
      if (secondListen)
        parts.push(`after such a shared bind (TCP, ${listenB.length} pairs), B's listen() → ${secondListen} once A listens`);
      out.push(judge('C8', holds, parts.join('; '), listening.length + viaAddr.length));
    }
  }
  // C9: REUSEPORT sharing needs the same uid. The control: the same cells with one owner bind
  // (else a refusal across users says nothing about users)
  {
    const other = measured(all).filter(
      (c) => c.uidB === 'other' && c.kind !== 'multicast' && sameAddr(c) && c.reuseportA && c.reuseportB && !c.reuseaddrA && !c.reuseaddrB,
    );
    const key = (c: Cell): string => `${c.proto}|${c.kind}|${c.addrA}|${c.v6onlyA}|${c.addrB}|${c.v6onlyB}|${c.reuseaddrA}|${c.reuseaddrB}`;
    const sameOwner = new Map(unicast.filter((c) => sameAddr(c) && c.reuseportA && c.reuseportB).map((c) => [key(c), c]));
    const controls = other.map((c) => sameOwner.get(key(c)));
    const missing = controls.filter((c) => c === undefined).length;
    const refused = controls.filter((c): c is Cell => c !== undefined && c.result !== 'OK');
    const controlResults = distinct(controls.filter((c): c is Cell => c !== undefined).map((c) => c.result));
    const sharedAcross = other.filter((c) => c.result === 'OK');
    const addrAcross = measured(all).filter(
      (c) => c.uidB === 'other' && c.kind === 'bound' && sameAddr(c) && c.reuseaddrA && c.reuseaddrB && !c.reuseportA && !c.reuseportB,
    );
    const addrShared = addrAcross.filter((c) => c.result === 'OK').length;
    out.push(
      other.length === 0
        ? notTested('C9', all.find((c) => c.uidB === 'other' && c.notTested)?.notTested ?? 'needs uids=other (B owned by another user)')
        : [
            'C9',
            {
              requires: [
                requires('cells the claim speaks of were measured', true, `${other.length} cells`),
                requires(
                  'the control: the same cells with one owner were measured and bound (SO_REUSEPORT shares the port within one user)',
                  missing === 0 && refused.length === 0,
                  missing
                    ? `${missing}/${other.length} not measured (uids=${distinct(
                        all.map((c) => c.uidB),
                        ',',
                      )})`
                    : refused.length
                      ? `${refused.length}/${other.length} refused, e.g. ${describe(refused[0]!)} → ${refused[0]!.result}`
                      : `all ${other.length} → ${controlResults}`,
                ),
              ],
              agrees: sharedAcross.length === 0,
              evidence:
                (sharedAcross.length
                  ? `${sharedAcross.length}/${other.length} cells shared a port across users, e.g. ${describe(sharedAcross[0]!)}`
                  : `all ${other.length} SO_REUSEPORT-both cells with B owned by uid 65534 → ${distinct(other.map((c) => c.result))}`) +
                (missing < other.length
                  ? `; the same cells with one owner → ${controlResults}`
                  : '; the same cells with one owner: not measured') +
                (addrAcross.length
                  ? `; SO_REUSEADDR on both, not listening, shared across users in ${addrShared}/${addrAcross.length} cells`
                  : ''),
            },
          ],
    );
  }
  // C23: without flags, A on 0.0.0.0 keeps B off every specific IPv4 address of the port
  {
    const cs = unicast.filter((c) => noReuse(c) && c.addrA === '0.0.0.0' && family(c.addrB) === 'ipv4' && !isWildcard(c.addrB));
    const bad = mismatches(cs, () => 'EADDRINUSE');
    const addrs = distinct(
      cs.map((c) => c.addrB),
      ', ',
    );
    out.push(
      cs.length === 0
        ? notTested('C23', 'needs 0.0.0.0 and a specific IPv4 address in --set addresses')
        : judge(
            'C23',
            bad.length === 0,
            bad.length
              ? `${bad.length}/${cs.length} cells bound beside 0.0.0.0: e.g. ${describe(bad[0]!.cell)} → ${bad[0]!.cell.result}`
              : `all ${cs.length} cells with A on 0.0.0.0 and B on ${addrs} (${kindsOf(cs)}, no flags) → EADDRINUSE`,
            cs.length,
          ),
    );
  }
  // C24: two different specific addresses (an IPv4-mapped IPv6 address is its IPv4 address) never conflict
  {
    const cs = unicast.filter((c) => noReuse(c) && !isWildcard(c.addrA) && !isWildcard(c.addrB) && unmapped(c.addrA) !== unmapped(c.addrB));
    const bad = mismatches(cs, () => 'OK');
    out.push(
      cs.length === 0
        ? notTested('C24', 'needs two specific addresses in --set addresses')
        : judge(
            'C24',
            bad.length === 0,
            bad.length
              ? `${bad.length}/${cs.length} pairs of different specific addresses conflicted: ` +
                  `e.g. ${describe(bad[0]!.cell)} → ${bad[0]!.cell.result}`
              : `all ${cs.length} pairs of different specific addresses (${kindsOf(cs)}, no flags) → OK`,
            cs.length,
          ),
    );
  }
  out.push(judgeAfterBind(afterBind));
  return out;
}

/** The verdicts the matrix (and the after-bind trials) give on a kernel (by default this one). */
export function judgeClaims(
  all: Cells,
  kernelRelease = os.release(),
  afterBind: readonly AfterBindTrial[] = [],
): Array<{ id: ClaimId; verdict: Verdict; evidence: string }> {
  return judgements(all, afterBind).map(([id, j]) => ({ id, ...decide(claimById(id), j, kernelRelease) }));
}

export function judgeAfterBind(trials: readonly AfterBindTrial[]): [ClaimId, Judgement] {
  if (trials.length === 0) return notTested('C22', 'the SO_REUSEPORT-after-bind probes were not run (see --set protocols/kinds)');
  const by = (f: (t: AfterBindTrial) => string): string =>
    [...new Set(trials.map((t) => `${t.proto} ${t.kind}`))]
      .map((k) => `${k} → ${distinct(trials.filter((t) => `${t.proto} ${t.kind}` === k).map(f))}`)
      .join(', ');
  return [
    'C22',
    {
      trials: trials.map((t) => ({
        requires: [
          requires(
            "A's bind() (and listen()) and its setsockopt(SO_REUSEPORT) after the bind returned 0",
            t.setupA === 'OK' && t.setAfter === 'OK',
            `bind/listen → ${t.setupA}, setsockopt → ${t.setAfter}`,
          ),
          requires('A reads SO_REUSEPORT back as 1', t.readBack === '1', t.readBack),
          requires(
            "the control: with SO_REUSEPORT set before A's bind, B binds the same address and port",
            t.control.setupA === 'OK' && t.control.bindB === 'OK',
            `A → ${t.control.setupA}, B → ${t.control.bindB}`,
          ),
        ],
        agrees: t.bindB === 'EADDRINUSE',
      })),
      evidence:
        `A bound 192.0.2.1:P, then set SO_REUSEPORT (read back ${distinct(trials.map((t) => t.readBack))}); B set it and ` +
        `bound the same address and port: ${by((t) => t.bindB)}; with the flag set before A's bind: ${by((t) => t.control.bindB)}`,
    },
  ];
}

// ---------------------------------------------------------------- the seed's table
export interface SeedRow {
  n: number;
  /** B's SO_REUSEADDR per the seed: 'ON', 'OFF' or 'ON/OFF' (A's flag "is not even looked at") */
  flag: 'ON' | 'OFF' | 'ON/OFF';
  a: string;
  b: string;
  bsd: 'OK' | 'EADDRINUSE';
}

// The seed's rows with its addresses mapped onto this namespace's: 192.168.0.1 → 192.0.2.1,
// 10.0.0.1 → 198.51.100.1, 192.168.1.0 → 192.0.2.1; port 21 → a fresh port per cell.
export const SEED_TABLE: readonly SeedRow[] = [
  { n: 1, flag: 'ON/OFF', a: '192.0.2.1', b: '192.0.2.1', bsd: 'EADDRINUSE' },
  { n: 2, flag: 'ON/OFF', a: '192.0.2.1', b: '198.51.100.1', bsd: 'OK' },
  { n: 3, flag: 'ON/OFF', a: '198.51.100.1', b: '192.0.2.1', bsd: 'OK' },
  { n: 4, flag: 'OFF', a: '0.0.0.0', b: '192.0.2.1', bsd: 'EADDRINUSE' },
  { n: 5, flag: 'OFF', a: '192.0.2.1', b: '0.0.0.0', bsd: 'EADDRINUSE' },
  { n: 6, flag: 'ON', a: '0.0.0.0', b: '192.0.2.1', bsd: 'OK' },
  { n: 7, flag: 'ON', a: '192.0.2.1', b: '0.0.0.0', bsd: 'OK' },
  { n: 8, flag: 'ON/OFF', a: '0.0.0.0', b: '0.0.0.0', bsd: 'EADDRINUSE' },
];

export function seedTableRows(unicast: Cells): Array<SeedRow & { cells: Cell[]; mismatch: Array<{ cell: Cell; expected: string }> }> {
  return SEED_TABLE.map((row) => {
    const cells = unicast.filter(
      (c) =>
        c.addrA === row.a &&
        c.addrB === row.b &&
        !c.reuseportA &&
        !c.reuseportB &&
        (row.flag === 'ON/OFF' || c.reuseaddrB === (row.flag === 'ON')),
    );
    return { ...row, cells, mismatch: mismatches(cells, () => row.bsd) };
  });
}
