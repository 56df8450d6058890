/**
 * The restore summary's last word: which settings of the restored data directory pgbk changed and
 * which it kept, and the exact command that starts the copy next to a running server on the same
 * host (the copy carries the source's port and socket directory, so a plain `pg_ctl start` would
 * collide with it). Pure rendering and settings logic here; the few facts it needs (files, a free
 * port, the owner's name, pg_ctl's path) are gathered by gatherStartFacts.
 */

import { readFile, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { credentialSource } from '../catalog/s3/trust.js';
import type { S3RepositoryConfig } from '../config/resolved.js';
import { findPgBinary } from '../pg/pg-bin.js';
import type { ArchiveSetting } from '../pg/recovery-conf.js';
import { shellQuote } from '../lib/shell-quote.js';
import { confSetting } from './archive-command.js';

export type SettingChange = 'set' | 'kept';

export interface SettingReport {
  readonly name: string;
  /** The effective value; undefined when neither file sets it (PostgreSQL's built-in default applies). */
  readonly value: string | undefined;
  readonly change: SettingChange;
  /** Where the value comes from: "postgresql.auto.conf", "postgresql.conf" or "default". */
  readonly source: string;
  readonly note: string;
}

export interface StartCommand {
  /** argv of the command, to run as `user` (the data directory's owner). */
  readonly argv: readonly string[];
  /** The same, as one line for a shell. */
  readonly text: string;
  readonly user: string;
  readonly port: number;
  readonly socketDir: string;
  readonly note: string;
}

export interface StartFacts {
  readonly pgdata: string;
  readonly postgresqlConf: string;
  readonly autoConf: string;
  readonly freePort: number;
  /** Owner of the data directory (name, or the uid as text when it has no name). */
  readonly owner: string;
  /** Whether the command must switch to the owner (we are root, or another user). */
  readonly runAs: 'self' | 'runuser' | 'sudo';
  readonly pgCtl: string;
  readonly archiving: ArchiveSetting;
  /** An s3:// catalog: what restore_command's `pgbk wal-fetch` needs to read it. */
  readonly s3?: S3Access;
}

/**
 * restore_command runs `pgbk wal-fetch` as the data directory's owner with the environment
 * PostgreSQL is started with, not this restore's: credentials this restore found (its
 * environment, root's files) do not reach it. Said up front, because otherwise the first start
 * stops at the first WAL fetch with "no AWS credentials found".
 */
export interface S3Access {
  readonly url: string;
  readonly profile?: string;
  /** The owner's shared credentials file (~/.aws/credentials) and whether it exists. */
  readonly ownerCredentialsFile: string;
  readonly ownerHasCredentialsFile: boolean;
  /** Where this restore took its credentials from (catalog/s3/trust.ts credentialSource). */
  readonly usedHere: string;
}

/** Longest unix socket path (sun_path, 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;

function effective(facts: StartFacts, name: string): { value: string | undefined; source: string } {
  const auto = confSetting(facts.autoConf, name);
  if (auto !== undefined) return { value: auto, source: 'postgresql.auto.conf' };
  const conf = confSetting(facts.postgresqlConf, name);
  if (conf !== undefined) return { value: conf, source: 'postgresql.conf' };
  return { value: undefined, source: 'default' };
}

export function settingsReport(facts: StartFacts): SettingReport[] {
  const out: SettingReport[] = [];
  const restore = effective(facts, 'restore_command');
  out.push({
    name: 'restore_command',
    value: restore.value,
    change: 'set',
    source: restore.source,
    note: `set with the recovery target in postgresql.auto.conf: PostgreSQL fetches WAL from the catalog through pgbk wal-fetch${facts.s3 === undefined ? '' : s3Note(facts.s3, facts.owner)}`,
  });
  const port = effective(facts, 'port');
  out.push({
    name: 'port',
    value: port.value,
    change: 'kept',
    source: port.source,
    note: `kept from the backup (${port.value ?? '5432 by default'}): the start command below overrides it`,
  });
  const sockets = effective(facts, 'unix_socket_directories');
  out.push({
    name: 'unix_socket_directories',
    value: sockets.value,
    change: 'kept',
    source: sockets.source,
    note: `kept from the backup (${sockets.value ?? "the build's default"}): the start command below overrides it`,
  });
  const mode = effective(facts, 'archive_mode');
  const command = effective(facts, 'archive_command');
  const on = mode.value === 'on' || mode.value === 'always';
  if (facts.archiving === 'off') {
    out.push({
      name: 'archive_mode',
      value: mode.value,
      change: 'set',
      source: mode.source,
      note: 'off (restore --no-archive): the copy archives nothing, even once promoted',
    });
  } else if (facts.archiving === 'refuse') {
    out.push({
      name: 'archive_command',
      value: command.value,
      change: 'set',
      source: command.source,
      note: on
        ? "'false' (the default): once promoted, the copy keeps its WAL in pg_wal and logs each refused attempt instead of archiving a new timeline into the catalog; if this copy replaces the server, remove pgbk's archive lines from postgresql.auto.conf and reload (or restore with --keep-archiving)"
        : `'false' (the default; archive_mode is ${mode.value ?? 'off'}, so the copy archives nothing anyway)`,
    });
  } else {
    out.push({
      name: 'archive_mode',
      value: mode.value,
      change: 'kept',
      source: mode.source,
      note: on
        ? `${mode.value} (kept, restore --keep-archiving): once promoted, the copy runs archive_command${command.value === undefined ? '' : ` (${command.value})`} and archives a new timeline wherever it points, as the server did`
        : `${mode.value ?? 'off'} (kept, restore --keep-archiving): the copy archives nothing`,
    });
  }
  return out;
}

function s3Note(a: S3Access, owner: string): string {
  const profile = a.profile === undefined ? '' : ` (profile ${a.profile})`;
  const where = `, which reads ${a.url} as OS user ${owner} with the environment PostgreSQL is started with: AWS credentials must reach it there (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in that environment, or ${a.ownerCredentialsFile}${profile})`;
  if (a.ownerHasCredentialsFile) return where;
  return `${where}; ${a.ownerCredentialsFile} does not exist, so unless PostgreSQL's environment carries them, recovery stops at its first WAL fetch with "no AWS credentials found" (this restore used ${a.usedHere})`;
}

/** `pg_ctl -D DIR -o "-p PORT -k SOCKETDIR" start`, as the data directory's owner. */
export function startCommand(facts: StartFacts): StartCommand {
  const port = facts.freePort;
  // The data directory is private to the copy and owned by the user that runs it: a socket there
  // cannot collide with the source's. Unix socket paths are short; fall back to /tmp.
  const inData = path.join(facts.pgdata, `.s.PGSQL.${port}`);
  const socketDir = Buffer.byteLength(inData) <= MAX_SOCKET_PATH ? facts.pgdata : '/tmp';
  // pg_ctl hands -o to a shell (it execs "postgres … OPTIONS"), so the directory is quoted inside it too.
  const options = `-p ${port} -k ${shellQuote(socketDir)}`;
  const pgCtl = [facts.pgCtl, '-D', facts.pgdata, '-o', options, 'start'];
  const argv =
    facts.runAs === 'runuser' ? ['runuser', '-u', facts.owner, '--', ...pgCtl] : facts.runAs === 'sudo' ? ['sudo', '-u', facts.owner, ...pgCtl] : pgCtl;
  return {
    argv,
    text: argv.map(shellQuote).join(' '),
    user: facts.owner,
    port,
    socketDir,
    note: `port ${port} was free just now and the socket goes into ${socketDir === facts.pgdata ? 'the data directory' : '/tmp'}, so it does not clash with a server running from the original settings; connect with psql -h ${socketDir} -p ${port}`,
  };
}

/** The summary lines about settings and starting, indented like the rest of the restore summary. */
export function renderStartLines(settings: readonly SettingReport[], start: StartCommand): string[] {
  const lines: string[] = [];
  settings.forEach((s, i) => lines.push(`${i === 0 ? '  settings:  ' : '             '}${s.name}: ${s.note}`));
  lines.push(`  start:     ${start.text}`);
  lines.push(`             (${start.note})`);
  return lines;
}

async function readOr(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return '';
  }
}

