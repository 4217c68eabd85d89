// Lab 01 — the bind matrix.
//
// Question: when may a second socket bind the address and port a first socket holds? The seed
// answer gives BSD's rules (its SO_REUSEADDR table) and says how Linux differs. This lab binds
// every pair of sockets on this kernel — TCP and UDP; A only bound, or already listening;
// SO_REUSEADDR and SO_REUSEPORT on none/A/B/both; wildcard, loopback, specific and IPv6
// addresses; B owned by the same or another user — and judges each claim from the cells. Then it
// asks whether SO_REUSEPORT set after bind() counts, against the flag set before (the control).
import {
  defineLab,
  familyOf,
  KnobMissingError,
  LabError,
  requires,
  type KernelSocket,
  type LabContext,
  type Proto,
  type UidHelper,
  distinct,
} from '../../src/lab';
import {
  ADDRESS_TOKEN,
  bsdPrediction,
  endpoint,
  FLAGS,
  isMulticastGroup,
  outcome,
  type AfterBindTrial,
  type Cell,
  type Endpoint,
  type Kind,
  type Uid,
} from './cells';
import { BIND_MATRIX_COMPARISON } from './compare';
import { describe, judgements } from './judge';
import { printDifferences, printIPv6, printSeedTable } from './print';

export { bsdPrediction, type AfterBindTrial, type Cell } from './cells';
export { judgeClaims, judgements, SEED_TABLE } from './judge';

// ---------------------------------------------------------------- the claims
// (texts, sources and scopes in src/lab/claims.ts)
// C22 is judged from a variant of its own (SO_REUSEPORT set after bind), the others from the matrix
const CLAIM_IDS = [
  'C1', // By default no two sockets can be bound to the same source address and port.
  'C2', // Binding a wildcard address and a specific address on the same port fails without SO_REUSEADDR and
  //   succeeds with it, set on the socket being bound, in either order.
  'C3', // The seed's eight-row SO_REUSEADDR table (socket A bound, then socket B binds) gives each result.
  'C5', // SO_REUSEPORT lets sockets bind exactly the same address and port only if every socket, the first
  //   included, set it before binding.
  'C7', // For multicast addresses SO_REUSEADDR behaves exactly as SO_REUSEPORT, and the other way round.
  'C8', // While a TCP socket listens on a port SO_REUSEADDR is ignored for that port; for sockets that do not
  //   listen, SO_REUSEADDR on both behaves like SO_REUSEPORT.
  'C9', // Sockets can share an address and port through SO_REUSEPORT only if they belong to the same
  //   effective user ID.
  'C23', // Without SO_REUSEADDR or SO_REUSEPORT, a socket bound to 0.0.0.0:P keeps every other socket from
  //   binding port P, whatever specific address it names.
  'C24', // Two sockets can always bind the same port on two different specific addresses, without any flag.
  'C22', // SO_REUSEPORT counts only when it was set before bind(): a socket that set it after binding does
  //   not let another socket bind the same address and port.
] as const;
export type ClaimId = (typeof CLAIM_IDS)[number];

