import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { escapeLabelValue, renderMetrics, type ServerMetrics } from '../../../src/metrics/render.js';

const main: ServerMetrics = {
  server: 'main',
  backupsByStatus: { STARTED: 0, WAITING_FOR_WAL: 1, DONE: 3, FAILED: 2 },
  lastBackup: { endTime: 1_700_000_000, storedBytes: 123456, dataBytes: 999999 },
  walSegments: 10,
  walBytes: 10 * 16 * 1024 * 1024,
  lastWalTime: 1_700_000_500,
  incomingFiles: 2,
  quarantinedFiles: 1,
  checks: { wal_level: true, 'errors/': false },
};

const fresh: ServerMetrics = {
  server: 'we"ird\\name',
  backupsByStatus: { STARTED: 0, WAITING_FOR_WAL: 0, DONE: 0, FAILED: 0 },
  walSegments: 0,
  walBytes: 0,
  incomingFiles: 0,
  quarantinedFiles: 0,
};

test('renders every family once with HELP and TYPE, samples per server', () => {
  const text = renderMetrics([main, fresh], 1_700_001_000);
  assert.ok(text.endsWith('\n'));
  const lines = text.trimEnd().split('\n');
  const types = lines.filter((l) => l.startsWith('# TYPE '));
  assert.is(new Set(types).size, types.length, 'each family typed once');
  for (const t of types) {
    const name = t.split(' ')[2]!;
    assert.ok(
      lines.some((l) => l === `# HELP ${name} ${l.slice(`# HELP ${name} `.length)}`),
      `HELP for ${name}`,
    );
    assert.ok(
      lines.some((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)),
      `samples for ${name}`,
    );
  }
  assert.ok(lines.includes('pgbk_backups{server="main",status="DONE"} 3'));
  assert.ok(lines.includes('pgbk_backups{server="main",status="FAILED"} 2'));
  assert.ok(lines.includes('pgbk_last_backup_end_timestamp_seconds{server="main"} 1700000000'));
  assert.ok(lines.includes('pgbk_last_backup_age_seconds{server="main"} 1000'));
  assert.ok(lines.includes('pgbk_last_backup_stored_bytes{server="main"} 123456'));
  assert.ok(lines.includes('pgbk_wal_archived_segments{server="main"} 10'));
  assert.ok(lines.includes('pgbk_wal_archived_bytes{server="main"} 167772160'));
  assert.ok(lines.includes('pgbk_wal_last_archived_age_seconds{server="main"} 500'));
  assert.ok(lines.includes('pgbk_incoming_files{server="main"} 2'));
  assert.ok(lines.includes('pgbk_quarantined_files{server="main"} 1'));
  assert.ok(lines.includes('pgbk_check_ok{server="main",check="errors/"} 0'));
  assert.ok(lines.includes('pgbk_check_ok{server="main",check="wal_level"} 1'));
  assert.ok(lines.includes('pgbk_metrics_generated_timestamp_seconds 1700001000'));
});

test('a server without backups or WAL has no last-backup samples; label values are escaped', () => {
  const text = renderMetrics([fresh], 1_700_001_000);
  assert.not.match(text, /pgbk_last_backup_end_timestamp_seconds/);
  assert.not.match(text, /pgbk_wal_last_archived/);
  assert.match(text, /^pgbk_backups\{server="we\\"ird\\\\name",status="DONE"\} 0$/m);
  assert.is(escapeLabelValue('a\nb'), 'a\\nb');
});

test('every sample line is valid exposition syntax', () => {
  const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+]+|NaN|[+-]Inf)$/;
  for (const line of renderMetrics([main, fresh], 1_700_001_000).trimEnd().split('\n')) {
    if (line.startsWith('# ')) continue;
    assert.match(line, sample, line);
  }
});

test.run();
