// Lab 17 — how long a closed socket keeps trying to deliver its data: the default "linger time".
//
// Question: the application close()s a socket (no SO_LINGER) while data is still unsent, and the
// peer has gone silent. close() returns at once; the kernel keeps the socket as an orphan and goes
// on trying. For how long? The seed says the linger time is "by default rather long (two minutes
// is a common value)". Linux has no such setting: an orphan gives up after tcp_orphan_retries
// retransmissions (Documentation/networking/ip-sysctl.rst: "This value influences the timeout of a
// locally closed TCP connection, when RTO retransmissions remain unacknowledged"; 0 means 8). The
// lab watches the orphans in the socket table until they go, and their segments in the capture.
// Waiting that out takes a couple of minutes: wait=none stops after a glimpse (the claim is then
// not tested).
import {
  defineLab,
  endpointText,
  kernelConnects,
  requires,
  type KernelClient,
  type LabContext,
  type Trial,
  distinct,
  sum,
} from '../src/lab';

/** wait=none: how long the orphans are watched before the lab stops */
const GLIMPSE_MS = 3000;

export default defineLab({
  id: '17',
  slug: 'orphan-lifetime',
  title: 'How long a closed socket keeps trying: the default linger time',
  shows:
    'close() with data unsent to a silent peer returns at once; the orphan retransmits, backing off, until the kernel gives up — ' +
    'watched in the socket table',
  showsInDetail:
    '`close()` (no `SO_LINGER`) with 64 KiB unsent to a peer gone silent: `close()` returns at once, the orphan retransmits with a ' +
    'doubling timeout until the kernel gives up — watched in the socket table until it goes',
  question:
    'The application closes a socket with data still unsent and the peer has gone silent: how long does the kernel keep trying to ' +
    'deliver the data?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'unsent',
      kind: 'int',
      default: 65536,
      min: 1,
      max: 4 << 20,
      unit: 'bytes',
      help: 'data queued before close(); the silent peer acknowledges none of it',
    },
    { name: 'trials', kind: 'int', default: 3, min: 1, max: 20, help: 'connections closed at the same time' },
    {
      name: 'wait',
      kind: 'enum',
      default: 'full',
      choices: ['full', 'none'],
      help:
        `full: watch the orphans until they go (about two minutes here); none: ` +
        `a ${GLIMPSE_MS / 1000} s glimpse, and the claim is not tested`,
    },
    {
      name: 'orphan_watch_s',
      kind: 'int',
      default: 240,
      min: 1,
      max: 1800,
      unit: 'seconds',
      help: 'with wait=full, how long to watch for the orphans to go',
    },
  ],
  claims: [
    'C25', // By default a closed socket keeps trying to deliver its unsent data for a long time, about two
    //   minutes (the default linger time), before the system gives up.
  ],
  questions: [
    {
      id: 'q1',
      text:
        'The application close()s a socket (no SO_LINGER) with 64 KiB still unsent; the peer has gone silent. How long does ' +
        'the kernel keep trying to deliver the data?',
      choices: ['it drops it at once', 'about 15 seconds', 'about 100 seconds', 'about 15 minutes', 'until the peer answers'],
    },
  ],
  recordSysctls: ['net.ipv4.tcp_orphan_retries', 'net.ipv4.tcp_retries2', 'net.ipv4.tcp_max_orphans'],
  course: {
    order: 60,
    teaches:
      'How long the kernel keeps trying to deliver a closed socket\'s unsent data when the peer has gone silent: the "default linger ' +
      'time".',
    look: 'silent-peer.pcap: the retransmissions after close(), each further apart than the last, then silence.',
  },
  async run(ctx) {
    const n = ctx.int('trials');
    const full = ctx.str('wait') === 'full';
    const watchS = full ? ctx.int('orphan_watch_s') : GLIMPSE_MS / 1000;
    const seen = await ctx.variant('silent-peer', { unsent: ctx.int('unsent'), trials: n, wait: ctx.str('wait') }, async () => ({
      ...(await orphans(ctx, n, watchS * 1000)),
    }));
    const os = seen.orphans;
    const closedAtUs = seen.closedAtUs;

    // the capture: what each orphan put on the wire after close(), and whether the peer said anything
    const segs = ctx.flows('silent-peer').segments;
    const onWire = (o: Orphan): OrphanOnWire => {
      const end = endpointText({ address: ctx.addr.host, port: o.local });
      const afterClose = segs.filter((s) => (s.src === end || s.dst === end) && s.timeUs >= closedAtUs);
      const mine = afterClose.filter((s) => s.src === end);
      const last = mine[mine.length - 1];
      return {
        segments: mine.length,
        retransmissions: mine.filter((s) => s.marks.includes('retransmission')).length,
        lastSegmentMs: last ? Math.round((last.timeUs - closedAtUs) / 1000) : null,
        rst: mine.filter((s) => (s.flagBits & 4) !== 0).length,
        fromPeer: afterClose.length - mine.length,
      };
    };
    const retries = ctx.readSysctl('net.ipv4.tcp_orphan_retries');
    // another OS's stack may have no such knob (NetBSD: an orphan retransmits as any connection does)
    const retriesText =
      retries === null
        ? 'no net.ipv4.tcp_orphan_retries on this system'
        : `net.ipv4.tcp_orphan_retries=${retries}${retries === '0' ? ' (0 means 8)' : ''}`;
    ctx.judge('C25', {
      trials: os.map((o) => c25Trial(o, onWire(o), watchS)),
      evidence:
        `close() returned after ${distinct(os.map((o) => `${o.close.elapsedMs} ms`))}; the orphans ` +
        `(${distinct(os.map((o) => o.afterClose?.state ?? 'no entry'))}) ` +
        `left the socket table ${os.map((o) => secs(o.lifetimeMs)).join(', ')} after close() ("about two minutes" taken ` +
        `as ${TWO_MINUTES.min / 1000}–${TWO_MINUTES.max / 1000} s), ` +
        `having retransmitted ${os.map((o) => onWire(o).retransmissions).join(', ')} times, the ` +
        `last ${os.map((o) => secs(onWire(o).lastSegmentMs)).join(', ')} after close(), ` +
        `with ${sum(os, (o) => onWire(o).rst)} RST; ${retriesText}`,
    });

    const bucket = (o: Orphan): string => {
      if (o.lifetimeMs === null) return '';
      const s = o.lifetimeMs / 1000;
      return s < 5 ? 'it drops it at once' : s < 45 ? 'about 15 seconds' : s < 400 ? 'about 100 seconds' : 'about 15 minutes';
    };
    const answers = [...new Set(os.map(bucket))];
    ctx.answer('q1', {
      answer: answers[0] ?? '',
      why:
        `measured on ${os.length} connections: the orphans left the socket ` +
        `table ${os.map((o) => secs(o.lifetimeMs)).join(', ')} after close(), retransmitting with a doubling timeout ` +
        `until ${retries === null ? 'the system gave up' : 'tcp_orphan_retries ran out'}`,
      frames: [ctx.framesWhere('silent-peer', (s) => s.srcAddress === ctx.addr.host && s.marks.includes('retransmission'))],
      requires: [
        requires(
          'every orphan was watched until it went',
          os.every((o) => o.lifetimeMs !== null),
          full ? `watch ${watchS} s` : 'wait=none',
        ),
        requires('every connection gave the same answer', answers.length === 1, answers.join(' / ')),
      ],
    });

    ctx.print(`Lab 17 — ${this.title} (${n} connections, ${ctx.int('unsent')} bytes queued each)`);
    for (const o of os) {
      const w = onWire(o);
      const then = o.afterClose ? `${o.afterClose.state}, ${o.afterClose.sendQueue} bytes queued` : 'no entry';
      const end = o.lifetimeMs === null ? `still ${o.stillAfterWatch} after ${watchS} s` : `gone after ${secs(o.lifetimeMs)}`;
      ctx.print(
        `port ${o.local}: close() ${o.close.elapsedMs} ms → ${o.close.ret}; then ${then}; ` +
          `${w.retransmissions} retransmissions, the last ${secs(w.lastSegmentMs)} after close(); ${end}`,
      );
    }
    ctx.print(`${retriesText}, tcp_retries2=${ctx.readSysctl('net.ipv4.tcp_retries2') ?? 'n/a'}`);
    ctx.print();
    ctx.concludeClaims();
  },
});

