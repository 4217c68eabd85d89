// TcpStack: twlab's userspace TCP, the scriptable peer. It owns a few addresses on a Link,
// demultiplexes segments to TCBs (tcb.ts), answers for listeners and for unknown four-tuples
// as RFC 9293 says, runs each TCB's timers on a Clock, and gives labs a socket-like API plus
// hooks to bend the peer: choose ISN and options, stop reading, hold ACKs, drop/delay/duplicate
// segments, record and replay old ones, send crafted ones.
//
// Speed: addresses travel as bytes (a TcpFramer per connection builds each frame in one
// allocation), received frames are parsed without formatting addresses, and a batch of frames
// the link read in one go is processed before the TCBs dispatch — so one ACK answers a batch,
// except that more than one full-sized segment unacknowledged is ACKed at once (RFC 5681 §4.2).
import { formatAddress, parseAddress } from '../wire/address';
import { isWireError } from '../wire/errors';
import { parseTcpPacket, TcpFramer } from '../wire/frame';
import { seq, seqAdd, type SeqNumber } from '../wire/seq';
import { NO_FLAGS, segLen, type TcpOption, type TcpRepr } from '../wire/tcp';
import { realClock, type Clock, type TimerHandle } from './clock';
import type { Link } from './link';
import { expectSegment, type ExpectOptions, type Expected, type SegmentMatch } from './expect';
import { DEFAULT_TCB, Tcb, type KeepaliveConfig, type TcbConfig, type TcbEvent, type TcpState } from './tcb';

export interface Endpoint {
  address: string;
  port: number;
}

/** A four-tuple seen from the stack: local is the stack's side. Addresses in canonical text (RFC 5952 for IPv6). */
export interface FourTuple {
  local: Endpoint;
  remote: Endpoint;
}

export const tupleKey = (t: FourTuple): string => `${t.local.address}|${t.local.port}|${t.remote.address}|${t.remote.port}`;

/** An address in its canonical text: `2001:DB8::0:2` and `2001:db8::2` are one address. */
export function canonicalAddress(text: string): string {
  return formatAddress(parseAddress(text).bytes);
}

export type Direction = 'in' | 'out';

/** A segment a script builds by hand: its sequence number, and any header field or payload (the rest zero or empty). */
export type CraftedSegment = Partial<TcpRepr> & { seq: SeqNumber };

export interface SegmentEvent {
  direction: Direction;
  at: number;
  tuple: FourTuple;
  tcp: TcpRepr;
  frame: Uint8Array;
}

export type FilterAction = 'pass' | 'drop' | 'duplicate' | { delayMs: number };

export interface SegmentFilter {
  direction: Direction | 'both';
  match: (e: SegmentEvent) => boolean;
  action: FilterAction | ((e: SegmentEvent) => FilterAction);
  /** apply at most this many times, then pass */
  times?: number;
}

export interface StackOptions {
  /** the addresses this stack answers for (the peer side of the TUN) */
  addresses: string[];
  tcb?: Partial<TcbConfig>;
  clock?: Clock;
  /** answer segments for unknown four-tuples with RST (RFC 9293 §3.10.7.1); default true */
  resetUnknown?: boolean;
  /** first ephemeral port for active opens */
  ephemeralBase?: number;
  /** the stack's randomness (the ISN and timestamp secrets); default Math.random. The TCBs draw none. */
  random?: () => number;
}

type Listener<A extends unknown[]> = (...args: A) => void;

