// test-lane: light — verify progress output; no time bound
/**
 * Progress of long copies (issue #10 item 8): a base backup (pg_basebackup -P, data bytes of the
 * server's estimate) and verify (stored bytes read) show a progress line on stderr on a terminal;
 * PGBK_PROGRESS=1 forces it (as here: stderr is a pipe), and without it nothing is shown.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeWorld, type World } from '../../support/pgbk.js';

let world: World;

test.before(async () => {
  world = await makeWorld({ serverYaml: 'retention: { redundancy: 3 }' });
  await world.cluster.sql('CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g');
});

test.after(async () => {
  await world?.destroy();
});

const ERASE = '\r\x1b[K';

test('base backup: a progress line with percent and total when forced, none otherwise', async () => {
  const forced = await world.pgbk(['backup', 'main'], { env: { PGBK_PROGRESS: '1' } });
  assert.is(forced.code, 0, forced.stdout + forced.stderr);
  assert.match(forced.stderr, /\r\x1b\[Kmain: base backup \d{8}T\d{6}Z: \d+% [\d.]+ \w?i?B of [\d.]+ \w?i?B, [\d.]+ \w?i?B\/s/, JSON.stringify(forced.stderr));
  const plain = await world.pgbk(['backup', 'main']);
  assert.is(plain.code, 0, plain.stdout + plain.stderr);
  assert.not.ok(plain.stderr.includes(ERASE), JSON.stringify(plain.stderr));
  assert.not.match(plain.stderr, /\d+% /);
});

test('verify: a progress line per backup when forced, none otherwise', async () => {
  const forced = await world.pgbk(['verify', 'main', 'latest'], { env: { PGBK_PROGRESS: '1' } });
  assert.is(forced.code, 0, forced.stdout + forced.stderr);
  assert.match(forced.stderr, /\r\x1b\[Kverifying \d{8}T\d{6}Z: \d+% [\d.]+ \w?i?B of [\d.]+ \w?i?B, \d+ files/, JSON.stringify(forced.stderr));
  const plain = await world.pgbk(['verify', 'main', 'latest']);
  assert.is(plain.code, 0, plain.stdout + plain.stderr);
  assert.not.ok(plain.stderr.includes(ERASE), JSON.stringify(plain.stderr));
});

test.run();