const PORT = 80;
/** "about two minutes", as judged here: within a factor of two of 120 s */
export const TWO_MINUTES = { min: 60_000, max: 240_000 };
/** how often the orphans are looked for in the socket table, and how precise their lifetime is */
const LOOK_MS = 200;

export interface Orphan {
  local: number;
  /** bytes send() accepted before close() */
  queued: number;
  /** close() (no SO_LINGER): it should return at once */
  close: { ret: number; errno: string | null; elapsedMs: number };
  /** the kernel's entry right after close(): the orphan, with the data still in its send queue */
  afterClose: { state: string; timer: string; sendQueue: number } | null;
  /** close() to the first look that found the entry gone; null: still there when the watch ended */
  lifetimeMs: number | null;
  /** the last look that saw the entry, to the first that did not */
  goneWithinMs: number | null;
  /** the entry when the watch ended (when it was still there) */
  stillAfterWatch: string | null;
}

/** What the capture shows of one orphan: the kernel's segments after close(), and anything from the peer. */
export interface OrphanOnWire {
  /** kernel segments after close(), and how many of them repeat earlier bytes */
  segments: number;
  retransmissions: number;
  /** close() to the kernel's last segment on the four-tuple */
  lastSegmentMs: number | null;
  rst: number;
  /** segments from the peer after close(): a silent peer sends none */
  fromPeer: number;
}

