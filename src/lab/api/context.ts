// What a lab sees while it runs: its parameters, the namespace's addresses, kernel sockets that
// log every syscall to the timeline, one pcap per variant, claims and printed conclusions.
import * as path from 'node:path';
import { analyzeTcp, type DirectionSummary, type FlowSegment, type FlowSummary } from '../../capture/flows';
import { writeAnnotated } from '../../capture/annotate';
import type { TimelineEvent } from '../../capture/timeline';
import { PcapWriter, readPcap } from '../../capture/pcap';
import type { CapturedFrame, PacketCapture } from '../../host/capture';
import { guestRealtime, wallUs, wallUsOf } from '../../host/clock';
import { currentBackend } from '../../host/backend/current';
import { KnobMissingError, type Backend, type ProcessHandle } from '../../host/backend/types';
import { KernelSocket, type OpenOptions, type Proto, type SyscallRecord } from '../../host/ksocket';
import type { LabNetwork } from '../../host/netns';
import { ADDR, PEER_ADDRESSES } from '../../wire/address-plan';
import { noMeaningFor } from '../../host/family';
import { addressesOf, familyLabel, familyOfRun } from './family';
import { counterChange, counterDelta, type SocketEntry } from '../../host/observe';
import type { LabLink } from '../../host/tunlink';
import { NOBODY_UID } from '../../host/uidhelper';
import { TcpStack } from '../../stack/stack';
import type { TcbConfig } from '../../stack/tcb';
import { formatEndpoint, type IpFamily } from '../../wire/address';
import { tcpHeadersLength } from '../../wire/frame';
import { newTcpView, viewTcp, ACK, FIN, RST, SYN } from '../../wire/view';
import { SocketFollower } from './kernel-watch';
import { formatFlags } from '../../wire/tcp';
import type { ParamValue } from './params';
import { scopeLabel } from './claims';
import { labClaims, type LabSpec } from './definition';
import type { ClaimResult, VariantResult } from './result';
import { decide, requires, type Judgement, type Precondition } from './verdict';
import { resolveAnswer, singular, type Answer, type QuestionResult } from './questions';
import { TupleOnWire, type Endpoint } from './onwire';

