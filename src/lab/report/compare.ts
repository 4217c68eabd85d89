// The kernels side by side: rows are claims, columns are kernels, and a row whose verdicts are
// not all the same is marked, with the cells that differ from the row's most common verdict
// picked out. A lab that declares items of its own to compare (`report.compare`: lab 01's bind
// cells) has them compared item by item. Pure: results in, rows out; the terminal table and the
// HTML in html.ts draw the same rows.
import type { LabReportHooks, LabResult, LabSpec, Verdict } from '../api/types';
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

export interface ItemChange {
  /** the item, named by what was tried (lab 01: a bind() cell) */
  cell: string;
  /** per column: the item's outcome there, or null where it was not measured */
  outcomes: Array<string | null>;
}

export type ItemComparison = NonNullable<LabReportHooks['compare']>;

/** A lab's measured items (its `report.compare` hook) whose outcome is not the same on every kernel that measured them. */
export function compareItems(
  columns: readonly KernelColumn[],
  lab: string,
  hook: Pick<ItemComparison, 'outcomes'>,
): { compared: number; changes: ItemChange[] } {
  const byKernel = columns.map((c) => {
    const entry = c.labs.get(lab);
    return entry ? hook.outcomes(entry.result) : new Map<string, string>();
  });
  const keys = [...new Set(byKernel.flatMap((m) => [...m.keys()]))];
  const changes: ItemChange[] = [];
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

/** Each lab with a `report.compare` hook that ran on two kernels or more: its items compared. */
export function compareLabItems(
  columns: readonly KernelColumn[],
  labs: ReadonlyArray<Pick<LabSpec, 'id' | 'report'>>,
): Array<{ lab: string; hook: ItemComparison; compared: number; changes: ItemChange[] }> {
  return labs.flatMap((def) => {
    const hook = def.report?.compare;
    if (!hook || columns.filter((c) => c.labs.has(def.id)).length < 2) return [];
    return [{ lab: def.id, hook, ...compareItems(columns, def.id, hook) }];
  });
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
