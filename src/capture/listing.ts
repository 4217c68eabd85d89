// A readable per-frame listing of a capture: time, direction, flags, relative seq/ack, length,
// incarnation and stray marks. Pure: from a parsed pcap to lines.
import { analyzeTcp, type FlowSegment } from './flows';
import { KERNEL_ADDRESSES } from '../wire/address-plan';
import { isRawIp, type PcapFile } from './pcap';

const NONE: ReadonlySet<string> = new Set();

/**
 * The addresses that mark the kernel's side in frames of this link type: twlab's, in its own
 * captures (bare IP); none in anyone else's, where 192.0.2.1 or 2001:db8::1 is just a host (a
 * tcpdump of two kernel sockets on lo names no kernel and no peer: its ends are client and server).
 */
export function kernelAddressesFor(linkType: number): ReadonlySet<string> {
  return isRawIp(linkType) ? KERNEL_ADDRESSES : NONE;
}

export interface ListingRow {
  number: number;
  timeS: number;
  direction: string;
  src: string;
  dst: string;
  summary: string;
  incarnation?: number;
  strayFrom?: number;
}

function directionOf(src: string, dst: string, kernel: ReadonlySet<string>): string {
  return kernel.has(src) ? 'K→P' : kernel.has(dst) ? 'P→K' : '→';
}

/**
 * One segment's row; `incarnations` says whether its four-tuple has more than one (then each row
 * names its own); `kernel`, the addresses that mark the kernel's side (kernelAddressesFor).
 */
export function listingRow(s: FlowSegment, t0: number, incarnations: boolean, kernel: ReadonlySet<string> = KERNEL_ADDRESSES): ListingRow {
  const parts = [`[${s.flags}]`, `seq=${s.relSeq}`];
  if (s.flags.includes('ACK')) parts.push(`ack=${s.relAck ?? `${s.ack >>> 0} (abs)`}`);
  // the window in bytes (as Wireshark's "calculated window size"), the field as sent beside it when scaled
  const field = s.windowScale ? ` (field ${s.window} ×2^${s.windowScale})` : s.scaledWindow === null ? ' (field; scale unknown)' : '';
  parts.push(`win=${s.scaledWindow ?? s.window}${field}`, `len=${s.len}`);
  if (s.checksumOk === false) parts.push('BAD-CHECKSUM');
  if (incarnations) parts.push(`(incarnation ${s.current})`);
  if (s.strayFrom !== undefined) parts.push(`STRAY: a segment of incarnation ${s.strayFrom}`);
  if (s.snippet) parts.push(JSON.stringify(s.snippet)); // last: the payload's first bytes as text
  return {
    number: s.number,
    timeS: (s.timeUs - t0) / 1e6,
    direction: directionOf(s.srcAddress, s.dstAddress, kernel),
    src: s.src,
    dst: s.dst,
    summary: `TCP ${parts.join(' ')}`,
    incarnation: s.incarnation,
    strayFrom: s.strayFrom,
  };
}

export function listFrames(file: PcapFile): ListingRow[] {
  const t0 = file.records[0]?.timeUs ?? 0;
  const flows = analyzeTcp(file);
  const incarnationsOf = new Map<string, number>();
  for (const s of flows.segments) incarnationsOf.set(s.flow, Math.max(incarnationsOf.get(s.flow) ?? 0, s.incarnation));
  const kernel = kernelAddressesFor(file.linkType);
  const rows: ListingRow[] = flows.segments.map((s) => listingRow(s, t0, (incarnationsOf.get(s.flow) ?? 1) > 1, kernel));
  for (const o of flows.other)
    rows.push({ number: o.number, timeS: (o.timeUs - t0) / 1e6, direction: '?', src: '', dst: '', summary: o.summary });
  return rows.sort((a, b) => a.number - b.number);
}

/** The listing's lines: a header, then a row per frame; `widths` fixes the address columns (when streaming). */
export function formatListing(rows: readonly ListingRow[], widths?: { src: number; dst: number }): string[] {
  if (rows.length === 0) return ['(no frames: nothing crossed the TUN)'];
  // (a loop, not a spread into Math.max: a listing may have more rows than a call takes arguments)
  let srcW = widths?.src ?? 3;
  let dstW = widths?.dst ?? 3;
  if (!widths) {
    for (const r of rows) {
      srcW = Math.max(srcW, r.src.length);
      dstW = Math.max(dstW, r.dst.length);
    }
  }
  const head = `${'No.'.padStart(5)}  ${'Time (s)'.padStart(10)}  Dir  ${'Source'.padEnd(srcW)}    ${'Destination'.padEnd(dstW)}  Info`;
  return [
    head,
    ...rows.map((r) => {
      const when = `${String(r.number).padStart(5)}  ${r.timeS.toFixed(6).padStart(10)}  ${r.direction.padEnd(3)}`;
      return `${when}  ${r.src.padEnd(srcW)} →  ${r.dst.padEnd(dstW)}  ${r.summary}`;
    }),
  ];
}
