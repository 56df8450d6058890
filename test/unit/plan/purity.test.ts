/**
 * plan/ must stay pure (DESIGN.md §2): no fs, no child processes, no network, no `process`, no
 * clock. This scans every src/plan/*.ts and src/model/*.ts file's imports and the forbidden calls
 * (model/ holds the domain types plan() works on; it is as pure as plan/).
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const PLAN_DIR = path.resolve(process.cwd(), 'src', 'plan');
const MODEL_DIR = path.resolve(process.cwd(), 'src', 'model');

/** Pure modules outside plan/ that plan/ may use. errors.ts is data only (needed by parsePlanJson). */
const ALLOWED = new Set([
  '../config/resolved.js',
  '../config/cron.js',
  '../config/duration.js',
  '../pg/wal-name.js',
  '../pg/lsn.js',
  '../errors.js',
  '../lib/byte-size.js',
  '../lib/plural.js',
  '../model/types.js',
  '../model/wal-runs.js',
  '../plan/types.js',
]);

const IMPORT_RES = [
  /\bimport\s+(?:type\s+)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
  /\bexport\s+(?:type\s+)?(?:\*|\{[^}]*\})(?:\s+as\s+\w+)?\s*from\s*['"]([^'"]+)['"]/g,
  /\bimport\s*['"]([^'"]+)['"]/g,
  /\bimport\s*\(\s*['"`]([^'"`]+)['"`]\s*\)/g,
  /\brequire\s*\(\s*['"`]([^'"`]+)['"`]\s*\)/g,
];

const FORBIDDEN: readonly (readonly [string, RegExp])[] = [
  ['Date.now(', /\bDate\.now\s*\(/],
  ['new Date()', /\bnew\s+Date\s*\(\s*\)/],
  ['process.', /\bprocess\s*\./],
  ['dynamic import()', /\bimport\s*\(/],
  ['require()', /\brequire\s*\(/],
];

function isAllowed(spec: string): boolean {
  // Relative imports inside src/plan: "./x.js", never climbing out.
  if (spec.startsWith('./') && !spec.slice(2).includes('/')) return true;
  return ALLOWED.has(spec);
}

/** Problems in one source text; empty when pure. */
export function impurities(source: string): string[] {
  const problems: string[] = [];
  for (const re of IMPORT_RES) {
    for (const m of source.matchAll(re)) {
      const spec = m[1] ?? '';
      if (!isAllowed(spec)) problems.push(`imports "${spec}"`);
    }
  }
  for (const [what, re] of FORBIDDEN) if (re.test(source)) problems.push(`uses ${what}`);
  return problems;
}

test('the scanner itself catches what it must', () => {
  assert.equal(impurities(`import { readFile } from 'node:fs';`), ['imports "node:fs"']);
  assert.equal(impurities(`import type { X } from '../observe/observe.js';`), ['imports "../observe/observe.js"']);
  assert.equal(impurities(`export { a } from '../apply/x.js';`), ['imports "../apply/x.js"']);
  assert.equal(impurities(`import {\n  spawn,\n} from "child_process";`), ['imports "child_process"']);
  assert.equal(impurities(`import './sub/deep.js';`), ['imports "./sub/deep.js"']);
  assert.equal(impurities(`const t = Date.now();`), ['uses Date.now(']);
  assert.equal(impurities(`const t = new Date();`), ['uses new Date()']);
  assert.equal(impurities(`if (process.env.X) {}`), ['uses process.']);
  assert.equal(impurities(`const m = await import('node:net');`), ['imports "node:net"', 'uses dynamic import()']);
  assert.equal(impurities(`import { a } from './a.js';\nimport type { R } from '../config/resolved.js';\nconst d = new Date(x);`), []);
});

test('every src/plan/*.ts file is pure', () => {
  const files = readdirSync(PLAN_DIR).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 10, `expected the plan modules in ${PLAN_DIR}, found ${files.length}`);
  for (const f of ['plan.ts', 'schedule.ts', 'retention.ts', 'wal.ts', 'incoming.ts', 'plan-json.ts']) {
    assert.ok(files.includes(f), `${f} is scanned`);
  }
  const modelFiles = readdirSync(MODEL_DIR).filter((f) => f.endsWith('.ts'));
  assert.ok(modelFiles.includes('types.ts'), 'model/types.ts is scanned');
  const problems = [
    ...files.flatMap((f) => impurities(readFileSync(path.join(PLAN_DIR, f), 'utf8')).map((p) => `src/plan/${f} ${p}`)),
    ...modelFiles.flatMap((f) => impurities(readFileSync(path.join(MODEL_DIR, f), 'utf8')).map((p) => `src/model/${f} ${p}`)),
  ];
  assert.equal(problems, []);
});

test.run();
