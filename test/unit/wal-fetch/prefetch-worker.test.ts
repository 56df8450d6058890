/**
 * The local prefetch worker as a process (node prefetch-worker.js), over a real catalog of four
 * archived segments, with this test playing PostgreSQL: it takes spooled segments the way the
 * shell fast path does (a rename out of the spool).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureServerDirs } from '../../../src/catalog/layout.js';
import { archiveWalBuffer } from '../../../src/catalog/wal-archive.js';
import type { ServerIdentity } from '../../../src/model/types.js';
import { segmentNameFrom, segmentNumber } from '../../../src/pg/wal-name.js';
import { fetchWal } from '../../../src/wal-fetch/local-fetch.js';
import { liveWorker, writeWant } from '../../../src/wal-fetch/spool.js';
import { makeRealSegment, type RealSegment } from '../pg/real-segment.js';
import { makeTempDir } from '../catalog/tmp-catalog.js';

const tmp = makeTempDir();
let real: RealSegment;

test.before(() => {
  real = makeRealSegment();
});
test.after(() => {
  real.cleanup();
  tmp.cleanup();
});

/** The real segment re-addressed as another segment (first page's tli and pageaddr patched). */
function segmentAs(name: string): Buffer {
  const b = Buffer.from(real.bytes);
  b.writeUInt32LE(Number.parseInt(name.slice(0, 8), 16), 4);
  b.writeBigUInt64LE(BigInt(segmentNumber(name, real.segSize)) * BigInt(real.segSize), 8);
  return b;
}

