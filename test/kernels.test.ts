// The kernel matrix in memory: naming kernels, picking Debian's newest, the bzImage, module
// metadata and load order, the initramfs archive, and the side-by-side comparison.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { compareClaims, compareItems, renderComparisonText, type KernelColumn } from '../src/lab/report/compare';
import { BIND_MATRIX_COMPARISON, type BindCell } from '../labs/01-bind-matrix/compare';
import type { ClaimResult, LabResult, Verdict } from '../src/lab/api/types';
import { compareReleases, parseKernelList, resolveKernel, seriesOf, type CachedKernel, type DebianKernel } from '../src/kernels/debian';
import { cpioNewc, ImageError, loadOrder, moduleName, readModinfo, vmlinuxFromBzImage } from '../src/kernels/image';
import { hasTool, removeTmpDirs, tmpDir } from './helpers';

afterAll(removeTmpDirs);

describe('naming kernels (--kernel)', () => {
  it('all is 6.1, 6.12, the host and the two BSD stacks; repeats are dropped; exact releases pass', () => {
    expect(parseKernelList('all')).toEqual([
      { kind: 'series', series: '6.1' },
      { kind: 'series', series: '6.12' },
      { kind: 'host' },
      { kind: 'netbsd' },
      { kind: 'freebsd' },
    ]);
    expect(parseKernelList('freebsd,netbsd,host,freebsd')).toEqual([{ kind: 'freebsd' }, { kind: 'netbsd' }, { kind: 'host' }]);
    expect(parseKernelList('host,6.1,host,6.1')).toEqual([{ kind: 'host' }, { kind: 'series', series: '6.1' }]);
    expect(
      parseKernelList('6.1.0-56,6.12.115,6.1.0-57-amd64,6.12.117+deb12-amd64').map((s) => (s.kind === 'exact' ? s.release : s.kind)),
    ).toEqual(['6.1.0-56', '6.12.115', '6.1.0-57-amd64', '6.12.117+deb12-amd64']);
  });
  it('a word that names no kernel is a one-line error saying what would', () => {
    for (const w of ['banana', '6', 'v6.1', '6.1;rm', '']) {
      expect(() => parseKernelList(w), w).toThrow(
        w ? /unknown kernel ".*"; name host, a Debian series \(6\.1, 6\.12\)|--kernel takes a list/ : /--kernel takes a list/,
      );
    }
  });
  it('releases order by every number in them; the series is major.minor', () => {
    const rs = ['6.12.117+deb12-amd64', '6.1.0-9-amd64', '6.1.0-57-amd64', '6.12.9+deb12-amd64', '6.1.0-10-amd64'];
    expect([...rs].sort(compareReleases)).toEqual([
      '6.1.0-9-amd64',
      '6.1.0-10-amd64',
      '6.1.0-57-amd64',
      '6.12.9+deb12-amd64',
      '6.12.117+deb12-amd64',
    ]);
    expect(seriesOf('6.12.117+deb12-amd64')).toBe('6.12');
    expect(seriesOf('6.1.0-57-amd64')).toBe('6.1');
  });
  it('a series takes the newest apt offers or the cache holds; an exact release takes that one', () => {
    const k = (release: string): DebianKernel => ({ release, series: seriesOf(release), package: `linux-image-${release}-unsigned` });
    const apt = ['6.1.0-56-amd64', '6.1.0-57-amd64', '6.12.115+deb12-amd64', '6.12.117+deb12-amd64'].map(k);
    const cached: CachedKernel[] = [
      { ...k('6.1.0-58-amd64'), dir: '/c', vmlinux: '/c/vmlinux', modules: [], fetchedAt: '', fetchMs: 0, debBytes: 0 },
    ];
    expect(resolveKernel({ kind: 'series', series: '6.1' }, apt, []).release).toBe('6.1.0-57-amd64');
    expect(resolveKernel({ kind: 'series', series: '6.1' }, apt, cached).release).toBe('6.1.0-58-amd64');
    expect(resolveKernel({ kind: 'series', series: '6.12' }, apt, cached).release).toBe('6.12.117+deb12-amd64');
    expect(resolveKernel({ kind: 'exact', release: '6.1.0-56' }, apt, cached).release).toBe('6.1.0-56-amd64');
    expect(resolveKernel({ kind: 'exact', release: '6.12.115' }, apt, cached).release).toBe('6.12.115+deb12-amd64');
    expect(() => resolveKernel({ kind: 'series', series: '5.10' }, apt, cached)).toThrow(
      /unknown kernel "5.10": apt offers no linux-image-5.10…-amd64-unsigned \(series it has: 6.1, 6.12\)/,
    );
    expect(() => resolveKernel({ kind: 'exact', release: '6.1.0-5' }, apt, cached)).toThrow(/unknown kernel "6.1.0-5"/);
    expect(() => resolveKernel({ kind: 'series', series: '6.1' }, [], [])).toThrow(
      /apt knows no linux-image-\*-amd64-unsigned packages at all; fix: run `apt-get update`/,
    );
  });
});

