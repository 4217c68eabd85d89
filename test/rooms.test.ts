// The source tree's layering: src/lab's three rooms import downward only (the API never imports
// the runner or the reports, the runner never the reports), and src/lab and src/cli have no import
// circle. Type-only imports count: a circle of types is still a circle for a reader.
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.join(__dirname, '..', 'src');

function importGraph(): Map<string, string[]> {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) files.push(p);
    }
  };
  walk(SRC);
  const resolve = (from: string, spec: string): string | null => {
    const b = path.join(path.dirname(from), spec);
    return [`${b}.ts`, path.join(b, 'index.ts')].find((c) => fs.existsSync(c)) ?? null;
  };
  const rel = (f: string): string => path.relative(SRC, f);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const imports = ts.preProcessFile(fs.readFileSync(f, 'utf8'), true, true).importedFiles.map((i) => i.fileName);
    graph.set(
      rel(f),
      imports
        .filter((s) => s.startsWith('.'))
        .map((s) => resolve(f, s))
        .filter((x): x is string => x !== null)
        .map(rel),
    );
  }
  return graph;
}

/** Strongly connected components with more than one file (Tarjan). */
function circles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) found.push(c.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('the rooms of src/', () => {
  const graph = importGraph();

  it('src/lab/api imports neither the runner nor the reports; the runner does not import the reports', () => {
    const upward: string[] = [];
    for (const [f, deps] of graph) {
      for (const d of deps) {
        if (f.startsWith('lab/api/') && (d.startsWith('lab/run/') || d.startsWith('lab/report/'))) upward.push(`${f} → ${d}`);
        if (f.startsWith('lab/run/') && d.startsWith('lab/report/')) upward.push(`${f} → ${d}`);
        if (/^(wire|stack|host|capture)\//.test(f) && /^(lab|kernels|cli)\//.test(d)) upward.push(`${f} → ${d}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('no import circle in src/lab, src/kernels or src/cli', () => {
    const found = circles(graph).filter((c) => c.some((f) => /^(lab|kernels|cli)\//.test(f)));
    expect(found).toEqual([]);
    expect(graph.get('lab/api/types.ts')).toContain('lab/api/context.ts'); // the check sees type-only imports
  });
});
