// What a lab declares: its id, slug, question, parameters, claims and questions, without the
// code that runs it (types.ts adds that). The context reads a lab through this, so it needs no
// import of the file that names the context.
import { CLAIMS, claimById, validateClaim, type ClaimSpec } from './claims';
import type { ParamSpec } from './params';
import type { QuestionSpec } from './questions';
import type { IpFamily } from '../../wire/address';

/** What a lab declares (everything but its run): the part the context and the runner read. */
export interface LabSpec {
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
  /** ids from the registry (src/lab/api/claims.ts), or claims of a lab of your own, each with its scope */
  claims: readonly (string | ClaimSpec)[];
  /** questions to predict before the run (`twlab run --predict`); the run answers each with ctx.answer() */
  questions?: readonly QuestionSpec[];
  /** sysctls recorded in the result even when no parameter sets them */
  recordSysctls?: readonly string[];
  /**
   * The address families the lab can make its connections over: defineLab gives it the `family`
   * parameter (default ipv4; src/lab/api/family.ts). Its sockets, peer and addresses then come
   * from ctx.family and ctx.addr.host/peer. A lab that measures both families itself (01) has none.
   */
  families?: readonly IpFamily[];
}

/** A lab's claims, resolved from the registry; a claim of its own must not reuse a registry id with other words. */
export function labClaims(def: Pick<LabSpec, 'id' | 'claims'>): ClaimSpec[] {
  return def.claims.map((c) => {
    if (typeof c === 'string') return claimById(c);
    const known = CLAIMS.find((x) => x.id === c.id);
    if (known && known.text !== c.text)
      throw new Error(`lab ${def.id}: claim ${c.id} is the registry's, with another text; give your claim its own id`);
    validateClaim(c); // an unknown scope string must not become "differs by OS" everywhere
    return c;
  });
}

export function labDirName(def: Pick<LabSpec, 'id' | 'slug'>): string {
  return `${def.id}-${def.slug}`;
}
