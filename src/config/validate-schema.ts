/**
 * Structural validation of the parsed YAML against schema/pgbk.schema.json (the source of truth
 * that editors also use), with ajv's errors rewritten into messages a DBA reads without knowing
 * JSON Schema.
 */

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { PgbkError } from '../errors.js';
import { DURATION_PATTERN } from './duration.js';
import type { Problem } from './problem.js';

/** dist/src/config/*.js → <package>/schema/ (the schema ships in the package, see "files"). */
export const SCHEMA_PATH = fileURLToPath(new URL('../../../schema/pgbk.schema.json', import.meta.url));

let compiled: Promise<ValidateFunction> | undefined;

async function compileSchema(): Promise<ValidateFunction> {
  let schema: unknown;
  let schemaText: string;
  try {
    schemaText = await readFile(SCHEMA_PATH, 'utf8');
    schema = JSON.parse(schemaText);
  } catch (err) {
    throw new PgbkError('INTERNAL', `cannot read the config schema ${SCHEMA_PATH}`, { path: SCHEMA_PATH, cause: err });
  }
  const precompiled = loadPrecompiled(schemaText);
  if (precompiled !== undefined) return precompiled;
  // verbose: errors carry the failing value and the schema around it (for "allowed keys" lists).
  // The same options are used by scripts/build-validator.mjs.
  const { Ajv } = await import('ajv');
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true });
  return ajv.compile(schema as object);
}

/**
 * The validator precompiled at build time (scripts/build-validator.mjs), if it was built from this
 * very schema: saves compiling the schema on every start of the per-segment commands.
 */
function loadPrecompiled(schemaText: string): ValidateFunction | undefined {
  try {
    const mod = createRequire(import.meta.url)('./schema-validator.cjs') as ValidateFunction & { schemaSha256?: string };
    const sha = createHash('sha256').update(schemaText).digest('hex');
    return mod.schemaSha256 === sha ? mod : undefined;
  } catch {
    return undefined;
  }
}

function validator(): Promise<ValidateFunction> {
  compiled ??= compileSchema();
  return compiled;
}

function pointerToPath(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function shown(value: unknown): string {
  if (typeof value === 'string') {
    const text = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(text);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'nothing';
  return Array.isArray(value) ? 'a list' : 'a mapping';
}

function describeType(value: unknown): string {
  if (value === null) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${shown(value)}`;
}

interface SchemaLike {
  readonly properties?: Readonly<Record<string, unknown>>;
  readonly patternProperties?: Readonly<Record<string, unknown>>;
  readonly pattern?: string;
}

function toProblem(err: ErrorObject): Problem {
  const path = pointerToPath(err.instancePath);
  const parent = (err.parentSchema ?? {}) as SchemaLike;
  const isDuration = parent.pattern === DURATION_PATTERN;
  const durationHint = `must be a duration like 30s, 5m, 12h, 14d or 2w (got ${shown(err.data)})`;
  const params = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      if (parent.patternProperties !== undefined) {
        return {
          path: [...path, key],
          anchor: 'key',
          message: "invalid name: use letters, digits, '_', '.' and '-', starting with a letter or digit",
        };
      }
      const allowed = Object.keys(parent.properties ?? {}).join(', ');
      return { path: [...path, key], anchor: 'key', message: `unknown key (allowed: ${allowed})` };
    }
    case 'required':
      return { path: [...path, String(params['missingProperty'])], at: path, anchor: 'key', message: 'is required' };
    case 'minProperties':
      return { path, anchor: 'value', message: 'define at least one server' };
    case 'type':
      if (isDuration) return { path, anchor: 'value', message: durationHint };
      return { path, anchor: 'value', message: `must be ${String(params['type'])} (got ${describeType(err.data)})` };
    case 'pattern':
      if (isDuration) return { path, anchor: 'value', message: durationHint };
      if (params['pattern'] === '^/') return { path, anchor: 'value', message: `must be an absolute path (got ${shown(err.data)})` };
      return { path, anchor: 'value', message: `${err.message ?? 'invalid'} (got ${shown(err.data)})` };
    case 'enum': {
      const allowed = (params['allowedValues'] as readonly unknown[]).map(String).join(', ');
      return { path, anchor: 'value', message: `must be one of: ${allowed} (got ${shown(err.data)})` };
    }
    case 'minLength':
      return { path, anchor: 'value', message: 'must not be empty' };
    default:
      return { path, anchor: 'value', message: err.message ?? `fails schema keyword ${err.keyword}` };
  }
}

/** Problems with `data` against the schema; empty when it conforms. */
export async function validateAgainstSchema(data: unknown): Promise<readonly Problem[]> {
  const validate = await validator();
  if (validate(data)) return [];
  return (validate.errors ?? []).map(toProblem);
}
