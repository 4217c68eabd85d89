// The claim registry and the verdict rules, in memory: the verdict word is derived from the
// preconditions, the trials and the claim's scope, never chosen by a lab.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLAIMS, claimById, compareVersions, inScope, scopeLabel, validateClaim, type ClaimSpec, type Scope } from '../src/lab/api/claims';
import type { LabDefinition } from '../src/lab/api/types';
import { labClaims } from '../src/lab/api/types';
import { DIST } from './helpers';

// the compiled labs (npm test compiles first): the registry loads lab files with require()
// eslint-disable-next-line @typescript-eslint/no-require-imports
const allLabs = (): LabDefinition[] =>
  (require(path.join(DIST, 'src', 'lab', 'run', 'registry.js')) as { allLabs(): LabDefinition[] }).allLabs();
import { decide, MIN_VALID_TRIALS, requires, type Trial } from '../src/lab/api/verdict';

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
    // a release with no version in it is not version 0
    expect(compareVersions('custom-kernel', '3.9')).toBeNull();
    expect(inScope(['Linux < 3.9'], 'custom-kernel')).toBeNull();
    expect(inScope(['Linux < 3.9', 'BSD'], { os: 'NetBSD', release: '7.99.34' })).toBe(true);
    expect(inScope(['Linux'], { os: 'NetBSD', release: '7.99.34' })).toBe(false);
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
    expect(decide(BSD, { agrees: false, evidence: 'e' }, '6.18.0').evidence).toContain(
      'the source states it for BSD, this is Linux 6.18.0',
    );
  });
  it('a failed precondition makes it not tested, whatever the outcome, and says which with its numbers', () => {
    for (const agrees of [true, false]) {
      const d = decide(ANY, { requires: [met, failed], agrees, evidence: 'kernel CLOSING→TIME_WAIT' }, '6.18.0');
      expect(d.verdict).toBe('not tested');
      expect(d.evidence).toBe(
        'precondition failed: the FINs crossed — kernel FIN #6 acknowledges the peer’s FIN #4. Observed: kernel CLOSING→TIME_WAIT',
      );
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
    const partly = decide(ANY, { trials: [t(true), t(true), t(true), t(false, false)], evidence: 'e' }, '6.1');
    expect(partly.verdict).toBe('holds');
    expect(partly.evidence).toMatch(/^3\/3 trials agree \(1 of 4 trials not counted: the FINs crossed — kernel FIN #6/);
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
  it('no trials at all is not tested, never a throw or a vacuous holds', () => {
    const d = decide(ANY, { trials: [], evidence: 'nothing ran' }, '6.1');
    expect(d.verdict).toBe('not tested');
    expect(d.evidence).toBe('no trials were run. Observed: nothing ran');
    expect(d.trials).toEqual({ agree: 0, valid: 0, excluded: 0 });
  });
});

describe(`a verdict from trials needs ${MIN_VALID_TRIALS} valid ones (or all, when fewer were run)`, () => {
  const ok: Trial = { requires: [requires('the four-tuple was in TIME_WAIT', true, 'entry present')], agrees: true };
  const no: Trial = { ...ok, agrees: false };
  const skipped: Trial = { requires: [requires('the four-tuple was in TIME_WAIT', false, 'no TIME_WAIT entry')], agrees: true };
  it('1 valid trial of 5 is not tested, and the evidence says how many were valid and why the rest were not', () => {
    const d = decide(ANY, { trials: [ok, skipped, skipped, skipped, skipped], evidence: 'e' }, '6.1');
    expect(d.verdict).toBe('not tested');
    expect(d.evidence).toBe(
      'too few valid trials: 1 of 5 (a verdict needs 3); 4 not counted: the four-tuple was in TIME_WAIT — no TIME_WAIT entry. Observed: e',
    );
    expect(d.trials).toEqual({ agree: 1, valid: 1, excluded: 4 });
    // the same against the claim
    expect(decide(ANY, { trials: [no, no, skipped, skipped, skipped], evidence: 'e' }, '6.1').verdict).toBe('not tested');
    expect(decide(ANY, { trials: [ok, no, skipped, skipped, skipped], evidence: 'e' }, '6.1').verdict).toBe('not tested');
  });
  it('3 valid of 5 is judged, with the two left out named', () => {
    const d = decide(ANY, { trials: [ok, ok, ok, skipped, skipped], evidence: 'e' }, '6.1');
    expect(d.verdict).toBe('holds');
    expect(d.evidence).toBe('3/3 trials agree (2 of 5 trials not counted: the four-tuple was in TIME_WAIT — no TIME_WAIT entry): e');
  });
  it('with fewer trials run than that, every one must be valid', () => {
    expect(decide(ANY, { trials: [ok, ok], evidence: 'e' }, '6.1').verdict).toBe('holds');
    const d = decide(ANY, { trials: [ok, skipped], evidence: 'e' }, '6.1');
    expect(d.verdict).toBe('not tested');
    expect(d.evidence).toMatch(/^too few valid trials: 1 of 2 \(a verdict needs 2, every trial run\)/);
  });
});

describe('claims of possibility ("may")', () => {
  const MAY: ClaimSpec = { id: 'X4', text: 'an old segment may be taken for new data', source: 's', scope: ['any'], modality: 'may' };
  const MAY_BSD: ClaimSpec = { ...MAY, id: 'X5', scope: ['BSD'] };
  const aligned = requires('PAWS was off (no timestamps)', true, 'off');
  const paws = requires('PAWS was off (no timestamps)', false, 'timestamps on');
  it('holds when some valid trial shows it: one instance proves it can happen', () => {
    const d = decide(
      MAY,
      {
        trials: [
          { requires: [aligned], agrees: false },
          { requires: [aligned], agrees: true },
          { requires: [aligned], agrees: false },
        ],
        evidence: 'e',
      },
      '6.1',
    );
    expect(d.verdict).toBe('holds');
    expect(d.evidence).toBe('1/3 trials agree: e (a "may" claim: it holds when some valid trial shows it)');
    // one valid trial that shows it is enough, even with others left out
    expect(
      decide(
        MAY,
        {
          trials: [
            { requires: [aligned], agrees: true },
            { requires: [paws], agrees: false },
            { requires: [paws], agrees: false },
          ],
          evidence: 'e',
        },
        '6.1',
      ).verdict,
    ).toBe('holds');
  });
  it('does not hold only when none of enough valid trials shows it; differs by OS out of its scope', () => {
    const none = [0, 1, 2].map((): Trial => ({ requires: [aligned], agrees: false }));
    const d = decide(MAY, { trials: none, evidence: 'e' }, '6.1');
    expect(d.verdict).toBe('does not hold');
    expect(d.evidence).toBe('0/3 trials agree: e (a "may" claim: none of 3 valid trials shows it)');
    expect(decide(MAY_BSD, { trials: none, evidence: 'e' }, '6.1').verdict).toBe('differs by OS');
    expect(decide(MAY, { trials: none.slice(0, 1).concat([{ requires: [paws], agrees: false }]), evidence: 'e' }, '6.1').verdict).toBe(
      'not tested',
    );
  });
  it('its enabling conditions are preconditions: with them failing it is not tested, never "does not hold"', () => {
    const d = decide(MAY, { trials: [0, 1, 2].map((): Trial => ({ requires: [paws], agrees: false })), evidence: 'e' }, '6.1');
    expect(d.verdict).toBe('not tested');
    expect(d.evidence).toMatch(/^precondition failed in all 3 trials: PAWS was off \(no timestamps\) — timestamps on/);
  });
  it('the registry marks its claims of possibility', () => {
    expect(claimById('C13').modality).toBe('may');
    expect(claimById('C19').modality).toBe('may');
    expect(claimById('T11').modality).toBeUndefined();
  });
});

describe('scopes and kernel releases', () => {
  it('an unknown scope string is rejected when a claim is checked, not judged "differs by OS"', () => {
    expect(() => validateClaim({ id: 'X6', text: 't', source: 's', scope: ['Linux ≥ 3.9' as Scope] })).toThrow(
      /claim X6: unknown scope "Linux ≥ 3.9"/,
    );
    expect(() => validateClaim({ id: 'X7', text: 't', source: 's', scope: ['FreeBDS' as Scope] })).toThrow(/unknown scope "FreeBDS"/);
    expect(() => validateClaim({ id: 'X8', text: 't', source: 's', scope: ['Linux < three' as Scope] })).toThrow(/must be dotted numbers/);
    expect(() => validateClaim({ id: 'X9', text: 't', source: 's', scope: [] })).toThrow(/no scope/);
    expect(() => validateClaim({ id: 'XA', text: 't', source: 's', scope: ['any'], modality: 'might' as never })).toThrow(
      /unknown modality/,
    );
    for (const c of CLAIMS) expect(() => validateClaim(c), c.id).not.toThrow();
  });
  it('a lab bringing a claim of its own with a bad scope fails when the lab is defined', () => {
    expect(() => labClaims({ id: '42', claims: [{ id: 'Z1', text: 'mine', source: 's', scope: ['Linx' as Scope] }] })).toThrow(
      /claim Z1: unknown scope "Linx"/,
    );
  });
  it('an unparsable kernel release never counts as version 0: against a kernel-range claim it is not tested', () => {
    const d = decide(OLD_LINUX, { agrees: false, evidence: 'e' }, 'custom-kernel');
    expect(d.verdict).toBe('not tested');
    expect(d.evidence).toBe(
      'precondition failed: the kernel release reads as a version (the claim is stated for Linux < 3.9) — "custom-kernel". Observed: e',
    );
    // a version is needed only where the verdict turns on it
    expect(decide(OLD_LINUX, { agrees: true, evidence: 'e' }, 'custom-kernel').verdict).toBe('holds');
    expect(decide(ANY, { agrees: false, evidence: 'e' }, 'custom-kernel').verdict).toBe('does not hold');
    expect(decide(BSD, { agrees: false, evidence: 'e' }, 'custom-kernel').verdict).toBe('differs by OS');
  });
  it('another OS is named as such', () => {
    expect(decide(OLD_LINUX, { agrees: false, evidence: 'e' }, { os: 'NetBSD', release: '7.99.34' }).evidence).toBe(
      'e; the source states it for Linux < 3.9, this is NetBSD 7.99.34',
    );
    expect(decide(BSD, { agrees: false, evidence: 'e' }, { os: 'NetBSD', release: '7.99.34' }).verdict).toBe('does not hold');
  });
});
