// Lab 01 — the bind matrix.
//
// Question: when may a second socket bind the address and port a first socket holds? The seed
// answer gives BSD's rules (its SO_REUSEADDR table) and says how Linux differs. This lab binds
// every pair of sockets on this kernel — TCP and UDP; A only bound, or already listening;
// SO_REUSEADDR and SO_REUSEPORT on none/A/B/both; wildcard, loopback, specific and IPv6
// addresses; B owned by the same or another user — and judges each claim from the cells. Then it
// asks whether SO_REUSEPORT set after bind() counts, against the flag set before (the control).
import * as os from 'node:os';
import { claimById, decide, defineLab, familyOf, KnobMissingError, LabError, requires, type IpFamily, type Judgement, type KernelSocket, type LabContext, type Proto, type UidHelper, type Verdict } from '../src/lab';

// ---------------------------------------------------------------- the claims
// (texts, sources and scopes in src/lab/claims.ts)
// C22 is judged from a variant of its own (SO_REUSEPORT set after bind), the others from the matrix
const CLAIM_IDS = ['C1', 'C2', 'C3', 'C5', 'C7', 'C8', 'C9', 'C23', 'C24', 'C22'] as const;
type ClaimId = (typeof CLAIM_IDS)[number];

// ---------------------------------------------------------------- parameters
const ADDRESS_TOKEN = /^(.+?)(\+v6only)?$/;

function checkAddressToken(token: string): string | null {
  const m = ADDRESS_TOKEN.exec(token)!;
  const family = familyOf(m[1]!);
  if (!family) return `${JSON.stringify(token)} is not an IP address (append +v6only to an IPv6 address to set IPV6_V6ONLY)`;
  if (m[2] && family !== 'ipv6') return `+v6only applies to IPv6 addresses only, not ${m[1]}`;
  return null;
}

const PARAMS = [
  { name: 'protocols', kind: 'list', default: ['tcp', 'udp'], choices: ['tcp', 'udp'], help: 'transport protocols to measure' },
  {
    name: 'kinds',
    kind: 'list',
    default: ['bound', 'listening', 'multicast'],
    choices: ['bound', 'listening', 'multicast'],
    help: 'A only bound; A listening before B binds (TCP); both on the multicast group (UDP)',
  },
  {
    name: 'addresses',
    kind: 'list',
    default: ['0.0.0.0', '127.0.0.1', '192.0.2.1', '198.51.100.1', '::', '::+v6only', '::1', '::ffff:127.0.0.1'],
    validate: checkAddressToken,
    help: 'addresses paired as A × B (all ordered pairs); +v6only sets IPV6_V6ONLY, plain IPv6 clears it',
  },
  { name: 'multicast', kind: 'string', default: '224.1.2.3', validate: (v: string) => (!familyOf(v) ? `${JSON.stringify(v)} is not an IP address` : isMulticastGroup(v) ? null : `${JSON.stringify(v)} is not a multicast group address (224.0.0.0–239.255.255.255, or ff00::/8): the multicast cells bind both sockets to a group`), help: 'group both sockets bind in the multicast kind' },
  { name: 'uids', kind: 'list', default: ['same', 'other'], choices: ['same', 'other'], help: 'owner of socket B: the lab (root) or another user (nobody, 65534)' },
  { name: 'base_port', kind: 'int', default: 20000, min: 1024, max: 60000, help: 'first port; each cell binds a fresh one' },
  { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'repetitions of the SO_REUSEPORT-after-bind probe, per protocol and kind' },
] as const;

// ---------------------------------------------------------------- cells
type Kind = 'bound' | 'listening' | 'multicast';
type Uid = 'same' | 'other';

interface Endpoint {
  token: string;
  family: IpFamily;
  address: string;
  v6only: boolean | null;
}

/** 224.0.0.0/4 (RFC 5771) or ff00::/8 (RFC 4291 §2.7) */
function isMulticastGroup(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return familyOf(address) === 'ipv4' ? first >= 224 && first <= 239 : /^ff[0-9a-f]{2}:/i.test(address);
}

function endpoint(token: string): Endpoint {
  const m = ADDRESS_TOKEN.exec(token)!;
  const family = familyOf(m[1]!)!;
  return { token, family, address: m[1]!, v6only: family === 'ipv6' ? !!m[2] : null };
}

export interface Cell {
  proto: Proto;
  kind: Kind;
  reuseaddrA: boolean;
  reuseaddrB: boolean;
  reuseportA: boolean;
  reuseportB: boolean;
  addrA: string;
  addrB: string;
  v6onlyA: boolean | null;
  v6onlyB: boolean | null;
  uidB: Uid;
  port: number;
  /** socket A's own bind (and listen, for the listening kind): OK unless the setup itself failed */
  setupA: string;
  /** B's bind(): OK or the errno name */
  result: string;
  listenA?: string;
  listenB?: string;
  /** what the seed's BSD rules predict, where they cover the cell */
  bsd: string | null;
  /** why the cell was not tested: the system under test cannot make it (a knob it lacks) */
  notTested?: string;
}

