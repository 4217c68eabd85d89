// The claim registry and the verdict rules, in memory: the verdict word is derived from the
// preconditions, the trials and the claim's scope, never chosen by a lab.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLAIMS, claimById, compareVersions, inScope, scopeLabel, type ClaimSpec } from '../src/lab/claims';
import type { LabDefinition } from '../src/lab/types';
import { labClaims } from '../src/lab/types';
import { DIST } from './helpers';

// the compiled labs (npm test compiles first): the registry loads lab files with require()
// eslint-disable-next-line @typescript-eslint/no-require-imports
const allLabs = (): LabDefinition[] => (require(path.join(DIST, 'src', 'lab', 'registry.js')) as { allLabs(): LabDefinition[] }).allLabs();
import { decide, requires } from '../src/lab/verdict';

const BSD: ClaimSpec = { id: 'X1', text: 'x', source: 's', scope: ['BSD'] };
const ANY: ClaimSpec = { id: 'X2', text: 'x', source: 's', scope: ['any'] };
const OLD_LINUX: ClaimSpec = { id: 'X3', text: 'x', source: 's', scope: ['Linux < 3.9'] };

describe('the claim registry', () => {
  it('holds every claim once, with a source and a scope', () => {
    const ids = CLAIMS.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    const texts = CLAIMS.map((c) => c.text);
    expect(new Set(texts).size).toBe(texts.length);
    for (const c of CLAIMS) {
      expect(c.source.length, c.id).toBeGreaterThan(3);
      expect(c.scope.length, c.id).toBeGreaterThan(0);
    }
  });
  it('C… are the seed’s claims, T… come from elsewhere', () => {
    for (const c of CLAIMS) {
      if (c.id.startsWith('C')) expect(c.source, c.id).toMatch(/^seed /);
      else expect(c.source, c.id).not.toMatch(/^seed /);
    }
  });
  it('every lab names registry claims, and every registry claim is tested by some lab', () => {
    const used = new Set(allLabs().flatMap((l) => labClaims(l).map((c) => c.id)));
    for (const c of CLAIMS) expect(used.has(c.id), c.id).toBe(true);
    for (const l of allLabs()) for (const c of labClaims(l)) expect(claimById(c.id)).toEqual(c);
  });
  it('no lab writes a verdict word of its own', () => {
    const dir = path.resolve(__dirname, '..', 'labs');
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
      const src = fs.readFileSync(path.join(dir, f), 'utf8');
      expect(src, f).not.toMatch(/'(holds|does not hold|differs by OS|not tested|mixed)'/);
    }
  });
  it('scopes: kernel ranges compare numerically', () => {
    expect(compareVersions('6.18.44-fc-v657', '3.9')).toBe(1);
    expect(compareVersions('3.10.0', '3.9')).toBe(1);
    expect(compareVersions('3.9', '3.9.0')).toBe(0);
    expect(compareVersions('3.2.0-4-amd64', '3.9')).toBe(-1);
    expect(inScope(['Linux >= 3.9'], '6.1.0-28-amd64')).toBe(true);
    expect(inScope(['Linux < 3.9'], '6.1.0-28-amd64')).toBe(false);
    expect(inScope(['BSD'], '6.1.0')).toBe(false);
    expect(inScope(['BSD', 'Linux'], '6.1.0')).toBe(true);
    expect(inScope(['any'], '6.1.0')).toBe(true);
    expect(scopeLabel(['BSD', 'Linux >= 3.9'])).toBe('BSD; Linux ≥ 3.9');
  });
});

describe('verdicts', () => {
  const met = requires('the FINs crossed', true, 'kernel FIN #5 does not acknowledge #4');
  const failed = requires('the FINs crossed', false, 'kernel FIN #6 acknowledges the peer’s FIN #4');
  it('agreeing gives holds; disagreeing gives does not hold in scope, differs by OS out of it', () => {
    expect(decide(ANY, { agrees: true, evidence: 'e' }, '6.18.0').verdict).toBe('holds');
    expect(decide(ANY, { agrees: false, evidence: 'e' }, '6.18.0').verdict).toBe('does not hold');
    expect(decide(BSD, { agrees: false, evidence: 'e' }, '6.18.0').verdict).toBe('differs by OS');
    expect(decide(BSD, { agrees: true, evidence: 'e' }, '6.18.0').verdict).toBe('holds');
    expect(decide(OLD_LINUX, { agrees: false, evidence: 'e' }, '6.18.0').verdict).toBe('differs by OS');
    expect(decide(OLD_LINUX, { agrees: false, evidence: 'e' }, '3.2.0').verdict).toBe('does not hold');
    expect(decide(BSD, { agrees: false, evidence: 'e' }, '6.18.0').evidence).toContain('the source states it for BSD, this is Linux 6.18.0');
  });
  it('a failed precondition makes it not tested, whatever the outcome, and says which with its numbers', () => {
    for (const agrees of [true, false]) {
      const d = decide(ANY, { requires: [met, failed], agrees, evidence: 'kernel CLOSING→TIME_WAIT' }, '6.18.0');
      expect(d.verdict).toBe('not tested');
      expect(d.evidence).toBe('precondition failed: the FINs crossed — kernel FIN #6 acknowledges the peer’s FIN #4. Observed: kernel CLOSING→TIME_WAIT');
      expect(d.preconditions).toEqual([met, failed]);
    }
  });
  it('trials: all agree → holds, none → against, some → mixed, each with k/n', () => {
    const t = (agrees: boolean, ok = true) => ({ requires: [ok ? met : failed], agrees });
    expect(decide(ANY, { trials: [t(true), t(true), t(true)], evidence: 'e' }, '6.1').evidence).toBe('3/3 trials agree: e');
    expect(decide(ANY, { trials: [t(false), t(false)], evidence: 'e' }, '6.1').verdict).toBe('does not hold');
    const mixed = decide(ANY, { trials: [t(true), t(false), t(true)], evidence: 'e' }, '6.1');
    expect(mixed.verdict).toBe('mixed');
    expect(mixed.trials).toEqual({ agree: 2, valid: 3, excluded: 0 });
    // trials whose own precondition failed are not counted, and the evidence says so
    const partly = decide(ANY, { trials: [t(true), t(false, false)], evidence: 'e' }, '6.1');
    expect(partly.verdict).toBe('holds');
    expect(partly.evidence).toMatch(/^1\/1 trials agree \(1 of 2 trials not counted: the FINs crossed — kernel FIN #6/);
    const none = decide(ANY, { trials: [t(true, false), t(true, false)], evidence: 'e' }, '6.1');
    expect(none.verdict).toBe('not tested');
    expect(none.evidence).toMatch(/^precondition failed in all 2 trials: the FINs crossed/);
  });
  it('a claim-wide precondition outranks the trials', () => {
    expect(decide(ANY, { requires: [failed], trials: [{ agrees: true }], evidence: 'e' }, '6.1').verdict).toBe('not tested');
  });
  it('a judgement gives either one outcome or trials', () => {
    expect(() => decide(ANY, { evidence: 'e' }, '6.1')).toThrow(/either/);
    expect(() => decide(ANY, { agrees: true, trials: [], evidence: 'e' }, '6.1')).toThrow(/either/);
  });
});
