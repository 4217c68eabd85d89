// Lab 01's printed tables: the seed's table beside this kernel's, the differences, IPv6.
import type { LabContext } from '../../src/lab';
import { FLAGS, isWildcard, type Cell } from './cells';
import { family, flagText, noReuse, sameAddr, seedTableRows, type Cells } from './judge';

// ---------------------------------------------------------------- printing
export const short = (r: string | undefined): string => (r === undefined ? '-' : r === 'EADDRINUSE' ? 'INUSE' : r);

export function printSeedTable(ctx: LabContext, unicast: Cells): void {
  const views: Array<[string, (c: Cell) => boolean]> = [
    ['tcp bound', (c) => c.proto === 'tcp' && c.kind === 'bound'],
    ['tcp listening', (c) => c.proto === 'tcp' && c.kind === 'listening'],
    ['udp', (c) => c.proto === 'udp' && c.kind === 'bound'],
  ];
  const present = views.filter(([, f]) => unicast.some(f));
  ctx.print("The seed's SO_REUSEADDR table (BSD) on this kernel — SO_REUSEPORT off, one owner.");
  ctx.print("Each kernel column: B's bind() with SO_REUSEADDR on neither | A only | B only | both; * = differs from BSD.");
  const head = ['#', 'REUSEADDR', 'socket A', 'socket B', 'BSD (seed)', ...present.map(([n]) => n)];
  const rows: string[][] = [];
  for (const row of seedTableRows(unicast)) {
    const cols = present.map(([, f]) =>
      FLAGS.map(([a, b]) => {
        const c = unicast.find(
          (x) =>
            f(x) && x.addrA === row.a && x.addrB === row.b && x.reuseaddrA === a && x.reuseaddrB === b && !x.reuseportA && !x.reuseportB,
        );
        if (!c) return '-';
        const applies = row.flag === 'ON/OFF' || b === (row.flag === 'ON');
        return short(c.result) + (applies && c.result !== row.bsd ? '*' : applies ? '' : '·');
      }).join(' '),
    );
    rows.push([String(row.n), row.flag, `${row.a}:P`, `${row.b}:P`, short(row.bsd), ...cols]);
  }
  table(ctx, head, rows);
  ctx.print('(· = a flag combination the row does not speak of)');
}

export function table(ctx: LabContext, head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  ctx.print(line(head));
  ctx.print(widths.map((w) => '─'.repeat(w)).join('  '));
  for (const r of rows) ctx.print(line(r));
}

export function relation(c: Cell): string {
  if (c.kind === 'multicast') return 'multicast group';
  if (sameAddr(c)) return 'same address';
  const fa = family(c.addrA);
  const fb = family(c.addrB);
  if (fa !== fb) return 'IPv4 vs IPv6';
  if (isWildcard(c.addrA) || isWildcard(c.addrB)) return 'wildcard vs specific';
  return 'two specific addresses';
}

export function printDifferences(ctx: LabContext, cells: Cells): void {
  const differ = cells.filter((c) => c.bsd !== null && c.bsd !== c.result);
  const covered = cells.filter((c) => c.bsd !== null).length;
  ctx.print(`Where this kernel differs from the seed's BSD rules: ${differ.length} of ${covered} cells the rules cover.`);
  const groups = new Map<string, { n: number; result: string; bsd: string }>();
  for (const c of differ) {
    const addr = flagText(c.reuseaddrA, c.reuseaddrB).padEnd(7);
    const flags = `SO_REUSEADDR ${addr} SO_REUSEPORT ${flagText(c.reuseportA, c.reuseportB).padEnd(7)}`;
    const k = `${c.proto} ${c.kind.padEnd(9)} ${relation(c).padEnd(22)} ${flags}`;
    const g = groups.get(k) ?? { n: 0, result: c.result, bsd: c.bsd! };
    g.n++;
    groups.set(k, g);
  }
  for (const [k, g] of [...groups].sort()) ctx.print(`  ${k} → ${g.result.padEnd(10)} (BSD: ${g.bsd}; ${g.n} cell${g.n > 1 ? 's' : ''})`);
}

export function printIPv6(ctx: LabContext, cells: Cells): void {
  const mixed = cells.filter(
    (c) =>
      c.uidB === 'same' &&
      c.proto === 'tcp' &&
      c.kind === 'bound' &&
      noReuse(c) &&
      (family(c.addrA) === 'ipv6' || family(c.addrB) === 'ipv6'),
  );
  if (!mixed.length) return;
  ctx.print('Pairs with an IPv6 side on one port (TCP, A bound, no flags) that conflict:');
  const name = (addr: string, v6only: boolean | null): string => (v6only ? `${addr} (V6ONLY)` : addr);
  const conflicts = mixed.filter((c) => c.result !== 'OK').map((c) => `${name(c.addrA, c.v6onlyA)} ✕ ${name(c.addrB, c.v6onlyB)}`);
  const free = mixed.filter((c) => c.result === 'OK').length;
  for (const line of conflicts) ctx.print(`  ${line}`);
  ctx.print(`  (the other ${free} such pairs did not conflict)`);
}
