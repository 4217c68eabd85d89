// Lab 15 — SO_REUSEPORT load balancing.
//
// Question: several kernel sockets share one port with SO_REUSEPORT. How evenly does Linux spread
// incoming connections and datagrams over them (and what skew the test could see), which socket
// gets the datagrams of an endpoint one of them is connected to, what happens to connections
// queued on a listener that closes, and may a socket of another user join the group?
import {
  defineLab,
  emitUdpFrame,
  requires,
  type Connection,
  type KernelSocket,
  type LabContext,
  type Precondition,
  type Trial,
  distinct,
  sum,
  count,
} from '../src/lab';

// ---------------------------------------------------------------- the lab
export default defineLab({
  id: '15',
  slug: 'reuseport-balance',
  title: 'SO_REUSEPORT: sharing one port, balancing the load',
  shows:
    'how connections and datagrams spread over SO_REUSEPORT sockets (and which one a connected UDP socket gets), what a closing ' +
    'listener does to its queue, and the same-user rule',
  showsInDetail:
    'connections and datagrams spread over `SO_REUSEPORT` sockets (histogram, χ² and its p-value, and the skew that many samples ' +
    'would reveal); a connected UDP socket in the group; a listener closing with connections queued; sockets of another uid trying ' +
    "to join. Every socket's `bind()`/`listen()` must return 0 (`no_reuseport=k` makes one fail)",
  question:
    "Several sockets share a port with SO_REUSEPORT: how evenly does Linux spread the load, who gets a connected socket's datagrams, " +
    'and who may join?',
  families: ['ipv4', 'ipv6'],
  params: [
    { name: 'listeners', kind: 'int', default: 4, min: 2, max: 64, help: 'sockets sharing the port' },
    {
      name: 'connections',
      kind: 'int',
      default: 400,
      min: 10,
      max: 20_000,
      help: 'connections (and datagrams) the peer sends, each from its own source port',
    },
    {
      name: 'trials',
      kind: 'int',
      default: 5,
      min: 1,
      max: 50,
      help: 'binds tried by a socket of ours and by one of another user, each; and groups with one connected UDP socket',
    },
    {
      name: 'no_reuseport',
      kind: 'int',
      default: 0,
      min: 0,
      max: 64,
      help:
        'socket k (1-based) of every group binds without SO_REUSEPORT, so a setup call fails and the claims say which (0: every ' +
        'socket sets it)',
    },
  ],
  claims: [
    'C10', // Linux distributes incoming connections and datagrams evenly across SO_REUSEPORT sockets.
    'C9', // Sockets can share an address and port through SO_REUSEPORT only if they belong to the same
    //   effective user ID.
    'C20', // A connected UDP socket in a SO_REUSEPORT group receives every datagram from the remote endpoint
    //   it is connected to; the unconnected sockets get only the other endpoints' datagrams.
  ],
  questions: [
    {
      id: 'q1',
      text:
        'Four listeners of one user share a port with SO_REUSEPORT. A socket of another user sets SO_REUSEPORT and binds the ' +
        'same address and port. What does its bind() return?',
      choices: ['OK', 'EADDRINUSE', 'EPERM'],
    },
    {
      id: 'q2',
      text:
        'Four UDP sockets share a port with SO_REUSEPORT; one of them connect()s to 192.0.2.2:9000. Who receives the datagrams ' +
        '192.0.2.2:9000 sends to the port?',
      choices: ['the connected socket', 'spread over all four', 'the three others'],
    },
  ],
  recordSysctls: ['net.ipv4.tcp_migrate_req', 'net.core.somaxconn'],
  course: {
    order: 120,
    teaches:
      "How SO_REUSEPORT spreads connections over sockets, which socket a connected UDP socket's endpoint reaches, and who may join a " +
      'group.',
    look: 'tcp-connections.pcap: many handshakes on one port; the histogram in the output.',
  },
  async run(ctx) {
    const n = ctx.int('listeners');
    const total = ctx.int('connections');
    const without = ctx.int('no_reuseport');
    const stack = ctx.peer();

    const tcp = await ctx.variant('tcp-connections', { listeners: n, connections: total }, async () => {
      const { socks: listeners, setup } = openGroup(ctx, 'TCP', 'tcp', TCP_PORT, n, without);
      const conns: Connection[] = [];
      const accepted = await ctx.cpuHeavy(`${total} connections`, async () => {
        for (let i = 0; i < total; i++)
          conns.push(stack.connect({ local: { address: ctx.addr.peer }, remote: { address: ctx.addr.host, port: TCP_PORT } }));
        await ctx.waitUntil(() => conns.every((c) => c.state === 'ESTABLISHED'), {
          timeoutMs: 20_000,
          progress: () => `${count(conns, (c) => c.state === 'ESTABLISHED')}/${total} connected`,
        });
        return Promise.all(listeners.map(drainAccepts));
      });
      const counts = accepted.map((a) => a.length);
      for (const a of accepted) for (const s of a) s.closeNow();
      for (const c of conns) c.abort();
      // a second batch stays queued; then the first listener closes
      const queued: Connection[] = [];
      for (let i = 0; i < Math.min(100, total); i++)
        queued.push(stack.connect({ local: { address: ctx.addr.peer }, remote: { address: ctx.addr.host, port: TCP_PORT } }));
      await ctx.waitUntil(() => queued.every((c) => c.state === 'ESTABLISHED'), { timeoutMs: 10_000 });
      listeners[0]!.closeNow();
      await ctx.sleep(300);
      const reset = queued.filter((c) => c.resetReason === 'rst-received').length;
      const survivors = await Promise.all(listeners.slice(1).map(drainAccepts));
      const acceptedAfter = sum(survivors, (a) => a.length);
      for (const a of survivors) for (const s of a) s.closeNow();
      for (const c of queued) if (c.state !== 'CLOSED') c.abort();
      // the same-user rule, live: more sockets of ours join; sockets of nobody's may not
      const sameUidBinds: string[] = [];
      const otherUidBinds: string[] = [];
      let helperError: string | null = null;
      const helper = await ctx.otherUid().catch((e: Error) => {
        helperError = e.message;
        return null;
      });
      for (let i = 0; i < ctx.int('trials'); i++) {
        const mine = ctx.socket(ctx.family, 'tcp');
        mine.setOption('SO_REUSEPORT', true);
        sameUidBinds.push(mine.bind(ctx.addr.host, TCP_PORT).errno ?? 'OK');
        mine.closeNow();
        if (helper) {
          const r = await helper.bind({
            family: ctx.family,
            proto: 'tcp',
            reuseaddr: false,
            reuseport: true,
            v6only: null,
            address: ctx.addr.host,
            port: TCP_PORT,
          });
          otherUidBinds.push(r.bind.errno ?? 'OK');
          await helper.close(r.id);
        }
      }
      for (const l of listeners.slice(1)) l.closeNow();
      return {
        setup,
        counts,
        ...evenness(counts),
        queuedWhenClosed: queued.length,
        resetWhenListenerClosed: reset,
        acceptedByOthersAfter: acceptedAfter,
        sameUidBinds,
        otherUidBinds,
        helperError,
      };
    });

    const udp = await ctx.variant('udp-datagrams', { sockets: n, datagrams: total }, async () => {
      const { socks, setup } = openGroup(ctx, 'UDP', 'udp', UDP_PORT, n, without);
      for (let i = 0; i < total; i++) {
        ctx.link.send(datagram(ctx, 20000 + i, UDP_PORT));
        if (i % 100 === 99) await ctx.sleep(1);
      }
      await ctx.sleep(200);
      const counts = (await Promise.all(socks.map(drainDatagrams))).map((from) => from.length);
      for (const s of socks) s.closeNow();
      return { setup, counts, ...evenness(counts) };
    });

    // one socket of the group connect()s to the peer's PEER_PORT: whose are that endpoint's
    // datagrams, and the other endpoints'? Each trial a fresh group, a different socket connected.
    const perEndpoint = 20;
    const connected = (
      await ctx.variant('udp-connected', { sockets: n, trials: ctx.int('trials'), datagrams: 2 * perEndpoint }, async () => {
        const out: ConnectedTrial[] = [];
        for (let t = 0; t < ctx.int('trials'); t++) {
          const port = CONNECTED_PORT + t;
          const { socks, setup } = openGroup(ctx, `UDP group ${t + 1}`, 'udp', port, n, without);
          const which = t % n;
          setup[which]!.connect = ok(await socks[which]!.connect(ctx.addr.peer, PEER_PORT));
          for (let i = 0; i < perEndpoint; i++) {
            ctx.link.send(datagram(ctx, PEER_PORT, port)); // from the connected endpoint
            ctx.link.send(datagram(ctx, PEER_PORT + 1 + i, port)); // from another one
          }
          await ctx.sleep(100);
          const got = await Promise.all(socks.map(drainDatagrams));
          for (const s of socks) s.closeNow();
          out.push({
            setup,
            connected: which + 1,
            sent: { fromEndpoint: perEndpoint, fromOthers: perEndpoint },
            fromEndpoint: got.map((from) => from.filter((p) => p === PEER_PORT).length),
            fromOthers: got.map((from) => from.filter((p) => p !== PEER_PORT).length),
          });
        }
        return { trials: out };
      })
    ).trials;

    type Spread = { setup: SocketSetup[]; counts: number[]; chiSquare: number; df: number; pValue: number; expected: number };
    const t: Spread = tcp;
    const u: Spread = udp;
    const spreadTrial = (what: string, x: Spread, sent: number): Trial => ({
      requires: [
        requires(`every ${what} reached a socket`, sum(x.counts, (b) => b) === sent, `${sum(x.counts, (b) => b)} of ${sent}`),
        requires(
          `at least ${MIN_EXPECTED} ${what}s expected per socket (for the χ² test)`,
          x.expected >= MIN_EXPECTED,
          `${x.expected.toFixed(1)} per socket`,
        ),
      ],
      agrees: x.pValue >= ALPHA,
    });
    const p = (x: number): string => (x < 1e-4 ? x.toExponential(1) : x.toFixed(3));
    ctx.judge('C10', {
      // a socket whose setup failed gets nothing and the others absorb its share: that would be
      // our skew, not the kernel's
      requires: [everySocketSetUp([...t.setup, ...u.setup])],
      trials: [spreadTrial('connection', t, total), spreadTrial('datagram', u, total)],
      evidence:
        `uniform spread rejected when χ² p < ${ALPHA}: ${total} connections ` +
        `over ${n} listeners ${t.counts.join('/')} (χ²=${t.chiSquare}, df ${t.df}, p=${p(t.pValue)}); ` +
        `${total} datagrams ${u.counts.join('/')} (χ²=${u.chiSquare}, p=${p(u.pValue)}); ${skewSentence(total, n)}`,
    });
    const same = tcp.sameUidBinds;
    const other = tcp.otherUidBinds;
    ctx.judge('C9', {
      trials: same.map(
        (mine, i): Trial => ({
          requires: [
            requires(
              'a process of another user (uid 65534) was running in the namespace',
              tcp.helperError === null,
              tcp.helperError ?? 'uid 65534',
            ),
            requires('a socket of the same user could join the group', mine === 'OK', `bind → ${mine}`),
          ],
          agrees: other[i] === 'EADDRINUSE',
        }),
      ),
      evidence: `another socket of ours with SO_REUSEPORT → ${distinct(same)}; one of uid 65534 → ${distinct(other) || 'not measured'}`,
    });
    const received = (xs: number[]): number => sum(xs, (b) => b);
    const at = (c: ConnectedTrial, xs: number[]): number => xs[c.connected - 1]!;
    const fromEndpoint = connected.map((c) => `${at(c, c.fromEndpoint)}/${c.sent.fromEndpoint}`).join(', ');
    const unconnected = connected.map((c) => c.fromOthers.filter((_, i) => i !== c.connected - 1).join('/')).join(', ');
    ctx.judge('C20', {
      trials: connected.map(
        (c): Trial => ({
          requires: [
            everySocketSetUp(c.setup),
            requires(
              'every datagram reached a socket',
              received(c.fromEndpoint) === c.sent.fromEndpoint && received(c.fromOthers) === c.sent.fromOthers,
              `${received(c.fromEndpoint) + received(c.fromOthers)} of ${c.sent.fromEndpoint + c.sent.fromOthers}`,
            ),
          ],
          agrees: at(c, c.fromEndpoint) === c.sent.fromEndpoint && at(c, c.fromOthers) === 0,
        }),
      ),
      evidence:
        `${n} UDP sockets on one port, one connected to ${ctx.addr.peer}:${PEER_PORT}: ` +
        `it received ${fromEndpoint} of that endpoint's datagrams ` +
        `and ${connected.map((c) => at(c, c.fromOthers)).join(', ')} of the ${perEndpoint} other endpoints' ` +
        `(the unconnected sockets: ${unconnected})`,
    });

    const others = [...new Set(other)];
    ctx.answer('q1', {
      answer: others[0] ?? '',
      why:
        `measured ${other.length} times: another socket of ours → ${distinct(same)}, one of uid 65534 ` +
        `→ ${others.join('/') || 'not measured'}`,
      requires: [
        requires('a process of another user was running', tcp.helperError === null, tcp.helperError ?? 'uid 65534'),
        requires('every try gave the same answer', others.length === 1, others.join(' / ')),
      ],
    });
    const receiver = (c: ConnectedTrial): string => {
      const mine = at(c, c.fromEndpoint);
      return mine === c.sent.fromEndpoint ? 'the connected socket' : mine === 0 ? 'the three others' : 'spread over all four';
    };
    const receivers = [...new Set(connected.map(receiver))];
    ctx.answer('q2', {
      answer: receivers[0] ?? '',
      why:
        `measured in ${connected.length} groups of ${n}: the connected socket ` +
        `got ${connected.map((c) => `${at(c, c.fromEndpoint)}/${c.sent.fromEndpoint}`).join(', ')} of its endpoint's datagrams`,
      requires: [
        requires('four sockets shared the port', n === 4, `listeners=${n}`),
        everySocketSetUp(connected.flatMap((c) => c.setup)),
        requires('every group gave the same answer', receivers.length === 1, receivers.join(' / ')),
      ],
    });
    ctx.print(`Lab 15 — ${this.title}`);
    histogram(ctx, `TCP: ${total} connections over ${n} listeners (each from its own source port)`, t.counts);
    histogram(ctx, `UDP: ${total} datagrams over ${n} sockets`, u.counts);
    ctx.print(`(${skewSentence(total, n)})`);
    for (const x of [...t.setup, ...u.setup].filter(setupFailed)) ctx.print(`setup failed: ${setupText(x)}`);
    ctx.print(
      `a listener closed with ${tcp.queuedWhenClosed} connections queued across the ` +
        `group: ${tcp.resetWhenListenerClosed} were reset; the others ` +
        `accepted ${tcp.acceptedByOthersAfter} (net.ipv4.tcp_migrate_req=${ctx.readSysctl('net.ipv4.tcp_migrate_req') ?? '?'})`,
    );
    ctx.print(
      `UDP, one socket of ${n} connected to ${ctx.addr.peer}:${PEER_PORT}: ${perEndpoint} datagrams from it ` +
        `and ${perEndpoint} from other ports, per group → the connected socket ` +
        `got ${connected.map((c) => `${at(c, c.fromEndpoint)}+${at(c, c.fromOthers)}`).join(', ')}`,
    );
    ctx.print();
    ctx.concludeClaims();
  },
});

