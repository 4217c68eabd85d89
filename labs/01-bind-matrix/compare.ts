// Lab 01 across kernels: each cell named by what was tried ("tcp bound A 0.0.0.0 [-] · B 127.0.0.1
// [ADDR] uid same") with B's bind() (and the listens) as its outcome, for the side-by-side reports
// (the lab's `report.compare`). The cells come back from another kernel's result.json, so each is
// checked for the fields it is read by, not assumed.
import type { LabReportHooks, LabResult } from '../../src/lab';
import type { Cell } from './cells';

/** What a cell's name and outcome are read from. */
export type BindCell = Pick<
  Cell,
  | 'kind'
  | 'reuseaddrA'
  | 'reuseaddrB'
  | 'reuseportA'
  | 'reuseportB'
  | 'addrA'
  | 'addrB'
  | 'v6onlyA'
  | 'v6onlyB'
  | 'result'
  | 'listenA'
  | 'listenB'
  | 'notTested'
> & { proto: string; uidB: string; setupA?: string };

const flagText = (addr: boolean, port: boolean): string => (addr && port ? 'ADDR+PORT' : addr ? 'ADDR' : port ? 'PORT' : '-');
const endpointText = (a: string, v6only: boolean | null): string => (v6only ? `${a}+v6only` : a);

export function bindCellKey(c: BindCell): string {
  const a = `A ${endpointText(c.addrA, c.v6onlyA)} [${flagText(c.reuseaddrA, c.reuseportA)}]`;
  const b = `B ${endpointText(c.addrB, c.v6onlyB)} [${flagText(c.reuseaddrB, c.reuseportB)}]`;
  return `${c.proto} ${c.kind} ${a} · ${b} uid ${c.uidB}`;
}

export function bindCellOutcome(c: BindCell): string {
  if (c.setupA && c.setupA !== 'OK') return `A: ${c.setupA}`;
  const listen = c.listenA !== undefined || c.listenB !== undefined ? ` (listen A ${c.listenA ?? '-'}, B ${c.listenB ?? '-'})` : '';
  return c.result + listen;
}

function isBindCell(x: unknown): x is BindCell {
  if (!x || typeof x !== 'object') return false;
  const strings = ['proto', 'kind', 'addrA', 'addrB', 'uidB', 'result'].every((k) => typeof Reflect.get(x, k) === 'string');
  const flags = ['reuseaddrA', 'reuseaddrB', 'reuseportA', 'reuseportB'].every((k) => typeof Reflect.get(x, k) === 'boolean');
  return strings && flags;
}

/** The matrix variant's cells in a result, each name with its outcome; a cell the system could not make is left out. */
export function bindMatrixOutcomes(result: Pick<LabResult, 'variants'>): Map<string, string> {
  const cells = result.variants[0]?.observations.cells;
  // a cell the system could not make (another user on F-Stack) was not measured there
  const measured = (Array.isArray(cells) ? cells : []).filter(isBindCell).filter((c) => !c.notTested);
  return new Map(measured.map((c) => [bindCellKey(c), bindCellOutcome(c)]));
}

export const BIND_MATRIX_COMPARISON: NonNullable<LabReportHooks['compare']> = {
  items: 'bind-matrix cells',
  outcome: "B's bind(), and the listen() calls where both binds succeeded",
  outcomes: bindMatrixOutcomes,
};
