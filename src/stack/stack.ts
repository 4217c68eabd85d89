// TcpStack: twlab's userspace TCP, the scriptable peer. It owns a few addresses on a Link,
// demultiplexes segments to TCBs (tcb.ts), answers for listeners and for unknown four-tuples
// as RFC 9293 says, runs each TCB's timers on a Clock, and gives labs a socket-like API plus
// hooks to bend the peer: choose ISN and options, stop reading, hold ACKs, drop/delay/duplicate
// segments, record and replay old ones, send crafted ones.
import { isWireError } from '../wire/errors';
import { emitTcpFrame, parseFrame } from '../wire/frame';
import { seq, seqAdd, seqGt, type SeqNumber } from '../wire/seq';
import { NO_FLAGS, segLen, type TcpOption, type TcpRepr } from '../wire/tcp';
import { realClock, type Clock, type TimerHandle } from './clock';
import type { Link } from './link';
import { DEFAULT_TCB, Tcb, type TcbConfig, type TcbEvent, type TcpState } from './tcb';

export interface Endpoint {
  address: string;
  port: number;
}

/** A four-tuple seen from the stack: local is the stack's side. */
export interface FourTuple {
  local: Endpoint;
  remote: Endpoint;
}

export const tupleKey = (t: FourTuple): string => `${t.local.address}|${t.local.port}|${t.remote.address}|${t.remote.port}`;

export type Direction = 'in' | 'out';

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
}

type Listener<A extends unknown[]> = (...args: A) => void;