const TCP_PORT = 7300;
const UDP_PORT = 7400;
/** groups with one connected socket, one port per trial from here */
const CONNECTED_PORT = 7500;
/** the peer's endpoint the connected UDP socket connects to */
const PEER_PORT = 9000;

/** "Evenly" is judged by Pearson's χ² test against a uniform spread: rejected below this p-value. */
export const ALPHA = 0.001;
/** χ² is trustworthy only with this many expected per socket (Cochran's rule). */
export const MIN_EXPECTED = 5;
/** The power at which the skew the test can see is stated. */
export const POWER = 0.9;

/** Pearson's chi-square against a uniform spread, its p-value, and the mean each socket should get. */
export function evenness(counts: number[]): { chiSquare: number; df: number; pValue: number; expected: number; min: number; max: number } {
  const total = sum(counts, (b) => b);
  const mean = total / counts.length;
  const chiSquare = mean > 0 ? sum(counts, (c) => (c - mean) ** 2 / mean) : 0;
  const df = counts.length - 1;
  return {
    chiSquare: Math.round(chiSquare * 100) / 100,
    df,
    pValue: chiSquarePValue(chiSquare, df),
    expected: mean,
    min: Math.min(...counts),
    max: Math.max(...counts),
  };
}

/** P(X ≥ x) for X ~ χ²(df): the regularized upper incomplete gamma Q(df/2, x/2). */
export function chiSquarePValue(x: number, df: number): number {
  if (x <= 0) return 1;
  return upperGammaQ(df / 2, x / 2);
}

