// Ladder diagrams: the classic two-column sequence picture of one connection — the kernel on the
// left, the peer on the right, time downward — with frame numbers matching Wireshark's, flags,
// relative seq/ack, length, the notable marks, and each side's TCP state where it changes.
// One pure layout, two renderings: terminal text and SVG.
import type { FlowSegment, FlowSummary, Mark } from './flows';
import { escapeXml as esc } from './html';
import { KERNEL_ADDRESSES } from './listing';

export interface StateChange {
  /** wall time in µs, the capture's clock */
  at: number;
  side: 'left' | 'right';
  state: string;
}

export interface LadderRow {
  number: number;
  timeUs: number;
  /** seconds since the ladder's first frame */
  timeS: number;
  leftToRight: boolean;
  label: string;
  marks: Mark[];
  incarnation: number;
  leftState?: string;
  rightState?: string;
  /** set on a row standing for a run of this many uneventful segments left out */
  elided?: number;
}

export interface Ladder {
  left: string;
  right: string;
  rows: LadderRow[];
  /** segments left out (inside elided rows) */
  omitted: number;
}

/** A row worth keeping when a ladder is condensed: marked, a state change, or not plain data/ACK. */
function eventful(r: LadderRow): boolean {
  return r.marks.length > 0 || !!r.leftState || !!r.rightState || !/^(ACK|PSH,ACK) /.test(r.label);
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
      out.push({ ...run[0]!, label: `${run.length} segments without marks`, marks: [], elided: run.length });
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

/** The timeline events a ladder reads (a subset of timeline.json). */
export type TimelineEvent =
  | { kind: 'kernel'; at: number; local: string; remote: string; state: string | null; timer: string | null; timerMs: number | null }
  | { kind: 'peer-state'; at: number; local: string; remote: string; to: string }
  | { kind: string; at: number };

function stateChanges(left: string, right: string, timeline: readonly TimelineEvent[]): StateChange[] {
  const out: StateChange[] = [];
  let lastLeft = '';
  let lastRight = '';
  for (const e of timeline) {
    if (e.kind === 'kernel') {
      const k = e as Extract<TimelineEvent, { kind: 'kernel' }>;
      if (k.local !== left || k.remote !== right) continue;
      // the full socket leaves (or shows CLOSE) once its TIME_WAIT entry has taken over: not news
      if ((k.state === null || k.state === 'CLOSE') && lastLeft.startsWith('TIME_WAIT')) continue;
      const state = k.state === null ? 'gone' : k.state === 'TIME_WAIT' && k.timerMs ? `TIME_WAIT ${(k.timerMs / 1000).toFixed(1)} s` : k.state;
      if (state !== lastLeft) out.push({ at: k.at, side: 'left', state });
      lastLeft = state;
    } else if (e.kind === 'peer-state') {
      const p = e as Extract<TimelineEvent, { kind: 'peer-state' }>;
      if (p.local !== right || p.remote !== left) continue;
      if (p.to !== lastRight) out.push({ at: p.at, side: 'right', state: p.to });
      lastRight = p.to;
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

function labelOf(s: FlowSegment): string {
  const parts = [s.flags, `seq=${s.relSeq}`];
  if (s.relAck !== null) parts.push(`ack=${s.relAck}`);
  parts.push(`win=${s.window}`);
  if (s.len) parts.push(`len=${s.len}`);
  return parts.join(' ');
}

/** One ladder per four-tuple, the kernel's side on the left (else the first sender). */
export function layoutLadders(flows: FlowSummary, timeline: readonly TimelineEvent[] = [], maxRows = 400): Ladder[] {
  const byFlow = new Map<string, FlowSegment[]>();
  for (const s of flows.segments) {
    const list = byFlow.get(s.flow);
    if (list) list.push(s);
    else byFlow.set(s.flow, [s]);
  }
  const ladders: Ladder[] = [];
  for (const segs of byFlow.values()) {
    const first = segs[0]!;
    const kernelIsSrc = KERNEL_ADDRESSES.has(first.srcAddress) || !KERNEL_ADDRESSES.has(first.dstAddress);
    const left = kernelIsSrc ? first.src : first.dst;
    const right = kernelIsSrc ? first.dst : first.src;
    const t0 = first.timeUs;
    const all: LadderRow[] = segs.map((s) => ({
      number: s.number,
      timeUs: s.timeUs,
      timeS: (s.timeUs - t0) / 1e6,
      leftToRight: s.src === left,
      label: labelOf(s),
      marks: s.marks.filter((m) => m !== 'syn' && m !== 'fin'),
      incarnation: s.incarnation,
    }));
    // each state change goes beside the first frame at or after it (or the last frame)
    let from = 0;
    for (const c of stateChanges(left, right, timeline)) {
      while (from < all.length - 1 && all[from]!.timeUs < c.at) from++;
      const row = all[from];
      if (!row) continue;
      if (c.side === 'left') row.leftState = c.state;
      else row.rightState = c.state;
    }
    const { rows, omitted } = condense(all, maxRows);
    ladders.push({ left, right, rows, omitted });
  }
  return ladders;
}

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

const ANSI = { red: '\x1b[31;1m', yellow: '\x1b[33m', magenta: '\x1b[35;1m', cyan: '\x1b[36m', dim: '\x1b[2m', reset: '\x1b[0m' };

function colourFor(marks: readonly Mark[]): string | null {
  if (marks.includes('stray')) return ANSI.magenta;
  if (marks.includes('rst')) return ANSI.red;
  if (marks.length) return ANSI.yellow;
  return null;
}

/** Terminal text: `width` columns between the two lifelines; colour only when asked (a TTY). */
export function renderLadderText(l: Ladder, opts: { colour?: boolean; width?: number } = {}): string[] {
  const width = opts.width ?? 46;
  const stateW = 16;
  const c = (code: string, s: string): string => (opts.colour ? `${code}${s}${ANSI.reset}` : s);
  const out: string[] = [];
  const gutter = ' '.repeat(19);
  out.push(`${gutter}${'kernel'.padStart(stateW)} ${' '.repeat(width + 2)}peer`);
  out.push(`${gutter}${l.left.padStart(stateW)} ${' '.repeat(width + 2)}${l.right}`);
  for (const r of l.rows) {
    if (r.elided) {
      out.push(c(ANSI.dim, `${' '.repeat(19 + stateW)} ┆ ⋮ ${r.label} ⋮`));
      continue;
    }
    const text = ` ${r.label} `;
    const dashes = Math.max(2, width - text.length);
    const lead = Math.floor(dashes / 2);
    const arrow = r.leftToRight ? `${'─'.repeat(lead)}${text}${'─'.repeat(dashes - lead - 1)}▶` : `◀${'─'.repeat(lead - 1)}${text}${'─'.repeat(dashes - lead)}`;
    const marks = r.marks.length ? `  ${r.marks.map((m) => MARK_TEXT[m]).join(', ')}` : '';
    const colour = colourFor(r.marks);
    const line = `${`#${r.number}`.padStart(7)} ${r.timeS.toFixed(6).padStart(10)} ${(r.leftState ?? '').padStart(stateW)} │${arrow}│ ${(r.rightState ?? '').padEnd(stateW)}${marks}`;
    out.push(colour ? c(colour, line) : line);
  }
  return out;
}


/** SVG: lifelines, arrows slanted downward, labels, marks coloured, states beside their lifeline. */
export function renderLadderSvg(l: Ladder): string {
  const W = 860;
  const xL = 250;
  const xR = 640;
  const top = 60;
  const step = 26;
  const slant = 10;
  const h = top + l.rows.length * step + 40;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="ladder" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="monospace" font-size="11">`);
  parts.push(
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>',
  );
  parts.push(`<text x="${xL}" y="18" text-anchor="middle" font-weight="bold">kernel ${esc(l.left)}</text>`);
  parts.push(`<text x="${xR}" y="18" text-anchor="middle" font-weight="bold">peer ${esc(l.right)}</text>`);
  parts.push(`<line class="lifeline" x1="${xL}" y1="${top - 20}" x2="${xL}" y2="${h - 20}" stroke="#888"/>`);
  parts.push(`<line class="lifeline" x1="${xR}" y1="${top - 20}" x2="${xR}" y2="${h - 20}" stroke="#888"/>`);
  l.rows.forEach((r, i) => {
    const y = top + i * step;
    // each row a step (report.html can reveal them one by one); its states and time ride along
    const data = `data-step="${i}" data-t="${r.timeS.toFixed(6)}"${r.leftState ? ` data-left="${esc(r.leftState)}"` : ''}${r.rightState ? ` data-right="${esc(r.rightState)}"` : ''}`;
    if (r.elided) {
      parts.push(`<g class="row elided" ${data}><text x="${(xL + xR) / 2}" y="${y + 4}" text-anchor="middle" fill="#777">⋮ ${esc(r.label)} ⋮</text></g>`);
      return;
    }
    const colour = r.marks.includes('stray') ? '#b0b' : r.marks.includes('rst') ? '#c00' : r.marks.length ? '#c60' : '#246';
    const [x1, x2] = r.leftToRight ? [xL, xR] : [xR, xL];
    const cls = ['row', 'segment', ...r.marks].join(' ');
    parts.push(`<g class="${cls}" data-frame="${r.number}" ${data}>`);
    parts.push(`<text x="8" y="${y + 4}" fill="#555">#${r.number} ${r.timeS.toFixed(6)}</text>`);
    parts.push(`<line x1="${x1}" y1="${y - slant / 2}" x2="${x2}" y2="${y + slant / 2}" stroke="${colour}" stroke-width="${r.marks.length ? 2 : 1.2}"${r.marks.includes('stray') ? ' stroke-dasharray="6 3"' : ''} marker-end="url(#arrow)"/>`);
    parts.push(`<text x="${(xL + xR) / 2}" y="${y - 4}" text-anchor="middle" fill="${colour}">${esc(r.label)}</text>`);
    if (r.marks.length) parts.push(`<text x="${xR + 12}" y="${y + 14}" fill="${colour}">${esc(r.marks.map((m) => MARK_TEXT[m]).join(', '))}</text>`);
    if (r.leftState) parts.push(`<text class="state" x="${xL - 8}" y="${y + 4}" text-anchor="end" font-weight="bold">${esc(r.leftState)}</text>`);
    if (r.rightState) parts.push(`<text class="state" x="${xR + 8}" y="${y + 4}" font-weight="bold">${esc(r.rightState)}</text>`);
    parts.push('</g>');
  });
  parts.push('</svg>');
  return parts.join('\n');
}
