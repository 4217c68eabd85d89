// Lab 13 — TIME_WAIT assassination, and the socket beside a TIME_WAIT.
//
// Question: the kernel holds a four-tuple in TIME_WAIT and an RST arrives for it, exactly at the
// TIME_WAIT's RCV.NXT. Does the entry die early (the "assassination" hazard of RFC 1337), can the
// port then be bound again without any flag, and does net.ipv4.tcp_rfc1337 stop it? Each setting
// is tried `trials` times, each on its own port (the plain bind() afterwards must meet only that
// TIME_WAIT).
//
// And the seed's own scenario (Mecki, in its comments): a new socket is bound with SO_REUSEADDR to
// the port beside a live TIME_WAIT and listens; a late segment for the TIME_WAIT's four-tuple
// arrives — an old duplicate of data, or an RST. Which socket takes it? The kernel's side says:
// its answer in the capture (an ACK of the old connection is the TIME_WAIT's, an RST for a bare
// ACK would be the listener's), its socket table, and what the new socket's accept() returned.
import {
  defineLab,
  kernelServerTimeWait,
  NO_FLAGS,
  requires,
  seqAdd,
  seqDiff,
  seqEq,
  seqOf,
  type FlowSegment,
  type LabContext,
  type Trial,
  type TupleOnWire,
  kOfN,
  distinct,
  count,
} from '../src/lab';

