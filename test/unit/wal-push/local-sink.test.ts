/**
 * The push with the local catalog as its sink (pusher.ts + local-sink.ts), without PostgreSQL: a
 * data directory's pg_wal with .ready files, a real segment re-addressed as several. Every .ready
 * segment is archived and only then acknowledged with a marker that matches the file; a conflicting
 * copy is refused, quarantined once however often it is retried, and gets no marker.
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recordIdentity } from '../../../src/catalog/identity.js';
import { errorsDir, walPath } from '../../../src/catalog/layout.js';
import { readArchivedWal } from '../../../src/catalog/wal-archive.js';
import type { ServerConfig } from '../../../src/config/resolved.js';
import { segmentNumber } from '../../../src/pg/wal-name.js';
import { fileStamp } from '../../../src/wal-push/fast-path.js';
import { openLocalSink } from '../../../src/wal-push/local-sink.js';
import { MIN_SCAN_INTERVAL_MS, Pusher, type PushResult, type PushSink } from '../../../src/wal-push/pusher.js';
import { makeTempDir } from '../catalog/tmp-catalog.js';
import { makeRealSegment, type RealSegment } from '../pg/real-segment.js';

const tmp = makeTempDir('pgbk-localsink-');
const catalog = path.join(tmp.dir, 'catalog');
const pgdata = path.join(tmp.dir, 'pgdata');
const markers = path.join(tmp.dir, 'markers');
let real: RealSegment;

const server: ServerConfig = {
  name: 'main',
  backup: { method: 'basebackup', timezone: 'UTC', compression: 'zstd', fastCheckpoint: true, archiveTimeoutSeconds: 600 },
  wal: { method: 'push', compression: 'zstd' },
  retention: { redundancy: 2, minRedundancy: 1 },
};

/** The real segment re-addressed as `name` (first page's timeline and page address patched). */
function segmentAs(name: string): Buffer {
  const b = Buffer.from(real.bytes);
  b.writeUInt32LE(Number.parseInt(name.slice(0, 8), 16), 4);
  b.writeBigUInt64LE(BigInt(segmentNumber(name, real.segSize)) * BigInt(real.segSize), 8);
  return b;
}

function ready(name: string, bytes: Buffer): void {
  writeFileSync(path.join(pgdata, 'pg_wal', name), bytes);
  writeFileSync(path.join(pgdata, 'pg_wal', 'archive_status', `${name}.ready`), '');
}

async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const NAMES = ['000000010000000000000002', '000000010000000000000003', '000000010000000000000004'];

test.before(async () => {
  real = makeRealSegment();
  mkdirSync(path.join(pgdata, 'pg_wal', 'archive_status'), { recursive: true });
  mkdirSync(markers);
  mkdirSync(catalog);
  const opened = await openLocalSink(catalog, server);
  await recordIdentity(catalog, 'main', {
    systemIdentifier: real.systemIdentifier,
    pgVersion: 150000,
    walSegmentSize: real.segSize,
    firstContact: '2026-12-01T00:00:00.000Z',
  });
  sink = opened.sink;
});
test.after(() => {
  real.cleanup();
  tmp.cleanup();
});

let sink: PushSink;

/**
 * Wait for every push `pusher`'s scans started (each .ready segment in pgdata, conflicting ones
 * among them), then close it: a push still running when the file's cleanup runs writes into the
 * catalog after it (quarantine copies in errors/), and the temp directory is left behind.
 */
async function settle(pusher: Pusher): Promise<void> {
  const status = path.join(pgdata, 'pg_wal', 'archive_status');
  for (const n of readdirSync(status).filter((f) => f.endsWith('.ready'))) {
    const name = n.slice(0, -'.ready'.length);
    await pusher.push(name, path.join(pgdata, 'pg_wal', name));
  }
  pusher.close();
}

test('a scan archives every .ready segment, then writes a marker matching the file', async () => {
  for (const n of NAMES) ready(n, segmentAs(n));
  const pusher = new Pusher(sink, pgdata, markers, () => undefined);
  await pusher.scan();
  await until(() => NAMES.every((n) => readdirSync(markers).includes(n)));
  for (const n of NAMES) {
    assert.equal(await readArchivedWal(catalog, 'main', n), segmentAs(n), `${n} archived as it was`);
    const st = statSync(path.join(pgdata, 'pg_wal', n), { bigint: true });
    assert.is(readFileSync(path.join(markers, n), 'utf8'), `${fileStamp(st)}\n`);
    // The pair the shell fast path tests brackets the mtime of the file as it was pushed.
    const lo = statSync(path.join(markers, n), { bigint: true }).mtimeNs;
    const hi = statSync(path.join(markers, `${n}.hi`), { bigint: true }).mtimeNs;
    assert.ok(lo < st.mtimeNs && st.mtimeNs < hi, `${n}: ${lo} < ${st.mtimeNs} < ${hi}`);
  }
  // Asked again (the client after the fast path missed): an identical duplicate, fine.
  assert.equal(await pusher.push(NAMES[0]!, path.join(pgdata, 'pg_wal', NAMES[0]!)), { name: NAMES[0]!, ok: true, result: 'archived' });
  const fresh = new Pusher(sink, pgdata, markers, () => undefined);
  assert.equal(await fresh.push(NAMES[0]!, path.join(pgdata, 'pg_wal', NAMES[0]!)), { name: NAMES[0]!, ok: true, result: 'duplicate' });
});

