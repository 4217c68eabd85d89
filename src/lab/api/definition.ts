// What a lab declares: its id, slug, question, parameters, claims and questions, without the
// code that runs it (types.ts adds that). The context reads a lab through this, so it needs no
// import of the file that names the context.
import { CLAIMS, claimById, validateClaim, type ClaimSpec } from './claims';
import type { ParamSpec } from './params';
import type { QuestionSpec } from './questions';
import type { IpFamily } from '../../wire/address';
import type { LabResult } from './result';

/** What a lab declares (everything but its run): the part the context and the runner read. */
export interface LabSpec {
  /** two digits, stable: "01" */
  id: string;
  /** kebab-case, stable: "bind-matrix" */
  slug: string;
  title: string;
  /** one line for `twlab list`: what the lab shows */
  shows: string;
  /** what it shows at length, for README.md's table of labs (`npm run readme:table` writes the row); default `shows` */
  showsInDetail?: string;
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
  /** the lab's step in `twlab course`; a lab without one is listed after the course as not in it */
  course?: CourseEntry;
  /** what the reports show of this lab beyond its claims */
  report?: LabReportHooks;
}

/** A lab's step in the course (src/lab/report/course.ts): written as the questions it answers, not its answers. */
export interface CourseEntry {
  /** where it comes in the course, lowest first (the labs use tens: 10, 20, …, so a new one fits between) */
  order: number;
  /** one sentence: what the lab teaches */
  teaches: string;
  /** what to look at in the capture (and where) */
  look: string;
}

export interface LabReportHooks {
  /**
   * Items the lab measured beyond its claims (lab 01: each bind() cell), compared kernel by kernel by
   * `twlab run --kernel …` and the side-by-side index: an item whose outcome differs is listed.
   */
  compare?: {
    /** what the items are, plural: "bind-matrix cells" */
    items: string;
    /** what an item's outcome is: "B's bind(), and the listen() calls where both binds succeeded" */
    outcome: string;
    /** each item this result measured, named by what was tried, with its outcome (an item not measured there left out) */
    outcomes(result: LabResult): Map<string, string>;
  };
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