export default defineLab({
  id: '13',
  slug: 'time-wait-assassination',
  title: 'TIME_WAIT assassination by RST, and the socket beside a TIME_WAIT',
  shows:
    "an RST at a TIME_WAIT's RCV.NXT kills the entry early (the port is free at once) unless tcp_rfc1337=1; a late segment for a " +
    'TIME_WAIT goes to the TIME_WAIT, not to a new SO_REUSEADDR listener on its port',
  showsInDetail:
    "an RST at a TIME_WAIT's RCV.NXT (placed by the kernel's own ACKs in the capture), with `tcp_rfc1337` 0 and 1; and the seed's " +
    "scenario: a new socket bound with `SO_REUSEADDR` beside a live TIME_WAIT, a late data segment or RST for the TIME_WAIT's " +
    'four-tuple — which socket takes it',
  question:
    'An RST arrives for a four-tuple in TIME_WAIT: does the entry die early, and does tcp_rfc1337 stop it? And with a new socket ' +
    'bound beside the TIME_WAIT, which socket takes a late segment?',
  families: ['ipv4', 'ipv6'],
  params: [
    {
      name: 'rfc1337',
      kind: 'enum',
      default: '0',
      choices: ['0', '1'],
      sysctl: 'net.ipv4.tcp_rfc1337',
      claims: [
        'T11', // An RST at the TIME-WAIT socket's RCV.NXT kills it (the port is free at once) unless
        //   tcp_rfc1337=1.
      ],
      help: 'net.ipv4.tcp_rfc1337 (the other value is measured too, for comparison)',
    },
    {
      name: 'rst',
      kind: 'enum',
      default: 'in-window',
      choices: ['in-window', 'out-of-window'],
      help: "the RST's sequence number: at the TIME_WAIT's RCV.NXT, or 10,000,000 beyond",
    },
    {
      name: 'trials',
      kind: 'int',
      default: 5,
      min: 1,
      max: 50,
      help: 'RSTs per tcp_rfc1337 value, each into its own TIME_WAIT; and late segments of each kind beside a new listener',
    },
    {
      name: 'beside_reuseaddr',
      kind: 'bool',
      default: true,
      help:
        "the new socket beside the TIME_WAIT sets SO_REUSEADDR (off: its bind() meets the TIME_WAIT, and the seed's scenario cannot " +
        'be set up)',
    },
  ],
  claims: [
    'T11', // An RST at the TIME-WAIT socket's RCV.NXT kills it (the port is free at once) unless
    //   tcp_rfc1337=1.
    'C19', // A late segment for a socket in TIME_WAIT may be consumed by another socket bound to the same
    //   address and port with SO_REUSEADDR, so the TIME_WAIT socket never sees it and the other socket reacts
    //   to it.
  ],
  questions: [
    {
      id: 'q1',
      text:
        'The kernel holds a four-tuple in TIME_WAIT (tcp_rfc1337=0) and an RST arrives for it, in the window. What happens to the ' +
        'TIME_WAIT?',
      choices: ['it ends at once', 'it stays until its timer runs out'],
    },
    {
      id: 'q2',
      text:
        'A new socket is bound with SO_REUSEADDR to the port of a TIME_WAIT and listens. A late data segment for the ' +
        "TIME_WAIT's four-tuple arrives. Which socket takes it?",
      choices: ['the TIME_WAIT', 'the new listener', 'neither'],
    },
  ],
  course: {
    order: 140,
    teaches:
      'What an RST does to a connection in TIME_WAIT (RFC 1337), and what tcp_rfc1337 changes; and which socket a late segment ' +
      'reaches when a new one is bound beside the TIME_WAIT.',
    look:
      "rfc1337-0.pcap: the RST after the close, then whether the port is free; beside-new-listener.pcap: the TIME_WAIT's ACK " +
      'of the old connection answering the late data.',
  },
  async run(ctx) {
    const setting = Number(ctx.str('rfc1337'));
    const n = ctx.int('trials');
    const runs: Array<Assassination & { variant: string }> = [];
    let i = 0;
    for (const value of [setting, 1 - setting]) {
      const variant = `rfc1337-${value}`;
      const obs = await ctx.variant(variant, { rfc1337: value, rst: ctx.str('rst'), trials: n }, async () => {
        ctx.sysctl('net.ipv4.tcp_rfc1337', value);
        const out: Assassination[] = [];
        for (let t = 0; t < n; t++, i++) out.push(await assassinate(ctx, value, PORT + i, 47000 + i));
        return { trials: out };
      });
      runs.push(...obs.trials.map((a) => ({ ...a, variant })));
    }
    const besideObs = await ctx.variant('beside-new-listener', { trials: n }, async () => {
      const out: Beside[] = [];
      for (let t = 0; t < n; t++) {
        for (const [k, late] of (['data', 'rst'] as const).entries()) {
          // a late RST the TIME_WAIT takes shows by ending it (tcp_rfc1337=0); for late data the
          // TIME_WAIT's ACK draws an RST from the closed peer, which must not end it (tcp_rfc1337=1)
          ctx.sysctl('net.ipv4.tcp_rfc1337', late === 'rst' ? 0 : 1);
          out.push(await besideTimeWait(ctx, late, BESIDE_PORT + 2 * t + k, BESIDE_PEER_PORT + 2 * t + k));
        }
      }
      return { trials: out };
    });
    ctx.sysctl('net.ipv4.tcp_rfc1337', setting);
    const beside = besideObs.trials;

    // ---- T11: the RST at RCV.NXT, as the kernel's own ACKs in the capture place it
    const kernelEp = (port: number): { address: string; port: number } => ({ address: ctx.addr.host, port });
    const peerEp = (port: number): { address: string; port: number } => ({ address: ctx.addr.peer, port });
    const t11 = runs.map((r) => {
      const { rst, rcvNxt } = rstOnWire(ctx.onWire(r.variant, kernelEp(r.port), peerEp(r.peerPort)));
      const atRcvNxt = rst !== null && rcvNxt !== null && seqEq(rst.seq, rcvNxt);
      const placed = !rst
        ? 'no RST from the peer in the capture'
        : rcvNxt === null
          ? `RST #${rst.number}, but the kernel sent no ACK before it`
          : atRcvNxt
            ? `RST #${rst.number} at the kernel's RCV.NXT (the ACK of its last segment)`
            : `RST #${rst.number} ${seqDiff(rst.seq, rcvNxt)} beyond the kernel's RCV.NXT`;
      return { r, atRcvNxt, placed };
    });
    const off = runs.filter((r) => r.rfc1337 === 0);
    const on = runs.filter((r) => r.rfc1337 === 1);
    ctx.judge('T11', {
      trials: t11.map(
        ({ r, atRcvNxt, placed }): Trial => ({
          requires: [
            requires(
              'the kernel held the four-tuple in TIME_WAIT when the RST came',
              r.timeWaitBefore,
              r.timeWaitBefore ? `timer ${((r.timerBeforeMs ?? 0) / 1000).toFixed(1)} s` : 'no TIME_WAIT entry',
            ),
            requires('the RST reached the kernel at its RCV.NXT (in the capture)', atRcvNxt, placed),
          ],
          agrees:
            r.rfc1337 === 0
              ? !r.timeWaitAfterRst && r.rebindWithoutFlags === 'OK'
              : r.timeWaitAfterRst && r.rebindWithoutFlags === 'EADDRINUSE',
        }),
      ),
      evidence:
        `RST at RCV.NXT in ${kOfN(t11, (x) => x.atRcvNxt)} (capture); with tcp_rfc1337=0 the TIME_WAIT died ` +
        `in ${kOfN(off, (r) => !r.timeWaitAfterRst)} (plain bind() → ${distinct(off.map((r) => r.rebindWithoutFlags))}); ` +
        `with tcp_rfc1337=1 it survived ` +
        `in ${kOfN(on, (r) => r.timeWaitAfterRst)} (bind → ${distinct(on.map((r) => r.rebindWithoutFlags))})`,
    });

    // ---- C19: which socket took the late segment, from the kernel's side
    const took = beside.map((b) => ({
      b,
      ...lateSegmentTaker(ctx.onWire('beside-new-listener', kernelEp(b.port), peerEp(b.peerPort)), b),
    }));
    const tally = (late: Late, f: (x: (typeof took)[number]) => boolean): string =>
      `${count(took, (x) => x.b.late === late && f(x))}/${count(took, (x) => x.b.late === late)}`;
    ctx.judge('C19', {
      trials: took.map((x) => besideTrial(x.b, x, ctx.bool('beside_reuseaddr'))),
      evidence:
        `a new listener beside each TIME_WAIT (SO_REUSEADDR ${ctx.bool('beside_reuseaddr') ? 'on' : 'off'}); late data answered ` +
        `with an ACK of the old connection in ${tally('data', (x) => x.byTimeWait)}, ` +
        `a late RST ended the TIME_WAIT in ${tally('rst', (x) => x.byTimeWait)}; the new listener: still LISTEN ` +
        `in ${kOfN(took, (x) => x.b.listeningAfter)}, accept() → ${distinct(beside.map((b) => b.accept))}`,
    });

    const fates = [...new Set(off.map((x) => (x.timeWaitAfterRst ? 'it stays until its timer runs out' : 'it ends at once')))];
    ctx.answer('q1', {
      answer: fates[0] ?? '',
      why:
        `measured ${off.length} times with tcp_rfc1337=0: the entry was gone after the RST ` +
        `in ${kOfN(off, (x) => !x.timeWaitAfterRst)}, and a plain bind() of the port → ${distinct(off.map((x) => x.rebindWithoutFlags))}`,
      frames: [ctx.framesWhere('rfc1337-0', (s) => s.flags.includes('RST'))],
      requires: [
        requires(
          "the RST was at the TIME_WAIT's RCV.NXT, into a TIME_WAIT",
          t11.filter((x) => x.r.rfc1337 === 0).every((x) => x.r.timeWaitBefore && x.atRcvNxt),
          `rst=${ctx.str('rst')}`,
        ),
        requires('every trial gave the same answer', fates.length === 1, fates.join(' / ')),
      ],
    });
    const dataTook = took.filter((x) => x.b.late === 'data');
    const takers = [...new Set(dataTook.map((x) => (x.byTimeWait ? 'the TIME_WAIT' : x.byNewSocket ? 'the new listener' : 'neither')))];
    ctx.answer('q2', {
      answer: takers[0] ?? '',
      why: `measured ${dataTook.length} times: ${dataTook
        .map((x) => x.what)
        .slice(0, 2)
        .join('; ')}${dataTook.length > 2 ? '; …' : ''}; the new listener's accept() → ${distinct(dataTook.map((x) => x.b.accept))}`,
      frames: [ctx.framesWhere('beside-new-listener', (s) => s.len > 0 || s.flags === 'ACK')],
      requires: [
        requires('every probe gave the same answer', takers.length === 1, takers.join(' / ')),
        requires(
          'the new socket listened beside each TIME_WAIT',
          dataTook.every((x) => x.b.listeningBefore && x.b.timeWaitBefore),
          kOfN(dataTook, (x) => x.b.listeningBefore && x.b.timeWaitBefore),
        ),
      ],
    });
    ctx.print(`Lab 13 — ${this.title} (${ctx.str('rst')} RST, ${n} per setting)`);
    for (const [v, xs] of [
      [0, off],
      [1, on],
    ] as const) {
      ctx.print(
        `tcp_rfc1337=${v}: TIME_WAIT before the RST in ${kOfN(xs, (r) => r.timeWaitBefore)} → still there after it ` +
          `in ${kOfN(xs, (r) => r.timeWaitAfterRst)}; ` +
          `bind() without SO_REUSEADDR → ${distinct(xs.map((r) => r.rebindWithoutFlags))}`,
      );
    }
    ctx.print(
      `beside a new SO_REUSEADDR listener: late data taken by the TIME_WAIT in ${tally('data', (x) => x.byTimeWait)}, late RST ` +
        `in ${tally('rst', (x) => x.byTimeWait)}; the listener took ${kOfN(took, (x) => x.byNewSocket)}`,
    );
    ctx.print();
    ctx.concludeClaims();
  },
});

