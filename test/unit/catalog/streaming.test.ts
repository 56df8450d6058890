import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { handOverStreamed, isCompletedStreamFile, streamingDir, streamingPartialPath } from '../../../src/catalog/streaming.js';
import { receiveWalCommand, slotNameFor } from '../../../src/pg/receivewal.js';
import type { ServerConfig } from '../../../src/config/resolved.js';
import { makeTempDir } from './tmp-catalog.js';

function server(name: string, slot?: string): ServerConfig {
  return {
    name,
    backup: { method: 'basebackup', timezone: 'UTC', compression: 'zstd', fastCheckpoint: true, archiveTimeoutSeconds: 600 },
    wal: { method: 'stream', compression: 'zstd', ...(slot === undefined ? {} : { slot }) },
    retention: { redundancy: 1, minRedundancy: 1 },
  };
}

test('slot names: configured, else pgbk_<server> in slot-name characters', () => {
  assert.is(slotNameFor(server('main')), 'pgbk_main');
  assert.is(slotNameFor(server('DB-1.prod')), 'pgbk_db_1_prod');
  assert.is(slotNameFor(server('main', 'custom_slot')), 'custom_slot');
  assert.is(slotNameFor(server('x'.repeat(80))).length, 63);
});

test('pg_receivewal arguments: slot, directory, no loop, synchronous; password only in env', () => {
  const { args, env } = receiveWalCommand({
    binary: 'pg_receivewal',
    conninfo: 'host=db1 user=pgbk password=s3cret',
    directory: '/c/main/streaming',
    slot: 'pgbk_main',
  });
  assert.ok(args.includes('--slot=pgbk_main'));
  assert.ok(args.includes('--directory=/c/main/streaming'));
  assert.ok(args.includes('--no-loop'));
  assert.ok(args.includes('--synchronous'));
  assert.not.ok(args.join(' ').includes('s3cret'), 'password not in argv');
  assert.equal(env, { PGPASSWORD: 's3cret' });
  assert.equal(receiveWalCommand({ binary: 'x', conninfo: 'host=db1', directory: '/d', slot: 's' }).env, {});
});

test('completed stream files are segments and .history; .partial and temp names are not', () => {
  assert.ok(isCompletedStreamFile('000000010000000000000003'));
  assert.ok(isCompletedStreamFile('00000002.history'));
  assert.not.ok(isCompletedStreamFile('000000010000000000000003.partial'));
  assert.not.ok(isCompletedStreamFile('.receiver.pid'));
});

test('hand-over links completed files into incoming/, keeps .partial, defers a name already waiting', async () => {
  const { dir: catalog, cleanup } = makeTempDir();
  try {
    const s = streamingDir(catalog, 'main');
    const incoming = path.join(catalog, 'main', 'incoming');
    mkdirSync(s, { recursive: true });
    mkdirSync(incoming, { recursive: true });
    writeFileSync(path.join(s, '000000010000000000000001'), 'one');
    writeFileSync(path.join(s, '000000010000000000000002'), 'two-streamed');
    writeFileSync(path.join(s, '000000010000000000000003.partial'), 'partial');
    writeFileSync(path.join(incoming, '000000010000000000000002'), 'two-pushed');
    const r = await handOverStreamed(catalog, 'main');
    assert.equal(r, { moved: 1, deferred: 1 });
    assert.is(readFileSync(path.join(incoming, '000000010000000000000001'), 'utf8'), 'one');
    assert.not.ok(existsSync(path.join(s, '000000010000000000000001')));
    assert.is(readFileSync(path.join(incoming, '000000010000000000000002'), 'utf8'), 'two-pushed', 'never clobbers');
    assert.ok(existsSync(path.join(s, '000000010000000000000002')), 'deferred copy kept');
    assert.ok(existsSync(path.join(s, '000000010000000000000003.partial')));
    assert.is(streamingPartialPath(catalog, 'main', '000000010000000000000003'), path.join(s, '000000010000000000000003.partial'));
    assert.equal(await handOverStreamed(path.join(catalog, 'nope'), 'main'), { moved: 0, deferred: 0 });
  } finally {
    cleanup();
  }
});

test.run();