test('a conflicting copy is refused, quarantined once over retries, never acknowledged; the archived copy stays', async () => {
  const name = NAMES[1]!;
  const stored = readFileSync(walPath(catalog, 'main', name, 'zstd'));
  const other = path.join(tmp.dir, 'other');
  mkdirSync(path.join(other, 'pg_wal', 'archive_status'), { recursive: true });
  const altered = segmentAs(name);
  altered[1024 * 1024 + 17] = (altered[1024 * 1024 + 17]! ^ 0xff) & 0xff;
  writeFileSync(path.join(other, 'pg_wal', name), altered);
  const otherMarkers = path.join(tmp.dir, 'other-markers');
  mkdirSync(otherMarkers);
  const logged: string[] = [];
  const pusher = new Pusher(sink, other, otherMarkers, (l) => logged.push(l));
  const results: PushResult[] = [];
  for (let i = 0; i < 3; i++) results.push(await pusher.push(name, path.join(other, 'pg_wal', name)));
  for (const r of results) {
    assert.is(r.ok, false);
    assert.match(r.error ?? '', /an archived file with this name and different content exists \(a copy is in \S+errors\//);
  }
  const copies = readdirSync(errorsDir(catalog, 'main')).filter((n) => n.startsWith(`${name}.`));
  assert.is(copies.filter((n) => !n.endsWith('.reason')).length, 1, copies.join(' '));
  assert.is(copies.filter((n) => n.endsWith('.reason')).length, 1);
  assert.equal(readFileSync(path.join(errorsDir(catalog, 'main'), copies.find((n) => !n.endsWith('.reason'))!)), altered);
  assert.equal(readFileSync(walPath(catalog, 'main', name, 'zstd')), stored, 'archived copy untouched');
  assert.equal(readdirSync(otherMarkers), [], 'no marker for a refused file');
  assert.is(logged.length, 3);
});

test('a sink failure is no acknowledgement: no marker, and the next ask tries again', async () => {
  let calls = 0;
  const failing: PushSink = {
    maxInFlight: 1,
    dead: undefined,
    send: async (name) => {
      calls++;
      if (calls === 1) throw new Error('disk on fire');
      return { name, ok: true, result: 'archived' };
    },
  };
  const name = '000000010000000000000005';
  ready(name, segmentAs(name));
  const m = path.join(tmp.dir, 'failing-markers');
  mkdirSync(m);
  const pusher = new Pusher(failing, pgdata, m, () => undefined);
  const first = await pusher.push(name, path.join(pgdata, 'pg_wal', name));
  assert.equal(first, { name, ok: false, error: 'disk on fire' });
  assert.equal(readdirSync(m), []);
  const second = await pusher.push(name, path.join(pgdata, 'pg_wal', name));
  assert.is(second.ok, true);
  assert.equal(readdirSync(m).sort(), [name, `${name}.hi`], 'the marker pair');
});

test('a segment pushed ahead is acknowledged only if it is still the file that was pushed: one replaced since is pushed again', async () => {
  const name = '000000010000000000000006';
  const file = path.join(pgdata, 'pg_wal', name);
  ready(name, segmentAs(name));
  const m = path.join(tmp.dir, 'recheck-markers');
  mkdirSync(m);
  const logged: string[] = [];
  const pusher = new Pusher(sink, pgdata, m, (l) => logged.push(l));
  await pusher.scan();
  await until(() => readdirSync(m).includes(name));
  // Unchanged: the push ahead answers (no second push: still 'archived').
  assert.equal(await pusher.push(name, file), { name, ok: true, result: 'archived' });
  // The same bytes in a new file (another inode): pushed again, found a duplicate.
  writeFileSync(`${file}.new`, segmentAs(name));
  renameSync(`${file}.new`, file);
  assert.equal(await pusher.push(name, file), { name, ok: true, result: 'duplicate' });
  // Other bytes under the name since: pushed again and refused (quarantined), not acknowledged.
  const altered = segmentAs(name);
  altered[2 * 1024 * 1024 + 5] = (altered[2 * 1024 * 1024 + 5]! ^ 0xff) & 0xff;
  writeFileSync(`${file}.new`, altered);
  renameSync(`${file}.new`, file);
  const r = await pusher.push(name, file);
  assert.is(r.ok, false);
  assert.match(r.error ?? '', /different content exists/);
  assert.equal(await readArchivedWal(catalog, 'main', name), segmentAs(name), 'the archived copy stays');
  await settle(pusher);
});

test('pg_wal is scanned at most once per MIN_SCAN_INTERVAL_MS however often a scan is asked for', async () => {
  const m = path.join(tmp.dir, 'scan-markers');
  mkdirSync(m);
  const pusher = new Pusher(sink, pgdata, m, () => undefined);
  const t0 = Date.now();
  await pusher.scan();
  const first = Date.now() - t0;
  await Promise.all(Array.from({ length: 20 }, () => pusher.scan()));
  const both = Date.now() - t0;
  assert.ok(both >= MIN_SCAN_INTERVAL_MS - 5, `the second scan came ${both} ms after the first started`);
  assert.ok(both - first < 10 * MIN_SCAN_INTERVAL_MS, `20 asks were one scan (${both} ms)`);
  await settle(pusher);
});

test.run();
