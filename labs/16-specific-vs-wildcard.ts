// Lab 16 — a specific address and the wildcard on one port: who gets the traffic?
//
// Question: one socket is bound to 0.0.0.0:P, another to 192.0.2.1:P (they may share the port:
// SO_REUSEADDR on both for UDP, SO_REUSEPORT on both for TCP listeners). A datagram or a
// connection arrives for 192.0.2.1:P: which socket gets it? The seed says the most specific match
// "usually wins". The control: traffic for the namespace's other address, 198.51.100.1:P, can only
// go to the wildcard socket — so it is alive and receiving. Each trial binds a fresh pair, in
// alternating order (wildcard first, then specific first).
import {
  defineLab,
  emitUdpFrame,
  endpointText,
  requires,
  type Connection,
  type KernelSocket,
  type LabContext,
  type Precondition,
  type Proto,
  type Trial,
  sum,
} from '../src/lab';

export default defineLab({
  id: '16',
  slug: 'specific-vs-wildcard',
  title: 'A specific address and the wildcard on one port: who gets the traffic',
  shows: 'datagrams and connections for 192.0.2.1:P when one socket holds 0.0.0.0:P and another 192.0.2.1:P, in both binding orders',
  showsInDetail:
    'one socket on `0.0.0.0:P`, another on `192.0.2.1:P` (UDP: `SO_REUSEADDR` on both; TCP listeners: `SO_REUSEPORT` on both), in ' +
    'both binding orders: who receives datagrams and connections for 192.0.2.1 — and, as the control, for 198.51.100.1',
  question:
    'One socket is bound to the wildcard address, another to a specific address, on the same port: which one receives what is sent to ' +
    'the specific address?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'protocols',
      kind: 'list',
      default: ['udp', 'tcp'],
      choices: ['udp', 'tcp'],
      help: 'UDP (SO_REUSEADDR on both) and TCP listeners (SO_REUSEPORT on both)',
    },
    { name: 'per_address', kind: 'int', default: 10, min: 1, max: 500, help: 'datagrams (or connections) sent to each address per trial' },
    { name: 'trials', kind: 'int', default: 5, min: 1, max: 50, help: 'pairs bound per protocol, alternating which binds first' },
    {
      name: 'flags',
      kind: 'enum',
      default: 'reuse',
      choices: ['reuse', 'none'],
      help:
        'reuse: both sockets set the flag that lets them share the port; none: neither does, so the second bind() fails (and the ' +
        'claim is not tested)',
    },
  ],
  claims: [
    'C21', // When one socket is bound to the wildcard address and another to a specific address on the same
    //   port, traffic to the specific address goes to the specific-address socket.
  ],
  questions: [
    {
      id: 'q1',
      text:
        'UDP socket A is bound to 0.0.0.0:P, socket B to 192.0.2.1:P (SO_REUSEADDR on both). Datagrams arrive for 192.0.2.1:P. ' +
        'Which socket receives them?',
      choices: ['B, the specific one', 'A, the wildcard one', 'spread over both', 'whichever bound first'],
    },
  ],
  course: {
    order: 110,
    teaches:
      'Which socket gets a datagram or a connection when one holds the wildcard address and another a specific address on the same port.',
    look: 'udp.pcap and tcp.pcap: what was sent to each address; the output says which socket received it.',
  },
  async run(ctx) {
    const k = ctx.int('per_address');
    const n = ctx.int('trials');
    const protocols = ctx.list<Proto>('protocols');
    const trials: PairTrial[] = [];
    let port = BASE_PORT;
    for (const proto of protocols) {
      const obs = await ctx.variant(proto, { proto, per_address: k, trials: n }, async () => {
        const out: PairTrial[] = [];
        for (let t = 1; t <= n; t++) out.push(await (proto === 'udp' ? udpTrial(ctx, t, port++, k) : tcpTrial(ctx, t, port++, k)));
        return { trials: out };
      });
      trials.push(...obs.trials);
    }

    const tally = (proto: Proto): string => {
      const ts = trials.filter((t) => t.proto === proto);
      if (!ts.length) return `${proto}: not measured`;
      const of = (f: (t: PairTrial) => number): number => sum(ts, f);
      const toSpecific =
        `the specific socket got ${of((t) => t.toSpecific.bySpecific)} ` + `and the wildcard ${of((t) => t.toSpecific.byWildcard)}`;
      return (
        `${proto}: to ${ctx.addr.host}, ${toSpecific} of ${of((t) => t.sent.specific)}; ` +
        `to ${ctx.addr.hostB}, the wildcard got ${of((t) => t.toOther.byWildcard)} of ${of((t) => t.sent.other)}`
      );
    };
    ctx.judge('C21', {
      trials: trials.map(c21Trial),
      evidence: `${protocols.map(tally).join('; ')} (both binding orders)`,
    });

    const udp = trials.filter((t) => t.proto === 'udp');
    const winner = (t: PairTrial): string =>
      t.toSpecific.bySpecific === t.sent.specific
        ? 'B, the specific one'
        : t.toSpecific.byWildcard === t.sent.specific
          ? 'A, the wildcard one'
          : 'spread over both';
    const winners = [...new Set(udp.map(winner))];
    const received = udp.map((t) => `${t.toSpecific.bySpecific}/${t.sent.specific}`).join(', ');
    ctx.answer('q1', {
      answer: winners.length === 1 ? winners[0]! : 'whichever bound first',
      why:
        `measured in ${udp.length} pairs: the specific socket received ${received} of the datagrams ` +
        `to ${ctx.addr.host}, whichever bound first`,
      requires: [
        requires('the UDP pairs were measured', udp.length > 0, `protocols=${protocols.join(',')}`),
        requires(
          'every pair was set up',
          udp.every((t) => t.wildcardSetup === 'OK' && t.specificSetup === 'OK'),
          udp.map((t) => `${t.wildcardSetup}/${t.specificSetup}`).join(' '),
        ),
      ],
    });

    ctx.print(`Lab 16 — ${this.title}`);
    ctx.print(
      `Each trial: a socket on ${ctx.addr.any} port P and one on ${ctx.addr.host} port P (odd trials wildcard ` +
        `first); ${k} sent to ${ctx.addr.host} and ${k} to ${ctx.addr.hostB}.`,
    );
    for (const t of trials) {
      const toHost = `to ${ctx.addr.host}: specific ${t.toSpecific.bySpecific}, wildcard ${t.toSpecific.byWildcard}`;
      const toOther = `to ${ctx.addr.hostB}: wildcard ${t.toOther.byWildcard}, specific ${t.toOther.bySpecific}`;
      ctx.print(`${t.proto} #${t.trial} ${t.order.padEnd(14)} setup ${t.wildcardSetup}/${t.specificSetup}; ${toHost}; ${toOther}`);
    }
    ctx.print();
    ctx.concludeClaims();
  },
});

