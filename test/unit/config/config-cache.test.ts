/**
 * The per-user config cache (config/config-cache.ts) never serves a stale configuration: a changed
 * file is loaded again, a file with problems is never cached, and a cache file that is not this
 * user's own is ignored.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../../../src/config/load.js';
import { PgbkError } from '../../../src/errors.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'pgbk-config-cache-'));
const home = path.join(root, 'home');
const cache = path.join(home, '.cache', 'pgbk');
const file = path.join(root, 'pgbk.yaml');
mkdirSync(home);
test.after(() => rmSync(root, { recursive: true, force: true }));

const load = (env: NodeJS.ProcessEnv = { HOME: home }) => loadConfig({ configPath: file, cwd: root, env });
const yaml = (redundancy: number, schedule = '0 3 * * *') =>
  `catalog: /srv/pgbk\nservers:\n  main:\n    connection: "host=db user=pgbk dbname=postgres"\n    backup: { schedule: "${schedule}" }\n    retention: { redundancy: ${redundancy} }\n`;

function cacheFiles(): string[] {
  try {
    return readdirSync(cache).filter((n) => n.startsWith('config-'));
  } catch {
    return [];
  }
}

test('a loaded config is cached and served again; a changed file is loaded again', async () => {
  writeFileSync(file, yaml(3));
  const first = await load();
  assert.is(cacheFiles().length, 1);
  assert.equal(await load(), first);
  // Same size, same mtime second: only the content differs.
  writeFileSync(file, yaml(4));
  const second = await load();
  assert.is(second.servers[0]?.retention.redundancy, 4);
  assert.is.not(second.configHash, first.configHash);
  assert.equal(await load({ HOME: home, PGBK_NO_CACHE: '1' }), second);
});

test('a config with a problem is never cached: the error comes every time', async () => {
  writeFileSync(file, yaml(3, '0 0 30 2 *'));
  for (let i = 0; i < 2; i++) {
    try {
      await load();
      assert.unreachable('a schedule that never fires was accepted');
    } catch (err) {
      assert.instance(err, PgbkError);
      assert.match((err as Error).message, /pgbk\.yaml:\d+:\d+: .*never fires|invalid cron/);
    }
  }
});

test('a cache entry writable by others, or a home that is not ours, is not used', async () => {
  writeFileSync(file, yaml(5));
  await load();
  const entry = path.join(cache, cacheFiles()[0]!);
  // Planted by someone else: claims redundancy 99 for the very same file and key.
  const { readFileSync } = await import('node:fs');
  const planted = readFileSync(entry, 'utf8').replace('"redundancy":5', '"redundancy":99');
  writeFileSync(entry, planted);
  chmodSync(entry, 0o666);
  assert.is((await load()).servers[0]?.retention.redundancy, 5);
  // A HOME that does not exist gets no cache directory created in it.
  const missing = path.join(root, 'nobody');
  assert.is((await load({ HOME: missing })).servers[0]?.retention.redundancy, 5);
  assert.not.ok(readdirSync(root).includes('nobody'));
});

test.run();
