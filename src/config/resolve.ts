/**
 * Validated YAML (types.gen.ts) → Desired: every default applied, durations in seconds, paths
 * absolute, servers sorted by name, so nothing downstream needs to know the file's shape.
 * Inheritance is key by key: server setting, then defaults.backup / defaults.wal /
 * defaults.retention, then defaults.compression (compression only), then the built-in default.
 */

import path from 'node:path';
import { parseDuration } from './duration.js';
import { isS3Url, resolveS3 } from './s3.js';
import type { Compression, Desired, RetentionPolicy, ServerConfig, SshConfig } from './resolved.js';
import type { PgbkConfig, Retention, Server, Ssh } from './types.gen.js';

export interface ResolveContext {
  /** Absolute path of the config file; relative paths in it are resolved against its directory. */
  readonly configPath: string;
  readonly configHash: string;
  /** Home directory that ~ expands to. */
  readonly home: string;
}

/** "~" / "~/x" → home; relative → against the config file's directory; absolute stays. */
export function resolveConfigRelative(p: string, ctx: ResolveContext): string {
  if (p === '~') return ctx.home;
  if (p.startsWith('~/')) return path.resolve(ctx.home, p.slice(2));
  return path.resolve(path.dirname(ctx.configPath), p);
}

function resolveSsh(ssh: Ssh, ctx: ResolveContext): SshConfig {
  return {
    host: ssh.host,
    port: ssh.port ?? 22,
    user: ssh.user,
    ...(ssh.identityFile === undefined ? {} : { identityFile: resolveConfigRelative(ssh.identityFile, ctx) }),
    ...(ssh.knownHosts === undefined ? {} : { knownHosts: resolveConfigRelative(ssh.knownHosts, ctx) }),
    ...(ssh.psqlConnection === undefined ? {} : { psqlConnection: ssh.psqlConnection }),
    ...(ssh.pgbk === undefined ? {} : { pgbk: ssh.pgbk }),
  };
}

function resolveRetention(own: Retention | undefined, defaults: Retention | undefined): RetentionPolicy {
  const redundancy = own?.redundancy ?? defaults?.redundancy;
  const recoveryWindow = own?.recoveryWindow ?? defaults?.recoveryWindow;
  const pitrWindow = own?.pitrWindow ?? defaults?.pitrWindow;
  return {
    ...(redundancy === undefined ? {} : { redundancy }),
    ...(recoveryWindow === undefined ? {} : { recoveryWindowSeconds: parseDuration(recoveryWindow) }),
    ...(pitrWindow === undefined ? {} : { pitrWindowSeconds: parseDuration(pitrWindow) }),
    minRedundancy: own?.minRedundancy ?? defaults?.minRedundancy ?? 1,
  };
}

function resolveServer(name: string, server: Server, config: PgbkConfig, ctx: ResolveContext): ServerConfig {
  const d = config.defaults;
  const schedule = server.backup?.schedule ?? d?.backup?.schedule;
  const maxLag = server.wal?.maxLag ?? d?.wal?.maxLag;
  const backupCompression: Compression = server.backup?.compression ?? d?.backup?.compression ?? d?.compression ?? 'zstd';
  const walCompression: Compression = server.wal?.compression ?? d?.wal?.compression ?? d?.compression ?? 'zstd';
  return {
    name,
    ...(server.description === undefined ? {} : { description: server.description }),
    ...(server.connection === undefined ? {} : { connection: server.connection }),
    ...(server.pgdata === undefined ? {} : { pgdata: server.pgdata }),
    ...(server.ssh === undefined ? {} : { ssh: resolveSsh(server.ssh, ctx) }),
    backup: {
      method: server.backup?.method ?? 'basebackup',
      ...(schedule === undefined ? {} : { schedule }),
      timezone: server.backup?.timezone ?? d?.backup?.timezone ?? 'UTC',
      compression: backupCompression,
      fastCheckpoint: server.backup?.fastCheckpoint ?? d?.backup?.fastCheckpoint ?? true,
      archiveTimeoutSeconds: parseDuration(server.backup?.archiveTimeout ?? d?.backup?.archiveTimeout ?? '10m'),
      ...(server.backup?.parallel === undefined ? {} : { parallel: server.backup.parallel }),
    },
    wal: {
      method: server.wal?.method ?? 'push',
      ...(server.wal?.slot === undefined ? {} : { slot: server.wal.slot }),
      compression: walCompression,
      ...(maxLag === undefined ? {} : { maxLagSeconds: parseDuration(maxLag) }),
    },
    retention: resolveRetention(server.retention, d?.retention),
  };
}

/** Assumes `config` passed schema and semantic validation. */
export function resolveConfig(config: PgbkConfig, ctx: ResolveContext): Desired {
  // Plain code-unit order, not localeCompare: the order must not depend on the machine's locale.
  const servers = Object.entries(config.servers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    configPath: ctx.configPath,
    configHash: ctx.configHash,
    // An object-storage catalog keeps its URL (it is no path); its settings are in `s3`.
    catalog: isS3Url(config.catalog) ? config.catalog : resolveConfigRelative(config.catalog, ctx),
    ...(isS3Url(config.catalog) ? { s3: resolveS3(config.catalog, config.s3, (p) => resolveConfigRelative(p, ctx)) } : {}),
    ...(config.user === undefined ? {} : { user: config.user }),
    servers: servers.map(([name, server]) => resolveServer(name, server, config, ctx)),
  };
}
