/** src/lib/ is the bottom floor (DESIGN.md §2): its modules import only Node built-ins and each other. */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const lib = path.join(root, 'src', 'lib');

test('src/lib imports nothing from the rest of pgbk', () => {
  const files = readdirSync(lib).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 0, `no sources found in ${lib}`);
  for (const f of files) {
    const text = readFileSync(path.join(lib, f), 'utf8');
    for (const m of text.matchAll(/from '([^']+)'/g)) {
      const spec = m[1]!;
      assert.ok(spec.startsWith('node:') || spec.startsWith('./'), `${f} imports ${spec}`);
    }
  }
});

test.run();
