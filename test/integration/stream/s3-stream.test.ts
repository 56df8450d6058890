/**
 * wal.method stream with an s3:// catalog (radosgw, once per process) and a PostgreSQL 15 that
 * does not archive at all: the daemon runs pg_receivewal into the spool's streaming/ directory
 * (s3.spool: pg_receivewal needs a local directory); completed segments go into the bucket through
 * the archive path wal-push uses (put-if-absent: the same bytes again are a duplicate, other bytes
 * under the same name are quarantined, never overwritten), the .partial stays local; wal-fetch
 * reads a streamed segment back; check sees the slot and the receiver.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { registerS3Catalog, repositoryOf } from '../../../src/catalog/open.js';
import { quarantinedNames } from '../../../src/catalog/quarantine.js';
import { listArchivedWal, readArchivedWal } from '../../../src/catalog/wal-archive.js';
import { readWalHeader } from '../../../src/pg/wal-header.js';
import { runPgbk, type RunResult } from '../../support/pgbk.js';
import { startCluster, tempDir, type TestCluster } from '../../support/postgres.js';
import { rgw } from '../../support/rgw.js';
import { waitFor } from '../../support/wait.js';
import { startDaemon, type DaemonProcess } from '../daemon/daemon-process.js';

interface Ctx {
  root?: string;
  streaming?: string;
  config?: string;
  catalog?: string;
  cluster?: TestCluster;
  daemon?: DaemonProcess;
}
const t = suite<Ctx>('wal.method stream into an s3:// catalog', {});

const ok = (r: RunResult, what: string): RunResult => {
  assert.is(r.code, 0, `${what}: exit ${String(r.code)}\n${r.stdout}\n${r.stderr}`);
  return r;
};

/** As pg_receivewal completes a segment: whole at once under its name (written under a dot-name first). */
async function placeStreamed(dir: string, name: string, bytes: Buffer): Promise<void> {
  await writeFile(path.join(dir, `.${name}.tmp`), bytes);
  await rename(path.join(dir, `.${name}.tmp`), path.join(dir, name));
}

t.before(async (ctx) => {
  const gw = await rgw();
  ctx.cluster = await startCluster(); // no archive_command: archive_mode stays off
  ctx.root = await tempDir('pgbk-s3-stream-');
  const spool = path.join(ctx.root, 'spool');
  await mkdir(spool);
  ctx.streaming = path.join(spool, 'main', 'streaming');
  const cfg = await gw.bucket('pgbk/');
  registerS3Catalog({ ...cfg, spool });
  ctx.catalog = cfg.url;
  ctx.config = path.join(ctx.root, 'pgbk.yaml');
  await writeFile(
    ctx.config,
    `catalog: ${cfg.url}\ns3: { endpoint: "${gw.endpoint}", region: us-east-1, pathStyle: true, spool: "${spool}" }\nservers:\n  main:\n    connection: "${ctx.cluster.conninfo}"\n    wal: { method: stream }\n    retention: { redundancy: 1 }\n`,
  );
  await ctx.cluster.sql('CREATE TABLE t (n int)');
});

t.after(async (ctx) => {
  if (ctx.daemon !== undefined && ctx.daemon.child.exitCode === null) ctx.daemon.child.kill('SIGKILL');
  await ctx.cluster?.destroy();
  if (ctx.root !== undefined) await rm(ctx.root, { recursive: true, force: true });
});

t('streamed segments reach the bucket (duplicate dropped, conflict quarantined), the .partial stays local, wal-fetch and check use them', async (ctx) => {
  const pgbk = (args: readonly string[]): Promise<RunResult> => runPgbk(['--config', ctx.config!, ...args], { cwd: ctx.root! });
  const catalog = ctx.catalog!;
  const context = (): string => ctx.daemon?.log().slice(-4000) ?? '';
  ctx.daemon = startDaemon(ctx.config!, ['--reconcile-interval', '1h']);
  const daemon = ctx.daemon;
  await daemon.waitForLog(/pg_receivewal started/);
  await daemon.waitForLog(/into .*spool\/main\/streaming/);

  const cluster = ctx.cluster!;
  await cluster.sql('INSERT INTO t SELECT generate_series(1, 1000)');
  const seg = await cluster.sql('SELECT pg_walfile_name(pg_switch_wal())');
  await waitFor('the switched segment in the bucket', async () => ((await listArchivedWal(catalog, 'main')).segments.includes(seg) ? true : undefined), {
    timeoutMs: 30_000,
    stepMs: 100,
    context,
  });
  // Handed over, not copied: streaming/ keeps only the segment in progress (.partial), which is
  // not in the bucket.
  assert.not.ok((await readdir(ctx.streaming!)).includes(seg));
  // The next segment's .partial appears once WAL is written into it.
  await cluster.sql('INSERT INTO t SELECT generate_series(1001, 1010)');
  await waitFor('the next .partial in streaming/', async () => ((await readdir(ctx.streaming!)).some((n) => n.endsWith('.partial')) ? true : undefined), {
    timeoutMs: 20_000,
    context,
  });
  const keys: string[] = [];
  for await (const e of (await repositoryOf(catalog)).listNames('main/wal/', { recursive: true })) keys.push(e.key);
  assert.not.ok(
    keys.some((k) => k.includes('.partial')),
    keys.join(' '),
  );

  // wal-fetch reads the streamed segment back from the bucket: this cluster's, whole.
  const fetched = path.join(ctx.root!, 'fetched');
  ok(await pgbk(['wal-fetch', 'main', seg, fetched]), 'wal-fetch');
  const bytes = await readFile(fetched);
  assert.is(bytes.length, 16 * 1024 * 1024);
  assert.is(readWalHeader(bytes)?.systemIdentifier, await cluster.sql('SELECT system_identifier FROM pg_control_system()'));
  assert.ok(bytes.equals(await readArchivedWal(catalog, 'main', seg)));

  // The same bytes streamed again: a duplicate, dropped. Other bytes under that name: quarantined,
  // the archived copy untouched.
  await placeStreamed(ctx.streaming!, seg, bytes);
  await waitFor('the duplicate dropped', async () => (!(await readdir(ctx.streaming!)).includes(seg) ? true : undefined), { timeoutMs: 20_000, context });
  assert.equal(await quarantinedNames(catalog, 'main'), []);
  const other = Buffer.from(bytes);
  other[8 * 1024 * 1024] = (other[8 * 1024 * 1024]! + 1) % 256;
  await placeStreamed(ctx.streaming!, seg, other);
  await waitFor('the conflicting copy quarantined', async () => ((await quarantinedNames(catalog, 'main')).length > 0 ? true : undefined), {
    timeoutMs: 20_000,
    context,
  });
  assert.ok(bytes.equals(await readArchivedWal(catalog, 'main', seg)), 'the archived segment was not overwritten');

  const check = await pgbk(['check']);
  assert.match(check.stdout, /wal receiver.*streaming on slot pgbk_main/, check.stdout);
  ok(await pgbk(['status']), 'status');

  daemon.child.kill('SIGTERM');
  assert.is((await daemon.exited).code, 0, daemon.log());
});

t.run();