function logGamma(z: number): number {
  // Lanczos approximation (g = 7, n = 9)
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - logGamma(1 - z);
  z -= 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

function upperGammaQ(a: number, x: number): number {
  const front = Math.exp(-x + a * Math.log(x) - logGamma(a));
  if (x < a + 1) {
    // series for P, then Q = 1 − P
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 1000 && Math.abs(term) > Math.abs(sum) * 1e-15; n++) {
      term *= x / (a + n);
      sum += term;
    }
    return Math.max(0, 1 - front * sum);
  }
  // continued fraction for Q (Lentz)
  let b = x + 1 - a;
  let c = 1 / 1e-300;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.min(1, front * h);
}

/** The χ² value a uniform spread exceeds with probability `alpha`: the test's rejection threshold. */
export function chiSquareCritical(df: number, alpha = ALPHA): number {
  let lo = 0;
  let hi = 1;
  while (chiSquarePValue(hi, df) > alpha) hi *= 2;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (chiSquarePValue(mid, df) > alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * The test's power: the probability that Pearson's χ² rejects (p < alpha) when the true spread has
 * noncentrality λ (noncentral χ², a Poisson mixture of central ones).
 */
export function chiSquarePower(df: number, lambda: number, alpha = ALPHA): number {
  const c = chiSquareCritical(df, alpha);
  const half = lambda / 2;
  let weight = Math.exp(-half);
  let power = 0;
  const last = Math.ceil(half + 12 * Math.sqrt(half + 1) + 50);
  for (let j = 0; j <= last; j++) {
    power += weight * upperGammaQ(df / 2 + j, c / 2);
    weight *= half / (j + 1);
  }
  return Math.min(1, power);
}

/**
 * The smallest skew the test sees: with `n` samples over `k` sockets, the share one socket must get
 * (instead of 1/k, the others sharing the rest evenly) for χ² to reject the uniform spread with
 * probability `power`. λ = n·k²·d²/(k−1) for a share 1/k ± d.
 */
export function detectableSkew(n: number, k: number, alpha = ALPHA, power = POWER): { even: number; above: number; below: number } {
  let lo = 0;
  let hi = 1;
  while (chiSquarePower(k - 1, hi, alpha) < power) hi *= 2;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (chiSquarePower(k - 1, mid, alpha) < power) lo = mid;
    else hi = mid;
  }
  const d = Math.sqrt((hi * (k - 1)) / (n * k * k));
  return { even: 1 / k, above: Math.min(1, 1 / k + d), below: Math.max(0, 1 / k - d) };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;

/** One line for the evidence and the README: what skew this many samples would reveal. */
export function skewSentence(n: number, k: number): string {
  const s = detectableSkew(n, k);
  return (
    `with ${n} over ${k} sockets the test rejects, ${Math.round(POWER * 100)} times in 100, a spread where one socket ` +
    `gets ${pct(s.above)} or ${pct(s.below)} instead of ${pct(s.even)}`
  );
}

function histogram(ctx: LabContext, title: string, counts: number[]): void {
  const max = Math.max(...counts, 1);
  ctx.print(title);
  for (const [i, c] of counts.entries())
    ctx.print(`  socket ${i + 1}  ${String(c).padStart(5)}  ${'█'.repeat(Math.round((40 * c) / max))}`);
}

async function drainAccepts(l: KernelSocket): Promise<KernelSocket[]> {
  const out: KernelSocket[] = [];
  for (;;) {
    const r = await l.accept(30);
    if (!r.socket) return out;
    out.push(r.socket);
  }
}

// ---------------------------------------------------------------- a group of sockets, set up and checked
/** What each socket's setup calls returned: the claims judge a group only when every call returned 0. */
export interface SocketSetup {
  group: string;
  /** 1-based, as the histograms number them */
  socket: number;
  reuseport: string;
  bind: string;
  /** TCP: listen(), called only when bind() succeeded */
  listen?: string;
  /** UDP, the connected socket: connect() */
  connect?: string;
}

const ok = (r: { errno: string | null }): string => r.errno ?? 'OK';

/** `n` sockets sharing `port` with SO_REUSEPORT (socket `without`, 1-based, does not set it: 0 = every one does). */
function openGroup(
  ctx: LabContext,
  group: string,
  proto: 'tcp' | 'udp',
  port: number,
  n: number,
  without: number,
): { socks: KernelSocket[]; setup: SocketSetup[] } {
  const socks: KernelSocket[] = [];
  const setup: SocketSetup[] = [];
  for (let i = 1; i <= n; i++) {
    const s = ctx.socket(ctx.family, proto, { timeline: false });
    const reuseport = i === without ? 'not set' : ok(s.setOption('SO_REUSEPORT', true));
    const bind = ok(s.bind(ctx.addr.host, port));
    // listen() on a socket whose bind() failed would bind it to a port of the kernel's choosing
    const listen = proto === 'tcp' ? (bind === 'OK' ? ok(s.listen(4096)) : 'not called') : undefined;
    socks.push(s);
    setup.push({ group, socket: i, reuseport, bind, ...(listen ? { listen } : {}) });
  }
  return { socks, setup };
}

const setupFailed = (x: SocketSetup): boolean =>
  x.reuseport !== 'OK' ||
  x.bind !== 'OK' ||
  (x.listen !== undefined && x.listen !== 'OK') ||
  (x.connect !== undefined && x.connect !== 'OK');
const setupText = (x: SocketSetup): string =>
  `${x.group} socket ${x.socket}: SO_REUSEPORT ${x.reuseport}, bind → ${x.bind}` +
  `${x.listen ? `, listen → ${x.listen}` : ''}${x.connect ? `, connect → ${x.connect}` : ''}`;

/** The precondition every claim of the lab needs: each socket it speaks of was set up as the lab says. */
export function everySocketSetUp(setups: readonly SocketSetup[]): Precondition {
  const failed = setups.filter(setupFailed);
  return requires(
    'every socket of the group set SO_REUSEPORT and its bind() (and listen(), connect()) returned 0',
    setups.length > 0 && failed.length === 0,
    failed.length ? failed.map(setupText).join('; ') : `${setups.length} sockets, every call 0`,
  );
}

/** A datagram from the peer to the kernel's `port`, from source port `srcPort`, carrying that port (so the receiver knows who sent it). */
function datagram(ctx: LabContext, srcPort: number, port: number): Uint8Array {
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setUint16(0, srcPort);
  return emitUdpFrame(ctx.addr.peer, ctx.addr.host, { srcPort, dstPort: port, payload });
}

/** Every datagram queued on `s`, as the source ports they carry. */
async function drainDatagrams(s: KernelSocket): Promise<number[]> {
  const from: number[] = [];
  for (;;) {
    const r = await s.recv(64, { timeoutMs: 0 });
    if (r.ret < 2) return from;
    from.push(r.data.readUInt16BE(0));
  }
}

interface ConnectedTrial {
  setup: SocketSetup[];
  /** which socket (1-based) connected to the peer's PEER_PORT */
  connected: number;
  sent: { fromEndpoint: number; fromOthers: number };
  /** per socket: datagrams received from the connected endpoint, and from the others */
  fromEndpoint: number[];
  fromOthers: number[];
}