const PORT = 7200;
/** the seed's scenario: its own ports, beyond any trials the rfc1337 variants may use */
const BESIDE_PORT = 7500;
const BESIDE_PEER_PORT = 47500;

interface Assassination {
  rfc1337: number;
  port: number;
  peerPort: number;
  timeWaitBefore: boolean;
  timerBeforeMs: number | null;
  /** the RST's sequence number minus the peer's SND.NXT (what the lab aimed at) */
  rstOffset: number;
  timeWaitAfterRst: boolean;
  rebindWithoutFlags: string;
}

async function assassinate(ctx: LabContext, rfc1337: number, port: number, peerPort: number): Promise<Assassination> {
  const tw = await kernelServerTimeWait(ctx, port, peerPort, { timestamps: false });
  tw.listener.closeNow(); // only the TIME_WAIT holds the port now
  const rstOffset = ctx.str('rst') === 'in-window' ? 0 : 10_000_000;
  const before = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === port)[0];
  ctx
    .peer()
    .sendSegment(
      { local: { address: ctx.addr.peer, port: peerPort }, remote: { address: ctx.addr.host, port } },
      { seq: seqAdd(tw.twRcvNxt, rstOffset), flags: { ...NO_FLAGS, rst: true } },
    );
  await ctx.sleep(200);
  const after = ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === port)[0];
  const s = ctx.socket(ctx.family, 'tcp');
  const bind = s.bind(ctx.addr.host, port); // no SO_REUSEADDR
  s.closeNow();
  return {
    rfc1337,
    port,
    peerPort,
    timeWaitBefore: !!before,
    timerBeforeMs: before?.timerMs ?? null,
    rstOffset,
    timeWaitAfterRst: !!after,
    rebindWithoutFlags: bind.errno ?? 'OK',
  };
}

