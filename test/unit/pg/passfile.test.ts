import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findPassword, lookupPassfile, passfilePath } from '../../../src/pg/passfile.js';

const key = { host: 'db1', port: 5432, database: 'postgres', user: 'pgbk' };

test('findPassword: first matching line wins, * matches anything', () => {
  const text = ['# comment', 'db2:5432:*:pgbk:other', 'db1:*:*:pgbk:first', 'db1:5432:postgres:pgbk:second', ''].join('\n');
  assert.is(findPassword(text, key), 'first');
  assert.is(findPassword(text, { ...key, host: 'db3' }), undefined);
  assert.is(findPassword(text, { ...key, host: 'db2', database: 'x' }), 'other');
});

test('findPassword: \\: and \\\\ escapes; a password may contain colons', () => {
  const text = 'db\\:1:5432:postgres:pgbk:pa\\:ss\\\\w:rd\n';
  assert.is(findPassword(text, { ...key, host: 'db:1' }), 'pa:ss\\w:rd');
});

test('findPassword: the default socket directory matches "localhost"', () => {
  const text = 'localhost:5432:*:*:sock\n';
  assert.is(findPassword(text, { ...key, host: '/var/run/postgresql' }), 'sock');
  assert.is(findPassword(text, { ...key, host: '/tmp/other' }), undefined);
});

test('findPassword: malformed lines are skipped', () => {
  assert.is(findPassword('db1:5432:pgbk:pw\n*:*:*:*:ok\n', key), 'ok');
});

test('passfilePath: keyword, then PGPASSFILE, then ~/.pgpass', () => {
  assert.is(passfilePath('/k', { PGPASSFILE: '/e' }), '/k');
  assert.is(passfilePath(undefined, { PGPASSFILE: '/e' }), '/e');
  assert.is(passfilePath(undefined, {}), path.join(os.homedir(), '.pgpass'));
});

test('lookupPassfile: ignores group/world-readable files, like libpq', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-passfile-'));
  try {
    const file = path.join(dir, 'pgpass');
    writeFileSync(file, '*:*:*:*:pw\n');
    chmodSync(file, 0o600);
    assert.is(lookupPassfile(file, key), 'pw');
    chmodSync(file, 0o644);
    const warn = process.emitWarning;
    process.emitWarning = () => undefined;
    try {
      assert.is(lookupPassfile(file, key), undefined);
    } finally {
      process.emitWarning = warn;
    }
    assert.is(lookupPassfile(path.join(dir, 'missing'), key), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