/** A TCP port nothing listens on right now on 127.0.0.1 (the kernel picks it), never `avoid`. */
export async function pickFreePort(avoid: readonly number[] = []): Promise<number> {
  for (let i = 0; i < 5; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const a = srv.address();
        const p = a !== null && typeof a === 'object' ? a.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port > 0 && !avoid.includes(port)) return port;
  }
  return 54329;
}

/** The user's name and home directory from /etc/passwd (the uid as text and no home when absent). */
async function passwdEntry(uid: number): Promise<{ name: string; home: string | undefined }> {
  for (const line of (await readOr('/etc/passwd')).split('\n')) {
    const f = line.split(':');
    if (f.length > 5 && Number(f[2]) === uid && f[0] !== undefined && f[0] !== '') return { name: f[0], home: f[5] || undefined };
  }
  return { name: String(uid), home: undefined };
}

async function s3Access(s3: Pick<S3RepositoryConfig, 'url' | 'profile'>, home: string | undefined): Promise<S3Access> {
  const file = home === undefined ? '~/.aws/credentials' : path.join(home, '.aws', 'credentials');
  const isFile = (f: string): Promise<boolean> =>
    stat(f).then(
      (st) => st.isFile(),
      () => false,
    );
  // A profile may live in ~/.aws/config alone (credential_process, SSO): either file counts.
  const exists = home !== undefined && ((await isFile(file)) || (await isFile(path.join(home, '.aws', 'config'))));
  return {
    url: s3.url,
    ...(s3.profile === undefined ? {} : { profile: s3.profile }),
    ownerCredentialsFile: file,
    ownerHasCredentialsFile: exists,
    usedHere: credentialSource(s3),
  };
}

export async function gatherStartFacts(pgdata: string, archiving: ArchiveSetting, s3?: Pick<S3RepositoryConfig, 'url' | 'profile'>): Promise<StartFacts> {
  const [postgresqlConf, autoConf, st, pgVersionText] = await Promise.all([
    readOr(path.join(pgdata, 'postgresql.conf')),
    readOr(path.join(pgdata, 'postgresql.auto.conf')),
    stat(pgdata),
    readOr(path.join(pgdata, 'PG_VERSION')),
  ]);
  const major = Number.parseInt(pgVersionText.trim(), 10);
  const pgVersion = Number.isFinite(major) ? major * 10000 : 150000;
  const configured = Number(confSetting(autoConf, 'port') ?? confSetting(postgresqlConf, 'port') ?? '5432');
  const me = process.getuid?.() ?? st.uid;
  let pgCtl: string;
  try {
    pgCtl = findPgBinary('pg_ctl', pgVersion);
  } catch {
    pgCtl = 'pg_ctl';
  }
  const owner = await passwdEntry(st.uid);
  return {
    pgdata,
    postgresqlConf,
    autoConf,
    freePort: await pickFreePort([configured, 5432]),
    owner: owner.name,
    runAs: me === st.uid ? 'self' : me === 0 ? 'runuser' : 'sudo',
    pgCtl,
    archiving,
    ...(s3 === undefined ? {} : { s3: await s3Access(s3, owner.home) }),
  };
}
