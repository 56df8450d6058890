/**
 * Where a config path (["servers", "main", "retention"]) sits in the YAML source, so every config
 * error can name file:line:col. The parsed Document keeps each node's byte range; a LineCounter
 * turns an offset into a 1-based line and column.
 */

import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Pair } from 'yaml';

export type ConfigPath = readonly string[];

export interface Position {
  readonly line: number;
  readonly col: number;
}

/** Point at the key of the last path segment (unknown key, missing child) or at its value. */
export type Anchor = 'key' | 'value';

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

function startOf(node: unknown): number | undefined {
  if (node !== null && typeof node === 'object' && 'range' in node) {
    const range = (node as { range?: readonly number[] | null }).range;
    return range?.[0] ?? undefined;
  }
  return undefined;
}

/**
 * Offset of `path` in `doc`; when the path does not exist (a missing key, a value of the wrong
 * shape) the nearest existing ancestor is used, which is where the user has to look.
 */
function offsetOf(doc: Document, path: ConfigPath, anchor: Anchor): number {
  let node: unknown = doc.contents;
  let best = startOf(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    if (isAlias(node)) node = node.resolve(doc);
    let pair: Pair | undefined;
    let child: unknown;
    if (isMap(node)) {
      pair = node.items.find((p) => keyText(p.key) === path[i]);
      if (pair === undefined) return best;
      child = pair.value;
    } else if (isSeq(node)) {
      child = node.items[Number(path[i])];
      if (child === undefined) return best;
    } else {
      return best;
    }
    const keyStart = startOf(pair?.key);
    const valueStart = startOf(child);
    const last = i === path.length - 1;
    if (last && anchor === 'key' && keyStart !== undefined) return keyStart;
    best = valueStart ?? keyStart ?? best;
    node = child;
  }
  return best;
}

export function positionOf(doc: Document, lineCounter: LineCounter, path: ConfigPath, anchor: Anchor): Position {
  const { line, col } = lineCounter.linePos(offsetOf(doc, path, anchor));
  return { line, col };
}

/** "servers.main.retention" (the form users see in messages); the root is "(root)". */
export function dottedPath(path: ConfigPath): string {
  return path.length === 0 ? '(root)' : path.join('.');
}
