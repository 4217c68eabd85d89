// Lab parameters: one table per lab, defaults written where help shows them, validated once.

export type ParamValue = number | string | boolean | string[];

interface ParamBase {
  name: string;
  help: string;
  /** when set, the value is written to this per-namespace sysctl before the lab starts */
  sysctl?: string;
  /**
   * the claims whose judgement needs that sysctl (default: every claim of the lab): where the
   * system under test has no equivalent knob (another OS), these say `not tested`, naming it
   */
  claims?: readonly string[];
}

export type ParamSpec =
  | (ParamBase & { kind: 'int'; default: number; min?: number; max?: number; unit?: string })
  | (ParamBase & { kind: 'bool'; default: boolean })
  | (ParamBase & { kind: 'enum'; default: string; choices: readonly string[] })
  | (ParamBase & { kind: 'string'; default: string; validate?: (v: string) => string | null })
  /** comma-separated list; each item is checked against `choices` or by `validate` */
  | (ParamBase & {
      kind: 'list';
      default: readonly string[];
      choices?: readonly string[];
      validate?: (item: string) => string | null;
      allowEmpty?: boolean;
    });

/** A bad `--set` (a CodedError: src/lab/api/errors.ts). */
export class ParamError extends Error {
  readonly code = 'BAD_PARAM';
  readonly exitCode = 2;
}

const TRUE = new Set(['1', 'true', 'on', 'yes']);
const FALSE = new Set(['0', 'false', 'off', 'no']);

/** Parses one `--set` value for `spec`; throws ParamError with a one-line, actionable message. */
export function parseParam(spec: ParamSpec, raw: string, labId?: string): ParamValue {
  const where = labId ? `lab ${labId} parameter ${spec.name}` : `parameter ${spec.name}`;
  switch (spec.kind) {
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim()))
        throw new ParamError(`${where} takes a whole number${spec.unit ? ` (${spec.unit})` : ''}, not ${JSON.stringify(raw)}`);
      const n = Number(raw);
      if (spec.min !== undefined && n < spec.min) throw new ParamError(`${where} must be ≥ ${spec.min}, not ${n}`);
      if (spec.max !== undefined && n > spec.max) throw new ParamError(`${where} must be ≤ ${spec.max}, not ${n}`);
      return n;
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (TRUE.has(v)) return true;
      if (FALSE.has(v)) return false;
      throw new ParamError(`${where} takes on/off (or true/false, 1/0), not ${JSON.stringify(raw)}`);
    }
    case 'enum': {
      if (!spec.choices.includes(raw)) throw new ParamError(`${where} takes one of ${spec.choices.join(', ')}, not ${JSON.stringify(raw)}`);
      return raw;
    }
    case 'string': {
      const problem = spec.validate?.(raw);
      if (problem) throw new ParamError(`${where}: ${problem}`);
      return raw;
    }
    case 'list': {
      const items = raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (items.length === 0 && !spec.allowEmpty)
        throw new ParamError(`${where} takes a comma-separated list, e.g. ${spec.default.join(',')}`);
      for (const item of items) {
        if (spec.choices && !spec.choices.includes(item)) {
          throw new ParamError(`${where}: ${JSON.stringify(item)} is not one of ${spec.choices.join(', ')}`);
        }
        const problem = spec.validate?.(item);
        if (problem) throw new ParamError(`${where}: ${problem}`);
      }
      return [...new Set(items)];
    }
  }
}

export function defaultOf(spec: ParamSpec): ParamValue {
  return spec.kind === 'list' ? [...spec.default] : spec.default;
}

/** A value as `--set` takes it: lists comma-separated, booleans on/off. */
export function formatParamValue(v: ParamValue): string {
  return Array.isArray(v) ? v.join(',') : typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v);
}

/** A one-line description for help and `twlab list`: name=default (type) help */
export function describeParam(spec: ParamSpec): string {
  let type: string;
  switch (spec.kind) {
    case 'int':
      type = `integer${spec.min !== undefined || spec.max !== undefined ? ` ${spec.min ?? ''}..${spec.max ?? ''}` : ''}${spec.unit ? ` ${spec.unit}` : ''}`;
      break;
    case 'bool':
      type = 'on/off';
      break;
    case 'enum':
      type = spec.choices.join('|');
      break;
    case 'string':
      type = 'text';
      break;
    case 'list':
      type = spec.choices ? `list of ${spec.choices.join('|')}` : 'list';
      break;
  }
  return `${spec.name}=${formatParamValue(defaultOf(spec))} (${type}${spec.sysctl ? `; sysctl ${spec.sysctl}` : ''}) — ${spec.help}`;
}

/** Splits `name=value` from the command line. */
export function splitAssignment(text: string): { name: string; value: string } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new ParamError(`--set takes name=value, not ${JSON.stringify(text)}`);
  const name = text.slice(0, eq).trim();
  if (!/^[a-z][a-z0-9_]*$/.test(name))
    throw new ParamError(`--set: ${JSON.stringify(name)} is not a parameter name (lowercase letters, digits, _)`);
  return { name, value: text.slice(eq + 1) };
}

/**
 * Resolves `--set` assignments for a set of labs: each applies to every lab that declares the
 * name; a name no lab declares, or a value a lab rejects, is an error.
 */
export function resolveParams(
  labs: ReadonlyArray<{ id: string; params: readonly ParamSpec[] }>,
  assignments: readonly string[],
): Map<string, Record<string, ParamValue>> {
  const out = new Map<string, Record<string, ParamValue>>();
  for (const lab of labs) out.set(lab.id, Object.fromEntries(lab.params.map((p) => [p.name, defaultOf(p)])));
  for (const text of assignments) {
    const { name, value } = splitAssignment(text);
    const declaring = labs.filter((l) => l.params.some((p) => p.name === name));
    if (declaring.length === 0) {
      const known = [...new Set(labs.flatMap((l) => l.params.map((p) => p.name)))].sort();
      throw new ParamError(
        `no lab in this run has a parameter ${JSON.stringify(name)}${known.length ? ` (known: ${known.join(', ')})` : ''}`,
      );
    }
    for (const lab of declaring) {
      const spec = lab.params.find((p) => p.name === name)!;
      out.get(lab.id)![name] = parseParam(spec, value, lab.id);
    }
  }
  return out;
}
