import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { reapLeftovers } from '../../../src/apply/repair.js';
import { backupDir, ensureServerDirs, incomingDir, serverDir, serverJsonPath, walRoot } from '../../../src/catalog/layout.js';
import { LEFTOVER_MIN_AGE_MS, findLeftovers, tempWriterPid } from '../../../src/catalog/leftovers.js';
import type { ServerConfig } from '../../../src/config/resolved.js';
import { makeTempDir } from './tmp-catalog.js';

const tmp = makeTempDir();
const catalog = tmp.dir;
test.after(() => tmp.cleanup());

const server: ServerConfig = {
  name: 'main',
  backup: { method: 'basebackup', schedule: '0 3 * * *', timezone: 'UTC', compression: 'zstd', fastCheckpoint: true, archiveTimeoutSeconds: 600 },
  wal: { method: 'push', compression: 'zstd', maxLagSeconds: 300 },
  retention: { redundancy: 2, minRedundancy: 2 },
};

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

function put(file: string, ageMs: number): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, 'x'.repeat(10));
  const t = (Date.now() - ageMs) / 1000;
  utimesSync(file, t, t);
  return file;
}

test('tempWriterPid reads only our temp names', () => {
  assert.is(tempWriterPid('.backup.json.tmp-123-0a1b2c'), 123);
  assert.is(tempWriterPid('.000000010000000000000001.zst.tmp-9-ff'), 9);
  assert.is(tempWriterPid('.000000010000000000000001.tmp'), undefined, "an archive_command's own temp name");
  assert.is(tempWriterPid('000000010000000000000001.partial'), undefined);
  assert.is(tempWriterPid('backup.json.tmp-1-ab'), undefined, 'not a dot-name');
});

test('old temp files of dead writers are removed and reported; fresh ones, live writers and foreign files stay', async () => {
  await ensureServerDirs(catalog, 'main');
  const dead = await deadPid();
  const old = LEFTOVER_MIN_AGE_MS + 60_000;
  const log = path.join(walRoot(catalog, 'main'), '0000000100000000');
  const id = '20261124T030004Z';
  const gone = [
    put(path.join(log, `.000000010000000000000003.zst.tmp-${dead}-aa11`), old),
    put(path.join(log, `.SHA256SUMS.tmp-${dead}-bb22`), old),
    put(path.join(serverDir(catalog, 'main'), `.server.json.tmp-${dead}-cc33`), old),
    put(path.join(backupDir(catalog, 'main', id), `.backup.json.tmp-${dead}-dd44`), old),
    put(path.join(backupDir(catalog, 'main', id), 'data', `.backup_label.tmp-${dead}-ee55`), old),
    put(path.join(incomingDir(catalog, 'main'), `.000000010000000000000004.tmp-${dead}-ff66`), old),
  ];
  const kept = [
    put(path.join(log, `.000000010000000000000005.zst.tmp-${dead}-0101`), 60_000), // fresh: may be in flight
    put(path.join(log, `.000000010000000000000006.zst.tmp-${process.pid}-0202`), old), // writer alive
    put(path.join(incomingDir(catalog, 'main'), '.000000010000000000000007.tmp'), old), // not ours
    put(path.join(backupDir(catalog, 'main', id), 'data', `.user-file.tmp-${dead}-0303`), old), // the user's PGDATA file
    put(path.join(log, '000000010000000000000002.zst'), old), // archived WAL
  ];
  const found = await findLeftovers(catalog, 'main', Date.now());
  assert.equal(found.map((l) => l.path).sort(), [...gone].sort());

  const lines: string[] = [];
  const removed = await reapLeftovers({ catalog, server, now: new Date(), log: (l) => lines.push(l), identity: undefined });
  assert.is(removed.length, gone.length);
  for (const f of gone) assert.not.ok(existsSync(f), `${f} removed`);
  for (const f of kept) assert.ok(existsSync(f), `${f} kept`);
  assert.is(lines.length, gone.length);
  assert.match(
    lines.join('\n'),
    new RegExp(
      `main: removed wal/0000000100000000/\\.000000010000000000000003\\.zst\\.tmp-${dead}-aa11, a temp file left by an interrupted write \\(10 bytes, 1\\.0 h old, writer pid ${dead} gone\\)`,
    ),
  );
  assert.equal(await reapLeftovers({ catalog, server, now: new Date(), log: (l) => lines.push(l), identity: undefined }), [], 'nothing left the second time');
});

test('a world-readable server.json from an older pgbk is made 0640 by the locked pass', async () => {
  const file = serverJsonPath(catalog, 'main');
  writeFileSync(file, '{}');
  chmodSync(file, 0o644);
  const lines: string[] = [];
  await reapLeftovers({ catalog, server, now: new Date(), log: (l) => lines.push(l), identity: undefined });
  assert.is(statSync(file).mode & 0o777, 0o640);
  assert.match(lines.join('\n'), /server\.json was world-readable; now 0640/);
});

test.run();
