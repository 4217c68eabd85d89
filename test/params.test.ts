// Lab parameters: parsing, defaults, and `--set` across the labs of one run.
import { describe, expect, it } from 'vitest';
import { formatJson } from '../src/lab/api/json';
import { describeParam, ParamError, parseParam, resolveParams, splitAssignment, type ParamSpec } from '../src/lab/api/params';

const LINGER: ParamSpec = { name: 'linger', kind: 'int', default: 3, min: 0, max: 600, unit: 'seconds', help: 'SO_LINGER seconds' };
const TS: ParamSpec = { name: 'timestamps', kind: 'bool', default: true, help: 'TCP timestamps' };
const RST: ParamSpec = {
  name: 'rst',
  kind: 'enum',
  default: 'in-window',
  choices: ['in-window', 'out-of-window'],
  help: 'where the RST lands',
};
const PROTOS: ParamSpec = { name: 'protocols', kind: 'list', default: ['tcp', 'udp'], choices: ['tcp', 'udp'], help: 'protocols' };

describe('parseParam', () => {
  it('parses each kind', () => {
    expect(parseParam(LINGER, '5')).toBe(5);
    expect(parseParam(TS, 'off')).toBe(false);
    expect(parseParam(TS, 'ON')).toBe(true);
    expect(parseParam(RST, 'out-of-window')).toBe('out-of-window');
    expect(parseParam(PROTOS, 'udp, tcp,udp')).toEqual(['udp', 'tcp']);
  });
  it.each([
    [LINGER, '5s', /takes a whole number \(seconds\)/],
    [LINGER, '-1', /must be ≥ 0/],
    [LINGER, '601', /must be ≤ 600/],
    [TS, 'maybe', /takes on\/off/],
    [RST, 'sideways', /one of in-window, out-of-window/],
    [PROTOS, '', /comma-separated list/],
    [PROTOS, 'sctp', /"sctp" is not one of tcp, udp/],
  ] as const)('%o rejects %j', (spec, raw, msg) => {
    expect(() => parseParam(spec, raw, '06')).toThrow(ParamError);
    expect(() => parseParam(spec, raw, '06')).toThrow(msg);
  });
  it('describes a parameter with its default where help shows it', () => {
    expect(describeParam(LINGER)).toBe('linger=3 (integer 0..600 seconds) — SO_LINGER seconds');
  });
});

describe('resolveParams', () => {
  const labs = [
    { id: '05', params: [TS] },
    { id: '06', params: [LINGER, TS] },
  ];
  it('gives every lab its defaults, and a --set to every lab that declares the name', () => {
    const p = resolveParams(labs, ['timestamps=off', 'linger=9']);
    expect(p.get('05')).toEqual({ timestamps: false });
    expect(p.get('06')).toEqual({ linger: 9, timestamps: false });
  });
  it('rejects a name no lab in the run declares, listing the known ones', () => {
    expect(() => resolveParams([labs[0]!], ['linger=9'])).toThrow(/no lab in this run has a parameter "linger" \(known: timestamps\)/);
  });
  it('rejects malformed assignments', () => {
    expect(() => splitAssignment('linger')).toThrow(/name=value/);
    expect(() => splitAssignment('=3')).toThrow(/name=value/);
    expect(() => splitAssignment('Linger=3')).toThrow(/not a parameter name/);
  });
});

describe('formatJson', () => {
  it('indents to a depth, then keeps each value on one line', () => {
    expect(formatJson({ a: 1, b: [{ x: 1 }, { x: 2 }] }, 2)).toBe('{\n  "a": 1,\n  "b": [\n    {"x":1},\n    {"x":2}\n  ]\n}');
    expect(JSON.parse(formatJson({ a: [1, [2, { b: null }]], c: 'd' }, 3))).toEqual({ a: [1, [2, { b: null }]], c: 'd' });
  });
});
