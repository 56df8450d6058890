/**
 * A restore drill on a drill host over SSH (drill.host, issue 14): the same steps as on the backup
 * host (run-drill.ts), each done there through the Transport.
 *
 *   scratch directory (real paths compared on that host, never the server's pgdata) → the one
 *   remote restore (src/restore/remote.ts: WAL fetched over SSH or copied up front, archiving off)
 *   → postgres started there by a shell that prints its PID (nohup, no TCP: listen_addresses is
 *   empty and the socket lives in the private scratch directory, so the port number cannot clash
 *   with anything) → psql over the exec channel until it is promoted, then the check → stopped by
 *   its PID → scratch directory removed.
 *
 * PostgreSQL refuses to run as root, so the SSH user must not be root.
 */

import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DrillHost, DrillSettings } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import { isInside } from '../restore/target-dir.js';
import { SshTransport } from '../transport/ssh.js';
import type { Transport } from '../transport/transport.js';
import { checkVerdict, type CheckOutcome } from './check.js';
import { DRILL_HBA, drillCopyArgs } from './copy-settings.js';
import { pidOn, stopByPid } from './stop.js';

/** The copy's socket directory is private, so any port number works: it only names the socket file. */
const PORT = 5432;

export async function connectDrillHost(host: DrillHost, server: string): Promise<SshTransport> {
  return SshTransport.connect({
    host: host.host,
    port: host.port,
    user: host.user,
    ...(host.identityFile === undefined ? {} : { identityFile: host.identityFile }),
    ...(host.knownHosts === undefined ? {} : { knownHosts: host.knownHosts }),
    server,
  });
}

function failed(r: { code: number | null; stderr: string; stdout: Buffer }): string {
  return (r.stderr.trim() || r.stdout.toString('utf8').trim() || `exit code ${r.code ?? '?'}`).split('\n').slice(-5).join('\n');
}

/**
 * <scratchDir>/<server>-<id> on the drill host, created (exclusively) with mode 0700; refused when it
 * overlaps the server's pgdata on that host (real paths, resolved there).
 */
export async function remoteScratch(t: Transport, drill: DrillSettings, server: { name: string; pgdata?: string }, id: string): Promise<string> {
  if ((await t.userId()) === 0) {
    throw new PgbkError('USAGE', `a restore drill cannot run as root on ${t.description}: PostgreSQL refuses to start as root`, {
      server: server.name,
      hint: 'give drill.host an unprivileged user (e.g. ssh://postgres@HOST)',
    });
  }
  const root = await t.realPath(drill.scratchDir);
  const dir = path.posix.join(root, `${server.name}-${id}`);
  if (server.pgdata !== undefined) {
    const pg = await t.realPath(server.pgdata);
    if (isInside(dir, pg) || isInside(pg, root)) {
      throw new PgbkError('CONFIG', `drill.scratchDir ${drill.scratchDir} (really ${root} on ${t.description}) overlaps the server's pgdata ${server.pgdata}`, {
        server: server.name,
        hint: 'put the drill scratch directory outside the data directory',
      });
    }
  }
  for (const argv of [
    ['mkdir', '-p', '--', root],
    // Exclusive: the id is new, so an existing directory is someone else's.
    ['mkdir', '-m', '700', '--', dir],
  ]) {
    const r = await t.run(argv);
    if (r.code !== 0) throw new PgbkError('USAGE', `cannot create ${argv[argv.length - 1]} on ${t.description}: ${failed(r)}`, { server: server.name });
  }
  return dir;
}

/**
 * Print the path of PostgreSQL program $2 on the host, found as src/pg/pg-bin.ts looks for
 * them: $PGBK_PG_BINDIR, else the oldest /usr/lib/postgresql/<major or newer>/bin, else PATH.
 */