const ep = (e: { address: string; port: number }): string => formatEndpoint(e.address, e.port);
const PEERS: ReadonlySet<string> = new Set(PEER_ADDRESSES);
/** "192.0.2.1:80" or "[2001:db8::1]:80" back to its parts */
const parseEndpoint = (s: string): { address: string; port: number } => {
  const i = s.lastIndexOf(':');
  return { address: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
};

/** Messages from the lab process to the runner (one JSON object per stdout line). */
export type LabMessage =
  | { type: 'progress'; lab: string; text: string }
  | { type: 'print'; lab: string; text: string }
  | { type: 'result'; lab: string; dir: string }
  | { type: 'error'; lab: string; code: string; message: string }
  /** asks for (acquire) or gives back (release) one of the run's CPU slots; the runner answers an acquire on stdin */
  | { type: 'cpu'; lab: string; op: 'acquire' | 'release'; id: number };

/** Grants the CPU slots the runner shares among the labs of a run (see LabContext.cpuHeavy). */
export interface CpuGate {
  acquire(): Promise<void>;
  release(): void;
}

/** Outside a runner (a lab run in-process by a test), every slot is granted at once. */
export const NO_GATE: CpuGate = { acquire: () => Promise.resolve(), release: () => undefined };

export interface ContextInit {
  def: LabSpec;
  params: Record<string, ParamValue>;
  /** staging directory for this run's evidence */
  dir: string;
  net: LabNetwork;
  link: LabLink;
  /** the packet socket on the TUN: frames with the kernel's timestamps; without it, frames are stamped as the link reads or writes them */
  capture?: PacketCapture | null;
  send: (m: LabMessage) => void;
  cpu?: CpuGate;
  /** the system under test (default: this process's, Linux unless run/lab-main.ts chose another) */
  system?: Backend;
  /** parameters' sysctls the system has no equivalent of (set up before the lab ran) */
  missingKnobs?: readonly KnobMissingError[];
}

export class LabContext {
  readonly def: LabSpec;
  readonly params: Readonly<Record<string, ParamValue>>;
  /** the address family this run's connections use (the `family` parameter; ipv4 for a lab without it) */
  readonly family: IpFamily;
  /**
   * The lab network's addresses: `host`/`peer` (and `hostB`/`peerB`, `any`) in this run's family,
   * beside the plan's fixed names (host4, peer6, …) for a lab that measures both families at once.
   */
  readonly addr: typeof ADDR & ReturnType<typeof addressesOf>;
  readonly link: LabLink;
  readonly net: LabNetwork;
  /** the system under test: Linux through the addon, or another OS's stack behind the same interface */
  readonly system: Backend;
  readonly dir: string;
  readonly timeline: TimelineEvent[] = [];
  readonly variants: VariantResult[] = [];
  readonly claims: ClaimResult[] = [];
  readonly questions: QuestionResult[] = [];
  readonly conclusion: string[] = [];
  /** every line the lab printed (its tables too), kept for the report */
  readonly printed: string[] = [];
  readonly capture: PacketCapture | null;
  #send: (m: LabMessage) => void;
  #cpu: CpuGate;
  #cpuDepth = 0;
  #variant: string | null = null;
  #helpers: ProcessHandle[] = [];
  #peer: TcpStack | null = null;
  #sampleKernel: (() => void) | null = null;
  /** the kernel's socket table as last followed (for deciding which frames may have changed it) */
  #follower: SocketFollower | null = null;
  /** where captured frames go while a variant runs */
  #frameSink: ((f: CapturedFrame) => void) | null = null;
  /** each open kernel socket's connection, once it had one (fd → "local>remote") */
  #connOf = new Map<number, string | null>();
  #flows = new Map<string, FlowSummary>();
  /** each finished variant's counters, read at its start and end */
  #counterReadings = new Map<string, { before: Record<string, number>; after: Record<string, number> }>();
  /** a socket-table read that failed while the table was watched (the variant then fails with it) */
  #watchError: Error | null = null;
  /** counters found missing, noted once each */
  #countersNoted = new Set<string>();
  /** set during a bulk phase: frames are counted instead of listed, their payload not captured */
  #bulk: { frames: number; bytes: number } | null = null;
  /** sysctls changed during the run, as read back */
  readonly sysctlsSet: Record<string, string> = {};
  /** knobs the lab used that the system under test does not have, with the claims that need them (null: all) */
  readonly missingKnobs: Array<{ error: KnobMissingError; claims: readonly string[] | null }> = [];

  constructor(init: ContextInit) {
    this.def = init.def;
    this.params = init.params;
    this.family = familyOfRun(init.params);
    this.addr = { ...ADDR, ...addressesOf(this.family) };
    this.link = init.link;
    this.net = init.net;
    this.system = init.system ?? currentBackend();
    for (const e of init.missingKnobs ?? []) this.#missing(e, e.knob.split('=')[0]!);
    this.dir = init.dir;
    this.#send = init.send;
    this.#cpu = init.cpu ?? NO_GATE;
    this.capture = init.capture ?? null;
    if (this.capture) this.capture.onFrame((f) => this.#frameSink?.(f));
    else this.link.tap((e) => this.#frameSink?.({ timeUs: e.timeUs, direction: e.direction, data: e.frame, length: e.frame.length }));
    // a frame that may change its connection's state: that four-tuple's socket is read as soon as
    // the frame has crossed (one lookup, src/host/diag.ts), before the peer answers it — a SYN, FIN
    // or RST, or an ACK of the kernel's SYN or FIN (RFC 9293 §3.10.7.4: what moves SYN-RECEIVED,
    // FIN-WAIT-1, CLOSING and LAST-ACK on); an ACK of data moves nothing
    const view = newTcpView();
    /** per four-tuple: the sequence number just past the kernel's latest SYN or FIN, awaiting its ACK */
    const awaited = new Map<string, number>();
    this.link.onDelivered?.((_dir, frame) => {
      if (!this.#follower || this.#bulk || !viewTcp(frame, true, view)) return;
      const fromPeer = PEERS.has(view.src);
      const local = fromPeer ? { address: view.dst, port: view.dstPort } : { address: view.src, port: view.srcPort };
      const remote = fromPeer ? { address: view.src, port: view.srcPort } : { address: view.dst, port: view.dstPort };
      const key = `${ep(local)}|${ep(remote)}`;
      const control = (view.flags & (SYN | FIN | RST)) !== 0;
      if (!fromPeer && (view.flags & (SYN | FIN)) !== 0)
        awaited.set(key, (view.seq + view.len + (view.flags & SYN ? 1 : 0) + (view.flags & FIN ? 1 : 0)) >>> 0);
      const want = awaited.get(key);
      const acksIt = fromPeer && want !== undefined && (view.flags & ACK) !== 0 && ((view.ack - want) | 0) >= 0;
      if (acksIt) awaited.delete(key);
      if (control || acksIt) this.#sampleOne(local, remote);
    });
  }

  /** Reads one four-tuple's socket and records what changed (the whole table where the kernel has no sock_diag). */
  #sampleOne(local: { address: string; port: number }, remote: { address: string; port: number }): void {
    if (!this.#follower) return;
    const lookup = this.system.socketAt;
    if (!lookup) return this.#sampleKernel?.();
    const at = wallUs();
    for (const c of this.#follower.updateOne(ep(local), ep(remote), lookup.call(this.system, local, remote)))
      this.timeline.push({ kind: 'kernel', at, variant: this.#variant, ...c });
  }

  /** Which clock the captures carry, for timeline.json and the README's promise. */
  get clock(): string {
    return this.capture
      ? `wall time (CLOCK_REALTIME), microseconds; frames stamped by the kernel where they crossed ${this.net.tunName} ` +
          `(AF_PACKET socket, SO_TIMESTAMPNS — as tcpdump's)`
      : `wall time (CLOCK_REALTIME), microseconds; frames stamped as twlab read or wrote them on ${this.net.tunName} ` +
          `(no packet socket here)`;
  }

  // ---- parameters, typed ----
  int(name: string): number {
    return this.#param(name, 'number') as number;
  }
  bool(name: string): boolean {
    return this.#param(name, 'boolean') as boolean;
  }
  /** A string parameter; `T` names an enum's choices (the value was checked against them). */
  str<T extends string = string>(name: string): T {
    return this.#param(name, 'string') as T;
  }
  /** A list parameter; `T` names its choices' type (the values were checked against the spec's choices). */
  list<T extends string = string>(name: string): T[] {
    const v = this.params[name];
    if (!Array.isArray(v)) throw new Error(`lab ${this.def.id}: parameter ${name} is not a list`);
    return v as T[];
  }
  #param(name: string, type: string): ParamValue {
    const v = this.params[name];
    if (typeof v !== type) throw new Error(`lab ${this.def.id}: parameter ${name} is not a ${type}`);
    return v!;
  }

  // ---- kernel sockets ----
  /** A kernel socket whose syscalls go to the timeline (unless `timeline: false`, for bulk matrices). */
  socket(family: IpFamily, proto: Proto, opts: Omit<OpenOptions, 'observer'> & { timeline?: boolean } = {}): KernelSocket {
    const observer =
      opts.timeline === false
        ? undefined
        : (r: SyscallRecord) => {
            const conn = this.#connection(r);
            this.timeline.push({ kind: 'syscall', variant: this.#variant, ...r, ...(conn ? { conn } : {}) });
            // the kernel's state right after each syscall: its connection's socket, or the whole table
            if (conn) {
              const [l, rem] = conn.split('>');
              this.#sampleOne(parseEndpoint(l!), parseEndpoint(rem!));
            } else this.#sampleKernel?.();
          };
    return KernelSocket.create(family, proto, { nonBlocking: opts.nonBlocking, observer, calls: this.system.sockets });
  }

  /**
   * The connection a syscall's socket is (or was, for close()): read with getsockname/getpeername
   * once it is connected (after connect(), or on the socket accept() returned), remembered until close.
   */
  #connection(r: SyscallRecord): string | undefined {
    const fd = r.call === 'accept' ? r.ret : r.fd;
    if (fd < 0) return undefined;
    if (r.call === 'close') {
      const conn = this.#connOf.get(fd);
      this.#connOf.delete(fd);
      return conn ?? undefined;
    }
    if (r.call === 'socket' || r.call === 'bind' || r.call === 'listen') {
      this.#connOf.delete(fd); // a new socket on a reused fd number
      return undefined;
    }
    // looked up once per connection: a socket without a peer yet is asked again at its next call
    if (r.call === 'connect' || !this.#connOf.get(fd)) this.#connOf.set(fd, KernelSocket.endpointsOf(fd, this.system.sockets));
    return this.#connOf.get(fd) ?? undefined;
  }

  /** A process under another uid in this namespace (stopped when the lab ends). */
  async otherUid(uid?: number): Promise<ProcessHandle> {
    return this.helper(uid ?? NOBODY_UID);
  }

  /** A helper process (default: this uid) that can hold kernel sockets, and be killed. */
  async helper(uid = process.geteuid?.() ?? 0): Promise<ProcessHandle> {
    const h = await this.system.process(uid);
    this.#helpers.push(h);
    return h;
  }

  // ---- the peer ----
  /**
   * The userspace TCP peer on the TUN (192.0.2.2, 198.51.100.2, 2001:db8::2), created on first
   * use; its connections' state changes and every segment go to the timeline.
   */
  peer(tcb: Partial<TcbConfig> = {}): TcpStack {
    if (this.#peer) return this.#peer;
    const stack = new TcpStack(this.link, { addresses: [...PEER_ADDRESSES], tcb });
    const wall = wallUsOf;
    stack.onSegment((e) =>
      this.#bulk
        ? undefined
        : this.timeline.push({
            kind: 'peer-segment',
            at: wall(e.at),
            variant: this.#variant,
            direction: e.direction,
            local: ep(e.tuple.local),
            remote: ep(e.tuple.remote),
            flags: formatFlags(e.tcp.flags),
            seq: e.tcp.seq,
            ack: e.tcp.ack,
            len: e.tcp.payload.length,
            window: e.tcp.window,
            ...(e.direction === 'out' && performance.now() - e.at >= 1 ? { heldMs: Math.round((performance.now() - e.at) * 10) / 10 } : {}),
          }),
    );
    stack.onExpect((r) =>
      this.timeline.push({
        kind: 'peer-expect',
        at: wallUs(),
        variant: this.#variant,
        what: r.what,
        came: r.came,
        ms: Math.round((r.came ? r.afterMs : r.waitedMs) * 10) / 10,
        ...(r.came
          ? { flags: formatFlags(r.segment.tcp.flags), seq: r.segment.tcp.seq, ack: r.segment.tcp.ack, len: r.segment.tcp.payload.length }
          : {}),
      }),
    );
    stack.created.on((c) =>
      c.onState((from, to, at) =>
        this.timeline.push({
          kind: 'peer-state',
          at: wall(at),
          variant: this.#variant,
          local: ep(c.tuple.local),
          remote: ep(c.tuple.remote),
          from,
          to,
        }),
      ),
    );
    this.#peer = stack;
    return stack;
  }

  // ---- the kernel's view ----
  /** The system's TCP sockets (Linux: /proc/net/tcp{,6} of the namespace; NetBSD: net.inet.tcp.pcblist), optionally filtered. */
  table(filter: (e: SocketEntry) => boolean = () => true): SocketEntry[] {
    return this.system.table().filter(filter);
  }

  /**
   * Every TCP counter now, by Linux's names (Tcp.*, TcpExt.*; another OS's mapped where it has an
   * equivalent). A reading that fails is an error, never `{}`; a counter the system lacks is absent
   * (on another OS, reading it throws KnobMissingError naming why).
   */
  counters(): Record<string, number> {
    return this.system.counters();
  }

  /**
   * How much counter `name` (Linux's name) changed during a finished variant, or since `reading`
   * (one `ctx.counters()` took) until now: null when the system has no such counter — a claim that
   * needs it must then say `not tested`; a missing counter is never a 0. A missing one is noted in
   * the timeline with the reason the system gives.
   */
  counterChange(since: string | Readonly<Record<string, number>>, name: string): number | null {
    let before: Readonly<Record<string, number>>;
    let after: Readonly<Record<string, number>>;
    if (typeof since === 'string') {
      const r = this.#counterReadings.get(since);
      if (!r) throw new Error(`no counters for variant ${since}`);
      ({ before, after } = r);
    } else {
      before = since;
      after = this.system.counters();
    }
    const d = counterChange(before, after, name);
    if (d === null) this.#counterMissing(after, name);
    return d;
  }

  #counterMissing(reading: Readonly<Record<string, number>>, name: string): void {
    if (this.#countersNoted.has(name)) return;
    this.#countersNoted.add(name);
    let why = `${this.system.identity.label} has no such counter`;
    try {
      void reading[name]; // another OS's reading says why it has none
    } catch (e) {
      if (!(e instanceof KnobMissingError)) throw e;
      why = e.message;
    }
    this.note(`counter missing: ${name} (${why})`);
  }

  /** A knob the system lacks: the claims that need it (the parameter with that sysctl says which; else all) will say `not tested`. */
  #missing(error: KnobMissingError, sysctl: string): void {
    if (this.missingKnobs.some((m) => m.error.knob === error.knob)) return;
    const param = this.def.params.find((p) => p.sysctl === sysctl);
    this.missingKnobs.push({ error, claims: param?.claims ?? null });
    this.note(`knob missing: ${error.message}`);
  }

  /**
   * Sets a per-namespace sysctl during the run; it is recorded in the result and the timeline.
   * On a system without that knob (another OS) nothing is set: null, and the claims that need
   * it will say `not tested`, naming it.
   */
  sysctl(name: string, value: string | number): string | null {
    let read: string;
    try {
      read = this.system.writeSysctl(name, value);
    } catch (e) {
      if (!(e instanceof KnobMissingError)) throw e;
      this.#missing(e, name);
      this.sysctlsSet[name] = `missing: ${e.message}`;
      return null;
    }
    this.sysctlsSet[name] = read;
    this.timeline.push({ kind: 'sysctl', at: wallUs(), variant: this.#variant, name, value: read });
    return read;
  }

  /** Sets the TUN device's MTU (the kernel then sends frames up to it; the peer's MSS is the lab's to choose). */
  async setMtu(mtu: number): Promise<void> {
    await this.system.setMtu(mtu);
    this.note(`${this.net.tunName} mtu ${mtu}`);
  }

  readSysctl(name: string): string | null {
    return this.system.readSysctl(name);
  }

  /**
   * The system's realtime clock when it is the lab's own to set — a twlab guest's (`--kernel`) —
   * or null (the host's clock is never touched, nor is another OS's stack, whose clock is the
   * host's). Each shift is noted in the timeline.
   */
  realtimeClock(): { shift(deltaMs: number): { ret: number; errno: string | null } } | null {
    const clock = this.system.identity.os === 'Linux' ? guestRealtime() : null;
    if (!clock) return null;
    return {
      shift: (deltaMs: number) => {
        const r = clock.shift(deltaMs);
        this.note(`the guest's realtime clock shifted ${deltaMs >= 0 ? '+' : ''}${deltaMs.toFixed(1)} ms (${r.errno ?? 'OK'})`);
        return r;
      },
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  /**
   * Polls `probe` every `everyMs` until it returns a value, or `timeoutMs` passes (null). With
   * `progress`, a long wait reports itself once a second (on a terminal only).
   */
  async waitUntil<T>(
    probe: () => T | null | undefined | false,
    opts: { timeoutMs: number; everyMs?: number; progress?: (elapsedMs: number) => string },
  ): Promise<T | null> {
    const t0 = performance.now();
    let last = 0;
    for (;;) {
      const v = probe();
      if (v) return v;
      const elapsed = performance.now() - t0;
      if (elapsed >= opts.timeoutMs) return null;
      if (opts.progress && elapsed - last >= 1000) {
        last = elapsed;
        this.progress(opts.progress(elapsed));
      }
      await this.sleep(opts.everyMs ?? 50);
    }
  }

  // ---- evidence ----
  /**
   * Runs one variant with its own pcap (`<name>.pcap` in the lab directory): every frame on the
   * TUN while `fn` runs is recorded. `fn` returns the variant's measured observations, and the
   * variant returns them, typed as `fn` returned them, with the counters' changes added.
   */
  async variant<T extends object>(
    name: string,
    params: Record<string, ParamValue>,
    fn: () => Promise<T>,
  ): Promise<T & { counters: Record<string, number> }> {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`variant name must be kebab-case: ${name}`);
    const file = `${name}.pcap`;
    const pcap = new PcapWriter(path.join(this.dir, file));
    this.capture?.drain(); // what crossed before the variant began is not its evidence
    let number = 0;
    this.#frameSink = (f) => {
      if (this.#bulk) {
        this.#bulk.frames++;
        this.#bulk.bytes += f.length;
      }
      // in a bulk phase a frame carrying data keeps its headers only, as tcpdump's snaplen would
      const headers = this.#bulk ? tcpHeadersLength(f.data) : null;
      if (headers !== null && headers < f.length) pcap.write(f.timeUs, f.data.subarray(0, headers), f.length);
      else pcap.write(f.timeUs, f.data, f.length);
      number++;
      if (!this.#bulk) this.timeline.push({ kind: 'frame', at: f.timeUs, variant: name, direction: f.direction, bytes: f.length, number });
    };
    this.#variant = name;
    this.timeline.push({ kind: 'variant', at: wallUs(), variant: name, phase: 'start' });
    const before = this.system.counters();
    const stopWatch = this.#watchKernel();
    try {
      const observations = await fn();
      this.capture?.drain(); // every frame that crossed while the variant ran is queued by now: counted below
      if (this.#watchError) throw this.#watchError;
      const after = this.system.counters();
      this.#counterReadings.set(name, { before, after });
      const delta = counterDelta(before, after);
      this.timeline.push({ kind: 'counters', at: wallUs(), variant: name, delta });
      const measured = { ...observations, counters: delta };
      const result: VariantResult = { name, params, pcap: file, pcapng: `${name}.pcapng`, frames: pcap.count, observations: measured };
      this.variants.push(result);
      return measured;
    } finally {
      this.capture?.drain(); // every frame that crossed while the variant ran is queued by now
      stopWatch();
      this.timeline.push({ kind: 'variant', at: wallUs(), variant: name, phase: 'end' });
      this.#frameSink = null;
      this.#variant = null;
      pcap.close();
      // analysed once: what the lab asks of the capture later, and the same frames with twlab's
      // marks as packet comments, for Wireshark
      const captured = readPcap(path.join(this.dir, file));
      const flows = analyzeTcp(captured);
      this.#flows.set(name, flows);
      writeAnnotated(captured, flows, path.join(this.dir, `${name}.pcapng`));
    }
  }

  /**
   * A bulk transfer: its frames are captured headers-only (the payload cut as by tcpdump's
   * snaplen; the original length is kept) and not listed one by one in the timeline or as peer
   * segments, so evidence stays small; a note records how many frames and bytes crossed, how fast.
   */
  async bulk<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#bulk) return fn();
    return this.cpuHeavy(what, () => this.#bulkPhase(what, fn));
  }

  async #bulkPhase<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const b = { frames: 0, bytes: 0 };
    const t0 = performance.now();
    this.capture?.drain();
    this.#bulk = b;
    this.capture?.setSnaplen(256); // headers only are kept: the socket need not copy the rest
    try {
      return await fn();
    } finally {
      this.capture?.drain();
      this.capture?.setSnaplen(262144);
      this.#bulk = null;
      const ms = performance.now() - t0;
      const mbPerS = (b.bytes / 1e6 / (ms / 1000)).toFixed(1);
      this.note(
        `bulk: ${what}: ${b.frames} frames, ${b.bytes} bytes on the wire in ${Math.round(ms)} ms (${mbPerS} MB/s); ` +
          `data frames captured headers-only`,
      );
    }
  }

  /**
   * A step that keeps a CPU busy (a bulk transfer, a flood of connections, a matrix of binds):
   * it waits for one of the run's CPU slots, so labs started together never starve each other's
   * busy steps while the timer-bound ones wait in parallel. The wait is noted in the timeline.
   */
  async cpuHeavy<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#cpuDepth > 0) return fn();
    const t0 = performance.now();
    await this.#cpu.acquire();
    const waited = performance.now() - t0;
    if (waited >= 1) this.note(`${what}: waited ${Math.round(waited)} ms for a CPU slot`);
    this.#cpuDepth++;
    try {
      return await fn();
    } finally {
      this.#cpuDepth--;
      this.#cpu.release();
    }
  }

  /**
   * Follows the socket table while a variant runs: each socket every 20 ms, after every syscall,
   * and as soon as a frame that can change its state has crossed (a SYN, FIN or RST, or an ACK to
   * a socket waiting for one), so each state shows when the table shows it; the whole table every
   * 200 ms and after a syscall on no connection (new listeners, sockets a syscall reset). Sockets
   * are followed by four-tuple through close() to their end (src/lab/kernel-watch.ts).
   */
  #watchKernel(): () => void {
    const follower = new SocketFollower();
    const sample = (): void => {
      const at = wallUs();
      let table: SocketEntry[];
      try {
        table = this.system.table();
      } catch (e) {
        this.#watchError ??= e as Error; // the variant fails with it when its steps return
        return;
      }
      for (const c of follower.update(table)) this.timeline.push({ kind: 'kernel', at, variant: this.#variant, ...c });
    };
    // every 20 ms: the sockets already followed, each looked up on its own (cheap); the whole table
    // (which walks the kernel's entire established hash) every 200 ms, or when many are followed
    let tick = 0;
    const poll = (): void => {
      const known = follower.connections();
      if (tick++ % 10 === 0 || known.length > 64 || !this.system.socketAt) return sample();
      for (const k of known) this.#sampleOne(parseEndpoint(k.local), parseEndpoint(k.remote));
    };
    this.#follower = follower;
    sample();
    const timer = setInterval(poll, 20);
    this.#sampleKernel = sample;
    return () => {
      clearInterval(timer);
      sample();
      this.#sampleKernel = null;
      this.#follower = null;
    };
  }

  /** What a finished variant's capture shows, per direction of each four-tuple. */
  flows(variant: string): FlowSummary {
    const flows = this.#flows.get(variant);
    if (!flows) throw new Error(`no capture for variant ${variant}`);
    return flows;
  }

  /** One four-tuple's segments in a finished variant's capture, read from the kernel's side. */
  onWire(variant: string, kernel: Endpoint, peer: Endpoint): TupleOnWire {
    return new TupleOnWire(this.flows(variant), kernel, peer);
  }

  /**
   * Totals over every direction that starts at `from` (an address, e.g. the kernel's 192.0.2.1),
   * or only at `from`:`port` (one connection's side), in a finished variant's capture.
   */
  sentBy(variant: string, from: string, port?: number): DirectionSummary {
    const total: DirectionSummary = { segments: 0, bytes: 0, rst: 0, retransmissions: 0, zeroWindow: 0, windowProbes: 0, fin: 0 };
    const prefixes = port === undefined ? [`${from}:`, `[${from}]:`] : [`${ep({ address: from, port })}>`];
    for (const [dir, d] of Object.entries(this.flows(variant).directions)) {
      if (!prefixes.some((p) => dir.startsWith(p))) continue;
      for (const k of Object.keys(total) as Array<keyof DirectionSummary>) total[k] += d[k];
    }
    return total;
  }

  /**
   * Judges one of the lab's claims from what was measured: its preconditions and whether the
   * outcome agreed with it (once, or per trial). The verdict word is derived (src/lab/verdict.ts).
   */
  judge(id: string, judgement: Judgement): ClaimResult {
    const spec = labClaims(this.def).find((c) => c.id === id);
    if (!spec) throw new Error(`lab ${this.def.id} does not list claim ${id}`);
    if (this.claims.some((c) => c.id === id)) throw new Error(`claim ${id} judged twice`);
    const knobs = this.missingKnobs
      .filter((m) => m.claims === null || m.claims.includes(id))
      .map((m) => requires(`the knob ${m.error.knob}`, false, m.error.message));
    knobs.push(...this.#meaningless(id));
    if (knobs.length) judgement = { ...judgement, requires: [...knobs, ...(judgement.requires ?? [])] };
    const d = decide(spec, judgement, this.system.identity);
    const result: ClaimResult = {
      id,
      text: spec.text,
      source: spec.source,
      scope: scopeLabel(spec.scope),
      ...(spec.modality === 'may' ? { modality: 'may' as const } : {}),
      verdict: d.verdict,
      evidence: d.evidence,
      preconditions: d.preconditions,
      ...(d.trials ? { trials: d.trials } : {}),
    };
    this.claims.push(result);
    return result;
  }

  /**
   * The knobs this claim needs (its parameters' sysctls, and those the run set) that have no meaning
   * for the run's family (src/host/family.ts): each a failed precondition, naming why.
   */
  #meaningless(claim: string): Precondition[] {
    const fromParams = this.def.params.filter((p) => p.sysctl && (!p.claims || p.claims.includes(claim))).map((p) => p.sysctl!);
    const knobs = [...new Set([...fromParams, ...Object.keys(this.sysctlsSet)])];
    return knobs.flatMap((k) => {
      const why = noMeaningFor(k, this.family);
      return why ? [requires(`${k} governs ${familyLabel(this.family)} TCP`, false, why)] : [];
    });
  }

  note(text: string): void {
    this.timeline.push({ kind: 'note', at: wallUs(), variant: this.#variant, text });
  }

  /** A line of the human-readable output (not printed with --json). */
  print(text = ''): void {
    text = singular(text);
    this.printed.push(text);
    this.#send({ type: 'print', lab: this.def.id, text });
  }

  /** A line of the conclusion: printed, and kept in result.json. */
  conclude(text: string): void {
    this.conclusion.push(text);
    this.print(text);
  }

  /**
   * Answers one of the lab's questions from what the run measured (never from a key written in
   * the lab): the choice the kernel's behaviour gives, why, and the frames that show it.
   */
  answer(id: string, a: Answer): QuestionResult {
    const q = (this.def.questions ?? []).find((x) => x.id === id);
    if (!q) throw new Error(`lab ${this.def.id} declares no question ${id}`);
    if (this.questions.some((x) => x.id === id)) throw new Error(`question ${id} answered twice`);
    const r = resolveAnswer(q, a);
    this.questions.push(r);
    return r;
  }

  /** Frame numbers in a finished variant's capture whose segment passes `test` (for answers and explanations). */
  framesWhere(variant: string, test: (s: FlowSegment) => boolean): { pcap: string; numbers: number[] } {
    const v = this.variants.find((x) => x.name === variant);
    return {
      pcap: v?.pcap ?? `${variant}.pcap`,
      numbers: this.flows(variant)
        .segments.filter(test)
        .map((s) => s.number),
    };
  }

  /** Prints each judged claim with its verdict (kept as the conclusion) and its evidence. */
  concludeClaims(): void {
    for (const cl of this.claims) {
      this.conclude(`${cl.id} ${cl.verdict.toUpperCase()}: ${cl.text} [${cl.scope}]`);
      this.print(`    ${cl.evidence}`);
    }
  }

  /** Progress on long steps: shown on a terminal, silent with --json. */
  progress(text: string): void {
    this.#send({ type: 'progress', lab: this.def.id, text });
  }

  dispose(): void {
    for (const h of this.#helpers.splice(0)) h.stop();
    this.#peer?.detach();
  }
}