/** A bzImage as the kernel build lays it out: setup sectors with the HdrS header, then the payload and its size. */
function fakeBzImage(vmlinux: Buffer, compress: (b: Buffer) => Buffer): Buffer {
  const setupSects = 3;
  const payload = Buffer.concat([compress(vmlinux), Buffer.alloc(4)]);
  payload.writeUInt32LE(vmlinux.length, payload.length - 4);
  const payloadOffset = 0x100;
  const b = Buffer.alloc((setupSects + 1) * 512 + payloadOffset + payload.length);
  b[0x1f1] = setupSects;
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x20f, 0x206);
  b.writeUInt32LE(payloadOffset, 0x248);
  b.writeUInt32LE(payload.length, 0x24c);
  payload.copy(b, (setupSects + 1) * 512 + payloadOffset);
  return b;
}

describe('the kernel image', () => {
  const vmlinux = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.from('a kernel, compressible '.repeat(500))]);
  it('the payload the setup header points at unpacks to the ELF vmlinux (gzip, xz, zstd)', () => {
    expect(vmlinuxFromBzImage(fakeBzImage(vmlinux, (b) => zlib.gzipSync(b)))).toEqual(vmlinux);
    for (const [tool, args] of [
      ['xz', ['-c', '--check=crc32']],
      ['zstd', ['-c', '-q']],
    ] as const) {
      if (!hasTool(tool)) continue;
      const squeeze = (b: Buffer): Buffer => spawnSync(tool, [...args], { input: b }).stdout;
      expect(vmlinuxFromBzImage(fakeBzImage(vmlinux, squeeze)), tool).toEqual(vmlinux);
    }
  });
  it('refuses what is not a bzImage, and a payload of the wrong size', () => {
    expect(() => vmlinuxFromBzImage(Buffer.alloc(4096), 'x')).toThrow(/x is not a bzImage/);
    const bad = fakeBzImage(vmlinux, (b) => zlib.gzipSync(b));
    const end = bad.length - 4;
    bad.writeUInt32LE(vmlinux.length + 1, end);
    expect(() => vmlinuxFromBzImage(bad, 'x')).toThrow(ImageError);
    expect(() =>
      vmlinuxFromBzImage(
        fakeBzImage(Buffer.from('not an elf'), (b) => zlib.gzipSync(b)),
        'x',
      ),
    ).toThrow(/did not unpack to an ELF vmlinux/);
  });
});