const BASE_PORT = 7600;
/** the other specific address of the namespace (IPv4's; ctx.addr.hostB over either): only the wildcard socket can take its traffic */
const OTHER = '198.51.100.1';
/** the three addresses of a trial, as the family it ran over names them (IPv4's by default) */
const V4 = { any: '0.0.0.0', specific: '192.0.2.1', other: OTHER };
const addressesOf = (ctx: LabContext): PairTrial['addresses'] => ({ any: ctx.addr.any, specific: ctx.addr.host, other: ctx.addr.hostB });

export interface PairTrial {
  proto: Proto;
  /** the wildcard, the specific address and the other one, in the trial's family (absent: IPv4's) */
  addresses?: { any: string; specific: string; other: string };
  trial: number;
  port: number;
  /** which socket bound first */
  order: 'wildcard first' | 'specific first';
  /** setsockopt, bind() (and listen()) of each socket: OK or the errno */
  wildcardSetup: string;
  specificSetup: string;
  /** what each address was sent (datagrams or connections), and where each arrived */
  sent: { specific: number; other: number };
  /** per destination address: how many the specific socket and the wildcard socket received */
  toSpecific: { bySpecific: number; byWildcard: number };
  toOther: { bySpecific: number; byWildcard: number };
}

const _ok = (r: { errno: string | null }): string => r.errno ?? 'OK';

/** SO_REUSEADDR (UDP) or SO_REUSEPORT (TCP) unless `flags` is none, then bind() (and listen() for TCP): OK or the first failing call. */
function setUp(s: KernelSocket, proto: Proto, address: string, port: number, flags: string): string {
  if (flags === 'reuse') {
    const flag = s.setOption(proto === 'udp' ? 'SO_REUSEADDR' : 'SO_REUSEPORT', true);
    if (flag.ret < 0) return `setsockopt ${flag.errno}`;
  }
  const b = s.bind(address, port);
  if (b.ret < 0) return `bind ${b.errno}`;
  if (proto === 'tcp') {
    const l = s.listen(64);
    if (l.ret < 0) return `listen ${l.errno}`;
  }
  return 'OK';
}

/** Binds the pair in the trial's order; returns the sockets and what their setup returned. */
function pair(
  ctx: LabContext,
  proto: Proto,
  port: number,
  order: PairTrial['order'],
): { wildcard: KernelSocket; specific: KernelSocket; wildcardSetup: string; specificSetup: string } {
  const wildcard = ctx.socket(ctx.family, proto);
  const specific = ctx.socket(ctx.family, proto);
  let wildcardSetup: string;
  let specificSetup: string;
  const flags = ctx.str('flags');
  if (order === 'wildcard first') {
    wildcardSetup = setUp(wildcard, proto, ctx.addr.any, port, flags);
    specificSetup = setUp(specific, proto, ctx.addr.host, port, flags);
  } else {
    specificSetup = setUp(specific, proto, ctx.addr.host, port, flags);
    wildcardSetup = setUp(wildcard, proto, ctx.addr.any, port, flags);
  }
  return { wildcard, specific, wildcardSetup, specificSetup };
}

