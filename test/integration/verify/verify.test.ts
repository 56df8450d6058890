// test-lane: light — verify verdicts on damaged backups; no time bound
/**
 * `pgbk verify` against a real backup: a sound catalog passes (checksums, pg_verifybackup on the
 * unpacked tars, WAL range); a flipped byte in a stored backup file and in an archived segment are
 * each detected (exit 1); a data file changed inside the tar with backup.json's checksum updated to
 * match is caught by pg_verifybackup against the manifest.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { makeWorld, type World } from '../../support/pgbk.js';

let world: World;
let backupId: string;
let beginWal: string;

function backupPath(...parts: string[]): string {
  return path.join(world.catalog, 'main', 'backups', backupId, ...parts);
}

async function flipByte(file: string, at: number): Promise<() => Promise<void>> {
  const original = await readFile(file);
  const changed = Buffer.from(original);
  const pos = Math.min(at, changed.length - 1);
  changed[pos] = changed[pos]! ^ 0xff;
  await writeFile(file, changed);
  return () => writeFile(file, original);
}

async function archivedFile(segment: string): Promise<string> {
  const dir = path.join(world.catalog, 'main', 'wal', segment.slice(0, 16));
  const name = (await readdir(dir)).find((f) => f.startsWith(segment) && !f.includes('.backup'));
  assert.ok(name, `segment ${segment} archived in ${dir}`);
  return path.join(dir, name!);
}

test.before(async () => {
  world = await makeWorld();
  await world.cluster.sql('CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10000) g');
  const apply = await world.pgbk(['apply']);
  assert.is(apply.code, 0, apply.stdout + apply.stderr);
  const list = (JSON.parse((await world.pgbk(['list', '--json'])).stdout) as { backups: { id: string; status: string; beginWal: string }[] }).backups;
  assert.is(list[0]?.status, 'DONE');
  backupId = list[0]!.id;
  beginWal = list[0]!.beginWal;
});

test.after(async () => {
  await world?.destroy();
});

test('a sound backup and archive verify OK, with pg_verifybackup run on the unpacked tar', async () => {
  const r = await world.pgbk(['verify', 'main']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^OK ${backupId} \\(DONE\\): \\d+ stored files? checksummed; pg_verifybackup ok; WAL ${beginWal}…`, 'm'));
  assert.match(r.stdout, /^OK WAL archive: \d+ files? read$/m);
  const quick = await world.pgbk(['verify', 'main', 'latest', '--quick', '--json']);
  assert.is(quick.code, 0, quick.stdout + quick.stderr);
  const j = JSON.parse(quick.stdout) as { ok: boolean; backups: { checked: string[] }[] };
  assert.ok(j.ok);
  assert.ok(j.backups[0]!.checked.includes('pg_verifybackup skipped (--quick)'));
});

test('a flipped byte in a stored backup file is detected (full and --quick)', async () => {
  const file = backupPath('base.tar.zst');
  const size = (await readFile(file)).length;
  const restore = await flipByte(file, Math.floor(size / 2));
  try {
    for (const extra of [[], ['--quick']]) {
      const r = await world.pgbk(['verify', 'main', backupId, ...extra]);
      assert.is(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^FAILED ${backupId} `, 'm'));
      assert.match(r.stdout, /problem: .*base\.tar\.zst.*(sha256|decompress)/);
    }
  } finally {
    await restore();
  }
  const again = await world.pgbk(['verify', 'main', backupId]);
  assert.is(again.code, 0, again.stdout + again.stderr);
});

test('a flipped byte in an archived segment is detected, under the backup and in the archive', async () => {
  const file = await archivedFile(beginWal);
  const restore = await flipByte(file, 100);
  try {
    const r = await world.pgbk(['verify', 'main', 'all']);
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^FAILED ${backupId} `, 'm'));
    assert.match(r.stdout, new RegExp(`problem: ${beginWal}: archived WAL file ${beginWal} is corrupt`));
    assert.match(r.stdout, /^FAILED WAL archive: /m);
  } finally {
    await restore();
  }
});

test('a changed data file with a matching stored checksum is caught by pg_verifybackup', async () => {
  const file = backupPath('base.tar.zst');
  const original = await readFile(file);
  const jsonFile = backupPath('backup.json');
  const originalJson = await readFile(jsonFile, 'utf8');
  const work = await mkdtemp(path.join(os.tmpdir(), 'pgbk-verify-test-'));
  try {
    execFileSync('tar', ['-x', '--zstd', '-f', file, '-C', work]);
    // Same size, different bytes: only a content checksum (the manifest's CRC32C) can tell.
    const version = path.join(work, 'PG_VERSION');
    await writeFile(version, (await readFile(version, 'utf8')).replace('15', '16'));
    const rebuilt = path.join(os.tmpdir(), `pgbk-verify-${process.pid}.tar.zst`);
    execFileSync('tar', ['-c', '--zstd', '-f', rebuilt, '-C', work, '.']);
    const bytes = await readFile(rebuilt);
    await rm(rebuilt);
    await writeFile(file, bytes);
    const record = JSON.parse(originalJson) as { checksums: Record<string, string> };
    record.checksums['base.tar.zst'] = createHash('sha256').update(bytes).digest('hex');
    await writeFile(jsonFile, JSON.stringify(record, null, 2));

    const quick = await world.pgbk(['verify', 'main', backupId, '--quick']);
    assert.is(quick.code, 0, `checksums alone cannot see it: ${quick.stdout}`);
    const full = await world.pgbk(['verify', 'main', backupId]);
    assert.is(full.code, 1, full.stdout + full.stderr);
    assert.match(full.stdout, /problem: pg_verifybackup failed: .*PG_VERSION/);
  } finally {
    await writeFile(file, original);
    await writeFile(jsonFile, originalJson);
    await rm(work, { recursive: true, force: true });
  }
});

test.run();