const FLAGS: ReadonlyArray<[boolean, boolean]> = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

const outcome = (r: { errno: string | null }): string => r.errno ?? 'OK';

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/**
 * The seed's BSD model (only for IPv4 pairs, same user): exact same address needs SO_REUSEPORT on
 * both; wildcard vs specific needs SO_REUSEADDR on B (or SO_REUSEPORT on both); different
 * specific addresses never conflict; on a multicast address either flag counts as SO_REUSEPORT.
 */
export function bsdPrediction(c: Pick<Cell, 'kind' | 'addrA' | 'addrB' | 'reuseaddrA' | 'reuseaddrB' | 'reuseportA' | 'reuseportB' | 'uidB'>): string | null {
  if (c.uidB !== 'same') return null;
  if (familyOf(c.addrA) !== 'ipv4' || familyOf(c.addrB) !== 'ipv4' || c.addrA.includes('+') || c.addrB.includes('+')) return null;
  if (c.kind === 'multicast') return (c.reuseaddrA || c.reuseportA) && (c.reuseaddrB || c.reuseportB) ? 'OK' : 'EADDRINUSE';
  const bothPort = c.reuseportA && c.reuseportB;
  if (c.addrA === c.addrB) return bothPort ? 'OK' : 'EADDRINUSE';
  if (isWildcard(c.addrA) || isWildcard(c.addrB)) return c.reuseaddrB || bothPort ? 'OK' : 'EADDRINUSE';
  return 'OK';
}

function setFlags(s: KernelSocket, reuseaddr: boolean, reuseport: boolean, v6only: boolean | null): void {
  // exactly the options the cell names: nothing else is set
  if (reuseaddr) s.setOption('SO_REUSEADDR', true);
  if (reuseport) s.setOption('SO_REUSEPORT', true);
  if (v6only !== null) s.setOption('IPV6_V6ONLY', v6only);
}

interface CellSpec {
  proto: Proto;
  kind: Kind;
  a: Endpoint;
  b: Endpoint;
  ra: [boolean, boolean];
  rp: [boolean, boolean];
  uid: Uid;
  port: number;
}

async function measure(ctx: LabContext, helper: UidHelper | KnobMissingError | null, s: CellSpec): Promise<Cell> {
  const cell: Cell = {
    proto: s.proto,
    kind: s.kind,
    reuseaddrA: s.ra[0],
    reuseaddrB: s.ra[1],
    reuseportA: s.rp[0],
    reuseportB: s.rp[1],
    addrA: s.a.address,
    addrB: s.b.address,
    v6onlyA: s.a.v6only,
    v6onlyB: s.b.v6only,
    uidB: s.uid,
    port: s.port,
    setupA: 'OK',
    result: '',
    bsd: null,
  };
  cell.bsd = bsdPrediction({ ...cell, addrA: s.a.token, addrB: s.b.token });
  if (s.uid === 'other' && helper instanceof KnobMissingError) {
    // the system under test has no second user to own B (F-Stack: one credential for all)
    return { ...cell, setupA: 'not measured', result: 'not measured', notTested: helper.message };
  }
  const a = ctx.socket(s.a.family, s.proto, { timeline: false });
  let b: KernelSocket | null = null;
  let remote: number | null = null;
  try {
    setFlags(a, s.ra[0], s.rp[0], s.a.v6only);
    cell.setupA = outcome(a.bind(s.a.address, s.port));
    if (cell.setupA === 'OK' && s.kind === 'listening') cell.setupA = outcome(a.listen());
    if (cell.setupA !== 'OK') {
      cell.result = 'not measured';
      return cell;
    }
    if (s.uid === 'same') {
      b = ctx.socket(s.b.family, s.proto, { timeline: false });
      setFlags(b, s.ra[1], s.rp[1], s.b.v6only);
      cell.result = outcome(b.bind(s.b.address, s.port));
    } else {
      const r = await (helper as UidHelper).bind({ family: s.b.family, proto: s.proto, reuseaddr: s.ra[1], reuseport: s.rp[1], v6only: s.b.v6only, address: s.b.address, port: s.port });
      remote = r.id;
      cell.result = outcome(r.bind);
    }
    if (s.proto === 'tcp' && cell.result === 'OK') {
      // which of the two may then listen(): A first (unless it already does), then B
      if (s.kind === 'bound') cell.listenA = outcome(a.listen());
      cell.listenB = b ? outcome(b.listen()) : outcome(await (helper as UidHelper).listen(remote!));
    }
    return cell;
  } finally {
    a.closeNow();
    b?.closeNow();
    if (remote !== null) await (helper as UidHelper).close(remote);
  }
}

