#!/usr/bin/env node
// Precompile the config schema into a standalone ajv validator (dist/src/config/schema-validator.cjs)
// so commands PostgreSQL runs once per WAL segment (wal-push, wal-fetch) do not spend ~100-200 ms
// compiling the schema at every start. The file records the schema's sha256; validate-schema.ts
// falls back to compiling at run time when it is missing or was built from another schema.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const schemaText = readFileSync(path.join(root, 'schema', 'pgbk.schema.json'), 'utf8');
// Must match the options in src/config/validate-schema.ts.
const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, code: { source: true } });
const validate = ajv.compile(JSON.parse(schemaText));
const toCode = standalone.default ?? standalone;
const sha = createHash('sha256').update(schemaText).digest('hex');
const out = path.join(root, 'dist', 'src', 'config', 'schema-validator.cjs');
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${toCode(ajv, validate)}\nmodule.exports.schemaSha256 = ${JSON.stringify(sha)};\n`);
