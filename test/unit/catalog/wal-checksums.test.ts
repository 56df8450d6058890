import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendChecksum, readChecksums, removeChecksums } from '../../../src/catalog/posix/checksums.js';
import { makeTempDir } from './tmp-catalog.js';

const tmp = makeTempDir('pgbk-sums-');

const hex = (i: number): string => i.toString(16).padStart(64, '0');
const name = (i: number): string => `00000001000000000000${i.toString(16).toUpperCase().padStart(4, '0')}.zst`;

test('appends racing with prune rewrites lose no line (archive and prune run concurrently)', async () => {
  const dir = path.join(tmp.dir, 'race');
  mkdirSync(dir);
  // Lines to prune, so each rewrite really replaces the file.
  for (let i = 0; i < 400; i++) await appendChecksum(dir, `old-${i}`, hex(i));
  let appending = true;
  const appends = Promise.all(Array.from({ length: 600 }, (_, i) => appendChecksum(dir, name(i), hex(i)))).finally(() => (appending = false));
  // Prunes run one at a time (apply holds the server lock), archivers any time; every prune
  // rewrites the file, also after the old lines are gone.
  const prunes = (async () => {
    for (let i = 0; appending; i++) await removeChecksums(dir, new Set([`old-${i * 5}`, `old-${i * 5 + 1}`]));
  })();
  await Promise.all([appends, prunes]);
  const sums = await readChecksums(dir);
  const missing = Array.from({ length: 600 }, (_, i) => i).filter((i) => sums.get(name(i)) !== hex(i));
  assert.equal(missing, [], `lines lost: ${missing.length}`);
  assert.not.ok(sums.has('old-0'), 'the prunes did remove lines');
});

test.after(() => tmp.cleanup());
test.run();
