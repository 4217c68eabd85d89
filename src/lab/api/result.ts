// result.json: what every lab run produces and `twlab run --json` prints (../shared/DESIGN.md
// "result.json"). Plain data: the runner, the reports and the tests read it without the lab API.
import type { SystemIdentity } from '../../host/backend/types';
import type { ParamValue } from './params';
import type { PredictionScore, QuestionResult, ClassResult } from './questions';
import type { Precondition, Verdict } from './verdict';

export type { Verdict } from './verdict';

export interface ClaimResult {
  id: string;
  text: string;
  /** seed section, RFC section or man page */
  source: string;
  /** what the source states the claim for, e.g. "BSD; Linux ≥ 3.9" */
  scope: string;
  /** `may`: a claim of possibility, which holds when some valid trial shows it (src/lab/api/verdict.ts) */
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
  /** the address family the lab's connections used (its `family` parameter); absent for a lab without one (01 measures both) */
  family?: 'ipv4' | 'ipv6';
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
