// What a guest boots from, made from a Debian kernel package's own files: the uncompressed
// kernel (qemu boots an ELF vmlinux through its PVH note, skipping the bzImage's self-
// decompression, which costs ~7 s under TCG), the modules the guest needs in load order (read
// from each module's .modinfo, since the package ships no modules.dep), and a newc cpio archive
// (the initramfs) holding our init and those modules. Pure functions over bytes, except where
// a decompressor runs (xz, zstd, gzip: the formats Debian's kernels and modules use).
import { spawnSync } from 'node:child_process';
import * as zlib from 'node:zlib';

/** The modules a guest needs: 9p over virtio for the host's root and the evidence share, and tun for the labs. */
export const GUEST_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'tun'] as const;

export class ImageError extends Error {}

function decompressWith(tool: string, args: string[], input: Uint8Array, what: string): Buffer {
  const r = spawnSync(tool, args, { input, maxBuffer: 1 << 30 });
  if (r.error) throw new ImageError(`cannot run ${tool} to unpack ${what}: ${r.error.message}`);
  if (r.status !== 0) throw new ImageError(`${tool} ${args.join(' ')} failed on ${what}: ${r.stderr.toString().trim().split('\n')[0]}`);
  return r.stdout;
}

/** Unpacks xz, zstd or gzip data by its magic bytes; anything else is returned as is. */
export function decompress(data: Uint8Array, what: string): Buffer {
  const head = Buffer.from(data.subarray(0, 6));
  if (head.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return decompressWith('xz', ['-dc', '--single-stream'], data, what);
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return decompressWith('zstd', ['-dcq'], data, what);
  if (head[0] === 0x1f && head[1] === 0x8b) return zlib.gunzipSync(data);
  return Buffer.from(data);
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/**
 * The vmlinux inside a bzImage: the setup header (boot protocol ≥ 2.08) gives the compressed
 * payload's offset and length; the build appends the uncompressed size as 4 bytes, which we
 * check (Documentation/arch/x86/boot.rst, "payload_offset").
 */
export function vmlinuxFromBzImage(bz: Uint8Array, what = 'the bzImage'): Buffer {
  const b = Buffer.from(bz.buffer, bz.byteOffset, bz.byteLength);
  if (b.length < 0x250 || b.toString('latin1', 0x202, 0x206) !== 'HdrS')
    throw new ImageError(`${what} is not a bzImage (no HdrS setup header)`);
  const version = b.readUInt16LE(0x206);
  if (version < 0x208) throw new ImageError(`${what}: boot protocol ${version.toString(16)} is older than 2.08 (no payload fields)`);
  const setupSects = b[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + b.readUInt32LE(0x248);
  const length = b.readUInt32LE(0x24c);
  if (start + length > b.length) throw new ImageError(`${what}: payload runs past the end of the file`);
  const payload = b.subarray(start, start + length);
  const size = payload.readUInt32LE(payload.length - 4);
  const vmlinux = decompress(payload.subarray(0, payload.length - 4), what);
  if (!vmlinux.subarray(0, 4).equals(ELF_MAGIC)) throw new ImageError(`${what}: the payload did not unpack to an ELF vmlinux`);
  if (vmlinux.length !== size) throw new ImageError(`${what}: unpacked ${vmlinux.length} bytes, the image says ${size}`);
  return vmlinux;
}

/** The key=value strings of an ELF object's .modinfo section (a kernel module's metadata). */
export function readModinfo(ko: Uint8Array): Map<string, string[]> {
  const b = Buffer.from(ko.buffer, ko.byteOffset, ko.byteLength);
  if (!b.subarray(0, 4).equals(ELF_MAGIC) || b[4] !== 2 || b[5] !== 1) throw new ImageError('not a 64-bit little-endian ELF module');
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  const section = (i: number): { name: number; offset: number; size: number } => {
    const o = shoff + i * shentsize;
    return { name: b.readUInt32LE(o), offset: Number(b.readBigUInt64LE(o + 0x18)), size: Number(b.readBigUInt64LE(o + 0x20)) };
  };
  const names = section(shstrndx);
  const nameAt = (off: number): string => {
    const from = names.offset + off;
    return b.toString('latin1', from, b.indexOf(0, from));
  };
  const info = new Map<string, string[]>();
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (nameAt(s.name) !== '.modinfo') continue;
    for (const entry of b.toString('latin1', s.offset, s.offset + s.size).split('\0')) {
      const eq = entry.indexOf('=');
      if (eq <= 0) continue;
      const k = entry.slice(0, eq);
      info.set(k, [...(info.get(k) ?? []), entry.slice(eq + 1)]);
    }
  }
  return info;
}

/** Module names compare with '-' and '_' as one (modprobe does the same). */
export const moduleKey = (name: string): string => name.replace(/-/g, '_');

/** `kernel/fs/9p/9p.ko.xz` → `9p` */
export function moduleName(file: string): string {
  return moduleKey(
    file
      .split('/')
      .pop()!
      .replace(/\.ko(\.(xz|zst|gz))?$/, ''),
  );
}

export interface ModuleSource {
  /** path under lib/modules/<release>/ of each module file, by module name */
  files: Map<string, string>;
  /** modules built into the kernel (modules.builtin): nothing to load */
  builtin: Set<string>;
  /** a module's `depends=` names */
  depends(name: string): string[];
}

/**
 * The modules to load, each after the ones it depends on; built-in ones are left out.
 * Throws naming a module that is neither a file nor built in.
 */
export function loadOrder(wanted: readonly string[], src: ModuleSource): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: string[]): void => {
    const key = moduleKey(name);
    if (seen.has(key) || src.builtin.has(key)) return;
    if (chain.includes(key)) throw new ImageError(`module dependency cycle: ${[...chain, key].join(' → ')}`);
    if (!src.files.has(key))
      throw new ImageError(
        `module ${key} is neither in the package nor built in${chain.length ? ` (needed by ${chain[chain.length - 1]})` : ''}`,
      );
    for (const dep of src.depends(key)) visit(dep, [...chain, key]);
    seen.add(key);
    order.push(key);
  };
  for (const w of wanted) visit(w, []);
  return order;
}

/** One entry of a newc cpio archive. */
export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Uint8Array; mode?: number }
  | { kind: 'char'; path: string; major: number; minor: number; mode?: number };

/** A newc ("070701") cpio archive, the format the kernel unpacks as an initramfs. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  const push = (name: string, mode: number, data: Uint8Array, rdev: [number, number] = [0, 0]): void => {
    const nameBytes = Buffer.from(name + '\0');
    const header =
      '070701' + [ino++, mode, 0, 0, mode & 0o40000 ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0].map(hex).join('');
    parts.push(Buffer.from(header, 'latin1'), nameBytes, pad4(110 + nameBytes.length), Buffer.from(data), pad4(data.length));
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (e.kind === 'dir') push(name, 0o40000 | (e.mode ?? 0o755), new Uint8Array());
    else if (e.kind === 'file') push(name, 0o100000 | (e.mode ?? 0o644), e.data);
    else push(name, 0o20000 | (e.mode ?? 0o600), new Uint8Array(), [e.major, e.minor]);
  }
  push('TRAILER!!!', 0, new Uint8Array());
  const out = Buffer.concat(parts);
  return Buffer.concat([out, Buffer.alloc((512 - (out.length % 512)) % 512)]);
}
