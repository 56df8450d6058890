import { readFileSync, readdirSync, statSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Compression } from '../../../src/config/resolved.js';
import { ensureServerDirs, incomingDir, walPath, walRoot } from '../../../src/catalog/layout.js';
import { archiveWalFile, deleteArchivedWal, listArchivedWal, readArchivedWal, type ArchiveOutcome } from '../../../src/catalog/wal-archive.js';
import { readChecksums } from '../../../src/catalog/posix/checksums.js';
import { sha256Hex } from '../../../src/lib/checksum.js';
import type { PgbkError } from '../../../src/errors.js';
import type { ServerIdentity } from '../../../src/model/types.js';
import { segmentNumber } from '../../../src/pg/wal-name.js';
import { makeRealSegment, withSystemIdentifier, type RealSegment } from '../pg/real-segment.js';
import { makeTempDir, rejection } from './tmp-catalog.js';

const tmp = makeTempDir();
const catalog = tmp.dir;
let real: RealSegment;
let identity: ServerIdentity;

test.before(async () => {
  real = makeRealSegment();
  identity = {
    systemIdentifier: real.systemIdentifier,
    pgVersion: 150000,
    walSegmentSize: real.segSize,
    firstContact: '2026-11-24T00:00:00.000Z',
  };
  for (const s of ['zstd', 'gzip', 'none', 'main', 'list']) await ensureServerDirs(catalog, s);
});
test.after(() => {
  real.cleanup();
  tmp.cleanup();
});

/** Drop `bytes` into the server's incoming/ as `name`; returns its path. */
function drop(server: string, name: string, bytes: Buffer | string): string {
  const p = path.join(incomingDir(catalog, server), name);
  writeFileSync(p, bytes);
  return p;
}

/** The real segment re-addressed as another segment (first page's tli and pageaddr patched). */
function segmentAs(name: string): Buffer {
  const b = Buffer.from(real.bytes);
  b.writeUInt32LE(Number.parseInt(name.slice(0, 8), 16), 4);
  b.writeBigUInt64LE(BigInt(segmentNumber(name, real.segSize)) * BigInt(real.segSize), 8);
  return b;
}

async function archive(server: string, name: string, bytes: Buffer | string, compression: Compression = 'zstd'): Promise<ArchiveOutcome> {
  const sourcePath = drop(server, name, bytes);
  return archiveWalFile({ catalog, server, sourcePath, name, identity, compression });
}

for (const compression of ['zstd', 'gzip', 'none'] as const) {
  test(`a real segment is archived and read back (${compression})`, async () => {
    const out = await archive(compression, real.name, real.bytes, compression);
    const stored = walPath(catalog, compression, real.name, compression);
    assert.equal(out, { result: 'archived', sha256: sha256Hex(readFileSync(stored)) });
    assert.ok(stored.endsWith(`wal/0000000100000000/${real.name}${compression === 'zstd' ? '.zst' : compression === 'gzip' ? '.gz' : ''}`));
    const size = statSync(stored).size;
    if (compression === 'none') assert.is(size, real.segSize);
    else assert.ok(size < real.segSize / 4, `${compression} stored ${size} bytes`);
    assert.ok((await readArchivedWal(catalog, compression, real.name)).equals(real.bytes));
    const sums = await readChecksums(path.dirname(stored));
    assert.is(sums.get(path.basename(stored)), sha256Hex(readFileSync(stored)), "SHA256SUMS holds the stored file's sha256 (sha256sum -c works)");
    assert.ok(existsSync(path.join(incomingDir(catalog, compression), real.name)), 'the source is left for the caller');
  });
}

test('the same segment again is a duplicate, whatever the compression setting', async () => {
  const storedSha = sha256Hex(readFileSync(walPath(catalog, 'zstd', real.name, 'zstd')));
  assert.equal(await archive('zstd', real.name, real.bytes), { result: 'duplicate', sha256: storedSha });
  assert.equal(await archive('zstd', real.name, real.bytes, 'gzip'), { result: 'duplicate', sha256: storedSha });
  assert.not.ok(existsSync(walPath(catalog, 'zstd', real.name, 'gzip')));
});

