import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileFromFile } from 'json-schema-to-typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** The --bannerComment of package.json's gen:types script, so this test and the script agree. */
function bannerComment(): string {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const script = pkg.scripts['gen:types'] ?? '';
  const m = /--bannerComment "((?:[^"\\]|\\.)*)"/.exec(script);
  assert.ok(m?.[1] !== undefined, `gen:types has no --bannerComment: ${script}`);
  return (m?.[1] ?? '').replace(/\\(.)/g, '$1');
}

test('types.gen.ts is not stale (run npm run gen:types after changing the schema)', async () => {
  const generated = await compileFromFile(path.join(ROOT, 'schema/pgbk.schema.json'), {
    bannerComment: bannerComment(),
    cwd: path.join(ROOT, 'schema'),
  });
  const committed = readFileSync(path.join(ROOT, 'src/config/types.gen.ts'), 'utf8');
  assert.fixture(committed, generated);
});

test.run();
