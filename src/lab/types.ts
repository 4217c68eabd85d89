// The lab contract: what a lab file declares, and the result.json every run produces
// (../shared/DESIGN.md "result.json").
import { CLAIMS, claimById, validateClaim, type ClaimSpec } from './claims';
import type { ParamSpec, ParamValue } from './params';
import type { LabContext } from './context';
import type { Precondition, Verdict } from './verdict';
import type { PredictionScore, QuestionResult, QuestionSpec } from './questions';
import type { ClassResult } from './classroom';
import type { SystemIdentity } from '../host/backend/types';

export type { Verdict } from './verdict';
export type { ClaimSpec } from './claims';

export interface ClaimResult {
  id: string;
  text: string;
  /** seed section, RFC section or man page */
  source: string;
  /** what the source states the claim for, e.g. "BSD; Linux ≥ 3.9" */
  scope: string;
  /** `may`: a claim of possibility, which holds when some valid trial shows it (src/lab/verdict.ts) */
  modality?: 'may';
  verdict: Verdict;
  /** one line: what was observed (and, when not tested, which precondition failed) */
  evidence: string;
  /** every precondition checked before judging, with what was measured */
  preconditions: Precondition[];
  /** repeated probes: how many valid trials agreed with the claim, and how many were not counted */
  trials?: { agree: number; valid: number; excluded: number };
}

export interface VariantResult {
  name: string;
  params: Record<string, ParamValue>;
  /** relative to the lab directory; null when the variant captured nothing by design */
  pcap: string | null;
  /** the same frames with twlab's marks as packet comments (pcapng), relative to the lab directory */
  pcapng?: string;
  frames: number;
  observations: Record<string, unknown>;
}

export interface LabResult {
  lab: string;
  slug: string;
  title: string;
  /** uname -r, or another OS's stack's label ("NetBSD 7.99.34 (src-netbsd 82f3a69)") */
  kernel: string;
  /** another OS's stack that answered (absent: the Linux kernel `kernel` names) */
  system?: SystemIdentity;
  startedAt: string;
  durationMs: number;
  params: Record<string, ParamValue>;
  sysctls: Record<string, string>;
  variants: VariantResult[];
  claims: ClaimResult[];
  /** the short conclusion a student reads, as printed on the terminal */
  conclusion: string[];
  /** everything the lab printed, its tables too (lab 01's matrix, lab 03's), for the report */
  output?: string[];
  /** the lab's questions, answered by this run's measurements (with the student's predictions, when asked) */
  questions?: QuestionResult[];
  /** how the predictions fared, when the run was asked to --predict */
  predictionScore?: PredictionScore;
  /** a class's predictions, per question and per student, when the run was given a class's answers */
  class?: ClassResult;
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
  /** ids from the registry (src/lab/claims.ts), or claims of a lab of your own, each with its scope */
  claims: readonly (string | ClaimSpec)[];
  /** questions to predict before the run (`twlab run --predict`); the run answers each with ctx.answer() */
  questions?: readonly QuestionSpec[];
  /** sysctls recorded in the result even when no parameter sets them */
  recordSysctls?: readonly string[];
  /** whether the lab needs a process under another uid (the runner checks it can start one) */
  run(ctx: LabContext): Promise<void>;
}

export function defineLab(def: LabDefinition): LabDefinition {
  if (!/^\d{2}$/.test(def.id)) throw new Error(`lab id must be two digits: ${def.id}`);
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(def.slug)) throw new Error(`lab slug must be kebab-case: ${def.slug}`);
  labClaims(def); // every id known, no registry id with other words
  return def;
}

/** A lab's claims, resolved from the registry; a claim of its own must not reuse a registry id with other words. */
export function labClaims(def: Pick<LabDefinition, 'id' | 'claims'>): ClaimSpec[] {
  return def.claims.map((c) => {
    if (typeof c === 'string') return claimById(c);
    const known = CLAIMS.find((x) => x.id === c.id);
    if (known && known.text !== c.text) throw new Error(`lab ${def.id}: claim ${c.id} is the registry's, with another text; give your claim its own id`);
    validateClaim(c); // an unknown scope string must not become "differs by OS" everywhere
    return c;
  });
}

export function labDirName(def: Pick<LabDefinition, 'id' | 'slug'>): string {
  return `${def.id}-${def.slug}`;
}

/** A lab's own one-line failure (a parameter this machine cannot honour, say): shown as is. */
export class LabError extends Error {
  readonly code = 'LAB_FAILED';
}