async function waitFor(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A catalog under `root` holding `segnos` (timeline 1) archived with zstd, and a config naming it. */
async function archiveOf(root: string, segnos: readonly number[]): Promise<{ readonly names: string[]; readonly config: string }> {
  const catalog = path.join(root, 'catalog');
  await mkdir(catalog, { recursive: true });
  await ensureServerDirs(catalog, 'main');
  const identity: ServerIdentity = {
    systemIdentifier: real.systemIdentifier,
    pgVersion: 150000,
    walSegmentSize: real.segSize,
    firstContact: '2026-12-04T00:00:00.000Z',
  };
  const names = segnos.map((n) => segmentNameFrom(1, n, real.segSize));
  for (const name of names) {
    const r = await archiveWalBuffer({ catalog, server: 'main', name, identity, compression: 'zstd' }, segmentAs(name));
    assert.is(r.result, 'archived');
  }
  const config = path.join(root, 'pgbk.yaml');
  await writeFile(config, `catalog: ${catalog}\nservers:\n  main:\n    connection: "host=/nonexistent dbname=postgres"\n    retention: { redundancy: 1 }\n`);
  return { names, config };
}

test('at the end of the archive the last segment taken is spooled once more (PostgreSQL reads it again to end recovery)', async () => {
  const { names, config } = await archiveOf(tmp.dir, [1, 2, 3, 4]);
  const pgdata = path.join(tmp.dir, 'data');
  const spool = path.join(pgdata, '.pgbk-spool');
  const pgWal = path.join(pgdata, 'pg_wal');
  await mkdir(pgWal, { recursive: true });
  await mkdir(spool, { mode: 0o700 });
  // What the Node path writes after serving the first segment.
  await writeWant(spool, { server: 'main', name: names[0]!, segSize: real.segSize, count: 8, at: `${Date.now()}-test` });
  const script = fileURLToPath(new URL('../../../src/wal-fetch/prefetch-worker.js', import.meta.url));
  const worker = spawn(process.execPath, [script, JSON.stringify({ spool, server: 'main', configPath: config, cwd: pgdata })], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  try {
    const take = async (name: string): Promise<Buffer> => {
      await waitFor(`${name} spooled`, () => existsSync(path.join(spool, name)));
      await rename(path.join(spool, name), path.join(pgWal, 'RECOVERYXLOG'));
      return readFile(path.join(pgWal, 'RECOVERYXLOG'));
    };
    for (const name of names.slice(1)) assert.ok((await take(name)).equals(segmentAs(name)), `${name} spooled with its own bytes`);
    // The fifth segment is not archived: the worker spools the fourth again, with its sidecar.
    const last = names[3]!;
    const again = await take(last);
    assert.ok(again.equals(segmentAs(last)), 'the same verified bytes');
    assert.ok(existsSync(path.join(spool, `${last}.ck`)), 'with a sidecar');
    // Only once: taken again, it does not come back.
    await new Promise((r) => setTimeout(r, 700));
    assert.not.ok(existsSync(path.join(spool, last)), 'spooled again only once');
    assert.ok((await liveWorker(spool)) !== undefined, 'the worker is still there');
  } finally {
    await rm(spool, { recursive: true, force: true });
    const timer = setTimeout(() => worker.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
});

test('given pg_wal (PostgreSQL restores to pg_wal/RECOVERYXLOG) the worker places segments there: verified bytes, .done, a link; NAME.used moves it on and prunes links', async () => {
  const root = path.join(tmp.dir, 'place');
  const { names, config } = await archiveOf(root, [1, 2, 3, 4]);
  const pgdata = path.join(root, 'data');
  const spool = path.join(pgdata, '.pgbk-spool');
  const pgWal = path.join(pgdata, 'pg_wal');
  await mkdir(path.join(pgWal, 'archive_status'), { recursive: true });
  await mkdir(spool, { mode: 0o700 });
  // A temp file of a placing worker that was killed: removed at start.
  const stale = path.join(pgWal, `.${names[3]}.tmp-999999999-0000aa`);
  await writeFile(stale, 'x');
  await writeWant(spool, { server: 'main', name: names[0]!, segSize: real.segSize, count: 8, at: `${Date.now()}-test` });
  const script = fileURLToPath(new URL('../../../src/wal-fetch/prefetch-worker.js', import.meta.url));
  const worker = spawn(process.execPath, [script, JSON.stringify({ spool, server: 'main', configPath: config, cwd: pgdata, pgWal })], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  try {
    for (const name of names.slice(1)) {
      await waitFor(`${name} placed`, () => existsSync(path.join(spool, `${name}.link`)));
      assert.ok((await readFile(path.join(pgWal, name))).equals(segmentAs(name)), `${name} placed with its own bytes`);
      assert.ok(existsSync(path.join(pgWal, 'archive_status', `${name}.done`)), `${name}.done`);
      assert.not.ok(existsSync(path.join(spool, name)), `${name} not spooled as well`);
      await writeFile(path.join(spool, `${name}.used`), '');
    }
    assert.not.ok(existsSync(stale), "the dead writer's temp file is gone");
    await waitFor(
      'links of consumed segments pruned',
      () => !existsSync(path.join(spool, `${names[1]}.link`)) && !existsSync(path.join(spool, `${names[2]}.link`)),
    );
    // The newest consumed keeps its placement (PostgreSQL may ask for it again to end recovery),
    // and is not spooled again: it is still in pg_wal.
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(existsSync(path.join(spool, `${names[3]}.link`)));
    assert.not.ok(existsSync(path.join(spool, names[3]!)));
    for (const name of names.slice(1)) assert.ok(existsSync(path.join(pgWal, name)), `pg_wal/${name} is PostgreSQL's: never removed by the worker`);
  } finally {
    await rm(spool, { recursive: true, force: true });
    const timer = setTimeout(() => worker.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
});

test('the Node path that starts a worker spools the next segment itself before it answers (no second Node start)', async () => {
  const root = path.join(tmp.dir, 'first');
  const { names, config } = await archiveOf(root, [5, 6]);
  const [a, b] = names as [string, string];
  const pgdata = path.join(root, 'data');
  await mkdir(path.join(pgdata, 'pg_wal'), { recursive: true });
  const spool = path.join(pgdata, '.pgbk-spool');
  // The worker this starts cannot run (its Node refuses to start): whatever is spooled on return
  // was spooled by fetchWal itself.
  const env = { ...process.env, NODE_OPTIONS: '--require /nonexistent/pgbk-test-no-worker.cjs' };
  await fetchWal({ server: 'main', name: a, dest: 'pg_wal/RECOVERYXLOG', cwd: pgdata, configPath: config, env, prefetch: 8 });
  assert.ok((await readFile(path.join(pgdata, 'pg_wal', 'RECOVERYXLOG'))).equals(segmentAs(a)), 'the asked segment is served');
  assert.ok(existsSync(path.join(spool, b)), 'the next one is spooled');
  assert.ok((await readFile(path.join(spool, b))).equals(segmentAs(b)));
  const sidecar = (await readFile(path.join(spool, `${b}.ck`), 'utf8')).trim();
  assert.match(sidecar, new RegExp(` ${real.segSize} \\d+\\.\\d{9}$`), 'its identity: … size mtime');
  await rm(spool, { recursive: true, force: true });
});

test.run();