class Emitter<A extends unknown[]> {
  #ls = new Set<Listener<A>>();
  on(l: Listener<A>): () => void {
    this.#ls.add(l);
    return () => this.#ls.delete(l);
  }
  emit(...args: A): void {
    for (const l of [...this.#ls]) l(...args);
  }
}

/** A connection of the stack, socket-like. */
export class Connection {
  readonly tuple: FourTuple;
  readonly tcb: Tcb;
  readonly stack: TcpStack;
  readonly stateChanges = new Emitter<[from: TcpState, to: TcpState, at: number]>();
  readonly dataEvents = new Emitter<[data: Uint8Array]>();
  readonly endEvents = new Emitter<[]>();
  readonly closeEvents = new Emitter<[reason: string]>();
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

  /**
   * shutdown(SHUT_WR): a FIN after the queued data; reading goes on. While still connecting the
   * FIN waits for the handshake (RFC 9293's CLOSE in SYN-SENT would delete the connection; a
   * socket's end() means "when done"). Use abort() to give up instead.
   */
  end(): void {
    if (this.tcb.state === 'SYN-SENT') {
      const off = this.onState((_from, to) => {
        if (to === 'ESTABLISHED' || to === 'CLOSED') off();
        if (to === 'ESTABLISHED') this.end();
      });
      return;
    }
    this.tcb.close(this.stack.clock.now());
    this.stack.kick(this);
  }

  /** close(): same on the wire as end() (RFC 9293 CLOSE). */
  close(): void {
    this.end();
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

export class TcpStack {
  readonly clock: Clock;
  readonly addresses: Set<string>;
  readonly cfg: TcbConfig;
  readonly segments = new Emitter<[e: SegmentEvent]>();
  /** every connection as it is created (active or passive) */
  readonly created = new Emitter<[conn: Connection]>();
  readonly #link: Link;
  readonly #conns = new Map<string, Connection>();
  readonly #listeners = new Map<number, StackListener[]>();
  readonly #timers = new Map<Connection, TimerHandle>();
  readonly #filters = new Set<SegmentFilter>();
  readonly #busy = new Set<Connection>();
  readonly #again = new Set<Connection>();
  readonly #resetUnknown: boolean;
  #nextPort: number;
  #off: () => void;
  /** counters, for labs and tests */
  readonly stats = { in: 0, out: 0, badChecksum: 0, notOurs: 0, resetsSent: 0, dropped: 0 };

  constructor(link: Link, opts: StackOptions) {
    this.#link = link;
    this.clock = opts.clock ?? realClock;
    this.addresses = new Set(opts.addresses);
    this.cfg = { ...DEFAULT_TCB, ...opts.tcb };
    this.#resetUnknown = opts.resetUnknown ?? true;
    this.#nextPort = opts.ephemeralBase ?? 40000;
    this.#off = link.onFrame((frame) => this.#input(frame));
  }

  /** Stops listening to the link and cancels every timer (connections are left as they are). */
  detach(): void {
    this.#off();
    for (const t of this.#timers.values()) t.cancel();
    this.#timers.clear();
  }

  // ---------------------------------------------------------------- socket-like API

  listen(port: number, opts: { address?: string; tcb?: Partial<TcbConfig> } = {}): StackListener {
    const l = new StackListener(port, opts.address ?? null, { ...this.cfg, ...opts.tcb });
    this.#listeners.set(port, [...(this.#listeners.get(port) ?? []), l]);
    return l;
  }

  unlisten(l: StackListener): void {
    this.#listeners.set(l.port, (this.#listeners.get(l.port) ?? []).filter((x) => x !== l));
  }

  connect(opts: { local: { address: string; port?: number }; remote: Endpoint; tcb?: Partial<TcbConfig> }): Connection {
    if (!this.addresses.has(opts.local.address)) throw new Error(`${opts.local.address} is not one of this stack's addresses`);
    const tuple: FourTuple = { local: { address: opts.local.address, port: opts.local.port ?? this.#ephemeral(opts.local.address, opts.remote) }, remote: opts.remote };
    const key = tupleKey(tuple);
    const old = this.#conns.get(key);
    if (old && old.state !== 'CLOSED' && old.state !== 'TIME-WAIT') throw new Error(`four-tuple in use: ${key} (${old.state})`);
    if (old) this.#forget(old);
    const now = this.clock.now();
    const tcb = Tcb.connect({ ...this.cfg, ...opts.tcb }, tuple.local.port, tuple.remote.port, now);
    const conn = this.#register(tuple, tcb);
    this.afterTcb(conn, this.#drainEvents(conn));
    this.kick(conn);
    return conn;
  }

  connection(tuple: FourTuple): Connection | undefined {
    return this.#conns.get(tupleKey(tuple));
  }

  get connections(): Connection[] {
    return [...this.#conns.values()];
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
  sendSegment(tuple: FourTuple, tcp: Partial<TcpRepr> & { seq: SeqNumber }): void {
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
    this.#emitOut(tuple, full, emitTcpFrame(tuple.local.address, tuple.remote.address, full), true);
  }

  // ---------------------------------------------------------------- engine

  #ephemeral(address: string, remote: Endpoint): number {
    for (let i = 0; i < 20000; i++) {
      const port = this.#nextPort;
      this.#nextPort = this.#nextPort >= 60999 ? 40000 : this.#nextPort + 1;
      if (!this.#conns.has(tupleKey({ local: { address, port }, remote }))) return port;
    }
    throw new Error('no free ephemeral port');
  }

  #register(tuple: FourTuple, tcb: Tcb): Connection {
    const conn = new Connection(this, tuple, tcb);
    this.#conns.set(tupleKey(tuple), conn);
    this.created.emit(conn);
    return conn;
  }

  #forget(conn: Connection): void {
    this.#timers.get(conn)?.cancel();
    this.#timers.delete(conn);
    if (this.#conns.get(tupleKey(conn.tuple)) === conn) this.#conns.delete(tupleKey(conn.tuple));
  }

  #input(frame: Uint8Array): void {
    const seg = parseFrame(frame);
    if (isWireError(seg) || seg.kind !== 'tcp') return;
    if (!this.addresses.has(seg.ip.dst)) {
      this.stats.notOurs++;
      return;
    }
    if (seg.tcp.checksumOk === false) {
      this.stats.badChecksum++;
      return;
    }
    const tuple: FourTuple = { local: { address: seg.ip.dst, port: seg.tcp.dstPort }, remote: { address: seg.ip.src, port: seg.tcp.srcPort } };
    const event: SegmentEvent = { direction: 'in', at: this.clock.now(), tuple, tcp: seg.tcp, frame };
    this.#filtered(event, () => this.#arrive(event));
  }

  /** Applies filters to `e`, then calls `go` zero, one or two times, now or later. */
  #filtered(e: SegmentEvent, go: () => void): void {
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
        go();
        go();
        return;
      }
      this.clock.at(this.clock.now() + action.delayMs, go);
      return;
    }
    go();
  }

  #arrive(e: SegmentEvent): void {
    this.stats.in++;
    this.segments.emit(e);
    const now = this.clock.now();
    const seg = e.tcp;
    let conn = this.#conns.get(tupleKey(e.tuple));
    if (conn && conn.state === 'CLOSED') {
      this.#forget(conn);
      conn = undefined;
    }
    if (conn && conn.state === 'TIME-WAIT' && seg.flags.syn && !seg.flags.ack && this.#listenerFor(e.tuple) && this.#timeWaitAccepts(conn.tcb, seg)) {
      // a new incarnation may take over a TIME-WAIT four-tuple (RFC 9293 §3.10.7.4, RFC 6191)
      conn.tcb.timers.clear();
      conn.tcb.state = 'CLOSED';
      this.#forget(conn);
      conn = undefined;
    }
    if (conn) {
      const replies = conn.tcb.process(seg, now);
      this.send(conn, replies);
      this.afterTcb(conn);
      return;
    }
    const listener = this.#listenerFor(e.tuple);
    if (listener && conn === undefined) {
      if (seg.flags.rst) return;
      if (seg.flags.ack) {
        this.#reset(e.tuple, seg.ack, null);
        return;
      }
      if (seg.flags.syn) {
        const tcb = Tcb.accept(listener.cfg, seg, now);
        const c = this.#register(e.tuple, tcb);
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
    if (seg.flags.ack) this.#reset(e.tuple, seg.ack, null);
    else this.#reset(e.tuple, seq(0), seqAdd(seg.seq, segLen(seg)));
  }

  #timeWaitAccepts(tcb: Tcb, syn: TcpRepr): boolean {
    const ts = syn.options.find((o) => o.kind === 'timestamps');
    if (tcb.tsEnabled && ts && ts.kind === 'timestamps' && tcb.tsRecent !== null) return seqGt(seq(ts.tsval), seq(tcb.tsRecent));
    return seqGt(syn.seq, tcb.rcvNxt);
  }

  #listenerFor(t: FourTuple): StackListener | undefined {
    return (this.#listeners.get(t.local.port) ?? []).find((l) => l.address === null || l.address === t.local.address);
  }

  #reset(tuple: FourTuple, seqNo: SeqNumber, ack: SeqNumber | null): void {
    this.stats.resetsSent++;
    this.sendSegment(tuple, { seq: seqNo, ack: ack ?? seq(0), flags: { ...NO_FLAGS, rst: true, ack: ack !== null } });
  }

  /** Runs a TCB's dispatch now (after a write, a close, a resumed read). */
  kick(conn: Connection): void {
    if (this.#conns.get(tupleKey(conn.tuple)) !== conn) return;
    this.afterTcb(conn);
  }

  /**
   * After the TCB changed: dispatch what is due, deliver data, report events, re-arm the timer.
   * Application callbacks may act on the connection (end() inside onEnd, say): such a nested
   * call only asks for another round, so events are reported in the order they happened.
   */
  afterTcb(conn: Connection, pending: TcbEvent[] = []): void {
    if (this.#busy.has(conn)) {
      this.#again.add(conn);
      return;
    }
    this.#busy.add(conn);
    try {
      let events = pending;
      do {
        this.#again.delete(conn);
        this.send(conn, conn.tcb.dispatch(this.clock.now()));
        events = [...events, ...this.#drainEvents(conn)];
        this.#report(conn, events);
        events = [];
        this.deliver(conn);
        this.#report(conn, this.#drainEvents(conn));
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

  #drainEvents(conn: Connection): TcbEvent[] {
    return conn.tcb.events.splice(0);
  }

  /** Hands received bytes to the application while it reads; a freed window may need an update. */
  deliver(conn: Connection): void {
    if (!conn.reading || conn.tcb.recvQ.length === 0) return;
    const data = conn.tcb.read();
    conn.received += data.length;
    conn.dataEvents.emit(data);
    // the window just opened: an update may be due
    this.send(conn, conn.tcb.dispatch(this.clock.now()));
  }

  #report(conn: Connection, events: TcbEvent[]): void {
    for (const ev of events) {
      conn.tcbEvents.emit(ev);
      if (ev.kind === 'state') {
        conn.history.push({ state: ev.to, at: ev.at });
        conn.stateChanges.emit(ev.from, ev.to, ev.at);
        if (ev.to === 'CLOSED') conn.closeEvents.emit(conn.resetReason ?? 'closed');
      } else if (ev.kind === 'eof') conn.endEvents.emit();
      else if (ev.kind === 'reset') conn.resetReason = ev.reason;
    }
  }

  #schedule(conn: Connection): void {
    this.#timers.get(conn)?.cancel();
    const at = conn.tcb.nextDeadline();
    if (at === null) {
      this.#timers.delete(conn);
      return;
    }
    this.#timers.set(
      conn,
      this.clock.at(at, () => {
        this.#timers.delete(conn);
        if (this.#conns.get(tupleKey(conn.tuple)) === conn) this.afterTcb(conn);
      }),
    );
  }

  /** Puts a TCB's segments on the link. */
  send(conn: Connection, segs: TcpRepr[]): void {
    for (const s of segs) this.#emitOut(conn.tuple, s, emitTcpFrame(conn.tuple.local.address, conn.tuple.remote.address, s), true);
  }

  #emitOut(tuple: FourTuple, tcp: TcpRepr, frame: Uint8Array, filter: boolean): void {
    const e: SegmentEvent = { direction: 'out', at: this.clock.now(), tuple, tcp, frame };
    const go = (): void => {
      this.stats.out++;
      this.segments.emit(e);
      this.#link.send(frame);
    };
    if (filter) this.#filtered(e, go);
    else go();
  }
}

