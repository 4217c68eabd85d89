// `twlab show`: any capture (classic pcap or pcapng, twlab's or anyone's) read as a stream — as
// ladder diagrams, a per-frame listing, a per-connection summary, or the ladder of one chosen
// connection. Memory stays bounded whatever the capture's size: only ladders keep segments, and
// only up to a limit (beyond it, the summary is shown and --conn picks one connection).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FlowAnalyzer, type FlowSegment, type FlowSummary } from './flows';
import { layoutLadders, renderLadderText, type TimelineEvent } from './ladder';
import { formatListing, listingRow, type ListingRow } from './listing';
import { openCapture } from './pcap';
import { ConnectionSummaries, formatSummary } from './summary';

export interface ShowOptions {
  list?: boolean;
  summary?: boolean;
  /** with --summary: each connection's close patterns explained, with the lab that shows them */
  explain?: boolean;
  /** one connection: its index in the summary, or its four-tuple ("a:p-b:p", either order) */
  conn?: string;
  colour?: boolean;
  /** the terminal's width: ladders fit it (80 when not a terminal) */
  columns?: number;
  /** ladders keep at most this many segments (default LADDER_LIMIT) */
  ladderLimit?: number;
}

export const LADDER_LIMIT = 20_000;

export interface ShowIO {
  out: (line?: string) => void;
  warn: (line: string) => void;
}

/** The timeline.json next to a lab's capture, if there is one: its events of this capture's variant give the ladder its states and syscalls. */
function timelineBeside(file: string): TimelineEvent[] {
  try {
    const events = (JSON.parse(fs.readFileSync(path.join(path.dirname(file), 'timeline.json'), 'utf8')) as { events: TimelineEvent[] }).events;
    const variant = path.basename(file).replace(/\.pcap(ng)?$/, '');
    return events.filter((e) => (e as { variant?: string | null }).variant === variant);
  } catch {
    return [];
  }
}

/** Streams a capture through the analyzer (its callbacks keep what they need). Returns the warnings. */
function stream(file: string, analyzer: FlowAnalyzer): string[] {
  const reader = openCapture(file);
  for (const rec of reader) analyzer.push(rec);
  return reader.warnings;
}

/** Matches --conn against a connection: an index, or a four-tuple in either order. */
function connMatcher(conn: string): (flow: string, index: number) => boolean {
  if (/^\d+$/.test(conn)) return (_f, i) => i === Number(conn);
  const m = /^(.+:\d+)-(.+:\d+)$/.exec(conn.replace(/\s+/g, '').replace('↔', '-').replace('<>', '-'));
  if (!m) throw new ShowError(`--conn takes a connection's number from --summary, or its four-tuple as address:port-address:port, not ${JSON.stringify(conn)}`);
  const [a, b] = [m[1]!, m[2]!].sort();
  return (f) => f === `${a}<>${b}`;
}

export class ShowError extends Error {}

export function showCapture(file: string, opts: ShowOptions, io: ShowIO): void {
  if (opts.summary || opts.explain) return showSummary(file, opts, io);
  if (opts.conn) return showConnection(file, opts, io);
  if (opts.list) return showListing(file, io);
  // ladders: every segment kept, up to the limit; beyond it the summary (made in the same pass) stands in
  const limit = opts.ladderLimit ?? LADDER_LIMIT;
  const segments: FlowSegment[] = [];
  const other: FlowSummary['other'] = [];
  const summaries = new ConnectionSummaries();
  let nonTcp = 0;
  let over = false;
  const analyzer = new FlowAnalyzer({
    keepSegments: false,
    onSegment: (s) => {
      summaries.push(s);
      if (segments.length < limit) segments.push(s);
      else over = true;
    },
    onOther: (o) => {
      nonTcp++;
      if (other.length < limit) other.push(o);
    },
  });
  const warnings = stream(file, analyzer);
  for (const w of warnings) io.warn(w);
  if (over) {
    io.out(`(more than ${limit} TCP segments: too many to draw; the summary follows — draw one connection with --conn N)`);
    printSummary(summaries, nonTcp, analyzer.forgotten, opts, io);
    return;
  }
  drawLadders(file, { segments, directions: analyzer.summary().directions, other }, opts, io);
}