export default defineLab({
  id: '01',
  slug: 'bind-matrix',
  title: 'The bind matrix: SO_REUSEADDR, SO_REUSEPORT and who may share a port',
  shows: 'every bind() pairing (TCP/UDP, bound/listening, flags, IPv4/IPv6, owner) with the errno this kernel returns',
  showsInDetail:
    'every `bind()` pairing — TCP/UDP; A bound or listening; `SO_REUSEADDR` × `SO_REUSEPORT` on none/A/B/both; wildcard, loopback, ' +
    "specific, multicast and IPv6 addresses (± `IPV6_V6ONLY`); B owned by the same user or `nobody` — the errno, the seed's BSD " +
    'prediction beside it, and which socket may then `listen()`; and whether `SO_REUSEPORT` set after `bind()` counts',
  question:
    'When may a second socket bind the address and port a first socket holds, and how does Linux differ from the BSD rules in the seed?',
  params: [
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
    {
      name: 'multicast',
      kind: 'string',
      default: '224.1.2.3',
      validate: (v: string) =>
        !familyOf(v)
          ? `${JSON.stringify(v)} is not an IP address`
          : isMulticastGroup(v)
            ? null
            : `${JSON.stringify(v)} is not a multicast group address (224.0.0.0–239.255.255.255, or ff00::/8): ` +
              'the multicast cells bind both sockets to a group',
      help: 'group both sockets bind in the multicast kind',
    },
    {
      name: 'uids',
      kind: 'list',
      default: ['same', 'other'],
      choices: ['same', 'other'],
      help: 'owner of socket B: the lab (root) or another user (nobody, 65534)',
    },
    { name: 'base_port', kind: 'int', default: 20000, min: 1024, max: 60000, help: 'first port; each cell binds a fresh one' },
    {
      name: 'trials',
      kind: 'int',
      default: 5,
      min: 1,
      max: 50,
      help: 'repetitions of the SO_REUSEPORT-after-bind probe, per protocol and kind',
    },
  ],
  claims: CLAIM_IDS,
  questions: [
    {
      id: 'q1',
      text:
        "Socket A is bound to 0.0.0.0:P with no flags. Socket B sets SO_REUSEADDR and binds 192.0.2.1:P (TCP). What does B's bind() " +
        'return?',
      choices: ['OK', 'EADDRINUSE'],
    },
    {
      id: 'q2',
      text: "Both sockets set SO_REUSEPORT and bind 192.0.2.1:P, but B belongs to another user (nobody). What does B's bind() return?",
      choices: ['OK', 'EADDRINUSE'],
    },
    {
      id: 'q3',
      text:
        'Socket A binds 192.0.2.1:P (TCP) and only then sets SO_REUSEPORT. Socket B sets SO_REUSEPORT and binds 192.0.2.1:P. What ' +
        "does B's bind() return?",
      choices: ['OK', 'EADDRINUSE'],
    },
  ],
  recordSysctls: ['net.ipv4.ip_local_port_range', 'net.ipv6.bindv6only'],
  course: {
    order: 100,
    teaches: 'The whole bind() matrix — SO_REUSEADDR, SO_REUSEPORT, wildcard and specific addresses, users — against the BSD rules.',
    look: 'no capture: bind() puts nothing on the wire; read the table and the errno.',
  },
  report: { compare: BIND_MATRIX_COMPARISON },
  async run(ctx) {
    const specs = [...cellSpecs(ctx)];
    const helper = specs.some((s) => s.uid === 'other')
      ? await ctx.otherUid().catch((e: Error) => {
          // a system that cannot have another user: those cells are not tested, naming why
          if (e instanceof KnobMissingError) return e;
          throw new LabError(`uids=other needs a second user (${e.message}); run as root, or --set uids=same`);
        })
      : null;
    const cells: Cell[] = [];
    const observations = await ctx.variant('matrix', {}, () =>
      ctx.cpuHeavy('the bind matrix', async () => {
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
      }),
    );

    // C22: SO_REUSEPORT set after bind(), against the same set before it (the control)
    const afterBind = (
      await ctx.variant('reuseport-after-bind', { trials: ctx.int('trials') }, async () => {
        const out: AfterBindTrial[] = [];
        const kinds = ctx.list('kinds');
        const probes = ctx
          .list<Proto>('protocols')
          .flatMap((proto) =>
            (['bound', 'listening'] as const)
              .filter((k) => kinds.includes(k) && (k === 'bound' || proto === 'tcp'))
              .map((kind) => ({ proto, kind })),
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
    ).trials;

    const unicast = cells.filter((c) => c.uidB === 'same' && c.kind !== 'multicast' && c.setupA === 'OK');
    ctx.print(`Lab 01 — ${this.title}`);
    ctx.print(
      `${cells.length} cells measured ` +
        `in ${observations.elapsedMs} ms; each is socket A bound (or listening), then socket B's bind() on the same port.`,
    );
    ctx.print();
    if (unicast.length) {
      printSeedTable(ctx, unicast);
      ctx.print();
    }
    printDifferences(
      ctx,
      cells.filter((c) => c.setupA === 'OK'),
    );
    ctx.print();
    printIPv6(ctx, cells);
    const broken = cells.filter((c) => c.setupA !== 'OK' && !c.notTested);
    if (broken.length)
      ctx.print(
        `${broken.length} cells not measured because socket A's own bind/listen failed, ` +
          `e.g. ${describe(broken[0]!)} → ${broken[0]!.setupA}`,
      );
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
      cells.find(
        (c) =>
          c.setupA === 'OK' &&
          Object.entries({
            proto: 'tcp',
            kind: 'bound',
            reuseaddrA: false,
            reuseaddrB: false,
            reuseportA: false,
            reuseportB: false,
            uidB: 'same',
            ...w,
          }).every(([k, v]) => c[k as keyof Cell] === v),
      );
    const measuredCell = (what: string, c: Cell | undefined) => [
      requires(`the cell was measured (${what})`, !!c, c ? `port ${c.port}` : 'not in this run (see --set)'),
    ];
    const q1 = cell({ addrA: '0.0.0.0', addrB: '192.0.2.1', reuseaddrB: true });
    const q1both = cell({ addrA: '0.0.0.0', addrB: '192.0.2.1', reuseaddrA: true, reuseaddrB: true });
    ctx.answer('q1', {
      answer: q1?.result ?? '',
      why:
        `measured: B's bind() → ${q1?.result ?? '?'}; with SO_REUSEADDR on A too → ${q1both?.result ?? '?'} (the seed's BSD ` +
        `rule says OK: only B's flag counts there)`,
      requires: measuredCell('0.0.0.0 then 192.0.2.1, SO_REUSEADDR on B', q1),
    });
    const q2 = cell({ addrA: '192.0.2.1', addrB: '192.0.2.1', reuseportA: true, reuseportB: true, uidB: 'other' });
    const q2same = cell({ addrA: '192.0.2.1', addrB: '192.0.2.1', reuseportA: true, reuseportB: true });
    const perUser = q2?.result === 'EADDRINUSE' && q2same?.result === 'OK' ? ' (SO_REUSEPORT groups are per effective user)' : '';
    ctx.answer('q2', {
      answer: q2?.result ?? '',
      why: `measured: B of uid 65534 → ${q2?.result ?? '?'}; the same with one owner → ${q2same?.result ?? '?'}${perUser}`,
      requires: measuredCell('SO_REUSEPORT on both, B another user', q2),
    });
    const q3 = afterBind.filter((t) => t.proto === 'tcp' && t.kind === 'bound');
    const q3results = [...new Set(q3.map((t) => t.bindB))];
    const flagNow = q3results[0] === 'OK' ? ' (Linux looks at the flag A has now, not at the one it had when it bound)' : '';
    ctx.answer('q3', {
      answer: q3results[0] ?? '',
      why:
        `measured ${q3.length} times: B's bind() → ${q3results.join('/')}; with the flag set before A's bind ` +
        `→ ${distinct(q3.map((t) => t.control.bindB))}${flagNow}`,
      requires: [
        requires('the probe ran (TCP, A only bound)', q3.length > 0, `${q3.length} probes (see --set protocols/kinds)`),
        requires(
          "A's setsockopt after the bind returned 0 and reads back 1",
          q3.every((t) => t.setAfter === 'OK' && t.readBack === '1'),
          q3.map((t) => `${t.setAfter}/${t.readBack}`).join(' '),
        ),
        requires('every probe gave the same answer', q3results.length === 1, q3results.join(' / ')),
      ],
    });
  },
});

// ---------------------------------------------------------------- parameters

function checkAddressToken(token: string): string | null {
  const m = ADDRESS_TOKEN.exec(token)!;
  const family = familyOf(m[1]!);
  if (!family) return `${JSON.stringify(token)} is not an IP address (append +v6only to an IPv6 address to set IPV6_V6ONLY)`;
  if (m[2] && family !== 'ipv6') return `+v6only applies to IPv6 addresses only, not ${m[1]}`;
  return null;
}

// ---------------------------------------------------------------- measuring
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
      const r = await (helper as UidHelper).bind({
        family: s.b.family,
        proto: s.proto,
        reuseaddr: s.ra[1],
        reuseport: s.rp[1],
        v6only: s.b.v6only,
        address: s.b.address,
        port: s.port,
      });
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
  const protocols = ctx.list<Proto>('protocols');
  const kinds = ctx.list<Kind>('kinds');
  const endpoints = ctx.list('addresses').map(endpoint);
  const uids = ctx.list<Uid>('uids');
  for (const uid of uids) {
    for (const proto of protocols) {
      for (const kind of kinds) {
        if (kind === 'listening' && proto !== 'tcp') continue;
        if (kind === 'multicast' && proto !== 'udp') continue;
        const pairs: Array<[Endpoint, Endpoint]> =
          kind === 'multicast'
            ? [[endpoint(ctx.str('multicast')), endpoint(ctx.str('multicast'))]]
            : endpoints.flatMap((a) => endpoints.map((b): [Endpoint, Endpoint] => [a, b]));
        for (const [a, b] of pairs) for (const ra of FLAGS) for (const rp of FLAGS) yield { proto, kind, a, b, ra, rp, uid };
      }
    }
  }
}

// ---------------------------------------------------------------- SO_REUSEPORT set after bind() (C22)
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