function* cellSpecs(ctx: LabContext): Generator<Omit<CellSpec, 'port'>> {
  const protocols = ctx.list('protocols') as Proto[];
  const kinds = ctx.list('kinds') as Kind[];
  const endpoints = ctx.list('addresses').map(endpoint);
  const uids = ctx.list('uids') as Uid[];
  for (const uid of uids) {
    for (const proto of protocols) {
      for (const kind of kinds) {
        if (kind === 'listening' && proto !== 'tcp') continue;
        if (kind === 'multicast' && proto !== 'udp') continue;
        const pairs: Array<[Endpoint, Endpoint]> =
          kind === 'multicast' ? [[endpoint(ctx.str('multicast')), endpoint(ctx.str('multicast'))]] : endpoints.flatMap((a) => endpoints.map((b): [Endpoint, Endpoint] => [a, b]));
        for (const [a, b] of pairs) for (const ra of FLAGS) for (const rp of FLAGS) yield { proto, kind, a, b, ra, rp, uid };
      }
    }
  }
}

// ---------------------------------------------------------------- verdicts
type Cells = readonly Cell[];
const flagText = (a: boolean, b: boolean): string => (a && b ? 'both' : a ? 'A only' : b ? 'B only' : 'neither');
const family = (addr: string): IpFamily | null => familyOf(addr);
const sameAddr = (c: Cell): boolean => c.addrA === c.addrB && c.v6onlyA === c.v6onlyB;
const noReuse = (c: Cell): boolean => !c.reuseaddrA && !c.reuseaddrB && !c.reuseportA && !c.reuseportB;
const measured = (cs: Cells): Cell[] => cs.filter((c) => c.setupA === 'OK');

/** ::ffff:a.b.c.d is the IPv4 address a.b.c.d (the kernel binds it as such). */
const unmapped = (address: string): string => address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
const kindsOf = (cs: Cells): string => [...new Set(cs.map((c) => `${c.proto} ${c.kind}`))].join(', ');

/** A claim judged over many cells: agrees when no cell contradicts it. */
function judge(id: ClaimId, agrees: boolean, evidence: string, cells: number): [ClaimId, Judgement] {
  return [id, { requires: [requires('cells the claim speaks of were measured', cells > 0, `${cells} cells`)], agrees, evidence }];
}

/** The cells a claim needs were left out (by --set): not tested, and which ones. */
function notTested(id: ClaimId, why: string): [ClaimId, Judgement] {
  return [id, { requires: [requires('cells the claim speaks of were measured', false, why)], agrees: false, evidence: 'nothing measured for this claim' }];
}

/** Compares measured cells with what a claim predicts; returns mismatches. */
function mismatches(cs: Cells, predict: (c: Cell) => string | null): Array<{ cell: Cell; expected: string }> {
  const out: Array<{ cell: Cell; expected: string }> = [];
  for (const c of cs) {
    const e = predict(c);
    if (e !== null && e !== c.result) out.push({ cell: c, expected: e });
  }
  return out;
}