/** UDP: `k` datagrams to 192.0.2.1:P and `k` to 198.51.100.1:P, each carrying the address it was sent to. */
async function udpTrial(ctx: LabContext, trial: number, port: number, k: number): Promise<PairTrial> {
  const order = trial % 2 === 1 ? 'wildcard first' : 'specific first';
  const { wildcard, specific, wildcardSetup, specificSetup } = pair(ctx, 'udp', port, order);
  for (let i = 0; i < k; i++) {
    for (const [dst, tag] of [
      [ctx.addr.host, 1],
      [ctx.addr.hostB, 2],
    ] as const) {
      ctx.link.send(emitUdpFrame(ctx.addr.peer, dst, { srcPort: 30000 + i, dstPort: port, payload: new Uint8Array([tag, 0, 0, 0]) }));
    }
  }
  await ctx.sleep(100);
  const drain = async (s: KernelSocket): Promise<number[]> => {
    const tags: number[] = [];
    for (;;) {
      const r = await s.recv(64, { timeoutMs: 0 });
      if (r.ret < 1) return tags;
      tags.push(r.data[0]!);
    }
  };
  const bySpecific = await drain(specific);
  const byWildcard = await drain(wildcard);
  wildcard.closeNow();
  specific.closeNow();
  const count = (tags: number[], tag: number): number => tags.filter((t) => t === tag).length;
  return {
    proto: 'udp',
    trial,
    port,
    order,
    wildcardSetup,
    specificSetup,
    sent: { specific: k, other: k },
    toSpecific: { bySpecific: count(bySpecific, 1), byWildcard: count(byWildcard, 1) },
    toOther: { bySpecific: count(bySpecific, 2), byWildcard: count(byWildcard, 2) },
    addresses: addressesOf(ctx),
  };
}

/**
 * TCP: the peer opens `k` connections to 192.0.2.1:P and `k` to 198.51.100.1:P; each listener's accepted sockets say which address they
 * were for.
 */
async function tcpTrial(ctx: LabContext, trial: number, port: number, k: number): Promise<PairTrial> {
  const order = trial % 2 === 1 ? 'wildcard first' : 'specific first';
  const { wildcard, specific, wildcardSetup, specificSetup } = pair(ctx, 'tcp', port, order);
  const stack = ctx.peer();
  const conns: Connection[] = [];
  for (let i = 0; i < k; i++) {
    conns.push(stack.connect({ local: { address: ctx.addr.peer }, remote: { address: ctx.addr.host, port } }));
    conns.push(stack.connect({ local: { address: ctx.addr.peerB }, remote: { address: ctx.addr.hostB, port } }));
  }
  await ctx.waitUntil(() => conns.every((c) => c.state !== 'SYN-SENT'), { timeoutMs: 5000 });
  const drain = async (l: KernelSocket): Promise<string[]> => {
    const locals: string[] = [];
    for (;;) {
      const r = await l.accept(50);
      if (!r.socket) return locals;
      locals.push(r.socket.localAddress()?.address ?? '?');
      r.socket.closeNow();
    }
  };
  const bySpecific = await drain(specific);
  const byWildcard = await drain(wildcard);
  for (const c of conns) if (c.state !== 'CLOSED') c.abort();
  wildcard.closeNow();
  specific.closeNow();
  const count = (locals: string[], address: string): number => locals.filter((a) => a === address).length;
  return {
    proto: 'tcp',
    trial,
    port,
    order,
    wildcardSetup,
    specificSetup,
    sent: { specific: k, other: k },
    toSpecific: { bySpecific: count(bySpecific, ctx.addr.host), byWildcard: count(byWildcard, ctx.addr.host) },
    toOther: { bySpecific: count(bySpecific, ctx.addr.hostB), byWildcard: count(byWildcard, ctx.addr.hostB) },
    addresses: addressesOf(ctx),
  };
}

/** C21, one trial: everything for 192.0.2.1 went to the specific socket; the control: the wildcard socket took 198.51.100.1's. */
export function c21Trial(t: PairTrial): Trial {
  const what = t.proto === 'udp' ? 'datagram' : 'connection';
  const a = t.addresses ?? V4;
  const reqs: Precondition[] = [
    requires(
      'both sockets were set up: setsockopt, bind() (and listen()) returned 0',
      t.wildcardSetup === 'OK' && t.specificSetup === 'OK',
      `${endpointText({ address: a.any, port: t.port })} → ${t.wildcardSetup}, ` +
        `${endpointText({ address: a.specific, port: t.port })} → ${t.specificSetup}`,
    ),
    requires(
      `every ${what} to ${a.specific} reached one of the two`,
      t.toSpecific.bySpecific + t.toSpecific.byWildcard === t.sent.specific,
      `${t.toSpecific.bySpecific + t.toSpecific.byWildcard} of ${t.sent.specific}`,
    ),
    requires(
      `the control: the wildcard socket received every ${what} to ${a.other}`,
      t.toOther.byWildcard === t.sent.other,
      `${t.toOther.byWildcard} of ${t.sent.other}`,
    ),
  ];
  return { requires: reqs, agrees: t.toSpecific.bySpecific === t.sent.specific };
}
