/**
 * Golden-file comparison for renderers. Files live in the source tree (test/unit/plan/golden/),
 * resolved from the working directory the test runner uses (the repository root), so compiled
 * tests in dist/ compare against the committed files. UPDATE_GOLDEN=1 rewrites them.
 */

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';

export const GOLDEN_DIR = path.join('test', 'unit', 'plan', 'golden');

export function assertGolden(name: string, actual: string, dir: string = GOLDEN_DIR): void {
  const file = path.resolve(process.cwd(), dir, name);
  if (process.env['UPDATE_GOLDEN'] === '1') {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  if (!existsSync(file)) {
    assert.unreachable(`golden file ${file} is missing (run with UPDATE_GOLDEN=1 from the repository root)`);
  }
  assert.fixture(actual, readFileSync(file, 'utf8'), `output differs from ${file}`);
}
