// Another OS's TCP/IP stack as the system under test, through a stack helper
// (native/stack-helper/PROTOCOL.md): the same SocketCalls and Observer a lab uses on Linux.
// OS-neutral: NetBSD's helper and FreeBSD's speak the same protocol; what differs per OS is the
// knob table (knobs.ts) and the identity.
import type { IpFamily } from '../../wire/address';
import type { AsyncSyscallResult, SyscallResult } from '../native';
import type { SocketEntry } from '../observe';
import type { SocketAddress } from '../sockaddr';
import { LINUX_COUNTER, type KnobTable } from './knobs';
import type { Args, Done, Reply, StackHelper } from './stack-helper';
import {
  KnobMissingError,
  TCP_STATES,
  type Backend,
  type KernelTcpState,
  type ProcessHandle,
  type Proto,
  type RemoteBind,
  type SocketCalls,
  type SocketOption,
  type SocketOptionValues,
  type SystemIdentity,
  type TcpInfo,
} from './types';

const familyName = (f: IpFamily): string => (f === 'ipv4' ? 'inet' : 'inet6');

function encodeOption<K extends SocketOption>(name: K, value: SocketOptionValues[K]): string {
  switch (name) {
    case 'SO_LINGER': {
      const l = value as SocketOptionValues['SO_LINGER'];
      return `${l.onoff ? 1 : 0},${l.seconds}`;
    }
    case 'IP_ADD_MEMBERSHIP': {
      const m = value as SocketOptionValues['IP_ADD_MEMBERSHIP'];
      return `${m.group},${m.iface}`;
    }
    case 'IP_LOCAL_PORT_RANGE': {
      const r = value as SocketOptionValues['IP_LOCAL_PORT_RANGE'];
      return `${r.lo},${r.hi}`;
    }
    default:
      return String(typeof value === 'boolean' ? (value ? 1 : 0) : value);
  }
}

function decodeOption<K extends SocketOption>(name: K, v: string): SocketOptionValues[K] {
  switch (name) {
    case 'SO_LINGER': {
      const [onoff, seconds] = v.split(',').map(Number);
      return { onoff: onoff !== 0, seconds: seconds ?? 0 } as SocketOptionValues[K];
    }
    case 'IP_LOCAL_PORT_RANGE': {
      const [lo, hi] = v.split(',').map(Number);
      return { lo: lo ?? 0, hi: hi ?? 0 } as SocketOptionValues[K];
    }
    case 'SO_RCVBUF':
    case 'SO_SNDBUF':
    case 'TCP_MAXSEG':
      return Number(v) as SocketOptionValues[K];
    default:
      return (Number(v) !== 0) as SocketOptionValues[K];
  }
}

const result = (r: Reply | Done): SyscallResult =>
  'kind' in r ? (r.kind === 'ok' ? { ret: r.ret, errno: r.errno } : { ret: -1, errno: 'EMISSING' }) : { ret: r.ret, errno: r.errno };
const asyncResult = (d: Done): AsyncSyscallResult => ({ ret: d.ret, errno: d.errno, elapsedMs: d.elapsedMs });

function address(kv: Record<string, string>): SocketAddress | null {
  if (!kv.addr || kv.port === undefined) return null;
  return { family: kv.family === 'inet6' ? 'ipv6' : 'ipv4', address: kv.addr, port: Number(kv.port) };
}

/** The socket calls of one process context (`proc` 1: the helper's main process). */
export class HelperSockets implements SocketCalls {
  readonly #h: StackHelper;
  readonly #system: string;
  readonly proc: number;

  constructor(h: StackHelper, system: string, proc = 1) {
    this.#h = h;
    this.#system = system;
    this.proc = proc;
  }