export type Late = 'data' | 'rst';

export interface Beside {
  late: Late;
  port: number;
  peerPort: number;
  /** the new socket: bind() with SO_REUSEADDR beside the TIME_WAIT, then listen() */
  bind: string;
  listen: string;
  timeWaitBefore: boolean;
  listeningBefore: boolean;
  timeWaitAfter: boolean;
  listeningAfter: boolean;
  /** what the new socket's application got: a non-blocking accept() (EAGAIN: nothing queued) */
  accept: string;
}

/** The seed's scenario, once: a new listener beside the TIME_WAIT, then a late segment for the TIME_WAIT's four-tuple. */
async function besideTimeWait(ctx: LabContext, late: Late, port: number, peerPort: number): Promise<Beside> {
  const tw = await kernelServerTimeWait(ctx, port, peerPort, { timestamps: false });
  tw.listener.closeNow();
  const s = ctx.socket(ctx.family, 'tcp', { nonBlocking: true });
  if (ctx.bool('beside_reuseaddr')) s.setOption('SO_REUSEADDR', true);
  const bind = s.bind(ctx.addr.host, port);
  const listen = bind.ret === 0 ? s.listen(8) : bind;
  const here = (state: string): boolean =>
    ctx.table((e) => e.state === state && e.local.port === port && (state === 'LISTEN' || e.remote.port === peerPort)).length > 0;
  const timeWaitBefore = here('TIME_WAIT');
  const listeningBefore = here('LISTEN');
  const tuple = { local: { address: ctx.addr.peer, port: peerPort }, remote: { address: ctx.addr.host, port } };
  if (late === 'data') {
    // an old duplicate of the peer's first data ("hello", sent right after the handshake), carrying the ACK it carried then
    ctx.peer().sendSegment(tuple, {
      seq: seqAdd(tw.conn.tcb.iss, 1),
      ack: seqAdd(tw.kernelIss, 1),
      flags: { ...NO_FLAGS, ack: true, psh: true },
      window: 65535,
      payload: new TextEncoder().encode('hello'),
    });
  } else {
    ctx.peer().sendSegment(tuple, { seq: seqOf(tw.twRcvNxt), flags: { ...NO_FLAGS, rst: true } });
  }
  await ctx.sleep(200);
  const accepted = await s.accept();
  accepted.socket?.closeNow();
  const r: Beside = {
    late,
    port,
    peerPort,
    bind: bind.errno ?? 'OK',
    listen: listen.errno ?? 'OK',
    timeWaitBefore,
    listeningBefore,
    timeWaitAfter: here('TIME_WAIT'),
    listeningAfter: here('LISTEN'),
    accept: accepted.socket ? 'a connection' : (accepted.result.errno ?? 'OK'),
  };
  s.closeNow();
  return r;
}

