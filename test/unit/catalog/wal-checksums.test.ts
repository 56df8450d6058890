import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendChecksum, readChecksums, removeChecksums } from '../../../src/catalog/wal-checksums.js';
import { makeTempDir } from './tmp-catalog.js';

const tmp = makeTempDir('pgbk-sums-');

const hex = (i: number): string => i.toString(16).padStart(64, '0');
const name = (i: number): string => `00000001000000000000${i.toString(16).toUpperCase().padStart(4, '0')}.zst`;

test('appends racing with prune rewrites lose no line (archive and prune run concurrently)', async () => {
  const dir = path.join(tmp.dir, 'race');
  mkdirSync(dir);
  // Lines to prune, so each rewrite really replaces the file.
  for (let i = 0; i < 400; i++) await appendChecksum(dir, `old-${i}`, hex(i));
  const appends = Array.from({ length: 300 }, (_, i) => appendChecksum(dir, name(i), hex(i)));
  const prunes = Array.from({ length: 80 }, (_, i) => removeChecksums(dir, new Set([`old-${i * 5}`, `old-${i * 5 + 1}`])));
  await Promise.all([...appends, ...prunes]);
  const sums = await readChecksums(dir);
  const missing = Array.from({ length: 300 }, (_, i) => i).filter((i) => sums.get(name(i)) !== hex(i));
  assert.equal(missing, [], `lines lost: ${missing.length}`);
  for (let i = 0; i < 400; i++) assert.is(sums.has(`old-${i}`), i % 5 >= 2, `old-${i}`);
});

test.after(() => tmp.cleanup());
test.run();
