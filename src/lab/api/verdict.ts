// From measurement to verdict. A lab says what it measured — the preconditions a claim needs,
// each checked from syscalls, the socket table, counters or the capture, and whether what
// happened agrees with the claim, once or per trial — and this module alone picks the word:
//
//   a precondition failed                 → not tested (the evidence names it, with its numbers)
//   no trials, or too few valid ones      → not tested (MIN_VALID_TRIALS, below)
//   agrees (every valid trial)            → holds
//   disagrees (every valid trial)         → does not hold, or differs by OS when the claim's
//                                           source states it for another OS or kernel range
//   some trials agree, others do not      → mixed (k/n in the evidence)
//
// A claim of possibility (modality `may`: "may be consumed", "can bind") holds when some valid
// trial shows it happening: one instance proves that it can. Its enabling conditions are
// preconditions, and it does not hold only when none of at least MIN_VALID_TRIALS valid trials
// shows it.
import { asSystem, inScope, scopeLabel, type ClaimSpec, type SystemUnderTest } from './claims';

export type Verdict = 'holds' | 'does not hold' | 'differs by OS' | 'mixed' | 'not tested';

/**
 * How many valid trials a verdict from trials needs: one instance is an anecdote. Where a lab
 * runs fewer trials than this (`--set trials=2`, or a claim judged on two settings), every one of
 * them must be valid. Only a `may` claim holds on fewer: one valid trial that shows it suffices.
 */
export const MIN_VALID_TRIALS = 3;

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
  /** repeated probes: "holds" needs every valid trial to agree (some, for a `may` claim) */
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

/**
 * The verdict on `claim` from what a lab measured, on `system` (a Linux release as `uname -r`
 * gives it, or an OS and release).
 */
export function decide(claim: ClaimSpec, j: Judgement, system: string | SystemUnderTest): Decision {
  if ((j.agrees === undefined) === (j.trials === undefined)) throw new Error(`claim ${claim.id}: give either agrees or trials`);
  const sut = asSystem(system);
  const may = claim.modality === 'may';
  const preconditions = [...(j.requires ?? [])];
  const failed = preconditions.find((p) => !p.met);
  if (failed)
    return { verdict: 'not tested', evidence: `precondition failed: ${failedText(failed)}. Observed: ${j.evidence}`, preconditions };
  /** the word when the system did otherwise than the claim says: it depends on the claim's scope */
  const against = (evidence: string, trials?: Decision['trials']): Decision => {
    const scoped = inScope(claim.scope, sut);
    if (scoped === null) {
      const p = requires(
        `the kernel release reads as a version (the claim is stated for ${scopeLabel(claim.scope)})`,
        false,
        JSON.stringify(sut.release),
      );
      return {
        verdict: 'not tested',
        evidence: `precondition failed: ${failedText(p)}. Observed: ${evidence}`,
        preconditions: [...preconditions, p],
        ...(trials ? { trials } : {}),
      };
    }
    if (scoped) return { verdict: 'does not hold', evidence, preconditions, ...(trials ? { trials } : {}) };
    return {
      verdict: 'differs by OS',
      evidence: `${evidence}; the source states it for ${scopeLabel(claim.scope)}, this is ${sut.os} ${sut.release}`,
      preconditions,
      ...(trials ? { trials } : {}),
    };
  };
  if (j.trials === undefined) return j.agrees ? { verdict: 'holds', evidence: j.evidence, preconditions } : against(j.evidence);

  if (j.trials.length === 0)
    return {
      verdict: 'not tested',
      evidence: `no trials were run. Observed: ${j.evidence}`,
      preconditions,
      trials: { agree: 0, valid: 0, excluded: 0 },
    };
  const valid = j.trials.filter((t) => (t.requires ?? []).every((p) => p.met));
  const excluded = j.trials.length - valid.length;
  const firstExcluded = j.trials.flatMap((t) => (t.requires ?? []).filter((p) => !p.met))[0];
  const excludedText = excluded ? ` (${excluded} of ${j.trials.length} trials not counted: ${failedText(firstExcluded!)})` : '';
  const agree = valid.filter((t) => t.agrees).length;
  const trials = { agree, valid: valid.length, excluded };
  if (valid.length === 0) {
    return {
      verdict: 'not tested',
      evidence: `precondition failed in all ${j.trials.length} trials: ${failedText(firstExcluded!)}. Observed: ${j.evidence}`,
      preconditions,
      trials,
    };
  }
  const tally = `${agree}/${valid.length} trials agree${excludedText}: `;
  // a possibility is shown by one instance
  if (may && agree > 0)
    return {
      verdict: 'holds',
      evidence: `${tally}${j.evidence} (a "may" claim: it holds when some valid trial shows it)`,
      preconditions,
      trials,
    };
  const needed = Math.min(MIN_VALID_TRIALS, j.trials.length);
  if (valid.length < needed) {
    return {
      verdict: 'not tested',
      evidence: `too few valid trials: ${valid.length} of ${j.trials.length} (a verdict needs ${needed}${needed < MIN_VALID_TRIALS ? `, every trial run` : ''}); ${excluded} not counted: ${failedText(firstExcluded!)}. Observed: ${j.evidence}`,
      preconditions,
      trials,
    };
  }
  if (agree === valid.length) return { verdict: 'holds', evidence: tally + j.evidence, preconditions, trials };
  if (agree === 0)
    return against(tally + j.evidence + (may ? ` (a "may" claim: none of ${valid.length} valid trials shows it)` : ''), trials);
  return { verdict: 'mixed', evidence: tally + j.evidence, preconditions, trials };
}