function drawLadders(file: string, flows: FlowSummary, opts: ShowOptions, io: ShowIO): void {
  const ladders = layoutLadders(flows, timelineBeside(file));
  if (ladders.length === 0 && flows.other.length === 0) io.out('(no frames: nothing crossed the wire)');
  for (const l of ladders) {
    for (const line of renderLadderText(l, { colour: !!opts.colour, columns: opts.columns })) io.out(line);
    io.out();
  }
  for (const o of flows.other) io.out(`   #${o.number}  ${o.summary}`);
}

function showSummary(file: string, opts: ShowOptions, io: ShowIO): void {
  const summaries = new ConnectionSummaries();
  let other = 0;
  const analyzer = new FlowAnalyzer({ keepSegments: false, checksums: false, onSegment: (s) => summaries.push(s), onOther: () => other++ });
  const warnings = stream(file, analyzer);
  for (const w of warnings) io.warn(w);
  printSummary(summaries, other, analyzer.forgotten, opts, io);
}

function printSummary(summaries: ConnectionSummaries, other: number, forgotten: number, opts: ShowOptions, io: ShowIO): void {
  const conns = summaries.connections();
  for (const line of formatSummary(conns, { explain: opts.explain })) io.out(line);
  io.out(`(${conns.length} connection${conns.length === 1 ? '' : 's'}${other ? `, ${other} frames that are not TCP` : ''}; left/right: the endpoints as the connection column names them${opts.explain ? '' : '; --explain says why each ended as it did'})`);
  if (forgotten) io.out(`(old-duplicate detection forgot the segments of ${forgotten} closed incarnations to stay within memory)`);
}

function showConnection(file: string, opts: ShowOptions, io: ShowIO): void {
  const match = connMatcher(opts.conn!);
  const index = new Map<string, number>();
  const segments: FlowSegment[] = [];
  let chosen: string | null = null;
  const analyzer = new FlowAnalyzer({
    keepSegments: false,
    onSegment: (s) => {
      if (!index.has(s.flow)) index.set(s.flow, index.size + 1);
      if (chosen === null && match(s.flow, index.get(s.flow)!)) chosen = s.flow;
      if (s.flow === chosen) segments.push(s);
    },
  });
  const warnings = stream(file, analyzer);
  for (const w of warnings) io.warn(w);
  if (chosen === null) throw new ShowError(`${file}: no connection ${opts.conn} (it has ${index.size}; see --summary)`);
  const directions = Object.fromEntries(Object.entries(analyzer.summary().directions).filter(([d]) => segments.some((s) => s.direction === d)));
  drawLadders(file, { segments, directions, other: [] }, opts, io);
}

function showListing(file: string, io: ShowIO): void {
  // columns are sized by the first rows, then the listing streams
  const pending: ListingRow[] = [];
  let widths: { src: number; dst: number } | null = null;
  let t0: number | null = null;
  const flowsWithMany = new Set<string>();
  const emit = (r: ListingRow): void => {
    if (widths) {
      io.out(formatListing([r], widths)[1]);
      return;
    }
    pending.push(r);
    if (pending.length >= 1000) flush();
  };
  const flush = (): void => {
    if (widths) return;
    widths = { src: Math.max(3, ...pending.map((r) => r.src.length)), dst: Math.max(3, ...pending.map((r) => r.dst.length)) };
    for (const line of formatListing(pending, widths)) io.out(line);
    pending.length = 0;
  };
  const analyzer = new FlowAnalyzer({
    keepSegments: false,
    onSegment: (s) => {
      t0 ??= s.timeUs;
      if (s.current > 1) flowsWithMany.add(s.flow);
      emit(listingRow(s, t0, flowsWithMany.has(s.flow)));
    },
    onOther: (o) => {
      t0 ??= o.timeUs;
      emit({ number: o.number, timeS: (o.timeUs - t0) / 1e6, direction: '?', src: '', dst: '', summary: o.summary });
    },
  });
  const warnings = stream(file, analyzer);
  if (!widths && pending.length === 0) io.out('(no frames: nothing crossed the wire)');
  else flush();
  for (const w of warnings) io.warn(w);
}
