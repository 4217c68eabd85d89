import * as path from 'node:path';
import { formatEndpoint, formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../wire/address';
import { FlowAnalyzer, TIME_WAIT_BOUND_US, type AnalyzerOptions, type FlowSegment, type FlowSummary, type SegmentFacts } from './flows';
import { layoutLadders, renderLadderText } from './ladder';
import { readTimelineEvents, type TimelineEvent } from './timeline';
import { formatListing, kernelAddressesFor, listingRow, type ListingRow } from './listing';
import { isRawIp, LINKTYPE_RAW, openCapture } from './pcap';
import { ConnectionSummaries, SummaryWriter, type ConnectionSummary } from './summary';

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

/**
 * The timeline.json next to a lab's capture, if there is one: its events of this capture's variant give the ladder its states and syscalls.
 */
function timelineBeside(file: string): TimelineEvent[] {
  const variant = path.basename(file).replace(/\.pcap(ng)?$/, '');
  return readTimelineEvents(path.dirname(file)).filter((e) => e.variant === variant);
}

/** What streaming a capture found besides its frames. */
interface Streamed {
  warnings: string[];
  /**
   * the link type of a capture whose every frame is bare IP (twlab's own captures, where the
   * kernel's address says which side it is), else the first other link type met (anyone's capture)
   */
  linkType: number;
}

/**
 * Streams a capture through the analyzer (its callbacks keep what they need); `onLinkType` hears
 * each frame's link type before the analyzer sees the frame.
 */
function stream(file: string, analyzer: FlowAnalyzer, onLinkType?: (linkType: number) => void): Streamed {
  const reader = openCapture(file);
  let linkType = LINKTYPE_RAW;
  for (const rec of reader) {
    if (!isRawIp(rec.linkType) && isRawIp(linkType)) linkType = rec.linkType;
    onLinkType?.(rec.linkType);
    analyzer.push(rec);
  }
  return { warnings: reader.warnings, linkType };
}

/**
 * An endpoint as flows name it ("192.0.2.1:80", "[2001:db8::1]:80": RFC 5952 text, so
 * [2001:DB8:0::1]:80 is the same endpoint), or null when `text` is none.
 */
function canonicalEndpoint(text: string): string | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text);
  if (!m || Number(m[3]) > 65535) return null;
  const v6 = m[1] !== undefined ? parseIPv6(m[1]) : null;
  const v4 = m[2] !== undefined ? parseIPv4(m[2]) : null;
  if (!v6 && !v4) return null;
  return formatEndpoint(v6 ? formatIPv6(v6) : formatIPv4(v4!), Number(m[3]));
}

/** Matches --conn against a connection: its number, or a four-tuple in either order (every connection on it). */
function connMatcher(conn: string): (flow: string, number: number) => boolean {
  if (/^\d+$/.test(conn)) return (_f, n) => n === Number(conn);
  const m = /^(.+:\d+)-(.+:\d+)$/.exec(conn.replace(/\s+/g, '').replace('↔', '-').replace('<>', '-'));
  const ends = m ? [canonicalEndpoint(m[1]!), canonicalEndpoint(m[2]!)] : [];
  if (!m || !ends[0] || !ends[1])
    throw new ShowError(
      `--conn takes a connection's number from --summary, or its four-tuple as address:port-address:port (an IPv6 address in ` +
        `brackets: [2001:db8::1]:80-[2001:db8::2]:40000), not ${JSON.stringify(conn)}`,
    );
  const [a, b] = (ends as string[]).sort();
  return (f) => f === `${a}<>${b}`;
}

/** A bad `twlab show` option (a CodedError: src/lab/api/errors.ts). */
export class ShowError extends Error {
  readonly code = 'BAD_USAGE';
  readonly exitCode = 2;
}

