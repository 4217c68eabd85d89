// The two ways a lab joins the kernel under test and the peer: the kernel connects to a peer
// listener, or the peer connects to a kernel listener. Each step is one syscall or one
// segment exchange, logged to the timeline by the context.
import type { KernelSocket } from '../../host/ksocket';
import type { AsyncSyscallResult } from '../../host/native';
import type { Connection } from '../../stack/stack';
import type { TcbConfig } from '../../stack/tcb';
import type { LabContext } from './context';
import { LabError } from './types';
import { formatEndpoint } from '../../wire/address';

/**
 * A patient peer for labs that watch the kernel's TIME_WAIT: it retransmits its FIN only after
 * RFC 6298's one-second minimum RTO (§2.4), and sends no tail-loss probe (2·SRTT + 200 ms).
 * When the kernel is slow to answer — a loaded machine, a guest under TCG — an early FIN
 * retransmission draws a second ACK after the peer has closed; the peer answers that with an
 * RST, and the RST ends the kernel's TIME_WAIT (lab 13) — the very thing the lab is watching.
 */
export const PATIENT_PEER: Partial<TcbConfig> = { tailLossProbe: false, rto: { initialMs: 1000, minMs: 1000, maxMs: 120_000 } };

export interface KernelClient {
  k: KernelSocket;
  conn: Connection;
  connect: AsyncSyscallResult;
  local: { address: string; port: number };
}

/**
 * The kernel connects to the peer listening on `port` (ctx.addr.peer: 192.0.2.2 or 2001:db8::2, as
 * ctx.family says), from a socket of that family. `before` runs on the new socket
 * before connect() (options, bind); `onAccept` runs as the peer accepts (e.g. stop reading).
 */
export async function kernelConnects(
  ctx: LabContext,
  port: number,
  opts: { before?: (k: KernelSocket) => void; onAccept?: (c: Connection) => void; tcb?: Partial<TcbConfig>; remote?: string } = {},
): Promise<KernelClient> {
  const stack = ctx.peer();
  const listener = stack.listen(port, { tcb: opts.tcb });
  try {
    const accepted = new Promise<Connection>((resolve) =>
      listener.onConnection((c) => {
        opts.onAccept?.(c);
        resolve(c);
      }),
    );
    const k = ctx.socket(ctx.family, 'tcp');
    opts.before?.(k);
    const connect = await k.connect(opts.remote ?? ctx.addr.peer, port);
    if (connect.ret < 0) throw new LabError(`the kernel's connect() to the peer failed: ${connect.errno}`);
    const conn = await Promise.race([accepted, ctx.sleep(5000).then(() => null)]);
    if (!conn) throw new LabError('the peer did not see the connection within 5 s');
    return { k, conn, connect, local: k.localAddress()! };
  } finally {
    stack.unlisten(listener);
  }
}

export interface PeerClient {
  listener: KernelSocket;
  k: KernelSocket;
  conn: Connection;
}

/** The peer connects to a kernel listener on ctx.addr.host:`port` (192.0.2.1 or 2001:db8::1); `before` configures the listener. */
export async function peerConnects(
  ctx: LabContext,
  port: number,
  opts: { before?: (l: KernelSocket) => void; tcb?: Partial<TcbConfig>; localPort?: number } = {},
): Promise<PeerClient> {
  const { host, peer } = ctx.addr;
  const listener = ctx.socket(ctx.family, 'tcp');
  opts.before?.(listener);
  const b = listener.bind(host, port);
  if (b.ret < 0) throw new LabError(`bind of the kernel listener to ${formatEndpoint(host, port)} failed: ${b.errno}`);
  listener.listen(16);
  const conn = ctx.peer().connect({ local: { address: peer, port: opts.localPort }, remote: { address: host, port }, tcb: opts.tcb });
  const acc = await listener.accept(5000);
  if (!acc.socket) throw new LabError(`the kernel listener accepted nothing within 5 s (${acc.result.errno})`);
  return { listener, k: acc.socket, conn };
}

/** Resolves when the peer connection reaches `state`, or false after `ms`. */
export function peerReaches(conn: Connection, state: Connection['state'], ms = 5000): Promise<boolean> {
  return Promise.race([conn.waitFor(state).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
}

export interface ServerTimeWait {
  listener: KernelSocket;
  /** the peer's side of the first incarnation (CLOSED by now) */
  conn: Connection;
  /** the kernel's ISN of the first incarnation */
  kernelIss: number;
  /** where the kernel's TIME_WAIT expects the peer's next byte (its RCV.NXT) */
  twRcvNxt: number;
  /** the kernel's last sequence number + 1 (its SND.NXT): what its TIME_WAIT would acknowledge */
  twSndNxt: number;
  timeWait: boolean;
}

/**
 * A kernel listener on ctx.addr.host:`port`; the peer connects from `peerPort`, a few bytes go each
 * way, and the kernel closes first: the kernel holds the four-tuple in TIME_WAIT. (With
 * `closer: 'peer'` the peer closes first instead, and the TIME_WAIT is the peer's.)
 */
export async function kernelServerTimeWait(
  ctx: LabContext,
  port: number,
  peerPort: number,
  tcb: Partial<TcbConfig> = {},
  closer: 'kernel' | 'peer' = 'kernel',
): Promise<ServerTimeWait> {
  const { listener, k, conn } = await peerConnects(ctx, port, {
    before: (l) => l.setOption('SO_REUSEADDR', true),
    tcb,
    localPort: peerPort,
  });
  conn.write(new TextEncoder().encode('hello'));
  await k.recv(100, { timeoutMs: 2000 });
  await k.send(new TextEncoder().encode('world'));
  if (closer === 'kernel') {
    conn.onEnd(() => conn.end());
    await k.close(); // the kernel closes first
    await peerReaches(conn, 'CLOSED', 3000);
  } else {
    conn.end(); // the peer closes first
    await k.recv(100, { timeoutMs: 2000 });
    await k.close();
    await peerReaches(conn, 'TIME-WAIT', 3000);
  }
  const timeWait = !!(await ctx.waitUntil(
    () => ctx.table((e) => e.state === 'TIME_WAIT' && e.local.port === port && e.remote.port === peerPort).length > 0,
    { timeoutMs: closer === 'kernel' ? 2000 : 200 },
  ));
  return { listener, conn, kernelIss: conn.tcb.irs, twRcvNxt: conn.tcb.sndNxt, twSndNxt: conn.tcb.rcvNxt, timeWait };
}
