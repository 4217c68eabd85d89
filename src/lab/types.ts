// The lab contract: what a lab file declares, and the result.json every run produces
// (../shared/DESIGN.md "result.json").
import type { ParamSpec, ParamValue } from './params';
import type { LabContext } from './context';

export type Verdict = 'holds' | 'does not hold' | 'differs by OS' | 'not tested';

export interface ClaimSpec {
  id: string;
  text: string;
  /** seed section, RFC section or man page */
  source: string;
}

export interface ClaimResult extends ClaimSpec {
  verdict: Verdict;
  /** one line: what was observed */
  evidence: string;
}

export interface VariantResult {
  name: string;
  params: Record<string, ParamValue>;
  /** relative to the lab directory; null when the variant captured nothing by design */
  pcap: string | null;
  frames: number;
  observations: Record<string, unknown>;
}

export interface LabResult {
  lab: string;
  slug: string;
  title: string;
  kernel: string;
  startedAt: string;
  durationMs: number;
  params: Record<string, ParamValue>;
  sysctls: Record<string, string>;
  variants: VariantResult[];
  claims: ClaimResult[];
  /** the short conclusion a student reads, as printed on the terminal */
  conclusion: string[];
}

export interface LabDefinition {
  /** two digits, stable: "01" */
  id: string;
  /** kebab-case, stable: "bind-matrix" */
  slug: string;
  title: string;
  /** one line for `twlab list`: what the lab shows */
  shows: string;
  /** the question the lab answers, in a sentence or two */
  question: string;
  params: readonly ParamSpec[];
  claims: readonly ClaimSpec[];
  /** sysctls recorded in the result even when no parameter sets them */
  recordSysctls?: readonly string[];
  /** whether the lab needs a process under another uid (the runner checks it can start one) */
  run(ctx: LabContext): Promise<void>;
}

export function defineLab(def: LabDefinition): LabDefinition {
  if (!/^\d{2}$/.test(def.id)) throw new Error(`lab id must be two digits: ${def.id}`);
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(def.slug)) throw new Error(`lab slug must be kebab-case: ${def.slug}`);
  return def;
}

export function labDirName(def: Pick<LabDefinition, 'id' | 'slug'>): string {
  return `${def.id}-${def.slug}`;
}

/** A lab's own one-line failure (a parameter this machine cannot honour, say): shown as is. */
export class LabError extends Error {
  readonly code = 'LAB_FAILED';
}
