// Classic pcap (the format every tool reads): writer for LINKTYPE_RAW, microsecond timestamps;
// reader for classic pcap in either byte order, micro- or nanosecond timestamps.
import * as fs from 'node:fs';

export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const SNAPLEN = 262144;

export type PcapErrorCode = 'PCAP_NOT_FOUND' | 'PCAP_BAD_MAGIC' | 'PCAP_TRUNCATED' | 'PCAP_BAD_RECORD' | 'PCAP_PCAPNG';

export class PcapError extends Error {
  constructor(
    readonly code: PcapErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface PcapRecord {
  /** 1-based, as Wireshark numbers frames */
  number: number;
  /** wall time in microseconds */
  timeUs: number;
  /** the frame's bytes as captured (may be shorter than origLength) */
  data: Uint8Array;
  origLength: number;
}

export interface PcapFile {
  linkType: number;
  nanosecond: boolean;
  snaplen: number;
  records: PcapRecord[];
}

/**
 * Appends frames to a pcap as they happen. Each frame is one write(2) of header+bytes, so
 * whatever the process has written survives its death and the file stays readable.
 */
export class PcapWriter {
  #fd: number | null;
  #count = 0;
  readonly path: string;

  constructor(path: string, linkType = LINKTYPE_RAW) {
    this.path = path;
    this.#fd = fs.openSync(path, 'w', 0o644);
    const h = Buffer.alloc(24);
    h.writeUInt32LE(MAGIC_US, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8); // thiszone
    h.writeUInt32LE(0, 12); // sigfigs
    h.writeUInt32LE(SNAPLEN, 16);
    h.writeUInt32LE(linkType, 20);
    fs.writeSync(this.#fd, h);
  }

  get count(): number {
    return this.#count;
  }

  /** `origLength` > frame.length records a frame cut by a snaplen (its payload not kept). */
  write(timeUs: number, frame: Uint8Array, origLength = frame.length): void {
    if (this.#fd === null) throw new Error(`pcap ${this.path} already closed`);
    const caplen = Math.min(frame.length, SNAPLEN);
    const rec = Buffer.alloc(16 + caplen);
    const sec = Math.floor(timeUs / 1e6);
    rec.writeUInt32LE(sec >>> 0, 0);
    rec.writeUInt32LE(Math.floor(timeUs - sec * 1e6), 4);
    rec.writeUInt32LE(caplen, 8);
    rec.writeUInt32LE(Math.max(origLength, caplen), 12);
    rec.set(frame.subarray(0, caplen), 16);
    fs.writeSync(this.#fd, rec);
    this.#count++;
  }

  close(): void {
    if (this.#fd === null) return;
    fs.closeSync(this.#fd);
    this.#fd = null;
  }
}

/** Parses a whole classic pcap; throws PcapError (one line, with the byte offset) on bad input. */
export function parsePcap(bytes: Uint8Array, name = 'pcap'): PcapFile {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length >= 4 && b.readUInt32LE(0) === 0x0a0d0d0a) {
    throw new PcapError('PCAP_PCAPNG', `${name}: pcapng is not supported; convert it with \`editcap -F pcap ${name} out.pcap\``);
  }
  if (b.length < 24) throw new PcapError('PCAP_TRUNCATED', `${name}: truncated pcap header (${b.length} of 24 bytes)`);
  let le: boolean;
  let nanosecond: boolean;
  const m = b.readUInt32LE(0);
  if (m === MAGIC_US || m === MAGIC_NS) {
    le = true;
    nanosecond = m === MAGIC_NS;
  } else if (b.readUInt32BE(0) === MAGIC_US || b.readUInt32BE(0) === MAGIC_NS) {
    le = false;
    nanosecond = b.readUInt32BE(0) === MAGIC_NS;
  } else {
    throw new PcapError('PCAP_BAD_MAGIC', `${name}: not a pcap file (magic 0x${m.toString(16).padStart(8, '0')})`);
  }
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const snaplen = u32(16);
  const linkType = u32(20) & 0x0fffffff;
  const records: PcapRecord[] = [];
  let off = 24;
  while (off < b.length) {
    if (off + 16 > b.length) {
      throw new PcapError('PCAP_TRUNCATED', `${name}: truncated record header for frame ${records.length + 1} at byte ${off}`);
    }
    const sec = u32(off);
    const frac = u32(off + 4);
    const caplen = u32(off + 8);
    const origLength = u32(off + 12);
    if (caplen > Math.max(snaplen, SNAPLEN) || caplen > 0x4000000) {
      throw new PcapError('PCAP_BAD_RECORD', `${name}: frame ${records.length + 1} at byte ${off} claims ${caplen} bytes`);
    }
    if (off + 16 + caplen > b.length) {
      throw new PcapError('PCAP_TRUNCATED', `${name}: frame ${records.length + 1} truncated (${b.length - off - 16} of ${caplen} bytes)`);
    }
    records.push({
      number: records.length + 1,
      timeUs: sec * 1e6 + (nanosecond ? Math.floor(frac / 1000) : frac),
      data: b.subarray(off + 16, off + 16 + caplen),
      origLength,
    });
    off += 16 + caplen;
  }
  return { linkType, nanosecond, snaplen, records };
}

export function readPcap(path: string): PcapFile {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new PcapError('PCAP_NOT_FOUND', `${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  return parsePcap(bytes, path);
}

/** The IP packet inside a captured frame, for the link types twlab understands; null otherwise. */
export function ipPayloadOf(linkType: number, data: Uint8Array): Uint8Array | null {
  switch (linkType) {
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6:
      return data;
    case LINKTYPE_NULL:
      return data.length > 4 ? data.subarray(4) : null;
    case LINKTYPE_ETHERNET: {
      let off = 12;
      let type = data.length >= 14 ? (data[off]! << 8) | data[off + 1]! : -1;
      while ((type === 0x8100 || type === 0x88a8) && data.length >= off + 6) {
        off += 4;
        type = (data[off]! << 8) | data[off + 1]!;
      }
      return type === 0x0800 || type === 0x86dd ? data.subarray(off + 2) : null;
    }
    case LINKTYPE_LINUX_SLL: {
      if (data.length < 16) return null;
      const proto = (data[14]! << 8) | data[15]!;
      return proto === 0x0800 || proto === 0x86dd ? data.subarray(16) : null;
    }
    case LINKTYPE_LINUX_SLL2: {
      if (data.length < 20) return null;
      const proto = (data[0]! << 8) | data[1]!;
      return proto === 0x0800 || proto === 0x86dd ? data.subarray(20) : null;
    }
    default:
      return null;
  }
}