function describe(c: Cell): string {
  const v6 = (addr: string, v: boolean | null): string => (v ? `${addr}+v6only` : addr);
  return `${c.proto} ${c.kind} ${v6(c.addrA, c.v6onlyA)}→${v6(c.addrB, c.v6onlyB)} SO_REUSEADDR ${flagText(c.reuseaddrA, c.reuseaddrB)}, SO_REUSEPORT ${flagText(c.reuseportA, c.reuseportB)}${c.uidB === 'other' ? ', B other uid' : ''}`;
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
        : judge('C1', bad.length === 0, bad.length ? `${bad.length}/${cs.length} cells bound twice: e.g. ${describe(bad[0]!.cell)} → ${bad[0]!.cell.result}` : `all ${cs.length} same-address cells without flags → EADDRINUSE`, cs.length),
    );
  }
  // C2: wildcard vs specific (IPv4), no SO_REUSEPORT: OK iff SO_REUSEADDR on B
  {
    const cs = unicast.filter(
      (c) => family(c.addrA) === 'ipv4' && family(c.addrB) === 'ipv4' && isWildcard(c.addrA) !== isWildcard(c.addrB) && !c.reuseportA && !c.reuseportB,
    );
    const bad = mismatches(cs, (c) => (c.reuseaddrB ? 'OK' : 'EADDRINUSE'));
    const byFlags = (a: boolean, b: boolean, kind: Kind): string => {
      const sel = cs.filter((c) => c.reuseaddrA === a && c.reuseaddrB === b && c.kind === kind);
      const results = [...new Set(sel.map((c) => c.result))];
      return results.join('/');
    };
    out.push(
      cs.length === 0
        ? notTested('C2', 'needs a wildcard and a specific IPv4 address in --set addresses')
        : judge(
            'C2',
            bad.length === 0,
            bad.length
              ? `Linux, bound: SO_REUSEADDR on B only → ${byFlags(false, true, 'bound')}, on both → ${byFlags(true, true, 'bound')}${cs.some((c) => c.kind === 'listening') ? `; A listening, both set → ${byFlags(true, true, 'listening')}` : ''} (${bad.length}/${cs.length} cells differ from BSD)`
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
    out.push(
      tested.length === 0
        ? notTested('C3', 'needs 0.0.0.0, 192.0.2.1 and 198.51.100.1 in --set addresses')
        : judge(
            'C3',
            failing.length === 0,
            failing.length
              ? `rows ${failing.map((r) => r.n).join(', ')} of ${tested.length} differ on Linux, e.g. row ${failing[0]!.n}: ${describe(failing[0]!.mismatch[0]!.cell)} → ${failing[0]!.mismatch[0]!.cell.result} (BSD: ${failing[0]!.mismatch[0]!.expected})`
              : `all ${tested.length} rows match on ${tested.reduce((n, r) => n + r.cells.length, 0)} cells`,
            tested.reduce((n, r) => n + r.cells.length, 0),
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
        : judge('C5', bad.length === 0, bad.length ? `${bad.length}/${cs.length} cells differ: e.g. ${describe(bad[0]!.cell)} → ${bad[0]!.cell.result}` : `${cs.length} same-address cells: OK exactly when both set SO_REUSEPORT (bound and listening)`, cs.length),
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
              ? `${bad.length}/${cs.length} multicast cells differ from BSD, e.g. ${describe(bad[0]!.cell)} → ${bad[0]!.cell.result}; on Linux the two flags do not mix`
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
    const viaPort = new Map(bound.filter((c) => !c.reuseaddrA && !c.reuseaddrB && c.reuseportA && c.reuseportB).map((c) => [key(c), c.result]));
    const viaAddr = bound.filter((c) => c.reuseaddrA && c.reuseaddrB && !c.reuseportA && !c.reuseportB && viaPort.has(key(c)));
    const badB = viaAddr.filter((c) => viaPort.get(key(c)) !== c.result);
    // pairs that share a port only thanks to SO_REUSEADDR (without flags they conflict)
    const conflicting = new Set(bound.filter((c) => noReuse(c) && c.result !== 'OK').map(key));
    const listenB = bound.filter((c) => c.reuseaddrA && c.reuseaddrB && !c.reuseportA && !c.reuseportB && c.proto === 'tcp' && c.result === 'OK' && conflicting.has(key(c)));
    const secondListen = [...new Set(listenB.map((c) => c.listenB))].join('/');
    if (listening.length === 0 && viaAddr.length === 0) out.push(notTested('C8', 'needs the listening or bound kinds'));
    else {
      const holds = badA.length === 0 && badB.length === 0;
      const parts: string[] = [];
      parts.push(listening.length ? (badA.length ? `A listening: SO_REUSEADDR changed ${badA.length} results, e.g. ${describe(badA[0]!)} → ${badA[0]!.result}` : `A listening: SO_REUSEADDR changed none of ${listening.length} results`) : 'listening kind not measured');
      parts.push(viaAddr.length ? (badB.length ? `not listening: REUSEADDR-both ≠ REUSEPORT-both in ${badB.length}/${viaAddr.length} pairs, e.g. ${describe(badB[0]!)} → ${badB[0]!.result}` : `not listening: REUSEADDR on both = REUSEPORT on both in all ${viaAddr.length} pairs`) : 'bound kind not measured');
      if (secondListen) parts.push(`after such a shared bind (TCP, ${listenB.length} pairs), B's listen() → ${secondListen} once A listens`);
      out.push(judge('C8', holds, parts.join('; '), listening.length + viaAddr.length));
    }
  }
  // C9: REUSEPORT sharing needs the same uid. The control: the same cells with one owner bind
  // (else a refusal across users says nothing about users)
  {
    const other = measured(all).filter((c) => c.uidB === 'other' && c.kind !== 'multicast' && sameAddr(c) && c.reuseportA && c.reuseportB && !c.reuseaddrA && !c.reuseaddrB);
    const key = (c: Cell): string => `${c.proto}|${c.kind}|${c.addrA}|${c.v6onlyA}|${c.addrB}|${c.v6onlyB}|${c.reuseaddrA}|${c.reuseaddrB}`;
    const sameOwner = new Map(unicast.filter((c) => sameAddr(c) && c.reuseportA && c.reuseportB).map((c) => [key(c), c]));
    const controls = other.map((c) => sameOwner.get(key(c)));
    const missing = controls.filter((c) => c === undefined).length;
    const refused = controls.filter((c): c is Cell => c !== undefined && c.result !== 'OK');
    const controlResults = [...new Set(controls.filter((c): c is Cell => c !== undefined).map((c) => c.result))].join('/');
    const sharedAcross = other.filter((c) => c.result === 'OK');
    const addrAcross = measured(all).filter((c) => c.uidB === 'other' && c.kind === 'bound' && sameAddr(c) && c.reuseaddrA && c.reuseaddrB && !c.reuseportA && !c.reuseportB);
    const addrShared = addrAcross.filter((c) => c.result === 'OK').length;
    const untested = all.find((c) => c.uidB === 'other' && c.notTested);
    out.push(
      other.length === 0
        ? notTested('C9', untested?.notTested ?? 'needs uids=other (B owned by another user)')
        : [
            'C9',
            {
              requires: [
                requires('cells the claim speaks of were measured', true, `${other.length} cells`),
                requires(
                  'the control: the same cells with one owner were measured and bound (SO_REUSEPORT shares the port within one user)',
                  missing === 0 && refused.length === 0,
                  missing ? `${missing}/${other.length} not measured (uids=${[...new Set(all.map((c) => c.uidB))].join(',')})` : refused.length ? `${refused.length}/${other.length} refused, e.g. ${describe(refused[0]!)} → ${refused[0]!.result}` : `all ${other.length} → ${controlResults}`,
                ),
              ],
              agrees: sharedAcross.length === 0,
              evidence:
                (sharedAcross.length
                  ? `${sharedAcross.length}/${other.length} cells shared a port across users, e.g. ${describe(sharedAcross[0]!)}`
                  : `all ${other.length} SO_REUSEPORT-both cells with B owned by uid 65534 → ${[...new Set(other.map((c) => c.result))].join('/')}`) +
                (missing < other.length ? `; the same cells with one owner → ${controlResults}` : '; the same cells with one owner: not measured') +
                (addrAcross.length ? `; SO_REUSEADDR on both, not listening, shared across users in ${addrShared}/${addrAcross.length} cells` : ''),
            },
          ],
    );
  }
  // C23: without flags, A on 0.0.0.0 keeps B off every specific IPv4 address of the port
  {
    const cs = unicast.filter((c) => noReuse(c) && c.addrA === '0.0.0.0' && family(c.addrB) === 'ipv4' && !isWildcard(c.addrB));
    const bad = mismatches(cs, () => 'EADDRINUSE');
    const addrs = [...new Set(cs.map((c) => c.addrB))].join(', ');
    out.push(
      cs.length === 0
        ? notTested('C23', 'needs 0.0.0.0 and a specific IPv4 address in --set addresses')
        : judge('C23', bad.length === 0, bad.length ? `${bad.length}/${cs.length} cells bound beside 0.0.0.0: e.g. ${describe(bad[0]!.cell)} → ${bad[0]!.cell.result}` : `all ${cs.length} cells with A on 0.0.0.0 and B on ${addrs} (${kindsOf(cs)}, no flags) → EADDRINUSE`, cs.length),
    );
  }
  // C24: two different specific addresses (an IPv4-mapped IPv6 address is its IPv4 address) never conflict
  {
    const cs = unicast.filter((c) => noReuse(c) && !isWildcard(c.addrA) && !isWildcard(c.addrB) && unmapped(c.addrA) !== unmapped(c.addrB));
    const bad = mismatches(cs, () => 'OK');
    out.push(
      cs.length === 0
        ? notTested('C24', 'needs two specific addresses in --set addresses')
        : judge('C24', bad.length === 0, bad.length ? `${bad.length}/${cs.length} pairs of different specific addresses conflicted: e.g. ${describe(bad[0]!.cell)} → ${bad[0]!.cell.result}` : `all ${cs.length} pairs of different specific addresses (${kindsOf(cs)}, no flags) → OK`, cs.length),
    );
  }
  out.push(judgeAfterBind(afterBind));
  return out;
}

/** The verdicts the matrix (and the after-bind trials) give on a kernel (by default this one). */
export function judgeClaims(all: Cells, kernelRelease = os.release(), afterBind: readonly AfterBindTrial[] = []): Array<{ id: ClaimId; verdict: Verdict; evidence: string }> {
  return judgements(all, afterBind).map(([id, j]) => ({ id, ...decide(claimById(id), j, kernelRelease) }));
}

// ---------------------------------------------------------------- SO_REUSEPORT set after bind() (C22)
/** One probe: A binds, then sets SO_REUSEPORT; B sets it and binds the same address and port. */
export interface AfterBindTrial {
  proto: Proto;
  kind: 'bound' | 'listening';
  port: number;
  /** the control on a port of its own: A set SO_REUSEPORT before its bind (and listened), then B bound */
  control: { setupA: string; bindB: string };
  /** A's bind() (and listen(), for the listening kind) */
  setupA: string;
  /** setsockopt(SO_REUSEPORT, 1) on A after its bind, and what getsockopt reads back */
  setAfter: string;
  readBack: string;
  /** B's bind(): OK or the errno */
  bindB: string;
}

async function reuseportAfterBind(ctx: LabContext, proto: Proto, kind: 'bound' | 'listening', port: number): Promise<AfterBindTrial> {
  const addr = ctx.addr.host4;
  const listening = kind === 'listening';
  // the control: the flag set before A's bind lets B share the port
  const ca = ctx.socket('ipv4', proto);
  const cb = ctx.socket('ipv4', proto);
  ca.setOption('SO_REUSEPORT', true);
  let controlA = outcome(ca.bind(addr, port + 1));
  if (controlA === 'OK' && listening) controlA = outcome(ca.listen());
  cb.setOption('SO_REUSEPORT', true);
  const control = { setupA: controlA, bindB: controlA === 'OK' ? outcome(cb.bind(addr, port + 1)) : 'not measured' };
  ca.closeNow();
  cb.closeNow();
  // the probe: the flag set only after A's bind
  const a = ctx.socket('ipv4', proto);
  const b = ctx.socket('ipv4', proto);
  try {
    const setupA = outcome(a.bind(addr, port));
    const set = a.setOption('SO_REUSEPORT', true);
    const got = a.getOption('SO_REUSEPORT');
    const setAfter = outcome(set);
    const readBack = got.value === null ? `getsockopt ${got.errno}` : got.value ? '1' : '0';
    const listen = setupA === 'OK' && listening ? outcome(a.listen()) : 'OK';
    b.setOption('SO_REUSEPORT', true);
    const bindB = setupA === 'OK' && listen === 'OK' ? outcome(b.bind(addr, port)) : 'not measured';
    return { proto, kind, port, control, setupA: setupA === 'OK' ? listen : setupA, setAfter, readBack, bindB };
  } finally {
    a.closeNow();
    b.closeNow();
  }
}

function judgeAfterBind(trials: readonly AfterBindTrial[]): [ClaimId, Judgement] {
  if (trials.length === 0) return notTested('C22', 'the SO_REUSEPORT-after-bind probes were not run (see --set protocols/kinds)');
  const by = (f: (t: AfterBindTrial) => string): string =>
    [...new Set(trials.map((t) => `${t.proto} ${t.kind}`))].map((k) => `${k} → ${[...new Set(trials.filter((t) => `${t.proto} ${t.kind}` === k).map(f))].join('/')}`).join(', ');
  return [
    'C22',
    {
      trials: trials.map((t) => ({
        requires: [
          requires("A's bind() (and listen()) and its setsockopt(SO_REUSEPORT) after the bind returned 0", t.setupA === 'OK' && t.setAfter === 'OK', `bind/listen → ${t.setupA}, setsockopt → ${t.setAfter}`),
          requires('A reads SO_REUSEPORT back as 1', t.readBack === '1', t.readBack),
          requires("the control: with SO_REUSEPORT set before A's bind, B binds the same address and port", t.control.setupA === 'OK' && t.control.bindB === 'OK', `A → ${t.control.setupA}, B → ${t.control.bindB}`),
        ],
        agrees: t.bindB === 'EADDRINUSE',
      })),
      evidence: `A bound 192.0.2.1:P, then set SO_REUSEPORT (read back ${[...new Set(trials.map((t) => t.readBack))].join('/')}); B set it and bound the same address and port: ${by((t) => t.bindB)}; with the flag set before A's bind: ${by((t) => t.control.bindB)}`,
    },
  ];
}

// ---------------------------------------------------------------- the seed's table
interface SeedRow {
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

function seedTableRows(unicast: Cells): Array<SeedRow & { cells: Cell[]; mismatch: Array<{ cell: Cell; expected: string }> }> {
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

// ---------------------------------------------------------------- printing
const short = (r: string | undefined): string => (r === undefined ? '-' : r === 'EADDRINUSE' ? 'INUSE' : r);

function printSeedTable(ctx: LabContext, unicast: Cells): void {
  const views: Array<[string, (c: Cell) => boolean]> = [
    ['tcp bound', (c) => c.proto === 'tcp' && c.kind === 'bound'],
    ['tcp listening', (c) => c.proto === 'tcp' && c.kind === 'listening'],
    ['udp', (c) => c.proto === 'udp' && c.kind === 'bound'],
  ];
  const present = views.filter(([, f]) => unicast.some(f));
  ctx.print("The seed's SO_REUSEADDR table (BSD) on this kernel — SO_REUSEPORT off, one owner.");
  ctx.print('Each kernel column: B\'s bind() with SO_REUSEADDR on neither | A only | B only | both; * = differs from BSD.');
  const head = ['#', 'REUSEADDR', 'socket A', 'socket B', 'BSD (seed)', ...present.map(([n]) => n)];
  const rows: string[][] = [];
  for (const row of seedTableRows(unicast)) {
    const cols = present.map(([, f]) =>
      FLAGS.map(([a, b]) => {
        const c = unicast.find((x) => f(x) && x.addrA === row.a && x.addrB === row.b && x.reuseaddrA === a && x.reuseaddrB === b && !x.reuseportA && !x.reuseportB);
        if (!c) return '-';
        const applies = row.flag === 'ON/OFF' || b === (row.flag === 'ON');
        return short(c.result) + (applies && c.result !== row.bsd ? '*' : applies ? '' : '·');
      }).join(' '),
    );
    rows.push([String(row.n), row.flag, `${row.a}:P`, `${row.b}:P`, short(row.bsd), ...cols]);
  }
  table(ctx, head, rows);
  ctx.print('(· = a flag combination the row does not speak of)');
}

function table(ctx: LabContext, head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  ctx.print(line(head));
  ctx.print(widths.map((w) => '─'.repeat(w)).join('  '));
  for (const r of rows) ctx.print(line(r));
}

function relation(c: Cell): string {
  if (c.kind === 'multicast') return 'multicast group';
  if (sameAddr(c)) return 'same address';
  const fa = family(c.addrA);
  const fb = family(c.addrB);
  if (fa !== fb) return 'IPv4 vs IPv6';
  if (isWildcard(c.addrA) || isWildcard(c.addrB)) return 'wildcard vs specific';
  return 'two specific addresses';
}

function printDifferences(ctx: LabContext, cells: Cells): void {
  const differ = cells.filter((c) => c.bsd !== null && c.bsd !== c.result);
  const covered = cells.filter((c) => c.bsd !== null).length;
  ctx.print(`Where this kernel differs from the seed's BSD rules: ${differ.length} of ${covered} cells the rules cover.`);
  const groups = new Map<string, { n: number; result: string; bsd: string }>();
  for (const c of differ) {
    const k = `${c.proto} ${c.kind.padEnd(9)} ${relation(c).padEnd(22)} SO_REUSEADDR ${flagText(c.reuseaddrA, c.reuseaddrB).padEnd(7)} SO_REUSEPORT ${flagText(c.reuseportA, c.reuseportB).padEnd(7)}`;
    const g = groups.get(k) ?? { n: 0, result: c.result, bsd: c.bsd! };
    g.n++;
    groups.set(k, g);
  }
  for (const [k, g] of [...groups].sort()) ctx.print(`  ${k} → ${g.result.padEnd(10)} (BSD: ${g.bsd}; ${g.n} cell${g.n > 1 ? 's' : ''})`);
}

function printIPv6(ctx: LabContext, cells: Cells): void {
  const mixed = cells.filter((c) => c.uidB === 'same' && c.proto === 'tcp' && c.kind === 'bound' && noReuse(c) && (family(c.addrA) === 'ipv6' || family(c.addrB) === 'ipv6'));
  if (!mixed.length) return;
  ctx.print('Pairs with an IPv6 side on one port (TCP, A bound, no flags) that conflict:');
  const name = (addr: string, v6only: boolean | null): string => (v6only ? `${addr} (V6ONLY)` : addr);
  const conflicts = mixed.filter((c) => c.result !== 'OK').map((c) => `${name(c.addrA, c.v6onlyA)} ✕ ${name(c.addrB, c.v6onlyB)}`);
  const free = mixed.filter((c) => c.result === 'OK').length;
  for (const line of conflicts) ctx.print(`  ${line}`);
  ctx.print(`  (the other ${free} such pairs did not conflict)`);
}

// ---------------------------------------------------------------- the lab
export default defineLab({
  id: '01',
  slug: 'bind-matrix',
  title: 'The bind matrix: SO_REUSEADDR, SO_REUSEPORT and who may share a port',
  shows: 'every bind() pairing (TCP/UDP, bound/listening, flags, IPv4/IPv6, owner) with the errno this kernel returns',
  question: 'When may a second socket bind the address and port a first socket holds, and how does Linux differ from the BSD rules in the seed?',
  params: PARAMS,
  claims: CLAIM_IDS,
  questions: [
    { id: 'q1', text: "Socket A is bound to 0.0.0.0:P with no flags. Socket B sets SO_REUSEADDR and binds 192.0.2.1:P (TCP). What does B's bind() return?", choices: ['OK', 'EADDRINUSE'] },
    { id: 'q2', text: "Both sockets set SO_REUSEPORT and bind 192.0.2.1:P, but B belongs to another user (nobody). What does B's bind() return?", choices: ['OK', 'EADDRINUSE'] },
    { id: 'q3', text: "Socket A binds 192.0.2.1:P (TCP) and only then sets SO_REUSEPORT. Socket B sets SO_REUSEPORT and binds 192.0.2.1:P. What does B's bind() return?", choices: ['OK', 'EADDRINUSE'] },
  ],
  recordSysctls: ['net.ipv4.ip_local_port_range', 'net.ipv6.bindv6only'],
  async run(ctx) {
    const specs = [...cellSpecs(ctx)];
    const helper = specs.some((s) => s.uid === 'other') ? await ctx.otherUid().catch((e: Error) => {
      // a system that cannot have another user: those cells are not tested, naming why
      if (e instanceof KnobMissingError) return e;
      throw new LabError(`uids=other needs a second user (${e.message}); run as root, or --set uids=same`);
    }) : null;
    const cells: Cell[] = [];
    const observations = await ctx.variant('matrix', {}, () => ctx.cpuHeavy('the bind matrix', async () => {
      const t0 = performance.now();
      let port = ctx.int('base_port');
      let lastProgress = 0;
      for (const spec of specs) {
        cells.push(await measure(ctx, helper, { ...spec, port }));
        port = port >= 65000 ? ctx.int('base_port') : port + 1;
        if (performance.now() - lastProgress > 500) {
          lastProgress = performance.now();
          ctx.progress(`bind matrix: ${cells.length}/${specs.length} cells`);
        }
      }
      ctx.progress(`bind matrix: ${cells.length}/${specs.length} cells`);
      return { cellCount: cells.length, elapsedMs: Math.round(performance.now() - t0), cells };
    }));

    // C22: SO_REUSEPORT set after bind(), against the same set before it (the control)
    const afterBind = (
      await ctx.variant('reuseport-after-bind', { trials: ctx.int('trials') }, async () => {
        const out: AfterBindTrial[] = [];
        const kinds = ctx.list('kinds');
        const probes = (ctx.list('protocols') as Proto[]).flatMap((proto) =>
          (['bound', 'listening'] as const).filter((k) => kinds.includes(k) && (k === 'bound' || proto === 'tcp')).map((kind) => ({ proto, kind })),
        );
        let port = ctx.int('base_port') + cells.length + 1;
        for (let i = 0; i < ctx.int('trials'); i++) {
          for (const { proto, kind } of probes) {
            out.push(await reuseportAfterBind(ctx, proto, kind, port));
            port = port >= 64000 ? ctx.int('base_port') : port + 2;
          }
        }
        return { trials: out };
      })
    ).trials as AfterBindTrial[];

    const unicast = cells.filter((c) => c.uidB === 'same' && c.kind !== 'multicast' && c.setupA === 'OK');
    ctx.print(`Lab 01 — ${this.title}`);
    ctx.print(`${cells.length} cells measured in ${observations.elapsedMs as number} ms; each is socket A bound (or listening), then socket B's bind() on the same port.`);
    ctx.print();
    if (unicast.length) {
      printSeedTable(ctx, unicast);
      ctx.print();
    }
    printDifferences(ctx, cells.filter((c) => c.setupA === 'OK'));
    ctx.print();
    printIPv6(ctx, cells);
    const broken = cells.filter((c) => c.setupA !== 'OK' && !c.notTested);
    if (broken.length) ctx.print(`${broken.length} cells not measured because socket A's own bind/listen failed, e.g. ${describe(broken[0]!)} → ${broken[0]!.setupA}`);
    const untested = cells.filter((c) => c.notTested);
    if (untested.length) ctx.print(`${untested.length} cells not tested: ${untested[0]!.notTested}`);
    ctx.print();
    ctx.print('Claims');
    for (const [id, j] of judgements(cells, afterBind)) {
      const c = ctx.judge(id, j);
      ctx.conclude(`  ${c.id} ${c.verdict.toUpperCase()}: ${c.text} [${c.scope}]`);
      ctx.print(`      ${c.evidence}`);
    }
    // the questions, answered by the cells
    const cell = (w: Partial<Cell>): Cell | undefined =>
      cells.find((c) => c.setupA === 'OK' && Object.entries({ proto: 'tcp', kind: 'bound', reuseaddrA: false, reuseaddrB: false, reuseportA: false, reuseportB: false, uidB: 'same', ...w }).every(([k, v]) => c[k as keyof Cell] === v));
    const measuredCell = (what: string, c: Cell | undefined) => [requires(`the cell was measured (${what})`, !!c, c ? `port ${c.port}` : 'not in this run (see --set)')];
    const q1 = cell({ addrA: '0.0.0.0', addrB: '192.0.2.1', reuseaddrB: true });
    const q1both = cell({ addrA: '0.0.0.0', addrB: '192.0.2.1', reuseaddrA: true, reuseaddrB: true });
    ctx.answer('q1', {
      answer: q1?.result ?? '',
      why: `measured: B's bind() → ${q1?.result ?? '?'}; with SO_REUSEADDR on A too → ${q1both?.result ?? '?'} (the seed's BSD rule says OK: only B's flag counts there)`,
      requires: measuredCell('0.0.0.0 then 192.0.2.1, SO_REUSEADDR on B', q1),
    });
    const q2 = cell({ addrA: '192.0.2.1', addrB: '192.0.2.1', reuseportA: true, reuseportB: true, uidB: 'other' });
    const q2same = cell({ addrA: '192.0.2.1', addrB: '192.0.2.1', reuseportA: true, reuseportB: true });
    ctx.answer('q2', {
      answer: q2?.result ?? '',
      why: `measured: B of uid 65534 → ${q2?.result ?? '?'}; the same with one owner → ${q2same?.result ?? '?'}${q2?.result === 'EADDRINUSE' && q2same?.result === 'OK' ? ' (SO_REUSEPORT groups are per effective user)' : ''}`,
      requires: measuredCell('SO_REUSEPORT on both, B another user', q2),
    });
    const q3 = afterBind.filter((t) => t.proto === 'tcp' && t.kind === 'bound');
    const q3results = [...new Set(q3.map((t) => t.bindB))];
    ctx.answer('q3', {
      answer: q3results[0] ?? '',
      why: `measured ${q3.length} times: B's bind() → ${q3results.join('/')}; with the flag set before A's bind → ${[...new Set(q3.map((t) => t.control.bindB))].join('/')}${q3results[0] === 'OK' ? ' (Linux looks at the flag A has now, not at the one it had when it bound)' : ''}`,
      requires: [
        requires('the probe ran (TCP, A only bound)', q3.length > 0, `${q3.length} probes (see --set protocols/kinds)`),
        requires("A's setsockopt after the bind returned 0 and reads back 1", q3.every((t) => t.setAfter === 'OK' && t.readBack === '1'), q3.map((t) => `${t.setAfter}/${t.readBack}`).join(' ')),
        requires('every probe gave the same answer', q3results.length === 1, q3results.join(' / ')),
      ],
    });
  },
});
