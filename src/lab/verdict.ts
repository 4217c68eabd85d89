// From measurement to verdict. A lab says what it measured — the preconditions a claim needs,
// each checked from syscalls, the socket table, counters or the capture, and whether what
// happened agrees with the claim, once or per trial — and this module alone picks the word:
//
//   a precondition failed                 → not tested (the evidence names it, with its numbers)
//   agrees (every valid trial)            → holds
//   disagrees (every valid trial)         → does not hold, or differs by OS when the claim's
//                                           source states it for another OS or kernel range
//   some trials agree, others do not      → mixed (k/n in the evidence)
import { inScope, scopeLabel, type ClaimSpec, type SystemRef } from './claims';

export type Verdict = 'holds' | 'does not hold' | 'differs by OS' | 'mixed' | 'not tested';

/** Something that must have happened for a claim to be judged, and what was measured of it. */
export interface Precondition {
  what: string;
  met: boolean;
  /** the measured value(s) behind `met`, as a human reads them */
  measured: string;
}

export function requires(what: string, met: boolean, measured: string): Precondition {
  return { what, met, measured };
}

/** One repetition of a probe: its own preconditions, and whether the outcome agrees with the claim. */
export interface Trial {
  requires?: readonly Precondition[];
  agrees: boolean;
}

export interface Judgement {
  /** preconditions of the claim as a whole */
  requires?: readonly Precondition[];
  /** one decision (e.g. over a matrix of cells); give this or `trials` */
  agrees?: boolean;
  /** repeated probes: "holds" needs every valid trial to agree */
  trials?: readonly Trial[];
  /** one line: what was observed */
  evidence: string;
}

export interface Decision {
  verdict: Verdict;
  evidence: string;
  preconditions: Precondition[];
  trials?: { agree: number; valid: number; excluded: number };
}

const failedText = (p: Precondition): string => `${p.what} — ${p.measured}`;

/** `system`: the Linux release judged (uname -r), or another OS's stack ({ os: 'NetBSD', release }). */
export function decide(claim: ClaimSpec, j: Judgement, system: SystemRef): Decision {
  if ((j.agrees === undefined) === (j.trials === undefined)) throw new Error(`claim ${claim.id}: give either agrees or trials`);
  const preconditions = [...(j.requires ?? [])];
  const failed = preconditions.find((p) => !p.met);
  if (failed) return { verdict: 'not tested', evidence: `precondition failed: ${failedText(failed)}. Observed: ${j.evidence}`, preconditions };
  const against = inScope(claim.scope, system) ? 'does not hold' : 'differs by OS';
  const otherOs = `; the source states it for ${scopeLabel(claim.scope)}, this is ${typeof system === 'string' ? `Linux ${system}` : `${system.os} ${system.release}`}`;
  if (j.trials === undefined) {
    return j.agrees ? { verdict: 'holds', evidence: j.evidence, preconditions } : { verdict: against, evidence: j.evidence + (against === 'differs by OS' ? otherOs : ''), preconditions };
  }
  const valid = j.trials.filter((t) => (t.requires ?? []).every((p) => p.met));
  const excluded = j.trials.length - valid.length;
  const firstExcluded = j.trials.flatMap((t) => (t.requires ?? []).filter((p) => !p.met))[0];
  const excludedText = excluded ? ` (${excluded} of ${j.trials.length} trials not counted: ${failedText(firstExcluded!)})` : '';
  const agree = valid.filter((t) => t.agrees).length;
  const trials = { agree, valid: valid.length, excluded };
  if (valid.length === 0) {
    return { verdict: 'not tested', evidence: `precondition failed in all ${j.trials.length} trials: ${failedText(firstExcluded!)}. Observed: ${j.evidence}`, preconditions, trials };
  }
  const tally = `${agree}/${valid.length} trials agree${excludedText}: `;
  if (agree === valid.length) return { verdict: 'holds', evidence: tally + j.evidence, preconditions, trials };
  if (agree === 0) return { verdict: against, evidence: tally + j.evidence + (against === 'differs by OS' ? otherOs : ''), preconditions, trials };
  return { verdict: 'mixed', evidence: tally + j.evidence, preconditions, trials };
}
