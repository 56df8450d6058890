/**
 * The checks JSON Schema cannot express: cron expressions and time zones that both cron libraries
 * accept, retention that is complete once defaults are merged in, no passwords in conninfo, paths
 * pgbk can expand. They run on the raw parsed YAML even when the schema found problems (so the
 * user sees everything at once); every value is type-checked before use, and anything of the wrong
 * type is left to the schema's message.
 */

import path from 'node:path';
import { secretKeyword } from './conninfo.js';
import { validateCron, validateTimezone } from './cron.js';
import { parseDrillHost } from './drill-host.js';
import { DURATION_PATTERN, parseDuration } from './duration.js';
import type { Problem } from './problem.js';
import { checkS3, isS3Url } from './s3.js';
import { checkSameCluster } from './same-cluster.js';
import type { ConfigPath } from './yaml-position.js';

type Rec = Readonly<Record<string, unknown>>;

function isRecord(v: unknown): v is Rec {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function rec(v: unknown): Rec {
  return isRecord(v) ? v : {};
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

const durationRe = new RegExp(DURATION_PATTERN);

/**
 * A well-formed duration (the schema checks the form) that is 0 or absurdly long. Checked here
 * rather than left to resolve(), whose throw would carry no file:line:col or key path.
 */
function checkPositiveDuration(v: unknown, path: ConfigPath, out: Problem[]): void {
  const s = str(v);
  if (s === undefined || !durationRe.test(s)) return; // the schema reports the form
  let seconds: number;
  try {
    seconds = parseDuration(s);
  } catch (err) {
    // Well-formed but too large: the only way parseDuration fails here.
    out.push({ path, anchor: 'value', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  if (seconds === 0) out.push({ path, anchor: 'value', message: 'must be longer than 0' });
}

/**
 * A secret in a conninfo would be shown by `ps` to every local user: pgbk hands conninfos to
 * pg_basebackup, pg_receivewal and psql as --dbname/-d. A password has a safe way in (a password
 * file, PGPASSWORD); sslpassword has none in libpq (no environment variable, no file), so it is
 * refused outright.
 */
function checkNoSecret(conninfo: string | undefined, path: ConfigPath, passwordPlace: string, out: Problem[]): void {
  const secret = conninfo === undefined ? undefined : secretKeyword(conninfo);
  if (secret === 'password') {
    out.push({ path, anchor: 'value', message: `contains a password: put secrets in ${passwordPlace}, not in the config` });
  } else if (secret === 'sslpassword') {
    out.push({
      path,
      anchor: 'value',
      message:
        'contains sslpassword: libpq can take it only in the connection string, which pgbk would pass on a command line that ps shows to every local user; use a client key without a passphrase (sslkey, mode 0600, owned by the user pgbk runs as)',
    });
  }
}

/** "~user/..." would need a passwd lookup and is rarely meant; "~" and "~/..." are expanded. */
function checkTilde(v: unknown, path: ConfigPath, out: Problem[]): void {
  const s = str(v);
  if (s?.startsWith('~') && s !== '~' && !s.startsWith('~/')) {
    out.push({ path, anchor: 'value', message: `"${s}": only ~ and ~/ are expanded; write the full path` });
  }
}

/** A time zone to check a schedule in when the configured one is itself invalid (reported apart). */
function usableTimezone(tz: string | undefined): string {
  return tz !== undefined && validateTimezone(tz) === undefined ? tz : 'UTC';
}

function checkSchedule(backup: Rec, inheritedTz: string | undefined, base: ConfigPath, out: Problem[]): void {
  const tz = str(backup['timezone']);
  if (tz !== undefined) {
    const err = validateTimezone(tz);
    if (err !== undefined) out.push({ path: [...base, 'timezone'], anchor: 'value', message: err });
  }
  const schedule = str(backup['schedule']);
  if (schedule !== undefined) {
    const err = validateCron(schedule, usableTimezone(tz ?? inheritedTz));
    if (err !== undefined) out.push({ path: [...base, 'schedule'], anchor: 'value', message: err });
  }
}

function checkRetention(server: string, retention: unknown, defaults: Rec, out: Problem[]): void {
  const own = rec(retention);
  const base: ConfigPath = ['servers', server, 'retention'];
  const has = (r: Rec, k: string): boolean => r[k] !== undefined && r[k] !== null;
  if (!has(own, 'redundancy') && !has(own, 'recoveryWindow') && !has(defaults, 'redundancy') && !has(defaults, 'recoveryWindow')) {
    out.push({
      path: base,
      at: isRecord(retention) ? base : ['servers', server],
      anchor: 'key',
      message: 'set redundancy or recoveryWindow (here or in defaults.retention)',
    });
    return;
  }
  const ownMin = int(own['minRedundancy']);
  const ownRed = int(own['redundancy']);
  const min = ownMin ?? int(defaults['minRedundancy']) ?? 1;
  const red = ownRed ?? int(defaults['redundancy']);
  if (red === undefined || red < 1 || min < 0 || min <= red) return; // fine, or the schema reports it
  if (ownMin !== undefined) {
    const from = ownRed === undefined ? ' (from defaults.retention)' : '';
    out.push({ path: [...base, 'minRedundancy'], anchor: 'value', message: `${min} is more than redundancy ${red}${from}` });
  } else if (ownRed !== undefined) {
    const from = defaults['minRedundancy'] === undefined ? ' (the default)' : ' (from defaults.retention)';
    out.push({ path: [...base, 'redundancy'], anchor: 'value', message: `${red} is less than minRedundancy ${min}${from}` });
  }
  // Both inherited: reported once, for defaults.retention.
}

/**
 * wal: { method: stream } runs pg_receivewal, which writes into a local directory: on an s3://
 * catalog that is <s3.spool>/<server>/streaming (completed segments then go to the bucket), so
 * without s3.spool the daemon could not start it. Said here, with the line, not at run time.
 */
function checkStreamOnObjectStorage(root: Rec, name: string, server: Rec, out: Problem[]): void {
  const catalog = str(root['catalog']);
  if (catalog === undefined || !isS3Url(catalog)) return;
  if (rec(server['wal'])['method'] !== 'stream' || str(rec(root['s3'])['spool']) !== undefined) return;
  out.push({
    path: ['servers', name, 'wal', 'method'],
    anchor: 'value',
    message: `server ${name}: method stream into the object-storage catalog ${catalog} needs s3.spool (a local directory pg_receivewal writes into before segments go to the bucket)`,
  });
}

/**
 * Restore drills (issue 14): once a server has one (its own `drill` or defaults.drill), schedule
 * and scratchDir must be set here or in defaults.drill; the schedule follows the backup rules.
 */
function checkDrill(server: string, value: Rec, defaults: Rec, out: Problem[]): void {
  const own = value['drill'];
  const def = defaults['drill'];
  if (!isRecord(own) && !isRecord(def)) return;
  const o = rec(own);
  const d = rec(def);
  const base: ConfigPath = ['servers', server, 'drill'];
  const where: ConfigPath = isRecord(own) ? base : ['defaults', 'drill'];
  const backupTz = str(rec(value['backup'])['timezone']) ?? str(rec(defaults['backup'])['timezone']);
  if (isRecord(own)) checkSchedule(o, str(d['timezone']) ?? backupTz, base, out);
  for (const key of ['schedule', 'scratchDir'] as const) {
    if (o[key] === undefined && d[key] === undefined) {
      out.push({
        path: where,
        anchor: 'key',
        message: `server ${server}: a drill needs ${key} (here or in defaults.drill)`,
      });
    }
  }
  checkTilde(o['scratchDir'], [...base, 'scratchDir'], out);
  checkPositiveDuration(o['timeLimit'], [...base, 'timeLimit'], out);
  checkDrillHost(o, d, base, ['defaults', 'drill'], out);
}

/**
 * drill.host: a well-formed ssh://USER@HOST[:PORT], and then scratchDir absolute (a path on the
 * drill host: nothing here to resolve it against). Each problem is reported where its key is.
 */
function checkDrillHost(own: Rec, def: Rec, base: ConfigPath, defBase: ConfigPath, out: Problem[]): void {
  const hostOwn = str(own['host']);
  const host = hostOwn ?? str(def['host']);
  if (host === undefined) return;
  if (parseDrillHost(host) === undefined) {
    // The defaults' value is reported once, by the defaults check.
    if (hostOwn !== undefined) out.push({ path: [...base, 'host'], anchor: 'value', message: `"${host}": expected ssh://USER@HOST[:PORT]` });
    return;
  }
  const scratchOwn = str(own['scratchDir']);
  const scratch = scratchOwn ?? str(def['scratchDir']);
  if (scratch !== undefined && !path.posix.isAbsolute(scratch)) {
    out.push({
      path: scratchOwn !== undefined ? [...base, 'scratchDir'] : [...defBase, 'scratchDir'],
      anchor: 'value',
      message: `"${scratch}": with drill.host ${host} the scratch directory is a path on that host and must be absolute`,
    });
  }
}

export function checkSemantics(data: unknown): readonly Problem[] {
  const out: Problem[] = [];
  const root = rec(data);
  checkTilde(root['catalog'], ['catalog'], out);
  checkS3(root, out);

  const defaults = rec(root['defaults']);
  const defBackup = rec(defaults['backup']);
  const defRetention = rec(defaults['retention']);
  checkSchedule(defBackup, undefined, ['defaults', 'backup'], out);
  checkPositiveDuration(defRetention['recoveryWindow'], ['defaults', 'retention', 'recoveryWindow'], out);
  checkPositiveDuration(defRetention['pitrWindow'], ['defaults', 'retention', 'pitrWindow'], out);
  checkPositiveDuration(rec(defaults['wal'])['maxLag'], ['defaults', 'wal', 'maxLag'], out);
  checkPositiveDuration(defBackup['archiveTimeout'], ['defaults', 'backup', 'archiveTimeout'], out);
  const defDrill = rec(defaults['drill']);
  checkSchedule(defDrill, str(defBackup['timezone']), ['defaults', 'drill'], out);
  checkTilde(defDrill['scratchDir'], ['defaults', 'drill', 'scratchDir'], out);
  checkPositiveDuration(defDrill['timeLimit'], ['defaults', 'drill', 'timeLimit'], out);
  const defHost = str(defDrill['host']);
  if (defHost !== undefined && parseDrillHost(defHost) === undefined) {
    out.push({ path: ['defaults', 'drill', 'host'], anchor: 'value', message: `"${defHost}": expected ssh://USER@HOST[:PORT]` });
  }
  for (const k of ['rpo', 'rto']) checkPositiveDuration(rec(defaults['objectives'])[k], ['defaults', 'objectives', k], out);
  const defMin = int(defRetention['minRedundancy']);
  const defRed = int(defRetention['redundancy']);
  if (defMin !== undefined && defRed !== undefined && defRed >= 1 && defMin > defRed) {
    out.push({
      path: ['defaults', 'retention', 'minRedundancy'],
      anchor: 'value',
      message: `${defMin} is more than redundancy ${defRed}`,
    });
  }

  for (const [name, value] of Object.entries(rec(root['servers']))) {
    if (!isRecord(value)) continue;
    const base: ConfigPath = ['servers', name];
    checkSchedule(rec(value['backup']), str(defBackup['timezone']), [...base, 'backup'], out);
    checkNoSecret(str(value['connection']), [...base, 'connection'], 'PGPASSFILE or the environment', out);
    const ssh = rec(value['ssh']);
    checkNoSecret(str(ssh['psqlConnection']), [...base, 'ssh', 'psqlConnection'], '~/.pgpass of the SSH user on the database host', out);
    checkTilde(ssh['identityFile'], [...base, 'ssh', 'identityFile'], out);
    checkTilde(ssh['knownHosts'], [...base, 'ssh', 'knownHosts'], out);
    if (rec(value['backup'])['method'] === 'ssh') {
      // A file-level copy needs to know where to copy from and how to get there.
      if (!isRecord(value['ssh']))
        out.push({ path: [...base, 'backup', 'method'], anchor: 'value', message: 'method ssh needs servers.' + name + '.ssh (host, user)' });
      if (str(value['pgdata']) === undefined)
        out.push({
          path: [...base, 'backup', 'method'],
          anchor: 'value',
          message: 'method ssh needs servers.' + name + '.pgdata (the data directory on the database host)',
        });
    }
    checkStreamOnObjectStorage(root, name, value, out);
    checkPositiveDuration(rec(value['retention'])['recoveryWindow'], [...base, 'retention', 'recoveryWindow'], out);
    checkPositiveDuration(rec(value['retention'])['pitrWindow'], [...base, 'retention', 'pitrWindow'], out);
    checkPositiveDuration(rec(value['wal'])['maxLag'], [...base, 'wal', 'maxLag'], out);
    checkPositiveDuration(rec(value['backup'])['archiveTimeout'], [...base, 'backup', 'archiveTimeout'], out);
    if (rec(value['wal'])['method'] === 'stream' && str(value['connection']) === undefined) {
      // pg_receivewal connects with the replication protocol: it needs a conninfo.
      out.push({
        path: [...base, 'wal', 'method'],
        anchor: 'value',
        message: 'method stream needs servers.' + name + '.connection (pg_receivewal connects with it)',
      });
    }
    checkRetention(name, value['retention'], defRetention, out);
    checkDrill(name, value, defaults, out);
    for (const k of ['rpo', 'rto']) checkPositiveDuration(rec(value['objectives'])[k], [...base, 'objectives', k], out);
  }
  out.push(...checkSameCluster(rec(root['servers'])));
  return out;
}
