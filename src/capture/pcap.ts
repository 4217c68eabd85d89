// Captures in and out.
//  - Writers: classic pcap (LINKTYPE_RAW, microsecond timestamps — what every tool reads), frame
//    by frame as frames cross; and pcapng with a comment per frame (twlab's marks, shown by
//    Wireshark in the packet list and Expert Info, printed by `tshark -e frame.comment`).
//  - Readers: classic pcap in either byte order, micro- or nanosecond timestamps; pcapng
//    (section header, interface descriptions with any link type below and any if_tsresol /
//    if_tsoffset, enhanced, simple and obsolete packet blocks, several interfaces and sections,
//    both byte orders; other blocks skipped). Records stream from a file in chunks with bounded
//    memory; a capture cut short mid-frame yields every whole frame and one warning.
import * as fs from 'node:fs';

export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
/** OpenBSD's loopback: LINKTYPE_NULL's 4-byte address family, in network byte order */
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BOM = 0x1a2b3c4d;
const SNAPLEN = 262144;
/** the largest frame or block a reader accepts: anything bigger is corruption, not a frame */
const MAX_RECORD = 64 << 20;

export type PcapErrorCode = 'PCAP_NOT_FOUND' | 'PCAP_BAD_MAGIC' | 'PCAP_TRUNCATED' | 'PCAP_BAD_RECORD';

/** A file that is no capture twlab can read (a CodedError: src/lab/api/errors.ts). */
export class PcapError extends Error {
  readonly exitCode = 2;
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
  /** the link type of the frame's interface (pcapng captures may mix them) */
  linkType: number;
}

export interface PcapFile {
  format: 'pcap' | 'pcapng';
  /** the first interface's link type */
  linkType: number;
  nanosecond: boolean;
  snaplen: number;
  records: PcapRecord[];
  /** one line each: what was wrong with the file but did not stop the reading (a cut-short last frame) */
  warnings: string[];
}

// ---------------------------------------------------------------- writers

/**
 * Appends frames to a classic pcap as they happen. Each frame is one write(2) of header+bytes,
 * so whatever the process has written survives its death and the file stays readable.
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

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** One pcapng option: code, length, value padded to 32 bits. */
function option(code: number, value: Uint8Array): Buffer {
  const b = Buffer.alloc(4 + value.length + pad4(value.length));
  b.writeUInt16LE(code, 0);
  b.writeUInt16LE(value.length, 2);
  b.set(value, 4);
  return b;
}

function block(type: number, body: Buffer): Buffer {
  const total = 12 + body.length;
  const b = Buffer.alloc(total);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(total, 4);
  body.copy(b, 8);
  b.writeUInt32LE(total, total - 4);
  return b;
}

const END_OF_OPTIONS = Buffer.alloc(4);

/**
 * Writes a pcapng (little-endian, one interface, microsecond timestamps) whose frames may carry a
 * comment (opt_comment): the annotated copy of a capture, written at once with its marks.
 */
export class PcapngWriter {
  #fd: number | null;
  #count = 0;
  readonly path: string;

