// The kernels side by side: rows are claims, columns are kernels, and a row whose verdicts are
// not all the same is marked, with the cells that differ from the row's most common verdict
// picked out. Lab 01's bind matrix is compared cell by cell. Pure: results in, rows out; the
// terminal table and the HTML in report.ts draw the same rows.
import type { LabResult, Verdict } from '../api/types';
import { familyLabel } from '../api/family';
import type { IpFamily } from '../../wire/address';

/** One kernel's results: the host's (folder '') or a guest's (folder '<uname -r>'). */
export interface KernelColumn {
  /** uname -r */
  kernel: string;
  host: boolean;
  /** folder of this kernel's lab folders, relative to the run's folder ('' for the host) */
  folder: string;
  /** lab id → its result and its folder name */
  labs: Map<string, { dirName: string; result: LabResult }>;
  /** the address family its labs ran over, when columns of both families are shown (`family=ipv4,ipv6`) */
  family?: IpFamily;
}

export interface ComparedCell {
  verdict: Verdict;
  evidence: string;
  /** link to this claim in that kernel's report, relative to the run's folder */
  href: string;
  /** differs from the row's most common verdict (or, on a tie, from another cell) */
  differs: boolean;
}

export interface ComparedRow {
  lab: string;
  slug: string;
  claim: string;
  text: string;
  /** one per column; null where that kernel has no result for the lab */
  cells: Array<ComparedCell | null>;
  /** two kernels judged the claim and gave different verdicts */
  differs: boolean;
  /** some kernels judged it and some could not ("not tested"): no difference shown, none ruled out */
  partlyUntested: boolean;
}

export function columnLabel(c: Pick<KernelColumn, 'kernel' | 'host' | 'family'>): string {
  return `${c.host ? `${c.kernel} (host)` : c.kernel}${c.family ? ` ${familyLabel(c.family)}` : ''}`;
}

const ONE: Record<string, string> = { kernels: 'kernel', families: 'family', 'kernels and families': 'column' };

/** What the columns differ in, for the sentences around the table: "kernels", "families" or both. */
export function columnsAre(columns: readonly Pick<KernelColumn, 'kernel' | 'family'>[]): string {
  const kernels = new Set(columns.map((c) => c.kernel)).size > 1;
  const families = new Set(columns.map((c) => c.family ?? 'ipv4')).size > 1;
  return kernels && families ? 'kernels and families' : families ? 'families' : 'kernels';
}

export function labHref(c: KernelColumn, dirName: string): string {
  return `${c.folder ? c.folder + '/' : ''}${dirName}/report.html`;
}

export function compareClaims(columns: readonly KernelColumn[]): ComparedRow[] {
  const labIds = [...new Set(columns.flatMap((c) => [...c.labs.keys()]))].sort();
  const rows: ComparedRow[] = [];
  for (const lab of labIds) {
    const claimIds: string[] = [];
    let slug = '';
    const texts = new Map<string, string>();
    for (const c of columns) {
      const r = c.labs.get(lab)?.result;
      if (!r) continue;
      slug = r.slug;
      for (const cl of r.claims) {
        if (!claimIds.includes(cl.id)) claimIds.push(cl.id);
        texts.set(cl.id, cl.text);
      }
    }
    for (const claim of claimIds) {
      const cells = columns.map((c): ComparedCell | null => {
        const entry = c.labs.get(lab);
        const cl = entry?.result.claims.find((x) => x.id === claim);
        return entry && cl
          ? { verdict: cl.verdict, evidence: cl.evidence, href: `${labHref(c, entry.dirName)}#claim-${claim}`, differs: false }
          : null;
      });
      // "not tested" is no verdict: only kernels that judged the claim are compared
      const present = cells.filter((x): x is ComparedCell => x !== null);
      const judged = present.filter((x) => x.verdict !== 'not tested');
      const counts = new Map<Verdict, number>();
      for (const x of judged) counts.set(x.verdict, (counts.get(x.verdict) ?? 0) + 1);
      const differs = counts.size > 1;
      if (differs) {
        const top = Math.max(...counts.values());
        const tied = [...counts.values()].filter((n) => n === top).length > 1;
        for (const x of judged) x.differs = tied || counts.get(x.verdict)! < top;
      }
      const partlyUntested = judged.length > 0 && judged.length < present.length;
      rows.push({ lab, slug, claim, text: texts.get(claim) ?? '', cells, differs, partlyUntested });
    }
  }
  return rows;
}

