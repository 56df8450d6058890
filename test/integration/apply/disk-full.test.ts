/**
 * A full catalog filesystem, for real: a 2 MiB tmpfs mounted as the catalog (we run as root), a
 * real PostgreSQL 15 for a real 16 MiB segment and a real pg_basebackup. wal-push and a base backup
 * must fail (non-zero exit) naming the server, the file and the free space, and leave no temp file
 * or partial backup behind. The tmpfs is unmounted in test.after and, should the run die first,
 * at process exit.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeWorld, runPgbk, switchWal, type RunResult, type World } from '../../support/pgbk.js';

let world: World;
let mountPoint = '';
let mounted = false;
let catalog = '';
let config = '';

function umount(): void {
  if (!mounted) return;
  const r = spawnSync('umount', [mountPoint], { encoding: 'utf8' });
  if (r.status !== 0) spawnSync('umount', ['-l', mountPoint]);
  mounted = false;
}
process.on('exit', umount);

test.before(async () => {
  world = await makeWorld();
  mountPoint = path.join(world.root, 'full');
  await mkdir(mountPoint);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'tmpfs', mountPoint], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount tmpfs failed: ${r.stderr}`);
  mounted = true;
  catalog = path.join(mountPoint, 'catalog');
  config = path.join(world.root, 'full.yaml');
  await writeFile(
    config,
    [
      `catalog: ${catalog}`,
      'servers:',
      '  main:',
      `    connection: "${world.cluster.conninfo}"`,
      '    wal: { compression: none }',
      '    backup: { schedule: "0 3 * * *", compression: none }',
      '    retention: { redundancy: 2 }',
      '',
    ].join('\n'),
  );
});

test.after(async () => {
  umount();
  await world?.destroy();
});

function pgbk(args: readonly string[]): Promise<RunResult> {
  return runPgbk(['--config', config, ...args]);
}

/** Every path under `dir`, relative. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    out.push(path.relative(dir, path.join(e.parentPath, e.name)));
  }
  return out.sort();
}

const FREE_RE = /[\d.]+ (bytes|KiB|MiB) free \((\d+) bytes\) of 2\.0 MiB on the filesystem holding /;

test('wal-push of a 16 MiB segment into a 2 MiB catalog: names server, file and free space; no temp file; non-zero exit', async () => {
  const seg = await switchWal(world);
  const source = path.join(world.root, seg);
  await copyFile(path.join(world.incoming, seg), source);
  const r = await pgbk(['wal-push', 'main', source]);
  assert.is.not(r.code, 0, r.stderr);
  const target = path.join(catalog, 'main', 'wal', seg.slice(0, 16), seg);
  assert.match(r.stderr, `server main: no space left on device writing ${target} (WAL file ${seg}, 16.0 MiB to store): `);
  assert.match(r.stderr, FREE_RE);
  assert.not.match(r.stderr, /ENOSPC: no space left on device, write/);
  const files = await tree(catalog);
  assert.equal(
    files.filter((f) => f.includes('.tmp')),
    [],
    files.join('\n'),
  );
  assert.not.ok(
    files.some((f) => f.endsWith(seg)),
    'nothing published under the segment name',
  );
});

test('a base backup (pg_basebackup) into the full catalog fails naming the file and free space, marks the backup FAILED and removes its partial files', async () => {
  const r = await pgbk(['apply']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  const out = r.stdout + r.stderr;
  assert.match(
    out,
    /main: base-backup .*: failed \(pg_basebackup: no space left on device writing \S+\/backups\/\d{8}T\d{6}Z\/\.pg_basebackup\.partial(?:\/[^\s:]+(?: \([0-9A-F]{24}(?:\.partial)?\))?)?: /,
    out,
  );
  assert.match(out, FREE_RE, out);
  const backups = await readdir(path.join(catalog, 'main', 'backups'));
  assert.is(backups.length, 1, backups.join(' '));
  const dir = path.join(catalog, 'main', 'backups', backups[0]!);
  assert.equal(await readdir(dir), ['backup.json'], 'the partial backup files are gone');
  const record = JSON.parse(await readFile(path.join(dir, 'backup.json'), 'utf8')) as { status: string; error: string };
  assert.is(record.status, 'FAILED');
  assert.match(record.error, /no space left on device writing .* free \(\d+ bytes\) of 2\.0 MiB/);
  const files = await tree(catalog);
  assert.equal(
    files.filter((f) => f.includes('.tmp') || f.includes('.partial')),
    [],
    files.join('\n'),
  );
});

test.run();
