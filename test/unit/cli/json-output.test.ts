/**
 * `--json` of every command that reads the catalog, against a small fixture catalog (no
 * PostgreSQL): each output is one object in the shared envelope { formatVersion: "1.0", command,
 * … }, compared with golden files in test/unit/cli/golden (UPDATE_GOLDEN=1 rewrites them).
 * restore, check and apply need a server: their envelope is asserted in the integration tests.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeBackupRecord } from '../../../src/catalog/backups.js';
import { recordIdentity } from '../../../src/catalog/identity.js';
import { backupDir, ensureServerDirs } from '../../../src/catalog/layout.js';
import type { BackupRecord } from '../../../src/model/types.js';
import { makeTempDir } from '../catalog/tmp-catalog.js';
import { assertGolden } from '../plan/golden.js';
import { runCli } from './run-cli.js';

const GOLDEN = path.join('test', 'unit', 'cli', 'golden');
const tmp = makeTempDir('pgbk-cli-json-');
const catalog = path.join(tmp.dir, 'catalog');
const config = path.join(tmp.dir, 'pgbk.yaml');
const STORED = Buffer.from('not really a tar, but its checksum is recorded\n');

/** All copy fields whatever the status (a FAILED one keeps what it knew); FAILED needs `error`. */
function record(id: string, status: BackupRecord['status'], extra: { readonly error?: string } = {}): BackupRecord {
  return {
    formatVersion: 1,
    id,
    server: 'main',
    slot: '2026-11-24T03:00:00.000Z',
    status,
    method: 'basebackup',
    pgVersion: 150018,
    systemIdentifier: '7300000000000000001',
    timeline: 1,
    beginLsn: '0/2000028',
    endLsn: '0/2000100',
    beginWal: '000000010000000000000002',
    endWal: '000000010000000000000002',
    beginTime: `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T03:00:04.000Z`,
    endTime: `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T03:01:00.000Z`,
    sizes: { data: 30_000_000, stored: STORED.length },
    compression: 'zstd',
    checksums: { 'base.tar.zst': createHash('sha256').update(STORED).digest('hex') },
    keep: 'none',
    ...extra,
  } as BackupRecord;
}

test.before(async () => {
  writeFileSync(
    config,
    `catalog: ${catalog}\nservers:\n  main:\n    description: fixture cluster\n    connection: "host=127.0.0.1 port=1 user=pgbk dbname=postgres"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 2 }\n`,
  );
  mkdirSync(catalog);
  await ensureServerDirs(catalog, 'main');
  await recordIdentity(catalog, 'main', {
    systemIdentifier: '7300000000000000001',
    pgVersion: 150018,
    walSegmentSize: 16777216,
    firstContact: '2026-11-24T02:59:00.000Z',
  });
  for (const r of [
    record('20261124T030004Z', 'DONE'),
    record('20261125T030004Z', 'DONE'),
    record('20261126T030004Z', 'FAILED', { error: 'pg_basebackup exited 1' }),
  ]) {
    mkdirSync(backupDir(catalog, 'main', r.id), { recursive: true });
    if (r.status === 'DONE') writeFileSync(path.join(backupDir(catalog, 'main', r.id), 'base.tar.zst'), STORED);
    await writeBackupRecord(catalog, r);
  }
});
test.after(() => tmp.cleanup());

/** Temp paths and clock-dependent numbers vary per run: pin them before comparing. */
function normalise(text: string): string {
  return text
    .split(tmp.dir)
    .join('<TMP>')
    .replace(/("[A-Za-z]*AgeSeconds": )\d+/g, '$1<AGE>')
    .replace(/("nextBackup": \{\s*"time": )"[^"]*"/, '$1"<NEXT>"');
}

/** The first 03:00 UTC (the fixture's schedule "0 3 * * *") after `now`. */
function next0300(now: Date): string {
  const t = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 3));
  if (t.getTime() <= now.getTime()) t.setUTCDate(t.getUTCDate() + 1);
  return t.toISOString();
}

async function json(command: string, args: readonly string[], expectCode = 0): Promise<Record<string, unknown>> {
  const r = await runCli([command, ...args, '--json', '--config', config]);
  assert.is(r.code, expectCode, `${command}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.is(doc['formatVersion'], '1.0', command);
  assert.is(doc['command'], command);
  assertGolden(`${command}.json`, normalise(r.stdout), GOLDEN);
  return doc;
}

test('list --json', async () => {
  const doc = await json('list', []);
  assert.is((doc['backups'] as unknown[]).length, 3);
});

test('show --json', async () => {
  await json('show', ['main', 'latest']);
});

test('status --json', async () => {
  // The next backup depends on today's date: pinned as <NEXT> in the golden file, checked here.
  const before = new Date();
  const doc = await json('status', []);
  const next = ((doc['servers'] as Record<string, unknown>[])[0]?.['nextBackup'] as { time?: string } | undefined)?.time;
  assert.ok(next === next0300(before) || next === next0300(new Date()), `nextBackup.time ${next}`);
});

test('verify --json (the fixture has no WAL: a problem, exit 1, still one JSON object)', async () => {
  const doc = await json('verify', ['main', 'latest', '--quick'], 1);
  assert.is(doc['ok'], false);
});

test('validate --json, valid and invalid', async () => {
  await json('validate', []);
  const bad = path.join(tmp.dir, 'bad.yaml');
  writeFileSync(bad, 'catalog: 12\nservers: {}\n');
  const r = await runCli(['validate', '--json', '--config', bad]);
  assert.is(r.code, 1);
  const doc = JSON.parse(r.stdout) as { formatVersion: string; command: string; valid: boolean; error: { code: string } };
  assert.equal([doc.formatVersion, doc.command, doc.valid, doc.error.code], ['1.0', 'validate', false, 'CONFIG']);
});

test('plan --json', async () => {
  await json('plan', ['--now', '2026-11-26T12:00:00Z']);
});

test('keep --json', async () => {
  await json('keep', ['main', '20261124T030004Z']);
  const r = await runCli(['keep', 'main', '20261124T030004Z', '--release', '--json', '--config', config]);
  assert.is((JSON.parse(r.stdout) as { keep: string }).keep, 'none');
});

test('metrics --json', async () => {
  const r = await runCli(['metrics', '--json', '--config', config]);
  assert.is(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as {
    formatVersion: string;
    command: string;
    metrics: { name: string; type: string | null; samples: { labels: Record<string, string>; value: number | null }[] }[];
  };
  assert.is(doc.formatVersion, '1.0');
  assert.is(doc.command, 'metrics');
  const text = (await runCli(['metrics', '--config', config])).stdout;
  // Same families and sample count as the Prometheus text.
  const families = new Set(
    text
      .split('\n')
      .filter((l) => l.startsWith('# TYPE '))
      .map((l) => l.split(' ')[2]),
  );
  assert.equal(new Set(doc.metrics.map((m) => m.name)), families);
  const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
  assert.is(
    doc.metrics.reduce((n, m) => n + m.samples.length, 0),
    samples,
  );
  assert.ok(doc.metrics.every((m) => m.type !== null));
});
test('completion servers: the configured server names, for bash completion of SERVER', async () => {
  const r = await runCli(['completion', 'servers', '--config', config]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'main\n');
});

test.run();