export function showCapture(file: string, opts: ShowOptions, io: ShowIO): void {
  if (opts.summary || opts.explain) return showSummary(file, opts, io);
  if (opts.conn) return showConnection(file, opts, io);
  if (opts.list) return showListing(file, io);
  // ladders: every segment kept, up to the limit; beyond it the summary (made in the same pass) stands in
  const limit = opts.ladderLimit ?? LADDER_LIMIT;
  const segments: FlowSegment[] = [];
  const other: FlowSummary['other'] = [];
  let nonTcp = 0;
  let over = false;
  const summary = new SummaryStream(opts, io, true);
  const analyzer = new FlowAnalyzer({
    keepSegments: false,
    ...summary.options,
    onSegment: (s) => {
      summary.push(s);
      if (over) return;
      if (segments.length < limit) return void segments.push(s);
      over = true;
      segments.length = 0;
      other.length = 0;
      io.out(`(more than ${limit} TCP segments: too many to draw; the summary follows — draw one connection with --conn N)`);
      summary.start();
    },
    onOther: (o) => {
      nonTcp++;
      if (!over && other.length < limit) other.push(o);
    },
  });
  const { warnings, linkType } = stream(file, analyzer);
  for (const w of warnings) io.warn(w);
  if (over) return summary.end(analyzer, nonTcp);
  drawLadders(file, { segments: asIncarnations(segments), directions: analyzer.summary().directions, other }, linkType, opts, io);
}

/**
 * The summary as the capture streams: a connection's line is written once the analyzer forgets
 * it (ended, and its TIME_WAIT would be over), its facts dropped; the rest at the end. Held back
 * (`held`) until `start()` when it may not be wanted (the ladders' fallback).
 */
class SummaryStream {
  readonly #summaries = new ConnectionSummaries();
  readonly #writer: SummaryWriter;
  #held: ConnectionSummary[] | null;
  readonly #opts: ShowOptions;
  readonly #io: ShowIO;

  constructor(opts: ShowOptions, io: ShowIO, held = false) {
    this.#opts = opts;
    this.#io = io;
    this.#writer = new SummaryWriter((line) => io.out(line), { explain: opts.explain });
    this.#held = held ? [] : null;
  }

