// test-lane: light — stored layout on posix and radosgw: file names and bytes, no time bound
/**
 * The stored-backup layout (src/catalog/stored-source.ts + stored-layout.ts) that restore, verify
 * and the next backup read: one contract (stored-layout-contract.ts) run by every StoredSource —
 * a local catalog's backup directory and objects in an s3:// catalog on a real Ceph radosgw
 * (test/support/rgw.ts) — then the `ssh` method's chunked trees, which only a local catalog keeps.
 */
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkWriter, FileChunker } from '../../../src/backup/ssh/chunk-writer.js';
import { formatManifest, type ManifestFile } from '../../../src/backup/ssh/incremental.js';
import { backupDir, catalogKeys } from '../../../src/catalog/layout.js';
import { registerS3Catalog } from '../../../src/catalog/open.js';
import { openS3Repository } from '../../../src/catalog/s3/driver.js';
import { sha256Hex } from '../../../src/lib/checksum.js';
import { localHost } from '../../../src/restore/host.js';
import { storedLayout } from '../../../src/restore/stored-layout.js';
import { storedTreeAt } from '../../../src/backup/ssh/stored-tree.js';
import { storedSource } from '../../../src/catalog/stored-source.js';
import { rgw } from '../../support/rgw.js';
import { doneBackup, refuses, SERVER, storedLayoutContract, treeOf } from './stored-layout-contract.js';

storedLayoutContract('local directory', async () => {
  const catalog = await mkdtemp(path.join(os.tmpdir(), 'pgbk-layout-local-'));
  return {
    catalog,
    async put(id, name, bytes) {
      const dir = backupDir(catalog, SERVER, id);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, name), bytes);
    },
    remove: (id, name) => unlink(path.join(backupDir(catalog, SERVER, id), name)),
    cleanup: () => rm(catalog, { recursive: true, force: true }),
  };
});

storedLayoutContract('s3 (radosgw)', async () => {
  const gw = await rgw();
  const cfg = await gw.bucket('pgbk/');
  registerS3Catalog(cfg);
  const repo = await openS3Repository(cfg);
  return {
    catalog: cfg.url,
    put: (id, name, bytes) => repo.put(`${catalogKeys.backup(SERVER, id)}${name}`, bytes),
    remove: (id, name) => repo.delete([`${catalogKeys.backup(SERVER, id)}${name}`]),
    cleanup: async () => repo.close(),
  };
});

/** The `ssh` method's chunked trees (local catalogs only): checked when opened, unpacked on this host. */
type SshCtx = { root?: string };
const s = suite<SshCtx>('stored layout: ssh chunked tree (local directory)', {});
const CHUNK = 1024;
const LABEL = Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIMELINE: 1\n');

s.before(async (ctx) => {
  ctx.root = await mkdtemp(path.join(os.tmpdir(), 'pgbk-layout-ssh-'));
});
s.after(async (ctx) => {
  if (ctx.root !== undefined) await rm(ctx.root, { recursive: true, force: true });
});

/** A compressed `ssh` backup in dir: data/ and tablespaces/16384/ chunked, files.json, backup_label. */
async function sshBackup(dir: string, data: Record<string, Buffer>, ts: Record<string, Buffer>): Promise<Record<string, string>> {
  const writer = new ChunkWriter(dir, undefined, CHUNK, 1);
  await writer.init();
  const recs: ManifestFile[] = [];
  const all = [
    ...Object.entries(data).map(([r, b]) => [`data/${r}`, b] as const),
    ...Object.entries(ts).map(([r, b]) => [`tablespaces/16384/${r}`, b] as const),
  ];
  for (const [stored, bytes] of all) {
    await mkdir(path.dirname(path.join(dir, stored)), { recursive: true });
    writer.begin({ file: { path: stored, size: bytes.length, mtimeMs: 1_600_000_000_000, mode: 0o600 } });
    const chunker = new FileChunker(writer, undefined, CHUNK);
    await chunker.feed(bytes);
    await chunker.close();
    recs.push(await writer.end());
  }
  await writer.flush();
  recs.sort((a, b) => (a.path < b.path ? -1 : 1));
  const manifest = formatManifest({
    listedAtMs: 0,
    pgdata: '/pg',
    tablespaces: [{ oid: '16384', location: '/srv/ts1' }],
    chunkSize: CHUNK,
    compression: 'zstd',
    files: recs,
  });
  await writeFile(path.join(dir, 'files.json'), manifest);
  await writeFile(path.join(dir, 'data', 'backup_label'), LABEL, { mode: 0o600 });
  return { 'files.json': sha256Hex(manifest), 'data/backup_label': sha256Hex(LABEL) };
}

