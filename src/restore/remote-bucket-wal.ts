/**
 * WAL for `restore --remote` from an object-storage (s3://) catalog: the database host reads it
 * from the bucket itself. Decision (issue 12): with object storage the database host is the one
 * that pushes WAL straight into the bucket (`pgbk [--config F] wal-push SERVER %p`, no backup host
 * in between), so it already has pgbk, a configuration naming the catalog and credentials for
 * the bucket. The restored cluster's restore_command is the same pgbk with the same --config:
 * `pgbk --config F wal-fetch SERVER %f %p` behind the shell fast path (its prefetching worker reads
 * the bucket with parallel GETs, as a local restore does). Relaying through the backup host
 * (`wal-fetch --from ssh://…`, `pgbk wal-serve`) would move every segment twice and needs a
 * backup host, which an object-storage setup may not have; `--wal-from` still selects that.
 *
 * Derived only when it is sure to read this catalog: the backup's archive_command is such a
 * wal-push with an explicit --config, and that file, read over SSH on the database host, names
 * this very catalog and the server. Otherwise the WAL is copied up front (wal-setup.ts), with the
 * reason in the summary.
 */

import { PgbkError } from '../errors.js';
import { commandLine } from '../pg/recovery-conf.js';
import { buildFastPathAround } from '../wal-fetch/fast-path.js';
import { unescapePercent, walPushWords } from './archive-command.js';
import { readTextOn, type TargetHost } from './host.js';

export interface BucketFetch {
  /** How the database host runs pgbk, with its --config: the words before `wal-fetch`. */
  readonly dbPgbk: readonly string[];
  /** The configuration file on the database host (absolute). */
  readonly configPath: string;
  /** The server name wal-push archives as. */
  readonly server: string;
}

const VALUE_FLAGS = new Set(['--config', '-c', '--compression']);
const BARE_FLAGS = new Set(['--worker', '--debug']);

/**
 * `[fast path; exec] PGBK [--config F] wal-push [--config F] [--worker] [--compression C] SERVER %p`
 * → the settings to fetch with; a reason string when the command is not of that form. Pure.
 */
export function deriveBucketFetch(archiveCommand: string): BucketFetch | string {
  const split = walPushWords(archiveCommand);
  if (typeof split === 'string') return split;
  const { words, at } = split;
  const before = words.slice(0, at).map(unescapePercent);
  let configPath: string | undefined;
  // --config before the command is pgbk's global option: keep it in the words that run pgbk.
  const dbPgbk: string[] = [];
  for (let i = 0; i < before.length; i++) {
    const w = before[i]!;
    if ((w === '--config' || w === '-c') && i + 1 < before.length) {
      configPath = before[++i];
      continue;
    }
    if (w.startsWith('--config=')) {
      configPath = w.slice('--config='.length);
      continue;
    }
    dbPgbk.push(w);
  }
  const positionals: string[] = [];
  for (let i = at + 1; i < words.length; i++) {
    const w = words[i]!;
    const eq = w.indexOf('=');
    const flag = w.startsWith('--') && eq > 0 ? w.slice(0, eq) : w;
    if (flag === '--to') return 'archive_command pushes over SSH (--to), not straight into the bucket';
    if (VALUE_FLAGS.has(flag)) {
      const v = flag === w ? words[++i] : w.slice(eq + 1);
      if (v === undefined) return `archive_command: ${flag} has no value`;
      if (flag === '--config' || flag === '-c') configPath = unescapePercent(v);
    } else if (BARE_FLAGS.has(w)) {
      // the worker and debug flags change how it pushes, not where
    } else if (w.startsWith('-')) {
      return `archive_command: unknown wal-push option ${w}`;
    } else {
      positionals.push(w);
    }
  }
  const server = positionals[0];
  if (server === undefined || positionals[1] !== '%p' || positionals.length !== 2) return 'archive_command: expected SERVER %p after the options';
  if (configPath === undefined) return "archive_command's wal-push has no --config, so the catalog it archives into cannot be checked";
  if (!configPath.startsWith('/')) return `archive_command's --config ${configPath} is not an absolute path`;
  return { dbPgbk, configPath, server: unescapePercent(server) };
}

/**
 * Whether `fetch.configPath` on the database host names `catalog` and the server: undefined when
 * it does, else the reason. The file is parsed as pgbk parses it (an invalid one is a reason).
 */
export async function checkBucketFetch(host: TargetHost, fetch: BucketFetch, catalog: string, server: string): Promise<string | undefined> {
  if (fetch.server !== server) return `archive_command archives as server "${fetch.server}", not "${server}"`;
  let text: string;
  try {
    text = await readTextOn(host, fetch.configPath);
  } catch (err) {
    return `cannot read ${fetch.configPath} on ${host.transport.description}: ${(err as Error).message}`;
  }
  if (text === '') return `${fetch.configPath} does not exist on ${host.transport.description}`;
  const { parseConfig } = await import('../config/parse-config.js');
  let named: { readonly catalog: string; readonly servers: readonly { readonly name: string }[] };
  try {
    named = await parseConfig(`${host.transport.description}:${fetch.configPath}`, Buffer.from(text, 'utf8'), '', '/nonexistent');
  } catch (err) {
    return `${fetch.configPath} on ${host.transport.description} is not a valid pgbk configuration: ${err instanceof PgbkError ? err.message : String(err)}`;
  }
  const norm = (c: string): string => c.replace(/\/+$/, '');
  if (norm(named.catalog) !== norm(catalog)) return `archive_command's ${fetch.configPath} names the catalog ${named.catalog}, not this catalog ${catalog}`;
  if (!named.servers.some((s) => s.name === server)) return `archive_command's ${fetch.configPath} has no server "${server}"`;
  return undefined;
}

/** restore_command (fast path first) and recovery_end_command reading the bucket on the database host. */
export function bucketFetchCommands(fetch: BucketFetch): { readonly restoreCommand: string; readonly recoveryEndCommand: string } {
  const pgbk = [...fetch.dbPgbk, '--config', fetch.configPath];
  return {
    restoreCommand: buildFastPathAround(commandLine([...pgbk, 'wal-fetch', fetch.server])),
    recoveryEndCommand: commandLine([...pgbk, 'wal-fetch', '--clean-spool']),
  };
}