test('same name, different content: rejected and the archived copy is untouched', async () => {
  const stored = walPath(catalog, 'zstd', real.name, 'zstd');
  const before = readFileSync(stored);
  const other = Buffer.from(real.bytes);
  other[100000] = other[100000]! ^ 0xff;
  const out = await archive('zstd', real.name, other);
  assert.is(out.result, 'rejected');
  if (out.result === 'rejected') assert.match(out.reason, /different content/);
  assert.ok(readFileSync(stored).equals(before));
  assert.ok((await readArchivedWal(catalog, 'zstd', real.name)).equals(real.bytes));
});

test('invalid files are rejected and nothing is stored', async () => {
  const name = '000000010000000000000002';
  const cases: readonly [string, Buffer, RegExp][] = [
    ['truncated', segmentAs(name).subarray(0, real.segSize / 2), /truncated/],
    ['not WAL', Buffer.alloc(real.segSize, 0x20), /page magic/],
    ['other cluster', withSystemIdentifier(segmentAs(name), 1234567890123456789n), /cluster 1234567890123456789/],
    ['wrong name for its content', real.bytes, /page address/],
  ];
  for (const [label, bytes, reason] of cases) {
    const out = await archive('main', name, bytes);
    assert.is(out.result, 'rejected', label);
    if (out.result === 'rejected') assert.match(out.reason, reason, label);
  }
  const junk = await archive('main', 'README', 'hello');
  assert.is(junk.result, 'rejected');
  assert.equal((await listArchivedWal(catalog, 'main')).segments, []);
  assert.equal(readdirSync(walRoot(catalog, 'main')).filter((n) => !n.startsWith('.')).length, 0);
});

test('corruption of a stored file is detected on read', async () => {
  const none = walPath(catalog, 'none', real.name, 'none');
  const bytes = readFileSync(none);
  bytes[5000] = bytes[5000]! ^ 0x01;
  writeFileSync(none, bytes);
  const e1 = (await rejection(readArchivedWal(catalog, 'none', real.name))) as PgbkError;
  assert.is(e1.code, 'WAL');
  assert.match(e1.message, /corrupt/);
  // the healthy incoming copy still does not replace the damaged archived one
  const out = await archive('none', real.name, real.bytes, 'none');
  assert.is(out.result, 'rejected');
  if (out.result === 'rejected') assert.match(out.reason, /recorded checksum/);

  const gz = walPath(catalog, 'gzip', real.name, 'gzip');
  const z = readFileSync(gz);
  const mid = Math.floor(z.length / 2);
  z[mid] = z[mid]! ^ 0x01;
  writeFileSync(gz, z);
  const e2 = (await rejection(readArchivedWal(catalog, 'gzip', real.name))) as PgbkError;
  assert.is(e2.code, 'WAL');

  const nf = (await rejection(readArchivedWal(catalog, 'main', '0000000100000000000000AA'))) as PgbkError;
  assert.is(nf.code, 'NOT_FOUND');
});

test('concurrent archivers of one segment: one archives, the rest see a duplicate', async () => {
  const name = '000000010000000000000003';
  const bytes = segmentAs(name);
  const sources = Array.from({ length: 6 }, (_, i) => drop('main', `.copy${i}`, bytes));
  const outs = await Promise.all(sources.map((sourcePath) => archiveWalFile({ catalog, server: 'main', sourcePath, name, identity, compression: 'zstd' })));
  assert.is(outs.filter((o) => o.result === 'archived').length, 1);
  assert.is(outs.filter((o) => o.result === 'duplicate').length, 5);
  assert.ok((await readArchivedWal(catalog, 'main', name)).equals(bytes));
});

test('a missing SHA256SUMS line (crash before recording) is healed by the next duplicate', async () => {
  const name = '000000010000000000000003';
  const dir = path.dirname(walPath(catalog, 'main', name, 'zstd'));
  writeFileSync(path.join(dir, 'SHA256SUMS'), '');
  assert.is((await readChecksums(dir)).size, 0);
  assert.is((await archive('main', name, segmentAs(name))).result, 'duplicate');
  assert.is((await readChecksums(dir)).get(`${name}.zst`), sha256Hex(readFileSync(path.join(dir, `${name}.zst`))));
});

const historyText = '1\t0/3000000\tno recovery target specified\n';
const backupText =
  'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n' +
  'CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-24 03:00:04 UTC\n' +
  'LABEL: pgbk\nSTART TIMELINE: 1\nSTOP TIME: 2026-11-24 03:00:05 UTC\nSTOP TIMELINE: 1\n';