/** `n` connections; the peer goes silent (it drops every segment of them, both ways); the kernel queues `unsent` bytes and closes each. */
async function orphans(ctx: LabContext, n: number, watchMs: number): Promise<{ orphans: Orphan[]; closedAtUs: number }> {
  const stack = ctx.peer();
  const conns: KernelClient[] = [];
  for (let i = 0; i < n; i++) conns.push(await kernelConnects(ctx, PORT));
  const ports = new Set(conns.map((c) => c.local.port));
  // the peer falls silent: not a segment in, not a segment out, on these four-tuples
  stack.addFilter({ direction: 'both', match: (e) => ports.has(e.tuple.remote.port), action: 'drop' });
  const queued = conns.map((c) => {
    let q = 0;
    for (;;) {
      const r = c.k.sendNow(new Uint8Array(Math.min(65536, ctx.int('unsent') - q)));
      if (r.ret <= 0) break;
      q += r.ret;
      if (q >= ctx.int('unsent')) break;
    }
    return q;
  });
  await ctx.sleep(300); // the first flight goes out and is never acknowledged
  const closedAt = performance.now();
  const closedAtUs = Math.round((performance.timeOrigin + closedAt) * 1000);
  const closes = await Promise.all(conns.map((c) => c.k.close())); // no SO_LINGER: close() returns, the kernel goes on
  const entry = (port: number) => ctx.table((e) => e.local.port === port && e.remote.port === PORT)[0];
  const after = conns.map((c) => {
    const e = entry(c.local.port);
    return e ? { state: e.state, timer: e.timer, sendQueue: e.txQueue } : null;
  });
  const lifetime = new Map<number, number>();
  const lastSeen = new Map<number, number>();
  const goneWithin = new Map<number, number>();
  await ctx.waitUntil(
    () => {
      const now = performance.now();
      for (const c of conns) {
        const port = c.local.port;
        if (lifetime.has(port)) continue;
        if (entry(port)) lastSeen.set(port, now);
        else {
          lifetime.set(port, Math.round(now - closedAt));
          goneWithin.set(port, Math.round(now - (lastSeen.get(port) ?? closedAt)));
        }
      }
      return lifetime.size === conns.length;
    },
    {
      timeoutMs: watchMs,
      everyMs: LOOK_MS,
      progress: (ms) =>
        `${conns.length - lifetime.size} orphans still trying, ${Math.round(ms / 1000)} s after close() (watching up ` +
        `to ${Math.round(watchMs / 1000)} s)`,
    },
  );
  return {
    closedAtUs,
    orphans: conns.map((c, i): Orphan => {
      const still = entry(c.local.port);
      return {
        local: c.local.port,
        queued: queued[i]!,
        close: { ret: closes[i]!.ret, errno: closes[i]!.errno, elapsedMs: Math.round(closes[i]!.elapsedMs) },
        afterClose: after[i]!,
        lifetimeMs: lifetime.get(c.local.port) ?? null,
        goneWithinMs: goneWithin.get(c.local.port) ?? null,
        stillAfterWatch: still ? `${still.state} (${still.timer} timer)` : null,
      };
    }),
  };
}

const secs = (ms: number | null): string => (ms === null ? '—' : `${(ms / 1000).toFixed(1)} s`);

/** C25, one orphan: the kernel kept trying for about two minutes, judged from the socket table (the capture beside it). */
export function c25Trial(o: Orphan, wire: OrphanOnWire, watchS: number): Trial {
  return {
    requires: [
      requires(
        'close() returned 0 at once (no SO_LINGER)',
        o.close.ret === 0 && o.close.elapsedMs < 1000,
        `close() → ${o.close.ret}${o.close.errno ? ` ${o.close.errno}` : ''} after ${o.close.elapsedMs} ms`,
      ),
      requires(
        'the kernel kept the socket with data unsent (an orphan)',
        (o.afterClose?.sendQueue ?? 0) > 0,
        o.afterClose ? `${o.afterClose.state}, ${o.afterClose.sendQueue} bytes in the send queue` : 'no entry after close()',
      ),
      requires(
        'the peer stayed silent (no segment from it after close(), in the capture)',
        wire.fromPeer === 0,
        `${wire.fromPeer} segments from the peer`,
      ),
      requires(
        `the orphan was watched until it went (watch ${watchS} s)`,
        o.lifetimeMs !== null,
        o.lifetimeMs === null
          ? `still ${o.stillAfterWatch ?? 'there'} after ${watchS} s (wait=full waits it out)`
          : `gone after ${secs(o.lifetimeMs)}`,
      ),
      ...(o.lifetimeMs === null
        ? []
        : [
            requires(
              `the entry was seen going to within ${2 * LOOK_MS} ms`,
              (o.goneWithinMs ?? Infinity) <= 2 * LOOK_MS,
              `last seen ${o.goneWithinMs} ms before it was found gone`,
            ),
          ]),
    ],
    agrees: o.lifetimeMs !== null && o.lifetimeMs >= TWO_MINUTES.min && o.lifetimeMs <= TWO_MINUTES.max,
  };
}
