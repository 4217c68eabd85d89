// What a lab sees while it runs: its parameters, the namespace's addresses, kernel sockets that
// log every syscall to the timeline, one pcap per variant, claims and printed conclusions.
import * as path from 'node:path';
import { PcapWriter } from '../capture/pcap';
import { wallUs } from '../host/clock';
import { KernelSocket, type OpenOptions, type Proto, type SyscallRecord } from '../host/ksocket';
import { ADDR, type LabNetwork } from '../host/netns';
import type { TunLink } from '../host/tunlink';
import { UidHelper } from '../host/uidhelper';
import type { IpFamily } from '../wire/address';
import type { ParamValue } from './params';
import type { ClaimResult, LabDefinition, VariantResult, Verdict } from './types';

export type TimelineEvent =
  | ({ kind: 'syscall'; variant: string | null } & SyscallRecord)
  | { kind: 'frame'; at: number; variant: string | null; direction: string; bytes: number; number: number }
  | { kind: 'note'; at: number; variant: string | null; text: string }
  | { kind: 'variant'; at: number; variant: string; phase: 'start' | 'end' };

/** Messages from the lab process to the runner (one JSON object per stdout line). */
export type LabMessage =
  | { type: 'progress'; lab: string; text: string }
  | { type: 'print'; lab: string; text: string }
  | { type: 'result'; lab: string; dir: string; claims: string[] }
  | { type: 'error'; lab: string; code: string; message: string };

export interface ContextInit {
  def: LabDefinition;
  params: Record<string, ParamValue>;
  /** staging directory for this run's evidence */
  dir: string;
  net: LabNetwork;
  link: TunLink;
  send: (m: LabMessage) => void;
}

export class LabContext {
  readonly def: LabDefinition;
  readonly params: Readonly<Record<string, ParamValue>>;
  readonly addr = ADDR;
  readonly link: TunLink;
  readonly net: LabNetwork;
  readonly dir: string;
  readonly timeline: TimelineEvent[] = [];
  readonly variants: VariantResult[] = [];
  readonly claims: ClaimResult[] = [];
  readonly conclusion: string[] = [];
  #send: (m: LabMessage) => void;
  #variant: string | null = null;
  #helpers: UidHelper[] = [];

  constructor(init: ContextInit) {
    this.def = init.def;
    this.params = init.params;
    this.link = init.link;
    this.net = init.net;
    this.dir = init.dir;
    this.#send = init.send;
    let n = 0;
    this.link.tap((e) => {
      n++;
      this.timeline.push({ kind: 'frame', at: e.timeUs, variant: this.#variant, direction: e.direction, bytes: e.frame.length, number: n });
    });
  }

  // ---- parameters, typed ----
  int(name: string): number {
    return this.#param(name, 'number') as number;
  }
  bool(name: string): boolean {
    return this.#param(name, 'boolean') as boolean;
  }
  str(name: string): string {
    return this.#param(name, 'string') as string;
  }
  list(name: string): string[] {
    const v = this.params[name];
    if (!Array.isArray(v)) throw new Error(`lab ${this.def.id}: parameter ${name} is not a list`);
    return v;
  }
  #param(name: string, type: string): ParamValue {
    const v = this.params[name];
    if (typeof v !== type) throw new Error(`lab ${this.def.id}: parameter ${name} is not a ${type}`);
    return v!;
  }

  // ---- kernel sockets ----
  /** A kernel socket whose syscalls go to the timeline (unless `timeline: false`, for bulk matrices). */
  socket(family: IpFamily, proto: Proto, opts: Omit<OpenOptions, 'observer'> & { timeline?: boolean } = {}): KernelSocket {
    const observer = opts.timeline === false ? undefined : (r: SyscallRecord) => this.timeline.push({ kind: 'syscall', variant: this.#variant, ...r });
    return KernelSocket.create(family, proto, { nonBlocking: opts.nonBlocking, observer });
  }

  /** A process under another uid in this namespace (stopped when the lab ends). */
  async otherUid(uid?: number): Promise<UidHelper> {
    const h = await UidHelper.start(uid);
    this.#helpers.push(h);
    return h;
  }

  // ---- evidence ----
  /**
   * Runs one variant with its own pcap (`<name>.pcap` in the lab directory): every frame on the
   * TUN while `fn` runs is recorded. `fn` returns the variant's measured observations.
   */
  async variant(name: string, params: Record<string, ParamValue>, fn: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`variant name must be kebab-case: ${name}`);
    const file = `${name}.pcap`;
    const pcap = new PcapWriter(path.join(this.dir, file));
    this.link.setSink(pcap);
    this.#variant = name;
    this.timeline.push({ kind: 'variant', at: wallUs(), variant: name, phase: 'start' });
    try {
      const observations = await fn();
      this.variants.push({ name, params, pcap: file, frames: pcap.count, observations });
      return observations;
    } finally {
      this.timeline.push({ kind: 'variant', at: wallUs(), variant: name, phase: 'end' });
      this.link.setSink(null);
      this.#variant = null;
      pcap.close();
    }
  }

  claim(id: string, verdict: Verdict, evidence: string): void {
    const spec = this.def.claims.find((c) => c.id === id);
    if (!spec) throw new Error(`lab ${this.def.id} has no claim ${id}`);
    if (this.claims.some((c) => c.id === id)) throw new Error(`claim ${id} judged twice`);
    this.claims.push({ ...spec, verdict, evidence });
  }

  note(text: string): void {
    this.timeline.push({ kind: 'note', at: wallUs(), variant: this.#variant, text });
  }

  /** A line of the human-readable output (not printed with --json). */
  print(text = ''): void {
    this.#send({ type: 'print', lab: this.def.id, text });
  }

  /** A line of the conclusion: printed, and kept in result.json. */
  conclude(text: string): void {
    this.conclusion.push(text);
    this.print(text);
  }

  /** Progress on long steps: shown on a terminal, silent with --json. */
  progress(text: string): void {
    this.#send({ type: 'progress', lab: this.def.id, text });
  }

  dispose(): void {
    for (const h of this.#helpers.splice(0)) h.stop();
  }
}