  /** for FlowAnalyzer: forget ended connections, and write them out */
  get options(): Pick<AnalyzerOptions, 'forgetAfterUs' | 'onForget'> {
    return {
      forgetAfterUs: TIME_WAIT_BOUND_US,
      onForget: (conn, names) => {
        const c = this.#summaries.retire(conn, { flow: names.key, endpoints: names.ends });
        if (!c) return;
        if (this.#held) this.#held.push(c);
        else this.#writer.add(c);
      },
    };
  }

  push(s: SegmentFacts): void {
    this.#summaries.push(s);
  }

  start(): void {
    for (const c of this.#held ?? []) this.#writer.add(c);
    this.#held = null;
  }

  end(analyzer: FlowAnalyzer, nonTcp: number): void {
    this.start();
    analyzer.finish();
    for (const { conn, names } of analyzer.remembered()) {
      const c = this.#summaries.retire(conn, { flow: names.key, endpoints: names.ends });
      if (c) this.#writer.add(c);
    }
    const forgotten = analyzer.forgotten;
    this.#writer.end();
    const n = this.#writer.count;
    const io = this.#io;
    const explainHint = this.#opts.explain ? '' : '; --explain says why each ended as it did';
    io.out(
      `(${n} connection${n === 1 ? '' : 's'}${nonTcp ? `, ${nonTcp} frames that are not TCP` : ''}; ` +
        `left/right: the endpoints as the connection column names them${explainHint})`,
    );
    if (forgotten) io.out(`(old-duplicate detection forgot the segments of ${forgotten} closed incarnations to stay within memory)`);
  }
}

/**
 * Connections on one four-tuple — a later one began after the earlier was forgotten — drawn in
 * one ladder as its incarnations: the later connection's incarnations are counted on.
 */
function asIncarnations(segments: readonly FlowSegment[]): FlowSegment[] {
  const seen = new Map<string, { conn: number; offset: number; top: number }>();
  return segments.map((s) => {
    let k = seen.get(s.flow);
    if (!k) seen.set(s.flow, (k = { conn: s.conn, offset: 0, top: 0 }));
    if (k.conn !== s.conn) Object.assign(k, { conn: s.conn, offset: k.offset + k.top, top: 0 });
    k.top = Math.max(k.top, s.current);
    if (k.offset === 0) return s;
    return {
      ...s,
      incarnation: s.incarnation + k.offset,
      current: s.current + k.offset,
      strayFrom: s.strayFrom === undefined ? undefined : s.strayFrom + k.offset,
    };
  });
}

function drawLadders(file: string, flows: FlowSummary, linkType: number, opts: ShowOptions, io: ShowIO): void {
  const ladders = layoutLadders(flows, timelineBeside(file), undefined, kernelAddressesFor(linkType));
  if (ladders.length === 0 && flows.other.length === 0) io.out('(no frames: nothing crossed the wire)');
  for (const l of ladders) {
    for (const line of renderLadderText(l, { colour: !!opts.colour, columns: opts.columns })) io.out(line);
    io.out();
  }
  for (const o of flows.other) io.out(`   #${o.number}  ${o.summary}`);
}

function showSummary(file: string, opts: ShowOptions, io: ShowIO): void {
  const summary = new SummaryStream(opts, io);
  let other = 0;
  const analyzer = new FlowAnalyzer({
    keepSegments: false,
    checksums: false,
    directions: false,
    ...summary.options,
    onFacts: (s) => summary.push(s),
    onOther: () => other++,
  });
  const { warnings } = stream(file, analyzer);
  for (const w of warnings) io.warn(w);
  summary.end(analyzer, other);
}

/**
 * One connection's ladder (or every connection on a four-tuple). Like the ladders, it keeps at
 * most the ladder limit of segments: the first half and the last half, the middle left out.
 */
function showConnection(file: string, opts: ShowOptions, io: ShowIO): void {
  const match = connMatcher(opts.conn!);
  const limit = opts.ladderLimit ?? LADDER_LIMIT;
  const head: FlowSegment[] = [];
  const tail: FlowSegment[] = [];
  let tailAt = 0;
  let chosen = 0;
  let count = 0;
  const wanted = new Map<number, boolean>();
  const analyzer = new FlowAnalyzer({
    keepSegments: false,
    forgetAfterUs: TIME_WAIT_BOUND_US,
    onForget: (conn) => wanted.delete(conn),
    onSegment: (s) => {
      let want = wanted.get(s.conn);
      if (want === undefined) wanted.set(s.conn, (want = match(s.flow, s.conn)));
      if (!want) return;
      chosen ||= s.conn;
      count++;
      if (head.length < Math.ceil(limit / 2)) return void head.push(s);
      // the latest segments in a ring
      if (tail.length < Math.floor(limit / 2)) tail.push(s);
      else tail[tailAt] = s;
      tailAt = (tailAt + 1) % Math.max(1, Math.floor(limit / 2));
    },
  });
  const { warnings, linkType } = stream(file, analyzer);
  for (const w of warnings) io.warn(w);
  if (!chosen) throw new ShowError(`${file}: no connection ${opts.conn} (it has ${analyzer.connections}; see --summary)`);
  const last = tail.length < Math.floor(limit / 2) ? tail : [...tail.slice(tailAt), ...tail.slice(0, tailAt)];
  const segments = asIncarnations([...head, ...last]);
  if (count > segments.length) {
    const gapFrom = head[head.length - 1]!.number;
    const gapTo = last[0]!.number;
    io.out(
      `(connection ${opts.conn} has ${count} segments, more than ${limit} to draw: ` +
        `the first ${head.length} and the last ${last.length} are drawn; ${count - segments.length} between frames ` +
        `#${gapFrom} and #${gapTo} are left out)`,
    );
  }
  const directions = Object.fromEntries(
    Object.entries(analyzer.summary().directions).filter(([d]) => segments.some((s) => s.direction === d)),
  );
  drawLadders(file, { segments, directions, other: [] }, linkType, opts, io);
}

function showListing(file: string, io: ShowIO): void {
  // columns are sized by the first rows, then the listing streams
  const pending: ListingRow[] = [];
  let widths: { src: number; dst: number } | null = null;
  let t0: number | null = null;
  const flowsWithMany = new Set<string>();
  // each frame's kernel addresses by its own link type (a pcapng may mix interfaces)
  let kernel = kernelAddressesFor(LINKTYPE_RAW);
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
    forgetAfterUs: TIME_WAIT_BOUND_US,
    onSegment: (s) => {
      t0 ??= s.timeUs;
      if (s.current > 1) flowsWithMany.add(s.flow);
      emit(listingRow(s, t0, flowsWithMany.has(s.flow), kernel));
    },
    onOther: (o) => {
      t0 ??= o.timeUs;
      emit({ number: o.number, timeS: (o.timeUs - t0) / 1e6, direction: '?', src: '', dst: '', summary: o.summary });
    },
  });
  const { warnings } = stream(file, analyzer, (linkType) => (kernel = kernelAddressesFor(linkType)));
  if (!widths && pending.length === 0) io.out('(no frames: nothing crossed the wire)');
  else flush();
  for (const w of warnings) io.warn(w);
}
