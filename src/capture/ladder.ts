// Ladder diagrams: the classic two-column sequence picture of one connection — the kernel on the
// left, the peer on the right (in anyone's capture: the client, who sent the SYN, and the server),
// time downward — with frame numbers matching Wireshark's, flags, relative seq/ack, the window in
// bytes, a payload snippet, the notable marks, each side's TCP state where it changes (from the
// timeline, or inferred from the segments when there is none), and the syscalls the application
// made on the connection, at the time they ran. One pure layout, two renderings: text and SVG.
import type { TcpState } from '../wire/tcp';
import type { FlowSegment, FlowSummary, Mark } from './flows';
import { escapeXml as esc } from './html';
import { KERNEL_ADDRESSES } from '../wire/address-plan';
import type { KernelEvent, PeerStateEvent, SyscallEvent, TimelineEvent } from './timeline';

export interface StateChange {
  /** wall time in µs, the capture's clock */
  at: number;
  side: 'left' | 'right';
  state: string;
  /** recorded as it happened (the peer's own TCB), so before the segment it sends; else read after the fact (the kernel's table) */
  live?: boolean;
}

export interface LadderRow {
  /** a segment (an arrow), a syscall on the left side, or a state change away from any segment */
  kind?: 'segment' | 'syscall' | 'state';
  /** the frame number (segments; 0 for other rows) */
  number: number;
  timeUs: number;
  /** seconds since the ladder's first row */
  timeS: number;
  leftToRight: boolean;
  label: string;
  /** more about the row, for a hover or a listing (the raw window field, a syscall's arguments) */
  detail?: string;
  marks: Mark[];
  incarnation: number;
  leftState?: string;
  rightState?: string;
  /** set on a row standing for a run of this many uneventful segments left out */
  elided?: number;
  /** a syscall row that ends a call drawn from an earlier row (a close() that blocked) */
  returns?: boolean;
}

export interface Ladder {
  left: string;
  right: string;
  /** what each side is: the kernel and the peer (twlab's captures), or the client and the server */
  leftRole: string;
  rightRole: string;
  /** the sides whose states are read from the segments, not from their own tables (anyone's capture) */
  inferred: Array<'left' | 'right'>;
  rows: LadderRow[];
  /** segments left out (inside elided rows) */
  omitted: number;
}

/** A row worth keeping when a ladder is condensed: marked, a state change, a syscall, or not plain data/ACK. */
function eventful(r: LadderRow): boolean {
  return (
    (r.kind !== undefined && r.kind !== 'segment') ||
    r.marks.length > 0 ||
    !!r.leftState ||
    !!r.rightState ||
    !/^(ACK|PSH,ACK) /.test(r.label)
  );
}

/**
 * Keeps at most about `maxRows` rows: the first and last few, and every eventful row; each run of
 * uneventful segments in between becomes one elided row.
 */
export function condense(rows: LadderRow[], maxRows: number): { rows: LadderRow[]; omitted: number } {
  if (rows.length <= maxRows) return { rows, omitted: 0 };
  const edge = Math.max(4, Math.floor(maxRows / 10));
  const out: LadderRow[] = [];
  let run: LadderRow[] = [];
  let omitted = 0;
  const flush = (): void => {
    if (run.length === 0) return;
    if (run.length <= 2) out.push(...run);
    else {
      out.push({ ...run[0]!, kind: 'segment', label: `${run.length} segments without marks`, marks: [], elided: run.length });
      omitted += run.length;
    }
    run = [];
  };
  rows.forEach((r, i) => {
    if (i < edge || i >= rows.length - edge || eventful(r)) {
      flush();
      out.push(r);
    } else run.push(r);
  });
  flush();
  return { rows: out, omitted };
}

/**
 * What a ladder reads of timeline.json's events (src/capture/timeline.ts): the kernel's and the
 * peer's states and the syscalls on a four-tuple; any other event passes by.
 */
export type LadderEvent =
  | Pick<KernelEvent, 'kind' | 'at' | 'local' | 'remote' | 'state' | 'timer' | 'timerMs'>
  | Pick<PeerStateEvent, 'kind' | 'at' | 'local' | 'remote' | 'to'>
  | Pick<SyscallEvent, 'kind' | 'at' | 'call' | 'args' | 'ret' | 'errno' | 'elapsedMs' | 'conn'>
  | Pick<Exclude<TimelineEvent, KernelEvent | PeerStateEvent | SyscallEvent>, 'kind' | 'at'>;
