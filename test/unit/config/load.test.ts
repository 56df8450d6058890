import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../../src/config/load.js';
import type { Desired } from '../../../src/config/resolved.js';
import { PgbkError } from '../../../src/errors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const HOME = '/home/dba';

const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-config-'));
  temps.push(dir);
  return dir;
}

function write(file: string, text: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

/** Writes `yaml` as <tmp>/pgbk.yaml and loads it by discovery from that directory. */
async function loadText(yaml: string): Promise<{ desired: Desired; file: string }> {
  const dir = tempDir();
  const file = write(path.join(dir, 'pgbk.yaml'), yaml);
  return { desired: await loadConfig({ cwd: dir, env: { HOME } }), file };
}

async function configError(load: () => Promise<unknown>): Promise<PgbkError> {
  try {
    await load();
  } catch (err) {
    assert.instance(err, PgbkError);
    assert.is((err as PgbkError).code, 'CONFIG');
    return err as PgbkError;
  }
  assert.unreachable('loadConfig should have failed');
  throw new Error('unreachable');
}

// ---- valid configs ----------------------------------------------------------------------------

test('minimal config: every default applied', async () => {
  const yaml = 'catalog: backups\nservers:\n  main:\n    retention: { redundancy: 3 }\n';
  const { desired, file } = await loadText(yaml);
  assert.equal(desired, {
    configPath: file,
    configHash: createHash('sha256').update(yaml).digest('hex'),
    catalog: path.join(path.dirname(file), 'backups'),
    servers: [
      {
        name: 'main',
        backup: { method: 'basebackup', timezone: 'UTC', compression: 'zstd', fastCheckpoint: true, archiveTimeoutSeconds: 600 },
        wal: { method: 'push', compression: 'zstd' },
        retention: { redundancy: 3, minRedundancy: 1 },
      },
    ],
  });
});

test('full config: defaults inherited key by key, paths expanded, servers sorted', async () => {
  const yaml = `# yaml-language-server: $schema=./schema/pgbk.schema.json
catalog: ~/pgbk-catalog
defaults:
  compression: gzip
  retention: { recoveryWindow: 14d, minRedundancy: 2 }
  backup: { schedule: "0 3 * * *", timezone: Europe/Berlin, fastCheckpoint: false, archiveTimeout: 30m }
  wal: { compression: none, maxLag: 15m }
servers:
  zeta:
    description: inherits everything
  alpha:
    description: production cluster
    connection: "host=db1 port=5432 user=pgbk dbname=postgres"
    pgdata: /var/lib/postgresql/15/main
    ssh: { host: db1, port: 2222, user: postgres, identityFile: keys/id_ed25519, knownHosts: ~/.ssh/known_hosts }
    backup: { method: basebackup, schedule: "30 2 * * 0", timezone: UTC, compression: zstd, fastCheckpoint: true, archiveTimeout: 5m }
    wal: { method: push, compression: gzip, maxLag: 5m }
    retention: { redundancy: 7 }
  mid:
    ssh: { host: db2, user: postgres }
    retention: { recoveryWindow: 2w, minRedundancy: 0 }
`;
  const { desired, file } = await loadText(yaml);
  const dir = path.dirname(file);
  assert.is(desired.catalog, '/home/dba/pgbk-catalog');
  assert.equal(
    desired.servers.map((s) => s.name),
    ['alpha', 'mid', 'zeta'],
  );
  const [alpha, mid, zeta] = desired.servers;
  assert.equal(alpha, {
    name: 'alpha',
    description: 'production cluster',
    connection: 'host=db1 port=5432 user=pgbk dbname=postgres',
    pgdata: '/var/lib/postgresql/15/main',
    ssh: { host: 'db1', port: 2222, user: 'postgres', identityFile: path.join(dir, 'keys/id_ed25519'), knownHosts: '/home/dba/.ssh/known_hosts' },
    backup: { method: 'basebackup', schedule: '30 2 * * 0', timezone: 'UTC', compression: 'zstd', fastCheckpoint: true, archiveTimeoutSeconds: 300 },
    wal: { method: 'push', compression: 'gzip', maxLagSeconds: 300 },
    retention: { redundancy: 7, recoveryWindowSeconds: 1209600, minRedundancy: 2 },
  });
  assert.equal(mid?.ssh, { host: 'db2', port: 22, user: 'postgres' });
  assert.equal(mid?.retention, { recoveryWindowSeconds: 1209600, minRedundancy: 0 });
  assert.equal(zeta, {
    name: 'zeta',
    description: 'inherits everything',
    backup: { method: 'basebackup', schedule: '0 3 * * *', timezone: 'Europe/Berlin', compression: 'gzip', fastCheckpoint: false, archiveTimeoutSeconds: 1800 },
    wal: { method: 'push', compression: 'none', maxLagSeconds: 900 },
    retention: { recoveryWindowSeconds: 1209600, minRedundancy: 2 },
  });
});

test('user: names the OS user pgbk runs as; absent by default', async () => {
  const { desired } = await loadText('catalog: /x\nuser: postgres\nservers:\n  main:\n    retention: { redundancy: 3 }\n');
  assert.is(desired.user, 'postgres');
  assert.is((await loadText(OK_SERVER)).desired.user, undefined);
});

test('drill and objectives: key by key from defaults, relative scratchDir against the config file', async () => {
  const { desired, file } = await loadText(
    'catalog: /x\ndefaults:\n  objectives: { rpo: 5m }\n  drill: { schedule: "0 5 * * 0", scratchDir: drills, timeLimit: 20m }\nservers:\n  main:\n    retention: { redundancy: 1 }\n    objectives: { rto: 30m }\n    drill: { target: random, check: { sql: "SELECT 1 = 1", amcheck: [app] } }\n  other:\n    retention: { redundancy: 1 }\n',
  );
  const main = desired.servers.find((s) => s.name === 'main');
  assert.equal(main?.objectives, { rpoSeconds: 300, rtoSeconds: 1800 });
  assert.equal(main?.drill, {
    schedule: '0 5 * * 0',
    timezone: 'UTC',
    target: 'random',
    scratchDir: path.join(path.dirname(file), 'drills'),
    timeLimitSeconds: 1200,
    check: { sql: 'SELECT 1 = 1', database: 'postgres', user: 'postgres', amcheck: ['app'] },
    settings: {},
  });
  assert.is(desired.servers.find((s) => s.name === 'other')?.drill?.target, 'latest');
});

test('config.example.yaml validates and resolves', async () => {
  const file = path.join(ROOT, 'config.example.yaml');
  const text = readFileSync(file, 'utf8');
  assert.ok(text.startsWith('# yaml-language-server: $schema=./schema/pgbk.schema.json\n'));
  const desired = await loadConfig({ configPath: file, cwd: tempDir(), env: { HOME } });
  assert.is(desired.configPath, file);
  assert.ok(desired.servers.length >= 2);
  // Every option the schema knows appears in the example (uncommented or commented out).
  const schema = JSON.parse(readFileSync(path.join(ROOT, 'schema/pgbk.schema.json'), 'utf8')) as unknown;
  const keys = new Set<string>();
  const collect = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    const props = (node as { properties?: Record<string, unknown> }).properties;
    if (props !== undefined) for (const k of Object.keys(props)) keys.add(k);
    for (const v of Object.values(node)) collect(v);
  };
  collect(schema);
  assert.ok(keys.size > 20, `schema keys: ${[...keys].join(' ')}`);
  for (const key of keys) {
    assert.ok(new RegExp(`^\\s*#?\\s*${key}:`, 'm').test(text), `config.example.yaml lacks ${key}`);
  }
});