const FIND_BINDIR = [
  'major=$1; name=$2',
  'if [ -n "${PGBK_PG_BINDIR:-}" ]; then [ -x "$PGBK_PG_BINDIR/$name" ] || { echo "$name not found in PGBK_PG_BINDIR ($PGBK_PG_BINDIR)" >&2; exit 2; }; echo "$PGBK_PG_BINDIR/$name"; exit 0; fi',
  'best=',
  'for p in /usr/lib/postgresql/*/bin/$name; do',
  '  [ -x "$p" ] || continue; d=${p#/usr/lib/postgresql/}; d=${d%%/*}',
  '  case $d in ""|*[!0-9]*) continue ;; esac',
  '  if [ "$d" -ge "$major" ] && { [ -z "$best" ] || [ "$d" -lt "$best" ]; }; then best=$d; fi',
  'done',
  'if [ -n "$best" ]; then echo "/usr/lib/postgresql/$best/bin/$name"; exit 0; fi',
  'command -v "$name" || { echo "pgbk: $name not found" >&2; exit 127; }',
].join('\n');

/** Start the program in the background, its output appended to the log; print its PID. */
const START = 'log=$1; shift; nohup "$@" >>"$log" 2>&1 </dev/null & echo $!';

export interface RemoteCopy {
  readonly t: Transport;
  readonly pid: number;
  readonly pgdata: string;
  readonly runDir: string;
  /** psql found as postgres is (it may live elsewhere, e.g. a PATH wrapper). */
  readonly psql: string;
  readonly logFile: string;
  readonly user: string;
}

export async function startRemoteCopy(
  t: Transport,
  o: { pgdata: string; runDir: string; pgVersion: number; user: string; settings: Readonly<Record<string, string>> },
): Promise<RemoteCopy> {
  const find = async (name: string): Promise<string> => {
    const found = await t.run(['sh', '-c', FIND_BINDIR, 'sh', String(o.pgVersion), name]);
    if (found.code !== 0) throw new PgbkError('PG', `cannot find PostgreSQL ${o.pgVersion}'s ${name} on ${t.description}: ${failed(found)}`);
    return found.stdout.toString('utf8').trim();
  };
  const postgres = await find('postgres');
  const psqlPath = await find('psql');
  const hba = path.posix.join(o.runDir, 'pg_hba.drill.conf');
  await t.writeFile(hba, DRILL_HBA, 0o600);
  const logFile = path.posix.join(o.runDir, 'postgres.log');
  const args = [postgres, '-D', o.pgdata, ...drillCopyArgs(o.settings, { port: PORT, runDir: o.runDir, hbaFile: hba })];
  const r = await t.run(['sh', '-c', START, 'sh', logFile, ...args]);
  const pid = Number(r.stdout.toString('utf8').trim());
  if (r.code !== 0 || !Number.isInteger(pid) || pid <= 1) {
    throw new PgbkError('PG', `cannot start postgres for the drill on ${t.description}: ${failed(r)}`, { path: o.pgdata });
  }
  return { t, pid, pgdata: o.pgdata, runDir: o.runDir, psql: psqlPath, logFile, user: o.user };
}

async function alive(copy: RemoteCopy): Promise<boolean> {
  return (await copy.t.run(['kill', '-0', String(copy.pid)])).code === 0;
}

async function logTail(copy: RemoteCopy, lines = 5): Promise<string> {
  const r = await copy.t.run(['tail', '-n', String(lines), copy.logFile]);
  return r.stdout.toString('utf8').trim();
}

/** psql over the exec channel on the copy's socket: CSV rows of the last statement, or its error. */
async function psql(copy: RemoteCopy, database: string, sqls: readonly string[]): Promise<{ ok: true; rows: string[][] } | { ok: false; error: string }> {
  const argv = [copy.psql, '-X', '-q', '-t', '--csv', '-v', 'ON_ERROR_STOP=1'];
  argv.push('-h', copy.runDir, '-p', String(PORT), '-U', copy.user, '-d', database);
  for (const s of sqls) argv.push('-c', s);
  const r = await copy.t.run(argv);
  if (r.code !== 0) return { ok: false, error: failed(r).replace(/^psql:\s*(error:\s*)?/i, '') };
  return { ok: true, rows: parseCsv(r.stdout.toString('utf8')) };
}