/** A lab-01 cell as a sentence, without its outcome. */
export interface BindCell {
  proto: string;
  kind: string;
  reuseaddrA: boolean;
  reuseaddrB: boolean;
  reuseportA: boolean;
  reuseportB: boolean;
  addrA: string;
  addrB: string;
  v6onlyA: boolean | null;
  v6onlyB: boolean | null;
  uidB: string;
  setupA?: string;
  result: string;
  listenA?: string;
  listenB?: string;
}

const flagText = (addr: boolean, port: boolean): string => (addr && port ? 'ADDR+PORT' : addr ? 'ADDR' : port ? 'PORT' : '-');
const endpoint = (a: string, v6only: boolean | null): string => (v6only ? `${a}+v6only` : a);

export function bindCellKey(c: BindCell): string {
  return `${c.proto} ${c.kind} A ${endpoint(c.addrA, c.v6onlyA)} [${flagText(c.reuseaddrA, c.reuseportA)}] · B ${endpoint(c.addrB, c.v6onlyB)} [${flagText(c.reuseaddrB, c.reuseportB)}] uid ${c.uidB}`;
}

export function bindCellOutcome(c: BindCell): string {
  if (c.setupA && c.setupA !== 'OK') return `A: ${c.setupA}`;
  const listen = c.listenA !== undefined || c.listenB !== undefined ? ` (listen A ${c.listenA ?? '-'}, B ${c.listenB ?? '-'})` : '';
  return c.result + listen;
}

export interface BindMatrixChange {
  cell: string;
  /** per column: B's bind() and the listens, or null where the cell was not measured */
  outcomes: Array<string | null>;
}

/** Lab 01's cells whose outcome is not the same on every kernel that measured them. */
export function compareBindMatrix(columns: readonly KernelColumn[]): { compared: number; changes: BindMatrixChange[] } {
  const byKernel = columns.map((c) => {
    const cells = (c.labs.get('01')?.result.variants[0]?.observations.cells ?? []) as BindCell[];
    // a cell the system could not make (another user on F-Stack) was not measured there
    return new Map(
      cells.filter((cell) => !(cell as { notTested?: string }).notTested).map((cell) => [bindCellKey(cell), bindCellOutcome(cell)]),
    );
  });
  const keys = [...new Set(byKernel.flatMap((m) => [...m.keys()]))];
  const changes: BindMatrixChange[] = [];
  let compared = 0;
  for (const key of keys) {
    const outcomes = byKernel.map((m) => m.get(key) ?? null);
    const seen = outcomes.filter((x): x is string => x !== null);
    if (seen.length < 2) continue;
    compared++;
    if (new Set(seen).size > 1) changes.push({ cell: key, outcomes });
  }
  return { compared, changes };
}

/** The side-by-side as text for the terminal: one line per claim, `≠` where kernels differ, `?` where some could not judge. */
export function renderComparisonText(columns: readonly KernelColumn[], rows: readonly ComparedRow[]): string[] {
  const heads = ['', 'claim', 'lab', ...columns.map(columnLabel)];
  const body = rows.map((r) => [
    r.differs ? '≠' : r.partlyUntested ? '?' : '',
    r.claim,
    `${r.lab} ${r.slug}`,
    ...r.cells.map((c) => (c ? c.verdict + (c.differs ? ' *' : '') : '—')),
  ]);
  const widths = heads.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const differing = rows.filter((r) => r.differs).length;
  const untested = rows.filter((r) => !r.differs && r.partlyUntested).length;
  const are = columnsAre(columns);
  const summary = differing
    ? `≠ ${differing} of ${rows.length} claims differ between ${are} (* marks the verdicts that differ)`
    : `no claim has different verdicts on the ${are} that judged it (${rows.length} claims)`;
  return [
    line(heads),
    ...body.map(line),
    '',
    summary,
    ...(untested
      ? [`? ${untested} not judged on every ${ONE[are]}: a precondition failed there ("not tested", the evidence says which)`]
      : []),
  ];
}
