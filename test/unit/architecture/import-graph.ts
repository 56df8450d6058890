/**
 * The file-level import graph of src/ (static, type-only, re-export and dynamic imports), read from
 * the sources so the architecture tests see what a reader sees.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export const SRC = path.resolve(process.cwd(), 'src');

export interface ImportEdge {
  readonly from: string; // path relative to src/, e.g. "cli/plan.ts"
  readonly to: string; // a file relative to src/, or a bare package specifier ("ssh2", "node:fs")
  readonly dynamic: boolean;
  /** `import type` / `export type`: erased at run time (counts for circles, not for start-up weight). */
  readonly typeOnly: boolean;
}

const STATIC_RE = /^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;
const DYNAMIC_RE = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
/** `require('x')` through createRequire: loaded on first use like a dynamic import (catalog/zstd.ts, catalog/s3/client.ts). */
const REQUIRE_RE = /(?:\brequire|\bcreateRequire\(import\.meta\.url\))\(\s*'([^']+)'\s*\)/g;

export function sourceFiles(dir = SRC): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (e.endsWith('.ts') && !e.endsWith('.d.ts')) out.push(path.relative(SRC, p));
  }
  return out.sort();
}

function resolveSpec(fromFile: string, spec: string): string {
  if (!spec.startsWith('.')) return spec;
  const abs = path.resolve(path.dirname(path.join(SRC, fromFile)), spec).replace(/\.js$/, '.ts');
  return path.relative(SRC, abs);
}

export function importEdges(files = sourceFiles()): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const f of files) {
    // Comments can mention imports; strip them so only code counts.
    const text = readFileSync(path.join(SRC, f), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    for (const m of text.matchAll(STATIC_RE)) {
      edges.push({ from: f, to: resolveSpec(f, m[1]!), dynamic: false, typeOnly: /^\s*(?:import|export)\s+type\s/.test(m[0]) });
    }
    for (const m of text.matchAll(DYNAMIC_RE)) edges.push({ from: f, to: resolveSpec(f, m[1]!), dynamic: true, typeOnly: false });
    for (const m of text.matchAll(REQUIRE_RE)) edges.push({ from: f, to: resolveSpec(f, m[1]!), dynamic: true, typeOnly: false });
  }
  return edges;
}

/** Strongly connected components with more than one file: import circles (Tarjan). */
export function importCircles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) if (e.to.endsWith('.ts')) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  const strong = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
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
      if (c.length > 1) circles.push(c.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) strong(v);
  return circles;
}

/** Every file (and package) a module loads at start-up: its static imports, transitively. */
export function staticClosure(entry: string, edges: readonly ImportEdge[]): Set<string> {
  const seen = new Set<string>([entry]);
  const todo = [entry];
  while (todo.length > 0) {
    const f = todo.pop()!;
    for (const e of edges) {
      if (e.from !== f || e.dynamic || e.typeOnly || seen.has(e.to)) continue;
      seen.add(e.to);
      if (e.to.endsWith('.ts')) todo.push(e.to);
    }
  }
  return seen;
}