/** RFC 4180 as psql --csv writes it (quoted fields may hold commas, quotes and newlines). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else if (c !== '\r') field += c;
    i++;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}

/** Poll until the copy answers and is out of recovery; throws when it exits first or `signal` fires. */
export async function waitRemotePromoted(copy: RemoteCopy, signal: AbortSignal): Promise<void> {
  let last = 'not answering yet';
  for (;;) {
    if (signal.aborted) throw new PgbkError('PG', `still in recovery when the time limit was reached (${last})`);
    const r = await psql(copy, 'postgres', ['SELECT pg_is_in_recovery()']);
    if (r.ok && r.rows[0]?.[0] === 'f') return;
    last = r.ok ? 'in recovery' : r.error;
    if (!(await alive(copy))) {
      throw new PgbkError('PG', `the restored copy on ${copy.t.description} stopped before it was promoted: ${await logTail(copy)}`);
    }
    await sleep(250, undefined, { signal }).catch(() => undefined);
  }
}

// bt_index_check returns void: coalesce makes every checked index count once.
const BTREE_CHECK = `SELECT count(coalesce(bt_index_check(c.oid::regclass)::text, ''))
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
 WHERE am.amname = 'btree' AND c.relpersistence <> 't' AND i.indisready AND i.indisvalid`;

/**
 * The check's result as psql shows it, with each column's type: the SQL is fed on stdin, then a
 * marker line, then \gdesc (which describes the query just run). CSV rows before the marker (the
 * first is the header), `Column,Type` rows after it.
 */
export function parseDescribedResult(out: string, marker: string): { types: string[]; rows: unknown[][] } | undefined {
  const at = out.lastIndexOf(`${marker}\n`);
  if (at < 0) return undefined;
  const [, ...data] = parseCsv(out.slice(0, at));
  const [, ...desc] = parseCsv(out.slice(at + marker.length + 1));
  const types = desc.map((d) => d[1] ?? '');
  // psql writes true as t, false as f, NULL as an empty field.
  const value = (v: string, type: string | undefined): unknown => (type !== 'boolean' ? v : v === 't' ? true : v === 'f' ? false : null);
  return { types, rows: data.map((row) => row.map((v, i) => value(v, types[i]))) };
}

/** check.ts's check, through psql: exactly one row of one boolean column, true. */
export async function runRemoteCheck(copy: RemoteCopy, check: DrillSettings['check'], deadline: number): Promise<CheckOutcome> {
  const timeout = (): string => `SET statement_timeout = ${Math.max(1000, Math.floor(deadline - Date.now()))}`;
  const parts: string[] = [];
  const marker = `pgbk-drill-check-${randomBytes(8).toString('hex')}`;
  const argv = [
    copy.psql,
    '-X',
    '-q',
    '--csv',
    '-v',
    'ON_ERROR_STOP=1',
    '-h',
    copy.runDir,
    '-p',
    String(PORT),
    '-U',
    copy.user,
    '-d',
    check.database,
    '-f',
    '-',
  ];
  const script = `${timeout()};\n${check.sql.replace(/[\s;]+$/, '')}\n;\n\\echo ${marker}\n\\gdesc\n`;
  const r = await copy.t.run(argv, script);
  if (r.code !== 0)
    return {
      ok: false,
      detail: `check sql ${JSON.stringify(check.sql)} failed: ${failed(r)
        .replace(/^psql:\S*:\s*(error:\s*)?/i, '')
        .replace(/^psql:\s*(error:\s*)?/i, '')}`,
    };
  const result = parseDescribedResult(r.stdout.toString('utf8'), marker);
  if (result === undefined) return { ok: false, detail: `check sql ${JSON.stringify(check.sql)}: psql printed no result` };
  const verdict = checkVerdict(result.types, result.rows);
  if (verdict !== undefined) return { ok: false, detail: `check sql ${JSON.stringify(check.sql)} ${verdict}` };
  parts.push('check sql returned true');
  for (const db of check.amcheck) {
    const a = await psql(copy, db, [timeout(), 'CREATE EXTENSION IF NOT EXISTS amcheck', BTREE_CHECK]);
    if (!a.ok) return { ok: false, detail: `${parts.join('; ')}; amcheck in ${db} failed: ${a.error}` };
    parts.push(`amcheck: ${a.rows[0]?.[0] ?? '0'} btree indexes in ${db} intact`);
  }
  return { ok: true, detail: parts.join('; ') };
}

/** Stop the copy by its PID (stop.ts's ladder), through kill(1) on the drill host. */
export async function stopRemoteCopy(copy: RemoteCopy): Promise<void> {
  await stopByPid(pidOn(copy.t, copy.pid));
}