s('opened: tablespaces and counts from files.json; readMap; unpack rebuilds data/ and the tablespace on this host', async (ctx) => {
  const id = '20260102T000001Z';
  const srcDir = path.join(ctx.root!, id);
  const data = { PG_VERSION: Buffer.from('15\n'), 'base/5/1259': Buffer.alloc(5000, 7), 'global/pg_control': Buffer.alloc(300, 1) };
  const ts = { 'PG_15_202209061/5/16390': Buffer.alloc(2500, 9) };
  const sums = await sshBackup(srcDir, data, ts);
  const layout = await storedLayout(await storedSource(ctx.root!, SERVER, id), doneBackup(id, sums, 'ssh'), storedTreeAt(srcDir));
  assert.equal(layout.oids, ['16384']);
  assert.is(layout.storedFiles, 0);
  assert.is(layout.manifest, undefined);
  assert.equal(layout.counted, { bytes: 3 + 5000 + 300 + 2500, files: 4 });
  assert.is(await layout.readMap(), '16384 /srv/ts1\n');
  const into = await mkdtemp(path.join(ctx.root!, 'pgdata-'));
  await layout.unpack(undefined, { host: localHost(), dir: into });
  assert.equal(Object.keys(await treeOf(into)).sort(), ['PG_VERSION', 'backup_label', 'base/5/1259', 'global/pg_control']);
  for (const [rel, bytes] of Object.entries(data)) assert.ok((await readFile(path.join(into, rel))).equals(bytes), rel);
  assert.ok((await readFile(path.join(into, 'backup_label'))).equals(LABEL));
  const tsInto = await mkdtemp(path.join(ctx.root!, 'ts-'));
  await layout.unpack('16384', { host: localHost(), dir: tsInto });
  assert.ok((await readFile(path.join(tsInto, 'PG_15_202209061/5/16390'))).equals(ts['PG_15_202209061/5/16390']));
  await layout.dispose();
});

s('refused when opened: a changed files.json, a missing backup_label, a missing tablespace', async (ctx) => {
  const make = async (id: string): Promise<{ srcDir: string; sums: Record<string, string> }> => {
    const srcDir = path.join(ctx.root!, id);
    return { srcDir, sums: await sshBackup(srcDir, { PG_VERSION: Buffer.from('15\n') }, { 'PG_15_202209061/x': Buffer.from('t') }) };
  };
  const open = async (id: string, srcDir: string, sums: Record<string, string>): Promise<unknown> =>
    storedLayout(await storedSource(ctx.root!, SERVER, id), doneBackup(id, sums, 'ssh'), storedTreeAt(srcDir));

  const a = await make('20260102T000002Z');
  await writeFile(path.join(a.srcDir, 'files.json'), `${(await readFile(path.join(a.srcDir, 'files.json'), 'utf8')).trim()} \n`);
  await refuses(() => open('20260102T000002Z', a.srcDir, a.sums), /files\.json is missing or does not match its recorded sha256/);

  const b = await make('20260102T000003Z');
  await unlink(path.join(b.srcDir, 'data', 'backup_label'));
  await refuses(() => open('20260102T000003Z', b.srcDir, b.sums), /data\/backup_label is missing or does not match/);

  const c = await make('20260102T000004Z');
  await rm(path.join(c.srcDir, 'tablespaces', '16384'), { recursive: true });
  await refuses(() => open('20260102T000004Z', c.srcDir, c.sums), /tablespace 16384 is missing/);
});

s.run();
