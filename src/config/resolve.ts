/**
 * Validated YAML (types.gen.ts) → Desired: every default applied, durations in seconds, paths
 * absolute, servers sorted by name, so nothing downstream needs to know the file's shape.
 * Inheritance is key by key: server setting, then defaults.backup / defaults.wal /
 * defaults.retention, then defaults.compression (compression only), then the built-in default.
 */

import path from 'node:path';
import { parseDrillHost } from './drill-host.js';
import { parseDuration } from './duration.js';
import { isS3Url, resolveS3 } from './s3.js';
import type { Compression, Desired, DrillSettings, Objectives, RetentionPolicy, ServerConfig, SshConfig } from './resolved.js';
import type { Drill, Objectives as ObjectivesYaml, PgbkConfig, Retention, Server, Ssh } from './types.gen.js';

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

/**
 * Key by key like retention. undefined when neither the server nor defaults declare a drill; the
 * semantic checks guarantee schedule and scratchDir once one is declared.
 */
function resolveDrill(own: Drill | undefined, defaults: Drill | undefined, backupTz: string, ctx: ResolveContext): DrillSettings | undefined {
  if (own === undefined && defaults === undefined) return undefined;
  const schedule = own?.schedule ?? defaults?.schedule;
  const scratchDir = own?.scratchDir ?? defaults?.scratchDir;
  if (schedule === undefined || scratchDir === undefined) return undefined;
  const hostUrl = own?.host ?? defaults?.host;
  const host = hostUrl === undefined ? undefined : parseDrillHost(hostUrl);
  const identityFile = own?.identityFile ?? defaults?.identityFile;
  const knownHosts = own?.knownHosts ?? defaults?.knownHosts;
  return {
    schedule,
    timezone: own?.timezone ?? defaults?.timezone ?? backupTz,
    target: own?.target ?? defaults?.target ?? 'latest',
    // On a drill host the path is that host's (the semantic checks require it absolute).
    scratchDir: host === undefined ? resolveConfigRelative(scratchDir, ctx) : path.posix.normalize(scratchDir),
    ...(host === undefined
      ? {}
      : {
          host: {
            ...host,
            ...(identityFile === undefined ? {} : { identityFile: resolveConfigRelative(identityFile, ctx) }),
            ...(knownHosts === undefined ? {} : { knownHosts: resolveConfigRelative(knownHosts, ctx) }),
          },
        }),
    timeLimitSeconds: parseDuration(own?.timeLimit ?? defaults?.timeLimit ?? '1h'),
    check: {
      sql: own?.check?.sql ?? defaults?.check?.sql ?? 'SELECT true',
      database: own?.check?.database ?? defaults?.check?.database ?? 'postgres',
      user: own?.check?.user ?? defaults?.check?.user ?? 'postgres',
      amcheck: own?.check?.amcheck ?? defaults?.check?.amcheck ?? [],
    },
    settings: { ...(defaults?.settings ?? {}), ...(own?.settings ?? {}) },
  };
}

function resolveObjectives(own: ObjectivesYaml | undefined, defaults: ObjectivesYaml | undefined): Objectives | undefined {
  const rpo = own?.rpo ?? defaults?.rpo;
  const rto = own?.rto ?? defaults?.rto;
  if (rpo === undefined && rto === undefined) return undefined;
  return {
    ...(rpo === undefined ? {} : { rpoSeconds: parseDuration(rpo) }),
    ...(rto === undefined ? {} : { rtoSeconds: parseDuration(rto) }),
  };
}

function resolveServer(name: string, server: Server, config: PgbkConfig, ctx: ResolveContext): ServerConfig {
  const d = config.defaults;
  const schedule = server.backup?.schedule ?? d?.backup?.schedule;
  const maxLag = server.wal?.maxLag ?? d?.wal?.maxLag;
  const backupCompression: Compression = server.backup?.compression ?? d?.backup?.compression ?? d?.compression ?? 'zstd';
  const walCompression: Compression = server.wal?.compression ?? d?.wal?.compression ?? d?.compression ?? 'zstd';
  const timezone = server.backup?.timezone ?? d?.backup?.timezone ?? 'UTC';
  const drill = resolveDrill(server.drill, d?.drill, timezone, ctx);
  const objectives = resolveObjectives(server.objectives, d?.objectives);
  return {
    name,
    ...(server.description === undefined ? {} : { description: server.description }),
    ...(server.connection === undefined ? {} : { connection: server.connection }),
    ...(server.pgdata === undefined ? {} : { pgdata: server.pgdata }),
    ...(server.ssh === undefined ? {} : { ssh: resolveSsh(server.ssh, ctx) }),
    backup: {
      method: server.backup?.method ?? 'basebackup',
      ...(schedule === undefined ? {} : { schedule }),
      timezone,
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
    ...(drill === undefined ? {} : { drill }),
    ...(objectives === undefined ? {} : { objectives }),
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
