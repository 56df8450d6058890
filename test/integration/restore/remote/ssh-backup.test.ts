// test-lane: light — restore --remote of an ssh backup; no time bound
/**
 * `pgbk restore --remote` of an `ssh`-method backup holding a tablespace: the stored trees
 * (data/ and tablespaces/<oid>/) stream into `tar -x` on the database host, the tablespace lands
 * under --tablespace-dir DIR/<oid> with tablespace_map saying so, and PostgreSQL, fetching WAL over
 * SSH (--wal-from), starts and shows the tablespace's rows.
 */
import { readFile, readdir, rm, mkdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI } from '../../../support/pgbk.js';
import { chownToPostgres, startClusterOn, tempDir } from '../../../support/postgres.js';
import { makeSshWorld, switchAndArchive, waitPromoted, type SshWorld } from '../../ssh/world.js';

// The remote side's runtime directory: TMPDIR is passed by the test sshd (test/support/sshd.ts).
const POSTGRES_RUNTIME = path.join(os.tmpdir(), `pgbk-${execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()}`);

const t = suite<{ w?: SshWorld; dest?: string }>('restore --remote of an ssh backup with a tablespace');
t.before(async (ctx) => {
  ctx.w = await makeSshWorld();
});
t.after(async (ctx) => {
  if (ctx.dest !== undefined) {
    // Stop any fetch worker that served this restore (by the PIDs its log names).
    for (const n of await readdir(POSTGRES_RUNTIME).catch(() => [] as string[])) {
      if (!n.startsWith('walfetch-')) continue;
      const text = await readFile(path.join(POSTGRES_RUNTIME, n), 'utf8').catch(() => '');
      if (!text.includes(ctx.dest)) continue;
      for (const m of text.matchAll(/wal-fetch-worker\[(\d+)\]/g)) {
        try {
          process.kill(Number(m[1]), 'SIGTERM');
        } catch {
          // exited already
        }
      }
    }
    await rm(ctx.dest, { recursive: true, force: true });
  }
  await ctx.w?.destroy();
});

t('tablespace restored under --tablespace-dir, WAL fetched over SSH, rows checked', async (ctx) => {
  const w = ctx.w!;
  const tsDir = path.join(w.root, 'ts1');
  await mkdir(tsDir);
  await chownToPostgres(tsDir);
  await w.cluster.sql(`CREATE TABLESPACE ts1 LOCATION '${tsDir}'`);
  const oid = await w.cluster.sql(`SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'`);
  await w.cluster.sql('CREATE TABLE in_ts (id int) TABLESPACE ts1; INSERT INTO in_ts SELECT generate_series(1, 700)');
  const b = await w.pgbk(['backup', 'main']);
  assert.is(b.code, 0, b.stderr);
  await w.cluster.sql('INSERT INTO in_ts SELECT generate_series(701, 900)');
  await switchAndArchive(w);
  const applied = await w.pgbk(['apply']);
  assert.is(applied.code, 0, applied.stderr);

  ctx.dest = await tempDir('pgbk-rrssh-');
  await chownToPostgres(ctx.dest);
  const data = path.join(ctx.dest, 'data');
  const node = `${process.execPath} ${CLI}`;
  const r = await w.pgbk([
    'restore',
    'main',
    'latest',
    '--target-dir',
    data,
    '--tablespace-dir',
    path.join(ctx.dest, 'ts'),
    '--remote',
    `postgres@127.0.0.1:${w.sshd.port}`,
    '--identity',
    w.sshd.identityFile,
    '--known-hosts',
    w.sshd.knownHosts,
    '--wal-from',
    `ssh://root@127.0.0.1:${w.sshd.port}${w.catalog}`,
    '--wal-identity',
    w.sshd.postgresIdentityFile,
    '--wal-known-hosts',
    w.sshd.knownHosts,
    '--wal-remote-pgbk',
    node,
    '--db-pgbk',
    node,
    '--json',
  ]);
  assert.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { wal: { mode: string }; tablespaces: { oid: string; location: string }[] };
  assert.is(s.wal.mode, 'fetch');
  const location = path.join(ctx.dest, 'ts', oid);
  assert.equal(s.tablespaces, [{ oid, location }]);
  assert.is((await readFile(path.join(data, 'tablespace_map'), 'utf8')).trim(), `${oid} ${location}`);
  const restored = await startClusterOn(data, { conf: { archive_mode: 'off' } });
  try {
    await waitPromoted(restored);
    assert.is(await restored.sql('SELECT count(*) FROM in_ts'), '900');
    assert.is(await restored.sql(`SELECT pg_tablespace_location(${oid})`), location);
  } finally {
    await restored.destroy();
  }
});

t.run();
