/**
 * When an incremental `ssh` backup does not use the WAL to leave chunks unread, and says why
 * (backup/ssh/wal-changes.ts): another PostgreSQL version or timeline, a start not after the
 * previous one, more WAL than it is worth, a segment missing from the archive (after waiting for
 * the server to archive it), a segment past the early budget already there. Each on an empty
 * local catalog, before any WAL is read. (The summary itself: integration test ssh/wal-changes.)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { incomingDir } from '../../../../src/catalog/layout.js';
import { type WalChangesEnd, WalChangesReader } from '../../../../src/backup/ssh/wal-changes.js';
import { LocalTransport } from '../../../../src/transport/local.js';
import { makeTempDir } from '../../catalog/tmp-catalog.js';

const SEG = 1024 * 1024;
const from = '0/100028'; // segment 1 of 1 MiB segments

function reader(catalog: string, budgetBytes = 0): WalChangesReader {
  return WalChangesReader.start({ catalog, server: 'main', timeline: 1, segSize: SEG, fromLsn: from, budgetBytes });
}

function end(over: Partial<WalChangesEnd> = {}): WalChangesEnd {
  return {
    toLsn: '0/300028',
    timeline: 1,
    pgVersion: 150008,
    transport: new LocalTransport(),
    pgdata: '/nonexistent',
    changedBytes: 1 << 30,
    waitArchived: async () => false,
    ...over,
  };
}

const skippedOf = (r: Awaited<ReturnType<WalChangesReader['finish']>>): string => ('skipped' in r ? r.skipped : 'a summary');

test('another PostgreSQL version, another timeline, a start not after the previous one: skipped with the reason', async () => {
  const c = makeTempDir();
  try {
    assert.match(skippedOf(await reader(c.dir).finish(end({ pgVersion: 160002 }))), /PostgreSQL 16 \(the WAL format read here is 15's\)/);
    assert.match(skippedOf(await reader(c.dir).finish(end({ timeline: 2 }))), /this backup is on timeline 2, the previous one on 1/);
    assert.match(skippedOf(await reader(c.dir).finish(end({ toLsn: '0/90000' }))), /start 0\/100028 is not before 0\/90000/);
  } finally {
    c.cleanup();
  }
});

test('more WAL than a quarter of the changed relation files: skipped before reading it', async () => {
  const c = makeTempDir();
  try {
    // 100 segments of 1 MiB since the previous start, 40 MiB of changed files: at most 10 (or 8).
    const r = await reader(c.dir, 1 << 30).finish(end({ toLsn: '0/6400028', changedBytes: 40 * SEG }));
    assert.match(skippedOf(r), /100 WAL segments since the previous backup: more than a 4th of the 40 MiB of changed relation files/);
  } finally {
    c.cleanup();
  }
});

test('a segment not archived: the server is asked to archive it first, then skipped naming it', async () => {
  const c = makeTempDir();
  try {
    const asked: string[] = [];
    const r = await reader(c.dir, 1 << 30).finish(
      end({
        waitArchived: async (name) => {
          asked.push(name);
          return true; // says archived, but it is not in pgbk's archive
        },
      }),
    );
    assert.equal(asked, ['000000010000000000000001']);
    assert.match(skippedOf(r), /WAL segment 000000010000000000000001 is not in the archive/);
    const r2 = await reader(c.dir, 1 << 30).finish(end());
    assert.match(skippedOf(r2), /WAL segment 000000010000000000000001 is not in the archive/);
  } finally {
    c.cleanup();
  }
});

test('the segment past the early budget already archived (in incoming/): nothing read, skipped', async () => {
  const c = makeTempDir();
  try {
    const incoming = incomingDir(c.dir, 'main');
    mkdirSync(incoming, { recursive: true });
    // Budget 0 reads at most 8 segments: segment 1 + 8 = 9 there means more WAL than that.
    writeFileSync(path.join(incoming, '000000010000000000000009'), Buffer.alloc(SEG));
    const r = await reader(c.dir, 0).finish(end());
    assert.match(skippedOf(r), /000000010000000000000009 is archived: more WAL since the previous backup than is worth reading/);
  } finally {
    c.cleanup();
  }
});

test.run();
