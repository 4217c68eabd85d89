// The lab contract: what a lab file declares (definition.ts) with the run that uses the context,
// and the result.json every run produces (result.ts), re-exported here for labs and tools.
import type { LabContext } from './context';
import { labClaims, type LabSpec } from './definition';
import { familyParam } from './family';

export type { Verdict } from './verdict';
export type { ClaimSpec } from './claims';
export type { ClaimResult, LabResult, VariantResult } from './result';
export { labClaims, labDirName, type CourseEntry, type LabReportHooks, type LabSpec } from './definition';

export interface LabDefinition extends LabSpec {
  /** whether the lab needs a process under another uid (the runner checks it can start one) */
  run(ctx: LabContext): Promise<void>;
}

export function defineLab(def: LabDefinition): LabDefinition {
  if (!/^\d{2}$/.test(def.id)) throw new Error(`lab id must be two digits: ${def.id}`);
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(def.slug)) throw new Error(`lab slug must be kebab-case: ${def.slug}`);
  labClaims(def); // every id known, no registry id with other words
  if (def.families?.length && !def.params.some((p) => p.name === 'family'))
    return { ...def, params: [...def.params, familyParam(def.families)] };
  return def;
}

/** A lab's own one-line failure (a parameter this machine cannot honour, say): shown as is. */
export class LabError extends Error {
  readonly code = 'LAB_FAILED';
}