  constructor(path: string, opts: { linkType?: number; application?: string } = {}) {
    this.path = path;
    this.#fd = fs.openSync(path, 'w', 0o644);
    const shb = Buffer.alloc(16);
    shb.writeUInt32LE(PCAPNG_BOM, 0);
    shb.writeUInt16LE(1, 4); // version 1.0
    shb.writeUInt16LE(0, 6);
    shb.writeBigInt64LE(-1n, 8); // section length unknown
    const app = option(4, Buffer.from(opts.application ?? 'twlab')); // shb_userappl
    fs.writeSync(this.#fd, block(PCAPNG_SHB, Buffer.concat([shb, app, END_OF_OPTIONS])));
    const idb = Buffer.alloc(8);
    idb.writeUInt16LE(opts.linkType ?? LINKTYPE_RAW, 0);
    idb.writeUInt32LE(SNAPLEN, 4);
    fs.writeSync(this.#fd, block(1, Buffer.concat([idb, option(9, Uint8Array.of(6)), END_OF_OPTIONS]))); // if_tsresol: 10^-6
  }

  get count(): number {
    return this.#count;
  }

  write(timeUs: number, frame: Uint8Array, origLength = frame.length, comment?: string): void {
    if (this.#fd === null) throw new Error(`pcapng ${this.path} already closed`);
    const caplen = Math.min(frame.length, SNAPLEN);
    const head = Buffer.alloc(20);
    head.writeUInt32LE(0, 0); // interface 0
    head.writeUInt32LE(Math.floor(timeUs / 4294967296), 4);
    head.writeUInt32LE((timeUs % 4294967296) >>> 0, 8);
    head.writeUInt32LE(caplen, 12);
    head.writeUInt32LE(Math.max(origLength, caplen), 16);
    const parts = [head, Buffer.from(frame.buffer, frame.byteOffset, caplen), Buffer.alloc(pad4(caplen))];
    if (comment) parts.push(option(1, Buffer.from(comment)), END_OF_OPTIONS);
    fs.writeSync(this.#fd, block(6, Buffer.concat(parts)));
    this.#count++;
  }

  close(): void {
    if (this.#fd === null) return;
    fs.closeSync(this.#fd);
    this.#fd = null;
  }
}

// ---------------------------------------------------------------- reading bytes

/**
 * The bytes of a capture, from memory or streamed from a file in chunks. `take(n)` returns a view
 * of the next n bytes (valid until the next call when streaming), or null at the end of the
 * data — with `short` set to how many bytes there were when fewer than n were left.
 */
class Bytes {
  #buf: Buffer;
  #start = 0;
  #end: number;
  #fd: number | null;
  #eof: boolean;
  /** bytes consumed before the buffer's start */
  #base = 0;
  /** the file's size when it is a regular file (a record claiming more than is left is not read into memory) */
  #size = Infinity;
  short = 0;

  constructor(source: Buffer | number) {
    if (typeof source === 'number') {
      this.#fd = source;
      const st = fs.fstatSync(source);
      if (st.isFile()) this.#size = st.size;
      this.#buf = Buffer.allocUnsafe(Math.min(4 << 20, Math.max(64 << 10, this.#size)));
      this.#end = 0;
      this.#eof = false;
    } else {
      this.#fd = null;
      this.#buf = source;
      this.#end = source.length;
      this.#eof = true;
    }
  }

  /** offset in the file of the next byte */
  get offset(): number {
    return this.#base + this.#start;
  }

  #fill(n: number): void {
    if (this.#eof || this.#fd === null) return;
    if (this.#start > 0) {
      this.#buf.copy(this.#buf, 0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#base += this.#start;
      this.#start = 0;
    }
    // more than the file holds: read what is left (for `short`) without growing the buffer to n
    if (this.#base + n > this.#size) n = Math.min(n, this.#buf.length);
    if (n > this.#buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(n, this.#buf.length * 2));
      this.#buf.copy(bigger, 0, 0, this.#end);
      this.#buf = bigger;
    }
    while (this.#end < n && !this.#eof) {
      let got: number;
      try {
        got = fs.readSync(this.#fd, this.#buf, this.#end, this.#buf.length - this.#end, null);
      } catch (e) {
        // a pipe (twlab show -) whose writer is behind: wait for it
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      if (got === 0) this.#eof = true;
      this.#end += got;
    }
  }

  take(n: number): Buffer | null {
    const at = this.skip(n);
    return at < 0 ? null : this.#buf.subarray(at, at + n);
  }

  /**
   * Consumes the next n bytes and returns where they start in `buffer` (valid until the next
   * call), or -1 at the end of the data (with `short` set): take() without making a view.
   */
  skip(n: number): number {
    if (this.#end - this.#start < n) this.#fill(n);
    const have = this.#end - this.#start;
    if (have < n) {
      // (a regular file's remaining bytes, also when a corrupt length made us stop reading early)
      this.short = Number.isFinite(this.#size) ? Math.max(have, Math.min(n, this.#size - this.offset)) : have;
      this.#start = this.#end;
      return -1;
    }
    const at = this.#start;
    this.#start += n;
    return at;
  }

  get buffer(): Buffer {
    return this.#buf;
  }

  /** true when nothing is left */
  done(): boolean {
    if (this.#end > this.#start) return false;
    this.#fill(1);
    return this.#end === this.#start;
  }
}

// ---------------------------------------------------------------- the reader

export interface CaptureInfo {
  format: 'pcap' | 'pcapng';
  linkType: number;
  nanosecond: boolean;
  snaplen: number;
}

interface Interface {
  linkType: number;
  snaplen: number;
  /** timestamp units per second */
  unitsPerSecond: number;
  offsetSeconds: number;
}

/**
 * Reads a capture record by record. Iterate it once; `info` is known after construction (for a
 * pcapng, its link type once the first interface block is read), `warnings` once the iteration
 * ends. Records read from a file are views, valid until the next record.
 */
export class CaptureReader implements Iterable<PcapRecord> {
  readonly name: string;
  readonly info: CaptureInfo;
  readonly warnings: string[] = [];
  #bytes: Bytes;
  #fd: number | null;
  #head: Buffer;

  constructor(source: Buffer | number, name: string, fd: number | null = null) {
    this.name = name;
    this.#fd = fd;
    this.#bytes = new Bytes(source);
    const head = this.#bytes.take(4);
    if (!head) {
      this.close();
      throw new PcapError('PCAP_TRUNCATED', `${name}: empty or truncated file (${this.#bytes.short} bytes)`);
    }
    this.#head = Buffer.from(head);
    const m = this.#head.readUInt32LE(0);
    if (m === PCAPNG_SHB) this.info = { format: 'pcapng', linkType: -1, nanosecond: false, snaplen: 0 };
    else if (m === MAGIC_US || m === MAGIC_NS || this.#head.readUInt32BE(0) === MAGIC_US || this.#head.readUInt32BE(0) === MAGIC_NS) {
      const le = m === MAGIC_US || m === MAGIC_NS;
      const rest = this.#bytes.take(20);
      if (!rest) {
        this.close();
        throw new PcapError('PCAP_TRUNCATED', `${name}: truncated pcap header (${4 + this.#bytes.short} of 24 bytes)`);
      }
      const u32 = (o: number): number => (le ? rest.readUInt32LE(o) : rest.readUInt32BE(o));
      this.info = {
        format: 'pcap',
        linkType: u32(16) & 0x0fffffff,
        nanosecond: (le ? m : this.#head.readUInt32BE(0)) === MAGIC_NS,
        snaplen: u32(12),
      };
      this.#le = le;
    } else {
      this.close();
      throw new PcapError('PCAP_BAD_MAGIC', `${name}: not a pcap or pcapng file (magic 0x${m.toString(16).padStart(8, '0')})`);
    }
    if (this.info.format === 'pcapng') this.#readFirstSection();
  }

  #le = true;
  #interfaces: Interface[] = [];
  #number = 0;
  #lastUs = 0;

  close(): void {
    if (this.#fd !== null) fs.closeSync(this.#fd);
    this.#fd = null;
  }

  *[Symbol.iterator](): Generator<PcapRecord> {
    try {
      if (this.info.format === 'pcap') yield* this.#classic();
      else yield* this.#pcapng();
    } finally {
      this.close();
    }
  }

  #cut(what: string): void {
    this.warnings.push(`${this.name}: ${what}; showing the ${this.#number} whole frame${this.#number === 1 ? '' : 's'} before it`);
  }

  *#classic(): Generator<PcapRecord> {
    const le = this.#le;
    const ns = this.info.nanosecond;
    const limit = Math.max(this.info.snaplen, SNAPLEN);
    for (;;) {
      if (this.#bytes.done()) return;
      const at = this.#bytes.offset;
      const o = this.#bytes.skip(16);
      if (o < 0)
        return this.#cut(`frame ${this.#number + 1} cut short in its record header at byte ${at} (${this.#bytes.short} of 16 bytes)`);
      const h = this.#bytes.buffer;
      const sec = le ? h.readUInt32LE(o) : h.readUInt32BE(o);
      const frac = le ? h.readUInt32LE(o + 4) : h.readUInt32BE(o + 4);
      const caplen = le ? h.readUInt32LE(o + 8) : h.readUInt32BE(o + 8);
      const origLength = le ? h.readUInt32LE(o + 12) : h.readUInt32BE(o + 12);
      if (caplen > limit || caplen > MAX_RECORD)
        throw new PcapError(
          'PCAP_BAD_RECORD',
          `${this.name}: frame ${this.#number + 1} at byte ${at} claims ${caplen} bytes (snaplen ${this.info.snaplen})`,
        );
      const data = this.#bytes.take(caplen);
      if (!data) return this.#cut(`frame ${this.#number + 1} truncated (${this.#bytes.short} of ${caplen} bytes)`);
      yield {
        number: ++this.#number,
        timeUs: sec * 1e6 + (ns ? Math.floor(frac / 1000) : frac),
        data,
        origLength,
        linkType: this.info.linkType,
      };
    }
  }

  #u32(b: Buffer, o: number): number {
    return this.#le ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }
  #u16(b: Buffer, o: number): number {
    return this.#le ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }

  /** Reads the first section header (its byte order); the interfaces come with the blocks that follow. */
  #readFirstSection(): void {
    const lenBytes = this.#bytes.take(4);
    if (!lenBytes) throw new PcapError('PCAP_TRUNCATED', `${this.name}: truncated pcapng section header`);
    const cut = this.#sectionHeader(Buffer.concat([this.#head, lenBytes]), 0);
    if (cut) throw new PcapError('PCAP_TRUNCATED', `${this.name}: ${cut}`);
  }

  /**
   * Consumes a section header block given its first 8 bytes: a new section, its byte order, no
   * interfaces yet. Returns what was cut short when the file ends inside it (null when whole).
   */
  #sectionHeader(first8: Buffer, at: number): string | null {
    const bomBytes = this.#bytes.take(4);
    if (!bomBytes) return `a section header cut short at byte ${at}`;
    const bom = bomBytes.readUInt32LE(0);
    if (bom === PCAPNG_BOM) this.#le = true;
    else if (bomBytes.readUInt32BE(0) === PCAPNG_BOM) this.#le = false;
    else
      throw new PcapError(
        'PCAP_BAD_MAGIC',
        `${this.name}: pcapng section header at byte ${at} with a bad byte-order magic 0x${bom.toString(16)}`,
      );
    const total = this.#u32(first8, 4);
    if (total < 28 || total % 4 !== 0 || total > MAX_RECORD)
      throw this.#bad(
        `pcapng section header at byte ${at} claims ${total} bytes${total < 28 ? ', shorter than its 28-byte fixed part' : ''}`,
      );
    const rest = this.#bytes.take(total - 12);
    if (!rest) return `a section header cut short at byte ${at} (${12 + this.#bytes.short} of ${total} bytes)`;
    const trailer = this.#u32(rest, total - 16);
    if (trailer !== total)
      throw this.#bad(`pcapng section header at byte ${at}: its length fields disagree (${total} at the start, ${trailer} at the end)`);
    this.#interfaces = [];
    return null;
  }

  /** An interface description block's fields (without header and trailer): link type, snaplen, and the options that set its clock. */
  #interface(body: Buffer, at: number): void {
    const linkType = this.#u16(body, 0);
    const snaplen = this.#u32(body, 4);
    let unitsPerSecond = 1e6;
    let offsetSeconds = 0;
    for (let o = 8; o + 4 <= body.length; ) {
      const code = this.#u16(body, o);
      const len = this.#u16(body, o + 2);
      if (code === 0) break;
      if (o + 4 + len > body.length)
        throw this.#bad(`pcapng interface description block at byte ${at}: option ${code} of ${len} bytes runs past the block`);
      if (code === 9 && len >= 1) {
        const v = body[o + 4]!;
        unitsPerSecond = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
      } else if (code === 14 && len >= 8) offsetSeconds = Number(this.#le ? body.readBigInt64LE(o + 4) : body.readBigInt64BE(o + 4));
      o += 4 + len + pad4(len);
    }
    this.#interfaces.push({ linkType, snaplen, unitsPerSecond, offsetSeconds });
    if (this.info.linkType === -1) Object.assign(this.info, { linkType, snaplen, nanosecond: unitsPerSecond > 1e6 });
  }

  #timeUs(iface: Interface, high: number, low: number): number {
    if (iface.unitsPerSecond === 1e6) return high * 4294967296 + low + iface.offsetSeconds * 1e6;
    const units = (BigInt(high) << 32n) | BigInt(low);
    return Number((units * 1_000_000n) / BigInt(iface.unitsPerSecond)) + iface.offsetSeconds * 1e6;
  }

  *#pcapng(): Generator<PcapRecord> {
    for (;;) {
      if (this.#bytes.done()) return;
      const at = this.#bytes.offset;
      const h = this.#bytes.take(8);
      if (!h) return this.#cut(`a block cut short at byte ${at}`);
      if (h.readUInt32LE(0) === PCAPNG_SHB) {
        const cut = this.#sectionHeader(Buffer.from(h), at);
        if (cut) return this.#cut(cut);
        continue;
      }
      const type = this.#u32(h, 0);
      const total = this.#u32(h, 4);
      const name = blockName(type);
      // every length is checked before a field is read: a block shorter than its type's fixed part,
      // or whose two length fields disagree, is corruption (one line), not a capture cut short
      const fixed = BLOCK_FIXED[type] ?? 12;
      if (total % 4 !== 0 || total > MAX_RECORD)
        throw this.#bad(`${name} at byte ${at} claims ${total} bytes${total % 4 ? ' (not a multiple of 4)' : ''}`);
      if (total < fixed) throw this.#bad(`${name} at byte ${at} is ${total} bytes, shorter than its ${fixed}-byte fixed part`);
      const body = this.#bytes.take(total - 8);
      if (!body)
        return this.#cut(
          `${type === 6 || type === 3 || type === 2 ? `frame ${this.#number + 1}` : `a block`} ` +
            `truncated at byte ${at} (${8 + this.#bytes.short} of ${total} bytes)`,
        );
      const trailer = this.#u32(body, total - 12);
      if (trailer !== total)
        throw this.#bad(`${name} at byte ${at}: its length fields disagree (${total} at the start, ${trailer} at the end)`);
      const fields = body.subarray(0, total - 12);
      if (type === 1) {
        this.#interface(fields, at);
        continue;
      }
      if (type === 6 || type === 2) {
        // enhanced (6) or obsolete (2) packet block
        const obsolete = type === 2;
        const id = obsolete ? this.#u16(fields, 0) : this.#u32(fields, 0);
        const iface = this.#interfaces[id];
        if (!iface) throw this.#bad(`frame ${this.#number + 1} at byte ${at} names interface ${id}, which has no description block`);
        const caplen = this.#u32(fields, 12);
        if (20 + caplen > fields.length)
          throw this.#bad(`frame ${this.#number + 1} at byte ${at} claims ${caplen} bytes in a ${total}-byte block`);
        const timeUs = this.#timeUs(iface, this.#u32(fields, 4), this.#u32(fields, 8));
        this.#lastUs = timeUs;
        yield {
          number: ++this.#number,
          timeUs,
          data: fields.subarray(20, 20 + caplen),
          origLength: this.#u32(fields, 16),
          linkType: iface.linkType,
        };
        continue;
      }
      if (type === 3) {
        // simple packet block: no timestamp, interface 0
        const iface = this.#interfaces[0];
        if (!iface) throw this.#bad(`a simple packet block at byte ${at} before any interface description`);
        const origLength = this.#u32(fields, 0);
        const caplen = Math.min(origLength, iface.snaplen || origLength, fields.length - 4);
        yield { number: ++this.#number, timeUs: this.#lastUs, data: fields.subarray(4, 4 + caplen), origLength, linkType: iface.linkType };
      }
      // any other block (name resolution, statistics, secrets, custom): skipped
    }
  }

  #bad(what: string): PcapError {
    return new PcapError('PCAP_BAD_RECORD', `${this.name}: ${what}`);
  }
}

/** The smallest whole block of each pcapng type: header and trailer (12 bytes) and the fixed fields. */
const BLOCK_FIXED: Record<number, number> = { [PCAPNG_SHB]: 28, 1: 20, 2: 32, 3: 16, 6: 32 };

function blockName(type: number): string {
  switch (type) {
    case 1:
      return 'pcapng interface description block';
    case 2:
      return 'pcapng obsolete packet block';
    case 3:
      return 'pcapng simple packet block';
    case 6:
      return 'pcapng enhanced packet block';
    default:
      return `pcapng block of type 0x${type.toString(16)}`;
  }
}

/** What openCapture adds when a name is not a regular file (a FIFO, a device): how to give a pipe instead. */
const PIPE_HINT = '; to read a capture from a pipe, give it on standard input: … | twlab show -';

/**
 * Opens a capture file for streaming (`-`: standard input, a capture piped in); throws PcapError
 * (one line) when it cannot be read at all. Only regular files are opened by name: opening a FIFO
 * would wait, silently, for a writer that may never come.
 */
export function openCapture(path: string): CaptureReader {
  if (path === '-') return new CaptureReader(0, 'standard input');
  let fd: number;
  try {
    const st = fs.statSync(path);
    const kind = st.isDirectory()
      ? 'a directory'
      : st.isFIFO()
        ? 'a FIFO (named pipe)'
        : st.isSocket()
          ? 'a socket'
          : st.isCharacterDevice()
            ? 'a character device'
            : st.isBlockDevice()
              ? 'a block device'
              : null;
    if (kind) throw Object.assign(new Error(kind), { code: 'NOT_A_FILE' });
    fd = fs.openSync(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT'
        ? 'no such file'
        : err.code === 'EACCES'
          ? 'permission denied'
          : err.code === 'NOT_A_FILE'
            ? `${err.message}, not a capture file${err.message.includes('directory') ? '' : PIPE_HINT}`
            : err.message;
    throw new PcapError('PCAP_NOT_FOUND', `${path}: ${why}`);
  }
  return new CaptureReader(fd, path, fd);
}

function collect(reader: CaptureReader, copy: boolean): PcapFile {
  const records: PcapRecord[] = [];
  for (const r of reader) records.push(copy ? { ...r, data: Uint8Array.from(r.data) } : r);
  return { ...reader.info, records, warnings: reader.warnings };
}

/** Parses a whole capture in memory (classic pcap or pcapng); throws PcapError (one line, with the byte offset) on bad input. */
export function parsePcap(bytes: Uint8Array, name = 'pcap'): PcapFile {
  return collect(new CaptureReader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), name), false);
}

/** Reads a whole capture file (for lab evidence and small captures; `openCapture` streams big ones). */
export function readPcap(path: string): PcapFile {
  return collect(openCapture(path), true);
}

/**
 * Whether frames of this link type are bare IP packets, as twlab's own captures are (the TUN and
 * the tap link write LINKTYPE_RAW): only there can an address say which side is the kernel under
 * test. A capture with link-layer headers (tcpdump on lo or eth0, Linux cooked) is anyone's.
 */
export function isRawIp(linkType: number): boolean {
  return linkType === LINKTYPE_RAW || linkType === LINKTYPE_IPV4 || linkType === LINKTYPE_IPV6;
}

/** The IP packet inside a captured frame, for the link types twlab understands; null otherwise. */
export function ipPayloadOf(linkType: number, data: Uint8Array): Uint8Array | null {
  switch (linkType) {
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6:
      return data;
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP:
      // the address family (AF_INET, or AF_INET6: 10, 24, 28 or 30 by OS) says no more than the IP version does
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