class Emitter<A extends unknown[]> {
  #ls = new Set<Listener<A>>();
  on(l: Listener<A>): () => void {
    this.#ls.add(l);
    return () => this.#ls.delete(l);
  }
  emit(...args: A): void {
    if (this.#ls.size === 1) for (const l of this.#ls) l(...args);
    else for (const l of [...this.#ls]) l(...args);
  }
  get size(): number {
    return this.#ls.size;
  }
}

/** A connection of the stack, socket-like. */
export class Connection {
  readonly tuple: FourTuple;
  readonly tcb: Tcb;
  readonly stack: TcpStack;
  /** builds this connection's frames; its address bytes also find the connection for received frames */
  readonly framer: TcpFramer;
  readonly stateChanges = new Emitter<[from: TcpState, to: TcpState, at: number]>();
  readonly dataEvents = new Emitter<[data: Uint8Array]>();
  readonly endEvents = new Emitter<[]>();
  readonly closeEvents = new Emitter<[reason: string]>();
  readonly urgentEvents = new Emitter<[pointer: SeqNumber]>();
  readonly tcbEvents = new Emitter<[e: TcbEvent]>();
  /** the history of states with times (ms on the stack clock) */
  readonly history: Array<{ state: TcpState; at: number }> = [];
  #reading = true;
  /** bytes received and delivered to the application, in order */
  received = 0;
  resetReason: string | null = null;

  constructor(stack: TcpStack, tuple: FourTuple, tcb: Tcb) {
    this.stack = stack;
    this.tuple = tuple;
    this.tcb = tcb;
    this.framer = new TcpFramer(tuple.local.address, tuple.remote.address);
  }

  get state(): TcpState {
    return this.tcb.state;
  }

  /** Queues bytes to send; returns how many were accepted. */
  write(bytes: Uint8Array): number {
    const n = this.tcb.write(bytes);
    this.stack.kick(this);
    return n;
  }

  /** Runs `fn` now, or once the handshake completes if the connection is still connecting. */
  #whenConnected(fn: () => void): boolean {
    if (this.tcb.state !== 'SYN-SENT') return false;
    const off = this.onState((_from, to) => {
      if (to === 'ESTABLISHED' || to === 'CLOSED') off();
      if (to === 'ESTABLISHED') fn();
    });
    return true;
  }

  /**
   * shutdown(SHUT_WR): a FIN after the queued data; reading goes on. While still connecting the
   * FIN waits for the handshake (RFC 9293's CLOSE in SYN-SENT would delete the connection; a
   * socket's end() means "when done"). Use abort() to give up instead.
   */
  end(): void {
    if (this.#whenConnected(() => this.end())) return;
    this.tcb.shutdown(this.stack.clock.now());
    this.stack.kick(this);
  }

  /**
   * close(): done sending and receiving. Data received but not read is lost, so the connection
   * is reset instead of closed (RFC 1122 §4.2.2.13, as Linux does); data arriving after the FIN
   * draws an RST; FIN-WAIT-2 ends after `finWait2TimeoutMs`.
   */
  close(): void {
    if (this.#whenConnected(() => this.close())) return;
    this.#reading = false;
    this.stack.send(this, this.tcb.close(this.stack.clock.now()));
    this.stack.kick(this);
  }

  /** Aborts: RST (where the RFC sends one), then CLOSED at once. */
  abort(): void {
    this.stack.send(this, this.tcb.abort(this.stack.clock.now()));
    this.stack.afterTcb(this);
  }

  /** Stops reading: received data stays queued and the advertised window shrinks to zero. */
  pauseReading(): void {
    this.#reading = false;
  }

  resumeReading(): void {
    if (this.tcb.orphaned) return;
    this.#reading = true;
    this.stack.deliver(this);
    this.stack.kick(this);
  }

  get reading(): boolean {
    return this.#reading;
  }

  /** Holds pure ACKs back until released (then one ACK goes out). */
  holdAcks(hold: boolean): void {
    this.tcb.holdAcks = hold;
    if (!hold) this.stack.kick(this);
  }

  /** Advertises a fixed window (bytes), or null to let the buffer decide again. */
  setWindow(bytes: number | null): void {
    this.tcb.windowOverride = bytes;
    this.stack.kick(this);
  }

  /** Keep-alive probes after `idleMs` of silence (RFC 9293 §3.8.4), or null to stop them. */
  setKeepAlive(keepalive: KeepaliveConfig | null): void {
    this.tcb.keepalive = keepalive;
    this.stack.kick(this);
  }

  onState(l: (from: TcpState, to: TcpState, at: number) => void): () => void {
    return this.stateChanges.on(l);
  }
  onData(l: (data: Uint8Array) => void): () => void {
    return this.dataEvents.on(l);
  }
  onEnd(l: () => void): () => void {
    return this.endEvents.on(l);
  }
  onClose(l: (reason: string) => void): () => void {
    return this.closeEvents.on(l);
  }
  /** The peer sent urgent data: RCV.UP moved to `pointer` (the sequence number after the urgent byte, RFC 6093). */
  onUrgent(l: (pointer: SeqNumber) => void): () => void {
    return this.urgentEvents.on(l);
  }

  /** Resolves when the connection reaches `state` (at once if it is there). */
  waitFor(state: TcpState): Promise<void> {
    if (this.state === state) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.onState((_f, to) => {
        if (to === state) {
          off();
          resolve();
        }
      });
    });
  }
}

export class StackListener {
  readonly port: number;
  readonly address: string | null;
  readonly cfg: TcbConfig;
  readonly connections = new Emitter<[conn: Connection]>();
  constructor(port: number, address: string | null, cfg: TcbConfig) {
    this.port = port;
    this.address = address;
    this.cfg = cfg;
  }
  onConnection(l: (c: Connection) => void): () => void {
    return this.connections.on(l);
  }
}

export interface RecordedSegment extends SegmentEvent {
  index: number;
}

/** 32-bit FNV-1a of `text`, keyed: the stack's stand-in for RFC 6528's keyed hash (a lab peer needs no cryptographic secrecy). */
function keyedHash(text: string, key: number): number {
  let h = (0x811c9dc5 ^ key) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** SND.NXT of a TIME-WAIT plus this is the new incarnation's ISS (Linux: tw_snd_nxt + 65535 + 2). */
const TW_ISS_STEP = 65537;

export class TcpStack {
  readonly clock: Clock;
  readonly addresses: Set<string>;
  readonly cfg: TcbConfig;
  readonly segments = new Emitter<[e: SegmentEvent]>();
  #expected = new Emitter<[r: Expected]>();
  /** every connection as it is created (active or passive) */
  readonly created = new Emitter<[conn: Connection]>();
  readonly #link: Link;
  /** connections by port pair (local · 65536 + remote), then address */
  readonly #conns = new Map<number, Connection[]>();
  /** the same connections, for a quick "is it still ours?" */
  readonly #live = new Set<Connection>();
  readonly #listeners = new Map<number, StackListener[]>();
  readonly #timers = new Map<Connection, { handle: TimerHandle; at: number }>();
  readonly #filters = new Set<SegmentFilter>();
  readonly #busy = new Set<Connection>();
  readonly #again = new Set<Connection>();
  /** connections that took segments of the batch being read, to dispatch when it ends */
  readonly #pending = new Set<Connection>();
  readonly #resetUnknown: boolean;
  readonly #ours: Uint8Array[];
  readonly #isnKey: number;
  readonly #tsKey: number;
  #nextPort: number;
  #off: () => void;
  /** counters, for labs and tests */
  readonly stats = { in: 0, out: 0, badChecksum: 0, notOurs: 0, resetsSent: 0, dropped: 0 };

  constructor(link: Link, opts: StackOptions) {
    this.#link = link;
    this.clock = opts.clock ?? realClock;
    this.addresses = new Set(opts.addresses.map(canonicalAddress));
    this.#ours = [...this.addresses].map((a) => parseAddress(a).bytes);
    this.cfg = { ...DEFAULT_TCB, ...opts.tcb };
    this.#resetUnknown = opts.resetUnknown ?? true;
    this.#nextPort = opts.ephemeralBase ?? 40000;
    const random = opts.random ?? Math.random;
    this.#isnKey = Math.floor(random() * 2 ** 32) >>> 0;
    this.#tsKey = Math.floor(random() * 2 ** 32) >>> 0;
    this.#off = link.onFrame((frame, _timeUs, more) => this.#input(frame, more === true));
  }

  /** Stops listening to the link and cancels every timer (connections are left as they are). */
  detach(): void {
    this.#off();
    for (const t of this.#timers.values()) t.handle.cancel();
    this.#timers.clear();
  }

  // ---------------------------------------------------------------- socket-like API

  listen(port: number, opts: { address?: string; tcb?: Partial<TcbConfig> } = {}): StackListener {
    const l = new StackListener(port, opts.address === undefined ? null : canonicalAddress(opts.address), { ...this.cfg, ...opts.tcb });
    this.#listeners.set(port, [...(this.#listeners.get(port) ?? []), l]);
    return l;
  }

  unlisten(l: StackListener): void {
    this.#listeners.set(
      l.port,
      (this.#listeners.get(l.port) ?? []).filter((x) => x !== l),
    );
  }

  connect(opts: { local: { address: string; port?: number }; remote: Endpoint; tcb?: Partial<TcbConfig> }): Connection {
    const localAddress = canonicalAddress(opts.local.address);
    if (!this.addresses.has(localAddress)) throw new Error(`${opts.local.address} is not one of this stack's addresses`);
    const remote = { address: canonicalAddress(opts.remote.address), port: opts.remote.port };
    const tuple: FourTuple = { local: { address: localAddress, port: opts.local.port ?? this.#ephemeral(localAddress, remote) }, remote };
    const now = this.clock.now();
    const old = this.connection(tuple);
    if (old && old.state !== 'CLOSED' && old.state !== 'TIME-WAIT') throw new Error(`four-tuple in use: ${tupleKey(tuple)} (${old.state})`);
    let iss: number | undefined;
    if (old) {
      // reusing our own TIME-WAIT's four-tuple: start above its sequence space (RFC 6191; Linux tcp_twsk_unique)
      if (old.state === 'TIME-WAIT') iss = seqAdd(old.tcb.sndNxt, TW_ISS_STEP);
      old.tcb.reincarnated(now);
      this.afterTcb(old);
      this.#forget(old);
    }
    const cfg = { ...this.cfg, ...opts.tcb };
    const tcb = Tcb.connect(
      cfg,
      tuple.local.port,
      tuple.remote.port,
      now,
      this.#init(tuple, cfg, now, opts.tcb?.isn === undefined ? iss : undefined),
    );
    const conn = this.#register(tuple, tcb);
    this.kick(conn);
    return conn;
  }

  connection(tuple: FourTuple): Connection | undefined {
    const local = canonicalAddress(tuple.local.address);
    const remote = canonicalAddress(tuple.remote.address);
    for (const c of this.#conns.get(tuple.local.port * 65536 + tuple.remote.port) ?? []) {
      if (c.tuple.local.address === local && c.tuple.remote.address === remote) return c;
    }
    return undefined;
  }

  get connections(): Connection[] {
    return [...this.#live];
  }

  // ---------------------------------------------------------------- hooks

  /** Drops, delays or duplicates segments matching a predicate, in either direction. */
  addFilter(f: SegmentFilter): () => void {
    this.#filters.add(f);
    return () => this.#filters.delete(f);
  }

  onSegment(l: (e: SegmentEvent) => void): () => void {
    return this.segments.on(l);
  }

  /**
   * Waits for a segment that fits `match` (incoming unless `direction: 'out'`): the segment, or
   * "nothing came" after `timeoutMs` (src/stack/expect.ts). Listeners of onExpect see each outcome.
   */
  async expect(match: SegmentMatch, timeoutMs: number, opts: ExpectOptions = {}): Promise<Expected> {
    const r = await expectSegment(this, match, timeoutMs, opts);
    this.#expected.emit(r);
    return r;
  }

  onExpect(l: (r: Expected) => void): () => void {
    return this.#expected.on(l);
  }

  /** Keeps every segment matching `match` (both directions) for replay later. */
  record(match: (e: SegmentEvent) => boolean): { segments: RecordedSegment[]; stop: () => void } {
    const segments: RecordedSegment[] = [];
    const stop = this.onSegment((e) => {
      if (match(e)) segments.push({ ...e, frame: e.frame.slice(), index: segments.length });
    });
    return { segments, stop };
  }

  /** Sends a recorded outgoing segment again, byte for byte: an old duplicate. */
  replay(seg: SegmentEvent): void {
    this.#emitOut(seg.tuple, seg.tcp, seg.frame, false);
  }

  /** Sends a crafted segment on any four-tuple, whether or not a TCB exists. */
  sendSegment(tuple: FourTuple, tcp: CraftedSegment): void {
    const full: TcpRepr = {
      srcPort: tuple.local.port,
      dstPort: tuple.remote.port,
      ack: seq(0),
      flags: NO_FLAGS,
      window: 0,
      urgent: 0,
      options: [] as TcpOption[],
      payload: new Uint8Array(0),
      ...tcp,
    };
    const t = this.#canonical(tuple);
    this.#emitOut(t, full, new TcpFramer(t.local.address, t.remote.address).emit(full), true);
  }

  // ---------------------------------------------------------------- engine

  #canonical(t: FourTuple): FourTuple {
    return {
      local: { address: canonicalAddress(t.local.address), port: t.local.port },
      remote: { address: canonicalAddress(t.remote.address), port: t.remote.port },
    };
  }

  /**
   * What a new TCB is given: its ISS (chosen, or RFC 6528's clock — 4 µs ticks plus a keyed hash
   * of the four-tuple, so each incarnation starts above the last), its timestamp offset (one per
   * address pair, so TSvals keep growing across incarnations, RFC 7323 §5.4), its family.
   */
  #init(t: FourTuple, cfg: TcbConfig, now: number, iss?: number): { iss: number; tsOffset: number; ipv6: boolean } {
    return {
      iss: iss ?? cfg.isn ?? (Math.floor(now * 250) + keyedHash(tupleKey(t), this.#isnKey)) >>> 0,
      tsOffset: cfg.tsOffset ?? keyedHash(`${t.local.address}|${t.remote.address}`, this.#tsKey),
      ipv6: t.local.address.includes(':'),
    };
  }

  #ephemeral(address: string, remote: Endpoint): number {
    for (let i = 0; i < 20000; i++) {
      const port = this.#nextPort;
      this.#nextPort = this.#nextPort >= 60999 ? 40000 : this.#nextPort + 1;
      if (!this.connection({ local: { address, port }, remote })) return port;
    }
    throw new Error('no free ephemeral port');
  }

  #register(tuple: FourTuple, tcb: Tcb): Connection {
    const conn = new Connection(this, tuple, tcb);
    const key = tuple.local.port * 65536 + tuple.remote.port;
    const list = this.#conns.get(key);
    if (list) list.push(conn);
    else this.#conns.set(key, [conn]);
    this.#live.add(conn);
    this.created.emit(conn);
    this.#report(conn);
    return conn;
  }

  #registered(conn: Connection): boolean {
    return this.#live.has(conn);
  }

  #forget(conn: Connection): void {
    this.#timers.get(conn)?.handle.cancel();
    this.#timers.delete(conn);
    this.#pending.delete(conn);
    this.#live.delete(conn);
    const key = conn.tuple.local.port * 65536 + conn.tuple.remote.port;
    const list = this.#conns.get(key);
    if (!list) return;
    const rest = list.filter((c) => c !== conn);
    if (rest.length) this.#conns.set(key, rest);
    else this.#conns.delete(key);
  }

  #isOurs(frame: Uint8Array, at: number, len: number): boolean {
    for (const a of this.#ours) if (a.length === len && sameBytes(frame, at, a)) return true;
    return false;
  }

  /** The connection a received frame belongs to, by ports and address bytes (no text per frame). */
  #lookup(frame: Uint8Array, srcAt: number, dstAt: number, localPort: number, remotePort: number): Connection | undefined {
    const list = this.#conns.get(localPort * 65536 + remotePort);
    if (!list) return undefined;
    for (const c of list) if (sameBytes(frame, dstAt, c.framer.src) && sameBytes(frame, srcAt, c.framer.dst)) return c;
    return undefined;
  }

  /** A frame from the link; `more`: others of the same batch follow, so dispatching can wait. */
  #input(frame: Uint8Array, more: boolean): void {
    const p = parseTcpPacket(frame);
    if (p === null || isWireError(p)) {
      if (!more) this.#flush();
      return;
    }
    if (!this.#isOurs(frame, p.dstAt, p.addrLen)) this.stats.notOurs++;
    else if (p.tcp.checksumOk === false) this.stats.badChecksum++;
    else {
      const conn = this.#lookup(frame, p.srcAt, p.dstAt, p.tcp.dstPort, p.tcp.srcPort);
      const tuple = conn?.tuple ?? {
        local: { address: formatAddress(frame.subarray(p.dstAt, p.dstAt + p.addrLen)), port: p.tcp.dstPort },
        remote: { address: formatAddress(frame.subarray(p.srcAt, p.srcAt + p.addrLen)), port: p.tcp.srcPort },
      };
      if (this.#filters.size === 0) this.#arrive(tuple, p.tcp, frame, conn, more, null);
      else {
        const event: SegmentEvent = { direction: 'in', at: this.clock.now(), tuple, tcp: p.tcp, frame };
        this.#filtered(event, (late) => this.#arrive(tuple, p.tcp, frame, conn, more && !late, event));
      }
    }
    if (!more) this.#flush();
  }

  /** Dispatches every connection that took segments of the batch just read. */
  #flush(): void {
    if (this.#pending.size === 0) return;
    const conns = [...this.#pending];
    this.#pending.clear();
    for (const c of conns) if (this.#registered(c)) this.afterTcb(c);
  }

  /** Applies filters to `e`, then calls `go` zero, one or two times, now or later (`late`). */
  #filtered(e: SegmentEvent, go: (late: boolean) => void): void {
    for (const f of this.#filters) {
      if (f.direction !== 'both' && f.direction !== e.direction) continue;
      if (!f.match(e)) continue;
      const action = typeof f.action === 'function' ? f.action(e) : f.action;
      if (action === 'pass') continue;
      if (f.times !== undefined) {
        if (f.times <= 0) continue;
        f.times--;
      }
      if (action === 'drop') {
        this.stats.dropped++;
        return;
      }
      if (action === 'duplicate') {
        go(false);
        go(false);
        return;
      }
      this.clock.at(this.clock.now() + action.delayMs, () => go(true));
      return;
    }
    go(false);
  }

  #arrive(
    tuple: FourTuple,
    seg: TcpRepr,
    frame: Uint8Array,
    hint: Connection | undefined,
    more: boolean,
    event: SegmentEvent | null,
  ): void {
    this.stats.in++;
    const now = this.clock.now();
    if (this.segments.size) this.segments.emit(event ?? { direction: 'in', at: now, tuple, tcp: seg, frame });
    let conn = hint && this.#registered(hint) ? hint : this.connection(tuple);
    if (conn && conn.state === 'CLOSED') {
      this.#forget(conn);
      conn = undefined;
    }
    const listener = this.#listenerFor(tuple);
    let iss: number | undefined;
    if (
      conn &&
      conn.state === 'TIME-WAIT' &&
      seg.flags.syn &&
      !seg.flags.ack &&
      listener &&
      conn.tcb.acceptsNewIncarnation(seg, listener.cfg.timestamps)
    ) {
      // a new incarnation takes over the TIME-WAIT four-tuple (RFC 9293 §3.10.7.4, RFC 6191),
      // its ISS above the old SND.NXT (RFC 1122 §4.2.2.13; Linux: tw_snd_nxt + 65537)
      iss = seqAdd(conn.tcb.sndNxt, TW_ISS_STEP);
      conn.tcb.reincarnated(now);
      this.afterTcb(conn);
      conn = undefined;
    }
    if (conn) {
      this.send(conn, conn.tcb.process(seg, now));
      if (more && !conn.tcb.ackDue && conn.state !== 'CLOSED') this.#pending.add(conn);
      else this.afterTcb(conn);
      return;
    }
    if (listener) {
      if (seg.flags.rst) return;
      if (seg.flags.ack) {
        this.#reset(tuple, seg, seg.ack, null);
        return;
      }
      if (seg.flags.syn) {
        const tcb = Tcb.accept(listener.cfg, seg, now, this.#init(tuple, listener.cfg, now, iss));
        const c = this.#register(tuple, tcb);
        const off = c.onState((_from, to) => {
          if (to === 'ESTABLISHED') {
            off();
            listener.connections.emit(c);
          }
        });
        this.afterTcb(c);
      }
      return;
    }
    // CLOSED: no TCB and no listener (§3.10.7.1)
    if (!this.#resetUnknown || seg.flags.rst) return;
    if (seg.flags.ack) this.#reset(tuple, seg, seg.ack, null);
    else this.#reset(tuple, seg, seq(0), seqAdd(seg.seq, segLen(seg)));
  }

  #listenerFor(t: FourTuple): StackListener | undefined {
    return (this.#listeners.get(t.local.port) ?? []).find((l) => l.address === null || l.address === t.local.address);
  }

  /**
   * An RST for a segment no connection takes. When that segment carried a timestamp, the RST
   * echoes it (RFC 7323 §3.2: an RST SHOULD carry TSopt), its TSval from the address pair's clock.
   */
  #reset(tuple: FourTuple, cause: TcpRepr, seqNo: SeqNumber, ack: SeqNumber | null): void {
    this.stats.resetsSent++;
    const options: TcpOption[] = [];
    const ts = cause.options.find((o) => o.kind === 'timestamps');
    if (ts && ts.kind === 'timestamps') {
      const { tsOffset } = this.#init(tuple, this.cfg, 0);
      options.push({ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', tsval: (this.clock.now() + tsOffset) >>> 0, tsecr: ts.tsval });
    }
    this.sendSegment(tuple, { seq: seqNo, ack: ack ?? seq(0), flags: { ...NO_FLAGS, rst: true, ack: ack !== null }, options });
  }

  /** Runs a TCB's dispatch now (after a write, a close, a resumed read). */
  kick(conn: Connection): void {
    if (!this.#registered(conn)) return;
    this.afterTcb(conn);
  }

  /**
   * After the TCB changed: dispatch what is due, deliver data, report events, re-arm the timer.
   * Application callbacks may act on the connection (end() inside onEnd, say): such a nested
   * call only asks for another round, so events are reported in the order they happened.
   */
  afterTcb(conn: Connection): void {
    if (this.#busy.has(conn)) {
      this.#again.add(conn);
      return;
    }
    this.#busy.add(conn);
    this.#pending.delete(conn);
    try {
      do {
        this.#again.delete(conn);
        this.send(conn, conn.tcb.dispatch(this.clock.now()));
        this.#report(conn);
        this.deliver(conn);
        this.#report(conn);
      } while (this.#again.has(conn));
    } finally {
      this.#busy.delete(conn);
    }
    if (conn.state === 'CLOSED') {
      this.#forget(conn);
      return;
    }
    this.#schedule(conn);
  }

  /** Hands received bytes to the application while it reads; a freed window may need an update. */
  deliver(conn: Connection): void {
    if (!conn.reading || conn.tcb.recvQ.length === 0) return;
    // chunk by chunk as the segments brought them: no copy (a listener sees a byte stream either way)
    for (const data of conn.tcb.readChunks()) {
      conn.received += data.length;
      conn.dataEvents.emit(data);
    }
    if (conn.tcb.ackDue) this.send(conn, conn.tcb.dispatch(this.clock.now()));
  }

  /** Reports the TCB's events to the connection's listeners, in order (events raised meanwhile included). */
  #report(conn: Connection): void {
    const events = conn.tcb.events;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      if (conn.tcbEvents.size) conn.tcbEvents.emit(ev);
      if (ev.kind === 'state') {
        conn.history.push({ state: ev.to, at: ev.at });
        conn.stateChanges.emit(ev.from, ev.to, ev.at);
        if (ev.to === 'CLOSED') conn.closeEvents.emit(conn.resetReason ?? 'closed');
      } else if (ev.kind === 'eof') conn.endEvents.emit();
      else if (ev.kind === 'reset') conn.resetReason = ev.reason;
      else if (ev.kind === 'urgent') conn.urgentEvents.emit(ev.pointer);
    }
    events.length = 0;
  }

  /**
   * Keeps one clock timer per connection at its TCB's earliest deadline. A timer due no later
   * than the deadline stays: firing early costs one dispatch that finds nothing due, cheaper
   * than re-arming on every segment as the retransmission deadline moves on.
   */
  #schedule(conn: Connection): void {
    const at = conn.tcb.nextDeadline();
    const cur = this.#timers.get(conn);
    if (at === null) {
      if (cur) {
        cur.handle.cancel();
        this.#timers.delete(conn);
      }
      return;
    }
    if (cur && cur.at <= at) return;
    cur?.handle.cancel();
    const entry = {
      at,
      handle: this.clock.at(at, () => {
        if (this.#timers.get(conn) === entry) this.#timers.delete(conn);
        this.#link.poll?.(); // what arrived while we were not running counts first: the timer may be moot
        if (this.#registered(conn)) this.afterTcb(conn);
      }),
    };
    this.#timers.set(conn, entry);
  }

  /** Puts a TCB's segments on the link. */
  send(conn: Connection, segs: TcpRepr[]): void {
    for (const s of segs) this.#emitOut(conn.tuple, s, conn.framer.emit(s), true);
  }

  #emitOut(tuple: FourTuple, tcp: TcpRepr, frame: Uint8Array, filter: boolean): void {
    if (this.#filters.size === 0 || !filter) {
      this.stats.out++;
      if (this.segments.size) this.segments.emit({ direction: 'out', at: this.clock.now(), tuple, tcp, frame });
      this.#link.send(frame);
      return;
    }
    const e: SegmentEvent = { direction: 'out', at: this.clock.now(), tuple, tcp, frame };
    this.#filtered(e, () => {
      this.stats.out++;
      this.segments.emit(e);
      this.#link.send(frame);
    });
  }
}

function sameBytes(frame: Uint8Array, at: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (frame[at + i] !== bytes[i]) return false;
  return true;
}