type LadderSyscall = Extract<LadderEvent, { kind: 'syscall' }>;

/** The kernel's and the peer's state changes on one four-tuple, from the timeline. */
function stateChanges(left: string, right: string, timeline: readonly LadderEvent[]): StateChange[] {
  const out: StateChange[] = [];
  let lastLeft = '';
  let lastRight = '';
  for (const e of timeline) {
    if (e.kind === 'kernel') {
      if (e.local !== left || e.remote !== right) continue;
      // TIME_WAIT with its timer as first read; the countdown itself is no change
      const name = e.state ?? 'gone';
      if (name === lastLeft) continue;
      out.push({
        at: e.at,
        side: 'left',
        state: e.state === 'TIME_WAIT' && e.timerMs ? `TIME_WAIT ${(e.timerMs / 1000).toFixed(1)} s` : name,
      });
      lastLeft = name;
    } else if (e.kind === 'peer-state') {
      if (e.local !== right || e.remote !== left) continue;
      if (e.to !== lastRight) out.push({ at: e.at, side: 'right', state: e.to, live: true });
      lastRight = e.to;
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

// ---- states read from the segments (a capture without a timeline) ----

/** The RFC's state names: a side's state as its segments show it. */
type Inferred = TcpState;

/**
 * Each side's RFC 9293 state as the segments imply it, at the row where it changes: a side moves
 * on what it sends (SYN, FIN) and what it receives (SYN-ACK, the ACK of its FIN, the other FIN,
 * an RST), taking the capture as what both sides saw. Per incarnation: a new SYN starts over.
 */
function inferStates(segs: readonly FlowSegment[], left: string): Array<{ left?: string; right?: string }> {
  const st: [Inferred, Inferred] = ['CLOSED', 'CLOSED'];
  /** per side: the sequence number just past its FIN (-1: no FIN sent) */
  const finEnd: [number, number] = [-1, -1];
  /** per side: the row where the other side's FIN was taken as received (CLOSE-WAIT), until its own FIN says otherwise */
  const closeWaitAt: [number, number] = [-1, -1];
  /** per side: its FIN crossed the other's, which it has not acknowledged yet (a simultaneous close, RFC 9293 §3.6 case 3) */
  const crossed: [boolean, boolean] = [false, false];
  const out: Array<{ left?: string; right?: string }> = [];
  let inc = 0;
  segs.forEach((s, row) => {
    const from = s.src === left ? 0 : 1;
    const to = (1 - from) as 0 | 1;
    const before: [Inferred, Inferred] = [st[0], st[1]];
    if (s.incarnation !== inc && s.strayFrom === undefined) {
      inc = s.incarnation;
      st[0] = st[1] = 'CLOSED';
      finEnd[0] = finEnd[1] = -1;
      closeWaitAt[0] = closeWaitAt[1] = -1;
      crossed[0] = crossed[1] = false;
      before[0] = before[1] = 'CLOSED';
    }
    if (s.strayFrom !== undefined) {
      out.push({});
      return;
    }
    const syn = (s.flagBits & 2) !== 0;
    const fin = (s.flagBits & 1) !== 0;
    const rst = (s.flagBits & 4) !== 0;
    const ack = (s.flagBits & 16) !== 0;
    const acksFin = (side: 0 | 1): boolean => ack && finEnd[side] >= 0 && ((s.ack - finEnd[side]) | 0) >= 0;
    if (rst) {
      if (st[from] !== 'CLOSED' && st[from] !== 'TIME-WAIT') st[from] = 'CLOSED';
      if (st[to] !== 'LISTEN') st[to] = 'CLOSED';
    } else if (syn && !ack) {
      st[from] = 'SYN-SENT';
      if (st[to] === 'CLOSED' || st[to] === 'LISTEN') st[to] = 'SYN-RECEIVED';
    } else if (syn && ack) {
      st[from] = 'SYN-RECEIVED';
      if (st[to] === 'SYN-SENT') st[to] = 'ESTABLISHED';
    } else {
      if (ack && st[to] === 'SYN-RECEIVED') st[to] = 'ESTABLISHED';
      if (st[from] === 'SYN-SENT' || st[from] === 'SYN-RECEIVED') st[from] = 'ESTABLISHED';
      // a FIN whose ACK field does not cover the other side's FIN, sent in "CLOSE-WAIT": the sender
      // had not received that FIN (it was still on its way: they crossed), so it was never in
      // CLOSE-WAIT but closed from ESTABLISHED, and meets the other FIN later, in FIN-WAIT-1
      if (fin && st[from] === 'CLOSE-WAIT' && finEnd[to] >= 0 && !(ack && ((s.ack - finEnd[to]) | 0) >= 0)) {
        const at = closeWaitAt[from];
        const side = from === 0 ? 'left' : 'right';
        if (at >= 0 && out[at]?.[side] === 'CLOSE-WAIT') out[at] = { ...out[at], [side]: undefined };
        st[from] = 'ESTABLISHED';
        crossed[from] = true;
      }
      // the sender's ACK of the receiver's FIN
      if (acksFin(to)) {
        if (st[to] === 'FIN-WAIT-1') st[to] = 'FIN-WAIT-2';
        else if (st[to] === 'CLOSING') st[to] = 'TIME-WAIT';
        else if (st[to] === 'LAST-ACK') st[to] = 'CLOSED';
      }
      // a side whose FIN crossed the other's: its first ACK of that FIN shows it arrived
      if (crossed[from] && ack && ((s.ack - finEnd[to]) | 0) >= 0) {
        crossed[from] = false;
        st[from] = st[from] === 'FIN-WAIT-1' ? 'CLOSING' : st[from] === 'FIN-WAIT-2' ? 'TIME-WAIT' : st[from];
      }
      if (fin) {
        finEnd[from] = (s.seq + s.len + 1) >>> 0;
        st[from] = st[from] === 'CLOSE-WAIT' ? 'LAST-ACK' : st[from] === 'ESTABLISHED' ? 'FIN-WAIT-1' : st[from];
        if (st[to] === 'ESTABLISHED') {
          st[to] = 'CLOSE-WAIT';
          closeWaitAt[to] = row;
        } else if (st[to] === 'FIN-WAIT-1') st[to] = acksFin(to) ? 'TIME-WAIT' : 'CLOSING';
        else if (st[to] === 'FIN-WAIT-2') st[to] = 'TIME-WAIT';
      }
    }
    out.push({ left: st[0] !== before[0] ? st[0] : undefined, right: st[1] !== before[1] ? st[1] : undefined });
  });
  return out;
}

// ---- syscalls on the connection ----

const DRAWN_CALLS = new Set(['connect', 'accept', 'setsockopt', 'shutdown', 'close', 'send', 'recv']);
/** a send/recv is drawn only on connections with few of them (a bulk transfer's thousands are not) */
const MAX_DATA_CALLS = 12;
/** a call that blocked at least this long gets a row where it returned too */
const LONG_CALL_MS = 50;

function optionValue(v: unknown): string {
  if (v && typeof v === 'object' && 'onoff' in v) {
    const l = v as { onoff: boolean; seconds: number };
    return `{${l.onoff ? 1 : 0},${l.seconds}}`;
  }
  if (typeof v === 'boolean') return v ? '1' : '0';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function callText(e: LadderSyscall): string {
  const a = e.args ?? {};
  const args =
    e.call === 'setsockopt'
      ? `${a.option} ${optionValue(a.value)}`
      : e.call === 'shutdown'
        ? String(a.how)
        : e.call === 'send'
          ? `${a.bytes} B`
          : '';
  const result = e.errno ?? (e.call === 'recv' && e.ret === 0 ? '0 (EOF)' : e.call === 'accept' ? `fd ${e.ret}` : String(e.ret));
  return `${e.call}(${args}) → ${result}`;
}

function syscallRows(left: string, right: string, timeline: readonly LadderEvent[]): LadderRow[] {
  const conn = `${left}>${right}`;
  const calls = timeline.filter((e): e is LadderSyscall => e.kind === 'syscall' && e.conn === conn && DRAWN_CALLS.has(e.call));
  const dataCalls = calls.filter((c) => c.call === 'send' || c.call === 'recv').length;
  const rows: LadderRow[] = [];
  for (const c of calls) {
    if ((c.call === 'send' || c.call === 'recv') && dataCalls > MAX_DATA_CALLS) continue;
    const elapsedUs = Math.round((c.elapsedMs ?? 0) * 1000);
    // a call that waits for something (accept, recv) is drawn where it returned; the others where they began
    const waits = c.call === 'accept' || c.call === 'recv';
    const took =
      c.elapsedMs !== undefined && c.elapsedMs >= 1
        ? ` (${c.elapsedMs >= 1000 ? `${(c.elapsedMs / 1000).toFixed(2)} s` : `${c.elapsedMs.toFixed(0)} ms`})`
        : '';
    const base = { kind: 'syscall' as const, number: 0, timeS: 0, leftToRight: true, marks: [] as Mark[], incarnation: 0 };
    rows.push({ ...base, timeUs: waits ? c.at + elapsedUs : c.at, label: `${callText(c)}${took}` });
    if (!waits && (c.elapsedMs ?? 0) >= LONG_CALL_MS)
      rows.push({ ...base, timeUs: c.at + elapsedUs, label: `${c.call}() returned ${c.errno ?? c.ret}${took}`, returns: true });
  }
  return rows;
}

// ---- layout ----

const fmtWindow = (s: FlowSegment): string => String(s.scaledWindow ?? s.window);

function labelOf(s: FlowSegment): string {
  const parts = [s.flags, `seq=${s.relSeq}`];
  if (s.relAck !== null) parts.push(`ack=${s.relAck}`);
  parts.push(`win=${fmtWindow(s)}`);
  if (s.len) parts.push(`len=${s.len}`);
  if (s.snippet) parts.push(JSON.stringify(s.snippet.length > 12 ? `${s.snippet.slice(0, 11)}…` : s.snippet));
  return parts.join(' ');
}

function detailOf(s: FlowSegment): string {
  const w =
    s.scaledWindow === null
      ? `window field ${s.window} (scale unknown: the SYNs are not in the capture)`
      : s.windowScale
        ? `window ${s.scaledWindow} bytes = field ${s.window} × 2^${s.windowScale}`
        : `window ${s.window} bytes`;
  const ack = s.relAck !== null ? `, ack ${s.ack >>> 0}` : '';
  const bytes = s.len ? `, ${s.len} bytes` : '';
  const snippet = s.snippet ? `: ${JSON.stringify(s.snippet)}` : '';
  return `frame #${s.number}: ${s.flags}, seq ${s.seq >>> 0}${ack}, ${w}${bytes}${snippet}`;
}

/** how far from a segment (µs) a state change is still drawn beside it rather than on a row of its own */
const NEAR_US = 100_000;

/**
 * Puts each state change beside the segment that caused it: a segment the side received just
 * before (the kernel's table is read right after a frame crosses), or one it sends right after
 * (the peer changes state as it sends its FIN); else beside a segment close in time; else on a
 * row of its own at its time (TIME_WAIT's end a minute later).
 */
function placeStates(rows: LadderRow[], changes: readonly StateChange[]): LadderRow[] {
  const extra: LadderRow[] = [];
  const segs = rows.filter((r) => r.kind === 'segment');
  const receiver = (r: LadderRow): 'left' | 'right' => (r.leftToRight ? 'right' : 'left');
  let i = 0;
  for (const c of changes) {
    while (i < segs.length && segs[i]!.timeUs <= c.at) i++;
    const a = segs[i - 1];
    const b = segs[i];
    let row: LadderRow | undefined;
    const nearA = a && c.at - a.timeUs <= NEAR_US ? a : undefined;
    const nearB = b && receiver(b) !== c.side && b.timeUs - c.at <= NEAR_US ? b : undefined;
    // a state entered by sending (SYN-SENT, FIN-WAIT-1, LAST-ACK), recorded as it happened: beside the segment it sends
    if (c.live && nearB && /^(SYN.SENT|FIN.WAIT.?1|LAST.ACK)$/.test(c.state)) row = nearB;
    else if (nearA && receiver(nearA) === c.side) row = nearA;
    else if (nearA && nearB) row = c.at - nearA.timeUs <= nearB.timeUs - c.at ? nearA : nearB;
    else row = nearA ?? nearB;
    if (!row) {
      const last = extra[extra.length - 1];
      if (last && last.timeUs === c.at) row = last;
      else {
        row = { kind: 'state', number: 0, timeUs: c.at, timeS: 0, leftToRight: true, label: '', marks: [], incarnation: 0 };
        extra.push(row);
      }
    }
    const key = c.side === 'left' ? 'leftState' : 'rightState';
    row[key] = row[key] ? `${row[key]} → ${c.state}` : c.state;
  }
  return extra;
}

/**
 * One ladder per four-tuple. twlab's captures: the kernel on the left, its states and syscalls from
 * the timeline. Anyone's: the client (the side that sent the first SYN) on the left, the states
 * inferred from the segments. `kernel`: the addresses that mark the kernel's side (none in anyone's
 * capture: kernelAddressesFor its link type).
 */
export function layoutLadders(
  flows: FlowSummary,
  timeline: readonly LadderEvent[] = [],
  maxRows = 400,
  kernel: ReadonlySet<string> = KERNEL_ADDRESSES,
): Ladder[] {
  const byFlow = new Map<string, FlowSegment[]>();
  for (const s of flows.segments) {
    const list = byFlow.get(s.flow);
    if (list) list.push(s);
    else byFlow.set(s.flow, [s]);
  }
  const ladders: Ladder[] = [];
  for (const segs of byFlow.values()) {
    const first = segs[0]!;
    const ours = kernel.has(first.srcAddress) || kernel.has(first.dstAddress);
    let left: string;
    let right: string;
    if (ours) {
      const kernelIsSrc = kernel.has(first.srcAddress);
      [left, right] = kernelIsSrc ? [first.src, first.dst] : [first.dst, first.src];
    } else {
      const syn = segs.find((s) => s.flagBits & 2);
      const client = syn ? ((syn.flagBits & 16) === 0 ? syn.src : syn.dst) : first.src;
      [left, right] = client === first.src ? [first.src, first.dst] : [first.dst, first.src];
    }
    const hasSyn = segs.some((s) => s.flagBits & 2);
    const segRows: LadderRow[] = segs.map((s) => ({
      kind: 'segment',
      number: s.number,
      timeUs: s.timeUs,
      timeS: 0,
      leftToRight: s.src === left,
      label: labelOf(s),
      detail: detailOf(s),
      marks: s.marks.filter((m) => m !== 'syn' && m !== 'fin'),
      incarnation: s.incarnation,
    }));
    const changes = stateChanges(left, right, timeline);
    const extra = changes.length ? placeStates(segRows, changes) : [];
    // a side the timeline says nothing of: its states from the segments
    const inferred = (['left', 'right'] as const).filter((side) => !changes.some((c) => c.side === side));
    if (inferred.length) {
      inferStates(segs, left).forEach((g, i) => {
        if (g.left && inferred.includes('left')) segRows[i]!.leftState = g.left;
        if (g.right && inferred.includes('right')) segRows[i]!.rightState = g.right;
      });
    }
    const all = [...segRows, ...extra, ...syscallRows(left, right, timeline)].sort((a, b) => a.timeUs - b.timeUs || order(a) - order(b));
    const t0 = all[0]!.timeUs;
    for (const r of all) r.timeS = (r.timeUs - t0) / 1e6;
    const { rows, omitted } = condense(all, maxRows);
    ladders.push({
      left,
      right,
      leftRole: ours ? 'kernel' : hasSyn ? 'client' : 'one end',
      rightRole: ours ? 'peer' : hasSyn ? 'server' : 'other end',
      inferred,
      rows,
      omitted,
    });
  }
  return ladders;
}

function inferredText(l: Ladder): string {
  const who = l.inferred.length === 2 ? 'both sides' : l.inferred[0] === 'left' ? `the ${l.leftRole}` : `the ${l.rightRole}`;
  return `states of ${who} inferred from the segments (no socket table here)`;
}

/** At one instant: a syscall before the segment it causes, a state row after. */
const order = (r: LadderRow): number => (r.kind === 'syscall' ? 0 : r.kind === 'state' ? 2 : 1);

const MARK_TEXT: Record<Mark, string> = {
  rst: 'RST',
  retransmission: 'retransmission',
  'zero-window': 'zero window',
  'window-probe': 'window probe',
  syn: 'SYN',
  fin: 'FIN',
  stray: 'STRAY',
  'challenge-ack': 'challenge ACK',
  'out-of-window': 'out of window',
  'old-timestamp': 'old timestamp (PAWS)',
};

const ANSI = {
  red: '\x1b[31;1m',
  yellow: '\x1b[33m',
  magenta: '\x1b[35;1m',
  cyan: '\x1b[36m',
  blue: '\x1b[34m',
  dim: '\x1b[2m',
  bold: '\x1b[1m',
  reset: '\x1b[0m',
};

function colourFor(marks: readonly Mark[]): string | null {
  if (marks.includes('stray')) return ANSI.magenta;
  if (marks.includes('rst')) return ANSI.red;
  if (marks.length) return ANSI.yellow;
  return null;
}

/** A state as the text ladder prints it: TIME_WAIT's timer in whole seconds, to fit its column. */
const shortState = (s: string): string =>
  s.replace(/^(TIME_WAIT|TIME-WAIT) ([0-9.]+) s$/, (_m, n: string, t: string) => `${n} ${Math.round(Number(t))}s`);

/** Splits `text` into lines of at most `width` at spaces (a word longer than that is cut). */
function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    const w = word.length > width ? word.slice(0, width - 1) + '…' : word;
    if (!line) line = w;
    else if (line.length + 1 + w.length <= width) line += ` ${w}`;
    else {
      out.push(line);
      line = w;
    }
  }
  if (line) out.push(line);
  return out;
}

/** an unchanged run longer than this (µs) is marked as a gap in time */
const GAP_US = 1_000_000;

/**
 * Terminal text in `columns` columns (80 by default): number, time, the left side's state, the
 * arrow with its label between the lifelines, the right side's state. A label longer than the
 * arrow continues on the next line; marks that do not fit go under the arrow. Colour only when
 * asked (a TTY).
 */
export function renderLadderText(l: Ladder, opts: { colour?: boolean; columns?: number } = {}): string[] {
  const columns = Math.max(72, opts.columns ?? 80);
  const stateW = Math.min(16, 13 + Math.floor((columns - 80) / 2));
  const numW = 5;
  const timeW = 9;
  const lead = numW + 1 + timeW + 1 + stateW + 1; // up to the left lifeline
  const arrowW = columns - lead - 2 - 1 - stateW;
  const c = (code: string, s: string): string => (opts.colour ? `${code}${s}${ANSI.reset}` : s);
  const pad = (s: string, w: number, right = false): string =>
    s.length > w ? s.slice(0, w - 1) + '…' : right ? s.padEnd(w) : s.padStart(w);
  const blankLead = ' '.repeat(lead);
  const between = (text: string, colour: string | null = null): string => {
    const t = text.length > arrowW - 2 ? text.slice(0, arrowW - 3) + '…' : text;
    const left = Math.floor((arrowW - t.length) / 2);
    const line = `${blankLead}│${' '.repeat(left)}${t}${' '.repeat(arrowW - left - t.length)}│`;
    return colour ? c(colour, line) : line;
  };
  const out: string[] = [];
  out.push(`${l.leftRole.padStart(lead)}${' '.repeat(arrowW + 2)}${l.rightRole}`);
  // the endpoints over their lifelines, the right one moved left as far as the width needs ([2001:db8::2]:40000
  // is wider than the state column); two that cannot share a line (IPv6 text runs to 47 characters) get one each
  const rightAt = Math.min(lead + arrowW + 2, columns - l.right.length);
  if (l.left.length <= lead && rightAt > lead + 1) out.push(`${l.left.padStart(lead)}${' '.repeat(rightAt - lead)}${l.right}`);
  else out.push(l.left.padStart(lead), l.right.padStart(Math.min(columns, lead + arrowW + 2 + l.right.length)));
  let prev: LadderRow | null = null;
  for (const r of l.rows) {
    if (prev && r.timeUs - prev.timeUs >= GAP_US)
      out.push(c(ANSI.dim, between(`⋮ ${((r.timeUs - prev.timeUs) / 1e6).toFixed(1)} s later ⋮`)));
    prev = r;
    const frameNo = r.number ? `#${r.number}` : '';
    const head = `${frameNo.padStart(numW)} ${r.timeS.toFixed(6).padStart(timeW)} ${pad(shortState(r.leftState ?? ''), stateW)} `;
    const tail = ` ${shortState(r.rightState ?? '')}`;
    if (r.elided) {
      out.push(c(ANSI.dim, between(`⋮ ${r.label} ⋮`)));
      continue;
    }
    if (r.kind === 'syscall') {
      // the call on the application's side of the left lifeline
      out.push(`${head}├${c(ANSI.blue, ` ${pad(r.label, arrowW - 1, true)}`)}│${tail}`.trimEnd());
      continue;
    }
    if (r.kind === 'state') {
      out.push(`${head}│${' '.repeat(arrowW)}│${tail}`.trimEnd());
      continue;
    }
    const lines = wrap(r.label, arrowW - 4);
    const text = ` ${lines[0]} `;
    const dashes = Math.max(2, arrowW - text.length);
    const half = Math.floor(dashes / 2);
    const arrow = r.leftToRight
      ? `${'─'.repeat(half)}${text}${'─'.repeat(dashes - half - 1)}▶`
      : `◀${'─'.repeat(half - 1)}${text}${'─'.repeat(dashes - half)}`;
    const marks = r.marks.map((m) => MARK_TEXT[m]).join(', ');
    const colour = colourFor(r.marks);
    const plain = `${head}│${arrow}│${tail}`;
    const withMarks = `${head}│${arrow}│${tail.trim() ? `${tail}  ` : ' '}${marks}`;
    const fitsMarks = !!marks && withMarks.length <= columns;
    const line = (fitsMarks ? withMarks : plain).trimEnd();
    out.push(colour ? c(colour, line) : line);
    for (const more of lines.slice(1)) out.push(between(more, colour));
    if (marks && !fitsMarks) for (const m of wrap(`↳ ${marks}`, arrowW - 2)) out.push(between(m, colour));
  }
  if (l.inferred.length) out.push(`(${inferredText(l)})`);
  return out;
}

/** SVG: lifelines, arrows slanted downward, labels, marks coloured, states beside their lifeline, syscalls on the left. */
export function renderLadderSvg(l: Ladder, opts: { id?: string } = {}): string {
  const W = 860;
  const xL = 250;
  const xR = 640;
  const top = 60;
  const step = 26;
  const slant = 10;
  // a gap in time gets a little room of its own
  const ys: number[] = [];
  let y = top;
  l.rows.forEach((r, i) => {
    if (i > 0 && r.timeUs - l.rows[i - 1]!.timeUs >= GAP_US) y += 14;
    ys.push(y);
    y += step;
  });
  const h = y + 40 + (l.inferred.length ? 16 : 0);
  const idOf = (n: number): string => (opts.id ? ` id="${esc(opts.id)}-f${n}"` : '');
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="ladder" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" ` +
      `font-family="monospace" font-size="11" data-left-role="${esc(l.leftRole)}" data-right-role="${esc(l.rightRole)}">`,
  );
  parts.push(
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" ' +
      'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>',
  );
  parts.push(`<text x="${xL}" y="18" text-anchor="middle" font-weight="bold">${esc(l.leftRole)} ${esc(l.left)}</text>`);
  parts.push(`<text x="${xR}" y="18" text-anchor="middle" font-weight="bold">${esc(l.rightRole)} ${esc(l.right)}</text>`);
  parts.push(`<line class="lifeline" x1="${xL}" y1="${top - 20}" x2="${xL}" y2="${y}" stroke="#888"/>`);
  parts.push(`<line class="lifeline" x1="${xR}" y1="${top - 20}" x2="${xR}" y2="${y}" stroke="#888"/>`);
  const stateText = (r: LadderRow, yy: number): void => {
    const title = (side: 'left' | 'right', s: string): string =>
      l.inferred.includes(side) ? `<title>${esc(s)} (inferred from the segments)</title>` : '';
    if (r.leftState)
      parts.push(
        `<text class="state" x="${xL - 8}" y="${yy + 4}" text-anchor="end" ` +
          `font-weight="bold">${title('left', r.leftState)}${esc(r.leftState)}</text>`,
      );
    if (r.rightState)
      parts.push(
        `<text class="state" x="${xR + 8}" y="${yy + 4}" font-weight="bold">${title('right', r.rightState)}${esc(r.rightState)}</text>`,
      );
  };
  l.rows.forEach((r, i) => {
    const yy = ys[i]!;
    if (i > 0 && r.timeUs - l.rows[i - 1]!.timeUs >= GAP_US) {
      parts.push(
        `<text class="gap" x="${(xL + xR) / 2}" y="${yy - 14}" text-anchor="middle" ` +
          `fill="#777">⋮ ${((r.timeUs - l.rows[i - 1]!.timeUs) / 1e6).toFixed(1)} s later ⋮</text>`,
      );
    }
    // each row a step (report.html can reveal them one by one); its states and time ride along
    const leftData = r.leftState ? ` data-left="${esc(r.leftState)}"` : '';
    const rightData = r.rightState ? ` data-right="${esc(r.rightState)}"` : '';
    const data = `data-step="${i}" data-t="${r.timeS.toFixed(6)}"${leftData}${rightData}`;
    if (r.elided) {
      parts.push(
        `<g class="row elided" ${data}><text x="${(xL + xR) / 2}" y="${yy + 4}" text-anchor="middle" ` +
          `fill="#777">⋮ ${esc(r.label)} ⋮</text></g>`,
      );
      return;
    }
    if (r.kind === 'syscall') {
      parts.push(`<g class="row syscall" ${data}><text x="8" y="${yy + 4}" fill="#555">${r.timeS.toFixed(6)}</text>`);
      parts.push(
        `<rect x="${xL - 5}" y="${yy - 5}" width="10" height="10" fill="#57a"/>` +
          `<text x="${xL + 12}" y="${yy + 4}" fill="#246" font-weight="bold">${esc(r.label)}</text>`,
      );
      // a call that blocked: a bar down the lifeline from where it began
      if (r.returns) {
        const from = l.rows
          .slice(0, i)
          .reverse()
          .findIndex((x) => x.kind === 'syscall' && !x.returns);
        if (from >= 0) {
          const y0 = ys[i - 1 - from]!;
          parts.push(`<rect class="blocked" x="${xL - 3}" y="${y0}" width="6" height="${yy - y0}" fill="#57a" opacity="0.5"/>`);
        }
      }
      stateText(r, yy);
      parts.push('</g>');
      return;
    }
    if (r.kind === 'state') {
      parts.push(`<g class="row state-change" ${data}><text x="8" y="${yy + 4}" fill="#555">${r.timeS.toFixed(6)}</text>`);
      stateText(r, yy);
      parts.push('</g>');
      return;
    }
    const colour = r.marks.includes('stray') ? '#b0b' : r.marks.includes('rst') ? '#c00' : r.marks.length ? '#c60' : '#246';
    const [x1, x2] = r.leftToRight ? [xL, xR] : [xR, xL];
    const cls = ['row', 'segment', ...r.marks].join(' ');
    parts.push(`<g class="${cls}"${idOf(r.number)} data-frame="${r.number}" ${data}>`);
    if (r.detail) parts.push(`<title>${esc(r.detail)}</title>`);
    parts.push(`<text x="8" y="${yy + 4}" fill="#555">#${r.number} ${r.timeS.toFixed(6)}</text>`);
    const strokeWidth = r.marks.length ? 2 : 1.2;
    const dashes = r.marks.includes('stray') ? ' stroke-dasharray="6 3"' : '';
    parts.push(
      `<line x1="${x1}" y1="${yy - slant / 2}" x2="${x2}" y2="${yy + slant / 2}" ` +
        `stroke="${colour}" stroke-width="${strokeWidth}"${dashes} marker-end="url(#arrow)"/>`,
    );
    parts.push(`<text x="${(xL + xR) / 2}" y="${yy - 4}" text-anchor="middle" fill="${colour}">${esc(r.label)}</text>`);
    if (r.marks.length)
      parts.push(`<text x="${xR + 12}" y="${yy + 14}" fill="${colour}">${esc(r.marks.map((m) => MARK_TEXT[m]).join(', '))}</text>`);
    stateText(r, yy);
    parts.push('</g>');
  });
  if (l.inferred.length) parts.push(`<text x="8" y="${h - 8}" fill="#777">${esc(inferredText(l))}</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}
