// Where a lab lists its claims, each id carries the registry's text as a comment: generated
// (`npm run labs:claims`), so the registry stays the one source; a stale comment fails here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { labSources, withClaimTexts } from '../src/lab/report/claim-texts';
import { claimById } from '../src/lab/api/claims';

const LABS = path.resolve(__dirname, '..', 'labs');

describe('claim texts beside claim ids in the labs', () => {
  it.each(labSources(LABS).map((f) => [path.relative(LABS, f), f]))(
    "%s shows its claims' texts as the registry has them (else: npm run labs:claims)",
    (_name, file) => {
      const source = fs.readFileSync(file, 'utf8');
      expect(withClaimTexts(source)).toBe(source);
    },
  );

  it('a list of ids gets one line per id with its text; an edited text is rewritten', () => {
    const fresh = withClaimTexts("export default defineLab({\n  claims: ['T12', 'T13'],\n});\n");
    expect(fresh).toBe(
      `export default defineLab({\n  claims: [\n    'T12', // ${claimById('T12').text}\n    'T13', // ${claimById('T13').text}\n  ],\n});\n`,
    );
    const stale = fresh.replace(claimById('T13').text, 'something else');
    expect(withClaimTexts(stale)).toBe(fresh);
  });
});