/**
 * Which socket took the late segment, from the kernel's side. Late data: the TIME_WAIT answers an
 * old duplicate with an ACK of the old connection (ACK = its RCV.NXT); a listener would answer a
 * bare ACK with an RST (and a connection in its accept queue would be the new socket's too). A late
 * RST: the TIME_WAIT takes it by dying (tcp_rfc1337=0), silently; the listener would stop listening
 * or queue something.
 */
export function lateSegmentTaker(
  w: TupleOnWire,
  b: Pick<Beside, 'late' | 'timeWaitBefore' | 'timeWaitAfter' | 'listeningAfter' | 'accept'>,
): { lateSeg: FlowSegment | null; byTimeWait: boolean; byNewSocket: boolean; what: string } {
  const lateSeg = w.peerSent((s) => (b.late === 'rst' ? (s.flagBits & 4) !== 0 : s.len > 0)).pop() ?? null;
  const answers = lateSeg ? w.kernelSent(lateSeg.number) : [];
  const rcvNxt = lateSeg ? w.kernelRcvNxt(lateSeg.number) : null;
  const twAck = answers.find((s) => (s.flagBits & 0x17) === 16 && rcvNxt !== null && seqEq(s.ack, rcvNxt));
  const listenerRst = answers.find((s) => (s.flagBits & 4) !== 0);
  const byTimeWait = b.late === 'data' ? !!twAck && !listenerRst : b.timeWaitBefore && !b.timeWaitAfter && answers.length === 0;
  const byNewSocket = b.late === 'data' ? !!listenerRst || b.accept === 'a connection' : b.accept === 'a connection' || !b.listeningAfter;
  const seg = lateSeg ? `#${lateSeg.number}` : '(not in the capture)';
  const answer = twAck ? `ACK #${twAck.number} of the old connection` : listenerRst ? `RST #${listenerRst.number}` : 'no answer';
  const what =
    b.late === 'data' ? `late data ${seg} → ${answer}` : `late RST ${seg} → TIME_WAIT ${b.timeWaitAfter ? 'still there' : 'gone'}`;
  return { lateSeg, byTimeWait, byNewSocket, what };
}

/** The C19 trial of one late segment: the setup the seed describes, then which socket took it. */
export function besideTrial(b: Beside, t: ReturnType<typeof lateSegmentTaker>, reuseaddr: boolean): Trial {
  return {
    requires: [
      requires(
        'the new socket bound the port with SO_REUSEADDR beside the TIME_WAIT, and listened',
        b.bind === 'OK' && b.listen === 'OK' && b.listeningBefore,
        `SO_REUSEADDR ${reuseaddr ? 'on' : 'off'}: bind() → ${b.bind}, listen() → ${b.listen}, LISTEN in the ` +
          `table: ${b.listeningBefore ? 'yes' : 'no'}`,
      ),
      requires(
        'the TIME_WAIT was in the socket table when the late segment came',
        b.timeWaitBefore,
        b.timeWaitBefore ? 'TIME_WAIT entry present' : 'no TIME_WAIT entry',
      ),
      requires('the late segment is in the capture', t.lateSeg !== null, t.lateSeg ? `#${t.lateSeg.number}` : 'not found'),
      // one socket or the other must visibly have taken it: an answer, a dead entry, a queued connection
      requires('the kernel showed which socket took it', t.byTimeWait || t.byNewSocket, t.what),
    ],
    agrees: t.byNewSocket && !t.byTimeWait,
  };
}

/** The RST a trial sent, as the capture shows it, and the kernel's RCV.NXT then (the ACK of its last segment before it). */
export function rstOnWire(w: TupleOnWire): { rst: FlowSegment | null; rcvNxt: number | null } {
  const rst = w.peerSent((s) => (s.flagBits & 4) !== 0).pop() ?? null;
  return { rst, rcvNxt: rst ? w.kernelRcvNxt(rst.number) : null };
}