  #args(a: Args): Args {
    return this.proc === 1 ? a : { ...a, proc: this.proc };
  }

  #sync(op: string, a: Args, data?: Uint8Array): Reply & { kind: 'ok' } {
    const r = this.#h.call(op, this.#args(a), data);
    if (r.kind === 'missing') throw new KnobMissingError(r.what, this.#system);
    return r;
  }

  async #async(op: string, a: Args, data?: Uint8Array): Promise<Done> {
    const r = await this.#h.callAsync(op, this.#args(a), data);
    if ('kind' in r) throw new KnobMissingError(r.what, this.#system);
    return r;
  }

  socket(family: IpFamily, proto: Proto, nonBlocking: boolean): SyscallResult {
    return result(
      this.#sync('socket', {
        family: familyName(family),
        type: proto === 'tcp' ? 'stream' : 'dgram',
        nonblock: nonBlocking ? 1 : undefined,
      }),
    );
  }
  setOption<K extends SocketOption>(fd: number, name: K, value: SocketOptionValues[K]): SyscallResult {
    return result(this.#sync('setsockopt', { fd, opt: name, value: encodeOption(name, value) }));
  }
  getOption<K extends SocketOption>(fd: number, name: K): SyscallResult & { value: SocketOptionValues[K] | null } {
    const r = this.#sync('getsockopt', { fd, opt: name });
    return { ret: r.ret, errno: r.errno, value: r.ret < 0 || r.kv.value === undefined ? null : decodeOption(name, r.kv.value) };
  }
  bind(fd: number, addr: string, port: number): SyscallResult {
    return result(this.#sync('bind', { fd, addr, port }));
  }
  listen(fd: number, backlog: number): SyscallResult {
    return result(this.#sync('listen', { fd, backlog }));
  }
  async connect(fd: number, addr: string, port: number): Promise<AsyncSyscallResult> {
    return asyncResult(await this.#async('connect', { fd, addr, port }));
  }
  async accept(fd: number, timeoutMs: number): Promise<AsyncSyscallResult & { peer: SocketAddress | null }> {
    const d = await this.#async('accept', { fd, timeout_ms: timeoutMs >= 0 ? timeoutMs : undefined });
    return { ...asyncResult(d), peer: d.ret < 0 ? null : address(d.kv) };
  }
  async send(fd: number, data: Uint8Array, opts?: { oob?: boolean }): Promise<AsyncSyscallResult> {
    if (opts?.oob) throw new KnobMissingError('MSG_OOB', this.#system, 'is not offered by its stack helper');
    return asyncResult(await this.#async('send', { fd }, data));
  }
  sendNow(fd: number, data: Uint8Array): SyscallResult {
    return result(this.#sync('send', { fd, flags: 'dontwait' }, data));
  }
  async recv(fd: number, maxLength: number, opts: { peek: boolean; timeoutMs: number }): Promise<AsyncSyscallResult & { data: Buffer }> {
    const d = await this.#async('recv', {
      fd,
      max: maxLength,
      flags: opts.peek ? 'peek' : undefined,
      timeout_ms: opts.timeoutMs >= 0 ? opts.timeoutMs : undefined,
    });
    return { ...asyncResult(d), data: d.data };
  }
  shutdown(fd: number, how: 'SHUT_RD' | 'SHUT_WR' | 'SHUT_RDWR'): SyscallResult {
    return result(this.#sync('shutdown', { fd, how: how === 'SHUT_RD' ? 'rd' : how === 'SHUT_WR' ? 'wr' : 'rdwr' }));
  }
  setNonBlocking(fd: number, on: boolean): SyscallResult {
    return result(this.#sync('nonblock', { fd, on: on ? 1 : 0 }));
  }
  async close(fd: number): Promise<AsyncSyscallResult> {
    return asyncResult(await this.#async('close', { fd, async: 1 }));
  }
  closeNow(fd: number): SyscallResult {
    return result(this.#sync('close', { fd }));
  }
  localAddress(fd: number): SocketAddress | null {
    const r = this.#sync('getsockname', { fd });
    return r.ret < 0 ? null : address(r.kv);
  }
  peerAddress(fd: number): SocketAddress | null {
    const r = this.#sync('getpeername', { fd });
    return r.ret < 0 ? null : address(r.kv);
  }
  tcpInfo(fd: number): SyscallResult & { info: TcpInfo | null } {
    const r = this.#h.call('tcpinfo', this.#args({ fd }));
    if (r.kind === 'missing' || r.ret < 0) return { ...result(r), info: null };
    const n = (k: string): number | null => (r.kv[k] === undefined ? null : Number(r.kv[k]));
    return {
      ret: r.ret,
      errno: r.errno,
      info: {
        state: stateName(r.kv.state),
        retransmits: n('retransmits'),
        probes: null,
        backoff: null,
        options: null,
        rtoUs: n('rto_us'),
        sndMss: n('snd_mss'),
        rcvMss: n('rcv_mss'),
        unacked: n('unacked'),
        lost: null,
        retrans: null,
        lastDataSentMs: null,
        lastAckRecvMs: null,
        rttUs: n('rtt_us'),
        sndCwnd: n('snd_cwnd'),
        totalRetrans: null,
      },
    };
  }
}

function stateName(s: string | undefined): KernelTcpState {
  return (TCP_STATES as readonly string[]).includes(s ?? '') ? (s as KernelTcpState) : 'UNKNOWN';
}

/** Parses a `table` reply's lines into the socket table's entries (PROTOCOL.md "table"). */
export function parseTable(text: string): SocketEntry[] {
  const out: SocketEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const kv: Record<string, string> = {};
    for (const w of line.split(' ')) {
      const i = w.indexOf('=');
      if (i > 0) kv[w.slice(0, i)] = w.slice(i + 1);
    }
    const state = stateName(kv.state);
    // a control block no connection uses (created, bound, or reset and not yet closed) is in
    // NetBSD's list but not in Linux's tables: the socket table shows connections and listeners
    if (state === 'CLOSE') continue;
    out.push({
      family: kv.family === 'inet6' ? 'ipv6' : 'ipv4',
      state,
      local: { address: kv.laddr ?? '', port: Number(kv.lport) },
      remote: { address: kv.raddr ?? '', port: Number(kv.rport) },
      timer: kv.timer_ms !== undefined ? (state === 'TIME_WAIT' ? 'time-wait' : 'unknown') : 'unknown',
      timerMs: kv.timer_ms !== undefined ? Number(kv.timer_ms) : null,
      retransmits: null,
      txQueue: Number(kv.sndq ?? 0),
      rxQueue: Number(kv.rcvq ?? 0),
      uid: null,
      inode: 0,
    });
  }
  return out;
}

/** A process context of the stack (ProcessHandle): another uid, or a process to kill. */
class HelperProcess implements ProcessHandle {
  readonly uid: number;
  readonly pid: number;
  readonly #h: StackHelper;
  readonly #calls: HelperSockets;
  #gone = false;

  constructor(h: StackHelper, system: string, proc: number, uid: number) {
    this.#h = h;
    this.uid = uid;
    this.pid = proc;
    this.#calls = new HelperSockets(h, system, proc);
  }

  async bind(req: RemoteBind): Promise<{ id: number; bind: SyscallResult }> {
    const s = this.#calls.socket(req.family, req.proto, false);
    if (s.ret < 0) return { id: -1, bind: s };
    if (req.reuseaddr) this.#calls.setOption(s.ret, 'SO_REUSEADDR', true);
    if (req.reuseport) this.#calls.setOption(s.ret, 'SO_REUSEPORT', true);
    if (req.v6only !== null) this.#calls.setOption(s.ret, 'IPV6_V6ONLY', req.v6only);
    return { id: s.ret, bind: this.#calls.bind(s.ret, req.address, req.port) };
  }
  async listen(id: number): Promise<SyscallResult> {
    return this.#calls.listen(id, 128);
  }
  async close(id: number): Promise<SyscallResult> {
    return this.#calls.closeNow(id);
  }
  async socket(family: IpFamily, proto: Proto): Promise<number> {
    const r = this.#calls.socket(family, proto, false);
    if (r.ret < 0) throw new Error(`socket() in process ${this.pid}: ${r.errno}`);
    return r.ret;
  }
  async setLinger(id: number, onoff: boolean, seconds: number): Promise<SyscallResult> {
    return this.#calls.setOption(id, 'SO_LINGER', { onoff, seconds });
  }
  async getLinger(id: number): Promise<SyscallResult & { value: SocketOptionValues['SO_LINGER'] | null }> {
    return this.#calls.getOption(id, 'SO_LINGER');
  }
  async connect(id: number, address: string, port: number): Promise<SyscallResult> {
    const r = await this.#calls.connect(id, address, port);
    return { ret: r.ret, errno: r.errno };
  }
  async send(id: number, bytes: number): Promise<SyscallResult> {
    return this.#calls.sendNow(id, new Uint8Array(bytes));
  }
  async localAddress(id: number): Promise<{ address: string; port: number } | null> {
    const a = this.#calls.localAddress(id);
    return a ? { address: a.address, port: a.port } : null;
  }
  /**
   * The process exits without closing anything: the stack's own exit path closes every
   * descriptor it held (NetBSD: fd_free, as exit1 does for a process killed by SIGKILL).
   */
  async kill(): Promise<NodeJS.Signals | 'exit' | null> {
    if (this.#gone) return null;
    this.#gone = true;
    const r = await this.#h.callAsync('proc_exit', { proc: this.pid });
    if ('kind' in r || r.ret < 0)
      throw new Error(`the stack could not end process ${this.pid}: ${'kind' in r ? `${r.what} missing` : r.errno}`);
    return 'SIGKILL';
  }
  stop(): void {
    if (!this.#gone) void this.kill().catch(() => undefined);
  }
}

/** Wraps counters so that reading a Linux counter the OS has no equivalent of throws (naming why) instead of reading as 0; `in` stays plain. */
function strictCounters(values: Record<string, number>, table: KnobTable, system: string): Record<string, number> {
  return new Proxy(values, {
    get(target, key) {
      if (typeof key !== 'string' || key in target) return Reflect.get(target, key) as unknown;
      const mapped = table.counters[key];
      if (typeof mapped === 'string') return undefined; // the OS has it, and this reading did not bring it: not a 0
      if (mapped) throw new KnobMissingError(key, system, `has no equivalent: ${mapped.missing}`);
      if (LINUX_COUNTER.test(key)) throw new KnobMissingError(key, system);
      return undefined;
    },
  });
}

export interface HelperBackendOptions {
  identity: SystemIdentity;
  knobs: KnobTable;
  /** sets the MTU of the lab's wire on both sides (the stack's interface and the Linux tap) */
  setMtu?: (mtu: number) => Promise<void>;
}

/** A Backend over a running stack helper. */
export function helperBackend(h: StackHelper, o: HelperBackendOptions): Backend {
  const system = `${o.identity.os} ${o.identity.release}`;
  const sockets = new HelperSockets(h, system);
  const processes: HelperProcess[] = [];
  const sysctl = (
    linuxName: string,
  ): { name: string; toOs?: (v: string) => string | null; toLinux?: (v: string) => string } | { missing: string } => {
    const m = o.knobs.sysctls[linuxName];
    if (m) return m;
    // a name in the OS's own namespace is its own knob; any other Linux name is missing
    return /^net\.(ipv4|ipv6|core|unix|netfilter)\./.test(linuxName) ? { missing: 'has no equivalent' } : { name: linuxName };
  };
  return {
    identity: o.identity,
    sockets,
    table() {
      const r = h.call('table');
      if (r.kind !== 'ok' || r.ret < 0)
        throw new Error(`the ${system} socket table could not be read: ${r.kind === 'ok' ? r.errno : r.what}`);
      return parseTable(r.data.toString('latin1'));
    },
    counters() {
      const r = h.call('counters');
      // a reading that fails is an error, never no counters (a missing counter is not a 0)
      if (r.kind !== 'ok' || r.ret < 0) throw new Error(`the ${system} counters could not be read: ${r.kind === 'ok' ? r.errno : r.what}`);
      const raw: Record<string, number> = {};
      for (const line of r.data.toString('latin1').split('\n')) {
        if (!line) continue;
        const [k, v] = line.split(' ');
        const n = Number(v);
        if (!k || v === undefined || !Number.isFinite(n))
          throw new Error(`the ${system} counters could not be read: malformed line ${JSON.stringify(line)}`);
        raw[k] = n;
      }
      const out: Record<string, number> = {};
      for (const [linux, mapped] of Object.entries(o.knobs.counters))
        if (typeof mapped === 'string' && mapped in raw) out[linux] = raw[mapped]!;
      for (const [k, v] of Object.entries(raw)) out[`${o.identity.os}.${k}`] = v;
      return strictCounters(out, o.knobs, system);
    },
    readSysctl(name) {
      const m = sysctl(name);
      if ('missing' in m) return null;
      const r = h.call('sysctl_get', { name: m.name });
      if (r.kind !== 'ok' || r.ret < 0 || r.kv.value === undefined) return null;
      return m.toLinux ? m.toLinux(r.kv.value) : r.kv.value;
    },
    writeSysctl(name, value) {
      const m = sysctl(name);
      if ('missing' in m)
        throw new KnobMissingError(name, system, m.missing.startsWith('has no') ? m.missing : `has no equivalent: ${m.missing}`);
      const v = m.toOs ? m.toOs(String(value)) : String(value);
      if (v === null) throw new KnobMissingError(`${name}=${value}`, system, `has no equivalent of that value (${m.name})`);
      const r = h.call('sysctl_set', { name: m.name, value: v });
      if (r.kind !== 'ok') throw new KnobMissingError(name, system);
      if (r.ret < 0) throw new Error(`cannot set ${m.name}=${v} on ${system}: ${r.errno}`);
      const back = h.call('sysctl_get', { name: m.name });
      return back.kind === 'ok' && back.kv.value !== undefined ? back.kv.value : v;
    },
    async process(uid) {
      const r = h.call('proc_new', uid === undefined ? {} : { uid, gid: uid });
      if (r.kind === 'missing') throw new KnobMissingError('process contexts', system, 'has none in its stack helper');
      if (r.ret < 0) throw new Error(`cannot make a process as uid ${uid} on ${system}: ${r.errno}`);
      const p = new HelperProcess(h, system, r.ret, uid ?? 0);
      processes.push(p);
      return p;
    },
    async setMtu(mtu) {
      if (!o.setMtu) throw new KnobMissingError('the wire’s MTU', system);
      await o.setMtu(mtu);
    },
    close() {
      h.close();
    },
  };
}