describe('kernel modules', () => {
  it('.modinfo is read from a real ELF object (made by the C compiler here)', () => {
    if (!hasTool('cc')) return expect.fail('cc is needed (it builds the addon too)');
    const dir = tmpDir('modinfo');
    const src = path.join(dir, 'm.c');
    fs.writeFileSync(
      src,
      'static const char info[] __attribute__((section(".modinfo"), used)) = "license=GPL\\0depends=netfs,9pnet\\0vermagic=6.1.0-57-amd64 SMP mod_unload\\0alias=fs-9p";\nint f(void) { return 1; }\n',
    );
    const r = spawnSync('cc', ['-c', '-o', path.join(dir, 'm.ko'), src], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const info = readModinfo(fs.readFileSync(path.join(dir, 'm.ko')));
    expect(info.get('depends')).toEqual(['netfs,9pnet']);
    expect(info.get('vermagic')).toEqual(['6.1.0-57-amd64 SMP mod_unload']);
    expect(info.get('alias')).toEqual(['fs-9p']);
    expect(() => readModinfo(Buffer.from('not elf'))).toThrow(/not a 64-bit little-endian ELF module/);
  });
  it('names: path and compression suffix dropped, dashes as underscores', () => {
    expect(moduleName('kernel/fs/9p/9p.ko.xz')).toBe('9p');
    expect(moduleName('kernel/drivers/virtio/virtio-pci.ko')).toBe('virtio_pci');
  });
  it('load order puts each module after what it depends on, skips built-ins, names what is missing', () => {
    const deps: Record<string, string[]> = {
      '9p': ['netfs', '9pnet'],
      '9pnet_virtio': ['9pnet', 'virtio_ring'],
      netfs: ['fscache'],
      fscache: [],
      '9pnet': [],
      tun: [],
      virtio_ring: [],
    };
    const src = {
      files: new Map(Object.keys(deps).map((n) => [n, `${n}.ko`])),
      builtin: new Set(['virtio_pci']),
      depends: (n: string) => deps[n]!,
    };
    expect(loadOrder(['virtio_pci', '9pnet_virtio', '9p', 'tun'], src)).toEqual([
      '9pnet',
      'virtio_ring',
      '9pnet_virtio',
      'fscache',
      'netfs',
      '9p',
      'tun',
    ]);
    expect(() => loadOrder(['nosuch'], src)).toThrow(/module nosuch is neither in the package nor built in/);
    deps.fscache = ['9p'];
    expect(() => loadOrder(['9p'], src)).toThrow(/module dependency cycle: 9p → netfs → fscache → 9p/);
  });
});

/** Reads a newc cpio archive back: name, mode, size, device numbers, data. */
function readCpio(b: Buffer): Array<{ name: string; mode: number; data: Buffer; rdev: [number, number] }> {
  const out = [];
  let o = 0;
  for (;;) {
    expect(b.toString('latin1', o, o + 6)).toBe('070701');
    const f = (i: number): number => parseInt(b.toString('latin1', o + 6 + i * 8, o + 14 + i * 8), 16);
    const nameSize = f(11);
    const size = f(6);
    const name = b.toString('latin1', o + 110, o + 110 + nameSize - 1);
    const dataAt = (o + 110 + nameSize + 3) & ~3;
    if (name === 'TRAILER!!!') break;
    out.push({ name, mode: f(1), data: b.subarray(dataAt, dataAt + size), rdev: [f(9), f(10)] as [number, number] });
    o = (dataAt + size + 3) & ~3;
  }
  return out;
}

describe('the initramfs archive', () => {
  it('newc entries: directories, files with their bytes and modes, a character device; padded to 512', () => {
    const init = Buffer.from('#!init\n');
    const a = cpioNewc([
      { kind: 'dir', path: 'dev' },
      { kind: 'char', path: 'dev/console', major: 5, minor: 1 },
      { kind: 'file', path: '/init', mode: 0o755, data: init },
      { kind: 'file', path: 'modules/tun.ko', data: Buffer.alloc(13, 7) },
    ]);
    expect(a.length % 512).toBe(0);
    const e = readCpio(a);
    expect(e.map((x) => x.name)).toEqual(['dev', 'dev/console', 'init', 'modules/tun.ko']);
    expect(e[0]!.mode).toBe(0o40755);
    expect(e[1]!.mode).toBe(0o20600);
    expect(e[1]!.rdev).toEqual([5, 1]);
    expect(e[2]!.mode).toBe(0o100755);
    expect(e[2]!.data).toEqual(init);
    expect(e[3]!.data).toEqual(Buffer.alloc(13, 7));
  });
});

function result(lab: string, kernel: string, verdicts: Record<string, Verdict>, cells?: Partial<BindCell>[]): LabResult {
  return {
    lab,
    slug: `lab-${lab}`,
    title: `Lab ${lab}`,
    kernel,
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 1,
    params: {},
    sysctls: {},
    variants: cells ? [{ name: 'matrix', params: {}, pcap: null, frames: 0, observations: { cells } }] : [],
    claims: Object.entries(verdicts).map(
      ([id, verdict]): ClaimResult => ({
        id,
        text: `claim ${id}`,
        source: 's',
        scope: 'Linux',
        verdict,
        evidence: `${id} on ${kernel}`,
        preconditions: [],
      }),
    ),
    conclusion: [],
  };
}

function column(kernel: string, host: boolean, results: LabResult[]): KernelColumn {
  return {
    kernel,
    host,
    folder: host ? '' : kernel,
    labs: new Map(results.map((r) => [r.lab, { dirName: `${r.lab}-${r.slug}`, result: r }])),
  };
}

describe('side by side', () => {
  const cell = (addrB: string, result: string): Partial<BindCell> => ({
    proto: 'tcp',
    kind: 'bound',
    reuseaddrA: false,
    reuseaddrB: true,
    reuseportA: false,
    reuseportB: false,
    addrA: '0.0.0.0',
    addrB,
    v6onlyA: null,
    v6onlyB: null,
    uidB: 'same',
    setupA: 'OK',
    result,
  });
  const cols = [
    column('6.1.0-57-amd64', false, [
      result('04', '6.1.0-57-amd64', { C6: 'differs by OS', T3: 'holds', T14: 'not tested' }),
      result('01', '6.1.0-57-amd64', { C1: 'holds' }, [cell('127.0.0.1', 'EADDRINUSE'), cell('192.0.2.1', 'OK')]),
    ]),
    column('6.12.117+deb12-amd64', false, [
      result('04', '6.12.117+deb12-amd64', { C6: 'differs by OS', T3: 'does not hold', T14: 'holds' }),
      result('01', '6.12.117+deb12-amd64', { C1: 'holds' }, [cell('127.0.0.1', 'OK'), cell('192.0.2.1', 'OK')]),
    ]),
    column('6.18.44', true, [result('04', '6.18.44', { C6: 'differs by OS', T3: 'does not hold', T14: 'holds' })]),
  ];
  it('rows are claims, columns kernels; the odd verdict out is marked and links to its report', () => {
    const rows = compareClaims(cols);
    expect(rows.map((r) => `${r.lab} ${r.claim}`)).toEqual(['01 C1', '04 C6', '04 T3', '04 T14']);
    const t3 = rows[2]!;
    expect(t3.differs).toBe(true);
    expect(t3.cells.map((c) => c?.differs)).toEqual([true, false, false]);
    expect(t3.cells[0]!.href).toBe('6.1.0-57-amd64/04-lab-04/report.html#claim-T3');
    expect(t3.cells[2]!.href).toBe('04-lab-04/report.html#claim-T3');
    expect(rows[1]!.differs).toBe(false);
    // lab 01 was not run on the host: no cell there, and it does not count as a difference
    expect(rows[0]!.cells[2]).toBeNull();
    expect(rows[0]!.differs).toBe(false);
  });
  it('"not tested" is no verdict: it differs from nothing, and the row says it was not judged everywhere', () => {
    const t14 = compareClaims(cols).find((r) => r.claim === 'T14')!;
    expect(t14.differs).toBe(false);
    expect(t14.partlyUntested).toBe(true);
    expect(t14.cells.map((c) => c?.differs)).toEqual([false, false, false]);
  });
  it('a tie marks every verdict of the row', () => {
    const rows = compareClaims(
      cols.slice(0, 1).concat([column('6.18.44', true, [result('04', '6.18.44', { C6: 'differs by OS', T3: 'does not hold' })])]),
    );
    expect(rows.find((r) => r.claim === 'T3')!.cells.map((c) => c?.differs)).toEqual([true, true]);
  });
  it('lab 01: the cells whose outcome changed, with each kernel’s outcome', () => {
    const { compared, changes } = compareItems(cols, '01', BIND_MATRIX_COMPARISON);
    expect(compared).toBe(2);
    expect(changes).toEqual([{ cell: 'tcp bound A 0.0.0.0 [-] · B 127.0.0.1 [ADDR] uid same', outcomes: ['EADDRINUSE', 'OK', null] }]);
  });
  it('the terminal table: one line per claim, ≠ on rows that differ, * on the odd verdicts, ? where some kernel could not judge', () => {
    const lines = renderComparisonText(cols, compareClaims(cols));
    expect(lines[0]).toMatch(/claim\s+lab\s+6\.1\.0-57-amd64\s+6\.12\.117\+deb12-amd64\s+6\.18\.44 \(host\)$/);
    expect(lines.find((l) => l.includes('T3'))).toMatch(/^≠\s+T3\s+04 lab-04\s+holds \*\s+does not hold\s+does not hold$/);
    expect(lines.find((l) => l.includes('T14'))).toMatch(/^\?\s+T14\s+04 lab-04\s+not tested\s+holds\s+holds$/);
    expect(lines.find((l) => l.includes('C1'))).toMatch(/holds\s+holds\s+—$/);
    expect(lines.slice(-2)).toEqual([
      '≠ 1 of 4 claims differ between kernels (* marks the verdicts that differ)',
      '? 1 not judged on every kernel: a precondition failed there ("not tested", the evidence says which)',
    ]);
  });
});