test('.history and .backup files are archived as text beside the segments', async () => {
  assert.is((await archive('list', '00000002.history', historyText)).result, 'archived');
  assert.ok(existsSync(path.join(walRoot(catalog, 'list'), '00000002.history')));
  const backupName = '000000010000000000000002.00000028.backup';
  assert.is((await archive('list', backupName, backupText)).result, 'archived');
  assert.is(readFileSync(path.join(walRoot(catalog, 'list'), '0000000100000000', backupName), 'utf8'), backupText);
  assert.is((await readArchivedWal(catalog, 'list', '00000002.history')).toString(), historyText);

  const bad: readonly [string, string, RegExp][] = [
    ['00000003.history', 'garbage line\n', /not "<timeline>/],
    ['00000003.history', '', /empty/],
    ['00000003.history', '5\t0/3000000\tfuture parent\n', /parent/],
    ['00000001.history', historyText, /timeline 1/],
    ['000000010000000000000002.00000030.backup', backupText, /offset/],
    ['000000010000000000000003.00000028.backup', backupText, /starts in/],
    ['000000010000000000000004.00000028.backup', 'LABEL: x\n', /START WAL LOCATION/],
  ];
  for (const [name, text, reason] of bad) {
    const out = await archive('list', name, text);
    assert.is(out.result, 'rejected', name);
    if (out.result === 'rejected') assert.match(out.reason, reason, name);
  }
});

test('listArchivedWal lists segments in WAL order across logs and timelines', async () => {
  const names = ['0000000100000000000000FE', '0000000100000000000000FF', '000000010000000100000000', '000000010000000100000001', '000000020000000100000001'];
  for (const n of [...names].reverse()) assert.is((await archive('list', n, segmentAs(n), n.endsWith('0') ? 'gzip' : 'zstd')).result, 'archived', n);
  assert.is((await archive('list', '000000010000000100000002.partial', segmentAs('000000010000000100000002'))).result, 'archived');
  // files in flight and foreign names are not archive contents
  writeFileSync(path.join(walRoot(catalog, 'list'), '0000000100000001', '.000000010000000100000003.tmp-1-abc'), 'x');
  const listed = await listArchivedWal(catalog, 'list');
  assert.equal(listed.segments, names);
  assert.equal(listed.histories, ['00000002.history']);
  assert.equal(listed.backupFiles, ['000000010000000000000002.00000028.backup']);
  assert.equal(listed.partials, ['000000010000000100000002.partial']);
  const newest = statSync(walPath(catalog, 'list', '000000020000000100000001', 'zstd')).mtime.toISOString();
  assert.is(listed.newestMtime, newest);
  assert.equal(await listArchivedWal(catalog, 'nothing-here'), { segments: [], histories: [], backupFiles: [], partials: [] });
});

test('deleteArchivedWal removes files, their checksum lines and empty log directories', async () => {
  const removed = await deleteArchivedWal(catalog, 'list', [
    '0000000100000000000000FE',
    '0000000100000000000000FF',
    '000000010000000000000002.00000028.backup',
    '000000010000000100000000',
    '0000000100000000000000AA', // not archived: skipped
  ]);
  assert.is(removed, 4);
  assert.not.ok(existsSync(path.join(walRoot(catalog, 'list'), '0000000100000000')), 'empty log directory removed');
  const listed = await listArchivedWal(catalog, 'list');
  assert.equal(listed.segments, ['000000010000000100000001', '000000020000000100000001']);
  assert.equal(listed.backupFiles, []);
  assert.equal(listed.histories, ['00000002.history']);
  const sums = await readChecksums(path.join(walRoot(catalog, 'list'), '0000000100000001'));
  assert.equal([...sums.keys()].sort(), ['000000010000000100000001.zst', '000000010000000100000002.partial.zst']);
  assert.ok((await readArchivedWal(catalog, 'list', '000000010000000100000001')).equals(segmentAs('000000010000000100000001')));
  assert.is(await deleteArchivedWal(catalog, 'list', ['000000010000000100000002.partial']), 1, 'a .partial is deleted by its name');
  assert.equal((await listArchivedWal(catalog, 'list')).partials, []);
  assert.equal([...(await readChecksums(path.join(walRoot(catalog, 'list'), '0000000100000001'))).keys()], ['000000010000000100000001.zst']);
  const bad = (await rejection(deleteArchivedWal(catalog, 'list', ['../../server.json']))) as PgbkError;
  assert.is(bad.code, 'WAL');
});

test.run();