test("config.example.yaml's commented s3:// block, uncommented, validates with a streaming server (and without its spool is refused)", async () => {
  const text = readFileSync(path.join(ROOT, 'config.example.yaml'), 'utf8');
  const lines = text.split('\n');
  const from = lines.findIndex((l) => l.startsWith('# catalog: s3://'));
  const to = lines.findIndex((l, i) => i > from && /^#\s+spool:/.test(l));
  assert.ok(from > 0 && to > from, 'the s3 block is in config.example.yaml');
  const block = lines
    .slice(from, to + 1)
    .map((l) => l.replace(/^# ?/, ''))
    .join('\n');
  const server = '\nservers:\n  main:\n    connection: "host=db1"\n    retention: { redundancy: 1 }\n    wal: { method: stream }\n';
  const { desired } = await loadText(`${block}${server}`);
  assert.is(desired.s3?.spool, '/var/spool/pgbk');
  assert.is(desired.servers[0]!.wal.method, 'stream');
  const err = await configError(() => loadText(`${block.replace(/^\s*spool:.*$/m, '')}${server}`));
  assert.match(err.message, /servers\.main\.wal\.method[\s\S]*needs s3\.spool/);
});

test('configHash is the sha256 of the file bytes, BOM and CRLF included', async () => {
  const yaml = '\ufeffcatalog: /x\r\nservers:\r\n  main:\r\n    retention: { redundancy: 1 }\r\n';
  const { desired } = await loadText(yaml);
  assert.is(desired.configHash, createHash('sha256').update(Buffer.from(yaml, 'utf8')).digest('hex'));
  assert.is(desired.catalog, '/x');
});

// ---- errors: every one names file:line:col and the config path --------------------------------

interface ErrorCase {
  readonly name: string;
  readonly yaml: string;
  /** The exact message lines, without the "<file>:" prefix. */
  readonly lines: readonly string[];
}

const OK_SERVER = 'catalog: /x\nservers:\n  main:\n    retention: { redundancy: 1 }\n';

const errorCases: readonly ErrorCase[] = [
  {
    name: 'invalid YAML names the line',
    yaml: 'catalog: /x\nservers:\n  main:\n    retention:\n      redundancy: 1\n     minRedundancy: 1\n',
    lines: ['6:1: invalid YAML: All mapping items must start at the same column'],
  },
  {
    name: 'unclosed flow mapping',
    yaml: 'catalog: /x\nservers:\n  main:\n    retention: { redundancy: 1\n',
    lines: ['5:1: invalid YAML: Flow map in block collection must be sufficiently indented and end with a }'],
  },
  {
    name: 'duplicate key',
    yaml: 'catalog: /x\nservers:\n  main: {}\n  main: {}\n',
    lines: ['4:3: invalid YAML: Map keys must be unique'],
  },
  {
    name: 'unknown key with line:col of the key',
    yaml: 'catalog: /x\nservers:\n  main:\n    retention:\n      redundancy: 2\n      redundancyy: 3\n',
    lines: ['6:7: servers.main.retention.redundancyy: unknown key (allowed: redundancy, recoveryWindow, pitrWindow, minRedundancy)'],
  },
  {
    name: 'unknown top-level key',
    yaml: OK_SERVER + 'catalgo: /y\n',
    lines: ['5:1: catalgo: unknown key (allowed: catalog, s3, user, defaults, servers)'],
  },
  {
    name: 'user: not a user name',
    yaml: 'catalog: /x\nuser: "post gres"\n' + OK_SERVER.replace('catalog: /x\n', ''),
    lines: ['2:7: user: must match pattern "^[A-Za-z0-9_][A-Za-z0-9_.-]*[$]?$" (got "post gres")'],
  },
  {
    name: 'redundancy 0',
    yaml: 'catalog: /x\nservers:\n  main:\n    retention:\n      redundancy: 0\n',
    lines: ['5:19: servers.main.retention.redundancy: must be >= 1'],
  },
  {
    name: 'bad duration "14 days"',
    yaml: 'catalog: /x\nservers:\n  main:\n    retention: { recoveryWindow: 14 days }\n',
    lines: ['4:34: servers.main.retention.recoveryWindow: must be a duration like 30s, 5m, 12h, 14d or 2w (got "14 days")'],
  },
  {
    name: 'bad pitrWindow "7 days"',
    yaml: 'catalog: /x\nservers:\n  main:\n    retention: { redundancy: 2, pitrWindow: 7 days }\n',
    lines: ['4:45: servers.main.retention.pitrWindow: must be a duration like 30s, 5m, 12h, 14d or 2w (got "7 days")'],
  },
  {
    name: 'pitrWindow of zero',
    yaml: 'catalog: /x\nservers:\n  main:\n    retention: { redundancy: 2, pitrWindow: 0d }\n',
    lines: ['4:45: servers.main.retention.pitrWindow: must be longer than 0'],
  },
  {
    name: 'duration as a bare number',
    yaml: OK_SERVER.replace('main:\n', 'main:\n    wal: { maxLag: 30 }\n'),
    lines: ['4:20: servers.main.wal.maxLag: must be a duration like 30s, 5m, 12h, 14d or 2w (got 30)'],
  },
  {
    name: 'bad cron "61 * * * *"',
    yaml: OK_SERVER + '    backup:\n      schedule: "61 * * * *"\n',
    lines: ['6:17: servers.main.backup.schedule: invalid cron expression "61 * * * *": Invalid value for minute: 61'],
  },
  {
    name: 'cron restricting day-of-month and day-of-week',
    yaml: OK_SERVER + '    backup: { schedule: "0 3 1 * 1" }\n',
    lines: [
      '5:25: servers.main.backup.schedule: invalid cron expression "0 3 1 * 1": restricts both day-of-month and day-of-week, which cron implementations read differently ("either" vs "both"); set one of them to *',
    ],
  },
  {
    name: 'bad cron in defaults',
    yaml: OK_SERVER + 'defaults:\n  backup:\n    schedule: "0 0 30 2 *"\n',
    lines: ['7:15: defaults.backup.schedule: invalid cron expression "0 0 30 2 *": 30 2 is an impossible day of month for the given month'],
  },
  {
    name: 'bad timezone',
    yaml: OK_SERVER + '    backup:\n      schedule: "0 3 * * *"\n      timezone: Europe/Berlinn\n',
    lines: ['7:17: servers.main.backup.timezone: unknown time zone "Europe/Berlinn" (use an IANA name such as UTC or Europe/Berlin)'],
  },
  {
    name: 'missing servers',
    yaml: 'catalog: /x\n',
    lines: ['1:1: servers: is required'],
  },
  {
    name: 'no servers',
    yaml: 'catalog: /x\nservers: {}\n',
    lines: ['2:10: servers: define at least one server'],
  },
  {
    name: 'missing catalog',
    yaml: 'servers:\n  main:\n    retention: { redundancy: 1 }\n',
    lines: ['1:1: catalog: is required'],
  },
  {
    name: 'empty file',
    yaml: '# nothing yet\n',
    lines: ['1:1: (root): the file is empty; it needs at least catalog and servers'],
  },
  {
    name: 'password in conninfo (not echoed)',
    yaml: OK_SERVER + '    connection: "host=db1 user=pgbk password=hunter2"\n',
    lines: ['5:17: servers.main.connection: contains a password: put secrets in PGPASSFILE or the environment, not in the config'],
  },
  {
    name: 'password in a connection URI (not echoed)',
    yaml: OK_SERVER + '    connection: postgresql://pgbk:hunter2@db1/postgres\n',
    lines: ['5:17: servers.main.connection: contains a password: put secrets in PGPASSFILE or the environment, not in the config'],
  },
  {
    name: 'sslpassword in conninfo (issue 9 item 7: not echoed; no env var in libpq, so refused)',
    yaml: OK_SERVER + '    connection: "host=db1 user=pgbk sslkey=/k sslpassword=hunter2"\n',
    lines: [
      '5:17: servers.main.connection: contains sslpassword: libpq can take it only in the connection string, which pgbk would pass on a command line that ps shows to every local user; use a client key without a passphrase (sslkey, mode 0600, owned by the user pgbk runs as)',
    ],
  },
  {
    name: 'sslpassword in a URI query, percent-encoded key',
    yaml: OK_SERVER + '    connection: "postgresql://pgbk@db1/postgres?ssl%70assword=hunter2"\n',
    lines: [
      '5:17: servers.main.connection: contains sslpassword: libpq can take it only in the connection string, which pgbk would pass on a command line that ps shows to every local user; use a client key without a passphrase (sslkey, mode 0600, owned by the user pgbk runs as)',
    ],
  },
  {
    name: 'password in ssh.psqlConnection',
    yaml: OK_SERVER + '    ssh: { host: db1, user: postgres, psqlConnection: "dbname=postgres password=hunter2" }\n',
    lines: ['5:55: servers.main.ssh.psqlConnection: contains a password: put secrets in ~/.pgpass of the SSH user on the database host, not in the config'],
  },
  {
    name: 'minRedundancy > redundancy',
    yaml: 'catalog: /x\nservers:\n  main:\n    retention:\n      redundancy: 2\n      minRedundancy: 3\n',
    lines: ['6:22: servers.main.retention.minRedundancy: 3 is more than redundancy 2'],
  },
  {
    name: 'redundancy below an inherited minRedundancy',
    yaml: 'catalog: /x\ndefaults:\n  retention: { minRedundancy: 3 }\nservers:\n  main:\n    retention: { redundancy: 2 }\n',
    lines: ['6:30: servers.main.retention.redundancy: 2 is less than minRedundancy 3 (from defaults.retention)'],
  },
  {
    name: 'no retention anywhere (server has none)',
    yaml: 'catalog: /x\nservers:\n  main:\n    description: x\n',
    lines: ['3:3: servers.main.retention: set redundancy or recoveryWindow (here or in defaults.retention)'],
  },
  {
    name: 'no retention anywhere (only minRedundancy)',
    yaml: 'catalog: /x\nservers:\n  main:\n    retention: { minRedundancy: 1 }\n',
    lines: ['4:5: servers.main.retention: set redundancy or recoveryWindow (here or in defaults.retention)'],
  },
  {
    name: 'ssh without user',
    yaml: OK_SERVER + '    ssh:\n      host: db1\n',
    lines: ['5:5: servers.main.ssh.user: is required'],
  },
  {
    name: 'bad server name',
    yaml: OK_SERVER + '  -bad: { retention: { redundancy: 1 } }\n',
    lines: ["5:3: servers.-bad: invalid name: use letters, digits, '_', '.' and '-', starting with a letter or digit"],
  },
  {
    name: 'enum and type errors',
    yaml: OK_SERVER + '    backup: { method: scp, fastCheckpoint: "yes" }\n',
    lines: [
      '5:23: servers.main.backup.method: must be one of: basebackup, ssh (got "scp")',
      '5:44: servers.main.backup.fastCheckpoint: must be boolean (got string "yes")',
    ],
  },
  {
    name: 'relative pgdata',
    yaml: OK_SERVER + '    pgdata: data\n',
    lines: ['5:13: servers.main.pgdata: must be an absolute path (got "data")'],
  },
  {
    name: 'zero recovery window',
    yaml: 'catalog: /x\nservers:\n  main:\n    retention: { recoveryWindow: 0d }\n',
    lines: ['4:34: servers.main.retention.recoveryWindow: must be longer than 0'],
  },
  {
    name: 'too large archiveTimeout (issue 9: no file:line before, a bare throw from resolve)',
    yaml: OK_SERVER + '    backup:\n      archiveTimeout: 99999999999999999999w\n',
    lines: ['6:23: servers.main.backup.archiveTimeout: duration "99999999999999999999w" is too large: at most 36500d (100 years)'],
  },
  {
    name: 'too large durations in defaults and server, each with its key path',
    yaml: 'catalog: /x\ndefaults:\n  wal: { maxLag: 5300w }\n  backup: { archiveTimeout: 36501d }\nservers:\n  main:\n    retention: { recoveryWindow: 1000000000h }\n',
    lines: [
      '3:18: defaults.wal.maxLag: duration "5300w" is too large: at most 36500d (100 years)',
      '4:29: defaults.backup.archiveTimeout: duration "36501d" is too large: at most 36500d (100 years)',
      '7:34: servers.main.retention.recoveryWindow: duration "1000000000h" is too large: at most 36500d (100 years)',
    ],
  },
  {
    name: 'two servers, one PostgreSQL: same endpoint spelled differently (issue 9 item 6)',
    yaml: 'catalog: /x\ndefaults: { retention: { redundancy: 1 } }\nservers:\n  a:\n    connection: "host=/tmp/x port=5433 dbname=postgres"\n  b:\n    connection: "user=bob  port=5433 host=/tmp/x/ dbname=other"\n  c:\n    connection: "host=/tmp/x port=5434"\n',
    lines: ['7:17: servers.b.connection: servers a and b are the same PostgreSQL (host /tmp/x, port 5433): configure each cluster once, under one server name'],
  },
  {
    name: 'two servers, one PostgreSQL: URI and keyword/value with the default port',
    yaml: 'catalog: /x\ndefaults: { retention: { redundancy: 1 } }\nservers:\n  a:\n    connection: postgresql://pgbk@DB1.example/postgres\n  b:\n    connection: "host=db1.example port=5432 user=other"\n',
    lines: [
      '7:17: servers.b.connection: servers a and b are the same PostgreSQL (host db1.example, port 5432): configure each cluster once, under one server name',
    ],
  },
  {
    name: 'two servers, one PostgreSQL: same data directory on the same SSH host',
    yaml: 'catalog: /x\ndefaults: { retention: { redundancy: 1 } }\nservers:\n  a:\n    pgdata: /srv/pg/15/main\n    ssh: { host: db1, user: postgres }\n    backup: { method: ssh }\n  b:\n    pgdata: /srv/pg/15/main/\n    ssh: { host: DB1, user: postgres, port: 22 }\n    backup: { method: ssh }\n',
    lines: [
      '9:13: servers.b.pgdata: servers a and b are the same PostgreSQL (data directory /srv/pg/15/main on db1:22): configure each cluster once, under one server name',
    ],
  },
  {
    name: '~user paths',
    yaml: OK_SERVER.replace('catalog: /x', 'catalog: ~bob/pgbk'),
    lines: ['1:10: catalog: "~bob/pgbk": only ~ and ~/ are expanded; write the full path'],
  },
  {
    name: 'all errors at once, in file order',
    yaml: 'catalog: /x\nservers:\n  main:\n    backup: { schedule: "61 * * * *", timezone: Nowhere/City }\n    retention:\n      redundancy: 0\n      extra: 1\n',
    lines: [
      '4:25: servers.main.backup.schedule: invalid cron expression "61 * * * *": Invalid value for minute: 61',
      '4:49: servers.main.backup.timezone: unknown time zone "Nowhere/City" (use an IANA name such as UTC or Europe/Berlin)',
      '6:19: servers.main.retention.redundancy: must be >= 1',
      '7:7: servers.main.retention.extra: unknown key (allowed: redundancy, recoveryWindow, pitrWindow, minRedundancy)',
    ],
  },
  {
    name: 'drill without scratchDir (issue 14)',
    yaml: OK_SERVER + '    drill:\n      schedule: "0 5 * * 0"\n',
    lines: ['5:5: servers.main.drill: server main: a drill needs scratchDir (here or in defaults.drill)'],
  },
  {
    name: 'drill.host that is not ssh://USER@HOST[:PORT] (issue 14)',
    yaml: OK_SERVER + '    drill:\n      schedule: "0 5 * * 0"\n      scratchDir: /srv/drill\n      host: ssh://db1:99999\n',
    lines: ['8:13: servers.main.drill.host: "ssh://db1:99999": expected ssh://USER@HOST[:PORT]'],
  },
  {
    name: 'drill.host with a relative scratchDir (a path on the drill host)',
    yaml: OK_SERVER + '    drill:\n      schedule: "0 5 * * 0"\n      scratchDir: drills\n      host: ssh://postgres@drill.example:2222\n',
    lines: [
      '7:19: servers.main.drill.scratchDir: "drills": with drill.host ssh://postgres@drill.example:2222 the scratch directory is a path on that host and must be absolute',
    ],
  },
  {
    name: 'bad drill cron and time limit of zero',
    yaml: OK_SERVER + '    drill: { schedule: "61 * * * *", scratchDir: /tmp/d, timeLimit: 0s }\n',
    lines: [
      '5:24: servers.main.drill.schedule: invalid cron expression "61 * * * *": Invalid value for minute: 61',
      '5:69: servers.main.drill.timeLimit: must be longer than 0',
    ],
  },
  {
    name: 'objectives: bad and zero durations',
    yaml: OK_SERVER + '    objectives: { rpo: 5 minutes, rto: 0m }\n',
    lines: [
      '5:24: servers.main.objectives.rpo: must be a duration like 30s, 5m, 12h, 14d or 2w (got "5 minutes")',
      '5:40: servers.main.objectives.rto: must be longer than 0',
    ],
  },
];

for (const c of errorCases) {
  test(`config error: ${c.name}`, async () => {
    const dir = tempDir();
    const file = write(path.join(dir, 'pgbk.yaml'), c.yaml);
    const err = await configError(() => loadConfig({ cwd: dir, env: { HOME } }));
    assert.is(err.path, file);
    assert.equal(
      err.message.split('\n'),
      c.lines.map((l) => `${file}:${l}`),
    );
    assert.not.ok(err.message.includes('hunter2'), 'a password must never be echoed');
  });
}

// ---- discovery --------------------------------------------------------------------------------

test('discovery searches upward from a nested directory', async () => {
  const dir = tempDir();
  const file = write(path.join(dir, 'pgbk.yaml'), OK_SERVER);
  const nested = path.join(dir, 'a', 'b', 'c');
  mkdirSync(nested, { recursive: true });
  const desired = await loadConfig({ cwd: nested, env: { HOME } });
  assert.is(desired.configPath, file);
});

test('discovery: the nearest file wins, and every search place is recognised', async () => {
  for (const name of ['pgbk.yaml', 'pgbk.yml', '.pgbkrc.yaml', '.pgbkrc.yml', '.pgbkrc']) {
    const dir = tempDir();
    write(path.join(dir, 'pgbk.yaml'), OK_SERVER.replace('/x', '/outer'));
    const inner = write(path.join(dir, 'a', name), OK_SERVER.replace('/x', '/inner'));
    mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
    const desired = await loadConfig({ cwd: path.join(dir, 'a', 'b'), env: { HOME } });
    assert.is(desired.configPath, inner, name);
    assert.is(desired.catalog, '/inner', name);
  }
});

test('discovery stops at a directory with a package.json', async () => {
  const dir = tempDir();
  write(path.join(dir, 'pgbk.yaml'), OK_SERVER);
  write(path.join(dir, 'project', 'package.json'), '{}');
  const nested = path.join(dir, 'project', 'src');
  mkdirSync(nested, { recursive: true });
  const err = await configError(() => loadConfig({ cwd: nested, env: { HOME } }));
  assert.ok(err.message.includes('no config file'), err.message);
  assert.ok(err.message.includes(nested), err.message);
  assert.ok(err.hint?.includes('--config'));
});

test('PGBK_CONFIG beats discovery; relative to cwd', async () => {
  const dir = tempDir();
  write(path.join(dir, 'pgbk.yaml'), OK_SERVER);
  const other = write(path.join(dir, 'etc', 'other.yaml'), OK_SERVER.replace('/x', '/other'));
  const desired = await loadConfig({ cwd: dir, env: { HOME, PGBK_CONFIG: 'etc/other.yaml' } });
  assert.is(desired.configPath, other);
  assert.is(desired.catalog, '/other');
});

test('an explicit --config path beats PGBK_CONFIG and discovery', async () => {
  const dir = tempDir();
  write(path.join(dir, 'pgbk.yaml'), OK_SERVER);
  const fromEnv = write(path.join(dir, 'env.yaml'), OK_SERVER.replace('/x', '/env'));
  const explicit = write(path.join(dir, 'explicit.yml'), OK_SERVER.replace('/x', '/explicit'));
  const desired = await loadConfig({ configPath: explicit, cwd: dir, env: { HOME, PGBK_CONFIG: fromEnv } });
  assert.is(desired.configPath, explicit);
  assert.is(desired.catalog, '/explicit');
});

test('a missing explicit or PGBK_CONFIG file is an error naming it (no fallback to discovery)', async () => {
  const dir = tempDir();
  write(path.join(dir, 'pgbk.yaml'), OK_SERVER);
  const e1 = await configError(() => loadConfig({ configPath: 'nope.yaml', cwd: dir, env: { HOME } }));
  assert.ok(e1.message.includes(path.join(dir, 'nope.yaml')) && e1.message.includes('does not exist'), e1.message);
  const e2 = await configError(() => loadConfig({ cwd: dir, env: { HOME, PGBK_CONFIG: '/nonexistent/pgbk.yaml' } }));
  assert.ok(e2.message.includes('PGBK_CONFIG') && e2.message.includes('/nonexistent/pgbk.yaml'), e2.message);
  const e3 = await configError(() => loadConfig({ configPath: dir, cwd: dir, env: { HOME } }));
  assert.ok(e3.message.includes('is not a file'), e3.message);
});

test('an empty pgbk.yaml is reported, not skipped in favour of a parent one', async () => {
  const dir = tempDir();
  write(path.join(dir, 'pgbk.yaml'), OK_SERVER);
  const empty = write(path.join(dir, 'a', 'pgbk.yaml'), '');
  const err = await configError(() => loadConfig({ cwd: path.join(dir, 'a'), env: { HOME } }));
  assert.is(err.path, empty);
  assert.ok(err.message.startsWith(`${empty}:1:1: `), err.message);
});

test('cosmiconfig $import is not honoured', async () => {
  const dir = tempDir();
  write(path.join(dir, 'base.yaml'), 'catalog: /imported\n');
  write(path.join(dir, 'pgbk.yaml'), '$import: base.yaml\nservers:\n  main:\n    retention: { redundancy: 1 }\n');
  const err = await configError(() => loadConfig({ cwd: dir, env: { HOME } }));
  assert.ok(err.message.includes('$import: unknown key'), err.message);
});

test.after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

test.run();
