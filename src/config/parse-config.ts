/**
 * A config file's bytes → Desired: parse keeping positions, validate (schema, then the checks a
 * schema cannot express), and resolve defaults. Every problem in the file is reported at once, one
 * "file:line:col: path: message" line each, in a single PgbkError('CONFIG'). Loaded only when
 * load.ts has no valid cached result: yaml, the schema validator and the cron libraries are most
 * of a read command's start-up.
 */

import { LineCounter, parseDocument, type Document } from 'yaml';
import { PgbkError } from '../errors.js';
import { checkSemantics } from './check-semantics.js';
import { redactConninfo } from './conninfo.js';
import type { Problem } from './problem.js';
import { resolveConfig } from './resolve.js';
import type { Desired } from './resolved.js';
import type { PgbkConfig } from './types.gen.js';
import { validateAgainstSchema } from './validate-schema.js';
import { dottedPath, positionOf } from './yaml-position.js';

interface Located {
  readonly line: number;
  readonly col: number;
  readonly text: string;
}

function fail(file: string, lines: readonly Located[]): never {
  const sorted = [...lines].sort((a, b) => a.line - b.line || a.col - b.col || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  const unique = sorted.filter((l, i) => i === 0 || l.text !== sorted[i - 1]?.text || l.line !== sorted[i - 1]?.line);
  // Redacted once more as a last guard: no message may echo a password from the file.
  const message = unique.map((l) => redactConninfo(`${file}:${l.line}:${l.col}: ${l.text}`)).join('\n');
  throw new PgbkError('CONFIG', message, { path: file });
}

function decode(file: string, bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    throw new PgbkError('CONFIG', `${file}: not valid UTF-8 text`, { path: file, cause: err });
  }
}

function parse(file: string, source: string): { doc: Document; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    fail(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
        // prettyErrors appends " at line L, column C:" and a source excerpt: the position is
        // already in front, and the excerpt could echo a secret.
        const first = e.message.split('\n')[0] ?? e.message;
        const text = first.replace(/ at line \d+, column \d+:?$/, '');
        return { line: pos.line, col: pos.col, text: `invalid YAML: ${text}` };
      }),
    );
  }
  return { doc, lineCounter };
}

export async function parseConfig(file: string, bytes: Buffer, configHash: string, home: string): Promise<Desired> {
  const { doc, lineCounter } = parse(file, decode(file, bytes));
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    // e.g. an alias bomb ("Excessive alias count"): refuse the file rather than expand it.
    const text = err instanceof Error ? err.message : String(err);
    fail(file, [{ line: 1, col: 1, text: `invalid YAML: ${text}` }]);
  }
  if (data === null || data === undefined) {
    fail(file, [{ line: 1, col: 1, text: '(root): the file is empty; it needs at least catalog and servers' }]);
  }

  const problems: readonly Problem[] = [...(await validateAgainstSchema(data)), ...checkSemantics(data)];
  if (problems.length > 0) {
    fail(
      file,
      problems.map((p) => {
        const { line, col } = positionOf(doc, lineCounter, p.at ?? p.path, p.anchor);
        return { line, col, text: `${dottedPath(p.path)}: ${p.message}` };
      }),
    );
  }

  return resolveConfig(data as PgbkConfig, { configPath: file, configHash, home });
}
