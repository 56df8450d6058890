import { open } from 'node:fs/promises';
import path from 'node:path';
import { incomingDir, listIncoming, readIdentity, recordIdentity } from '../catalog/index.js';
import { PgbkError } from '../errors.js';
import { probeServer, type ServerFacts } from '../pg/probe.js';
import { readWalHeader } from '../pg/wal-header.js';
import { withRetry } from '../lib/retry.js';
import type { ServerConfig } from '../config/resolved.js';
import type { ServerIdentity } from '../model/types.js';

/** WAL page magic → PostgreSQL major version (server_version_num of the .0 release). */
const MAGIC_VERSION: Readonly<Record<number, number>> = { 53510: 130000, 53517: 140000, 53520: 150000, 53523: 160000 };

/**
 * Establish which cluster this server is (DESIGN.md §4: fixed at first contact). With a
 * `connection`, the live server says so and must match what the catalog recorded — a different
 * system identifier is a terminal IDENTITY error (a re-initialised or wrong cluster). Without one,
 * the catalog's record is used; before first contact the first WAL segment in incoming/ is taken as
 * the identity (there is nothing else to ask; the README says so).
 */
export async function ensureIdentity(catalog: string, server: ServerConfig, now: Date): Promise<ServerIdentity | undefined> {
  const learned = await learnIdentity(catalog, server, now);
  return learned === undefined ? undefined : recordIdentity(catalog, server.name, learned);
}

/**
 * What ensureIdentity would record, without writing anything: apply compares the identities of
 * all its servers first (two server names must not be one cluster) and records only then.
 */
export async function learnIdentity(catalog: string, server: ServerConfig, now: Date): Promise<ServerIdentity | undefined> {
  return (await learnServer(catalog, server, now)).identity;
}

/** What learnIdentity learnt, and the live server's facts when it asked the server for them. */
export interface Learned {
  readonly identity: ServerIdentity | undefined;
  /** Set when the identity came from the live server (`connection`): what it said, just now. */
  readonly facts?: ServerFacts;
}

/**
 * learnIdentity, keeping the server's answer: a command that probes the server for its identity
 * hands the facts to the base backup it takes next (BackupContext.facts), which then does not
 * connect a second time to ask the same questions (~40 ms of every scheduled backup).
 */
export async function learnServer(catalog: string, server: ServerConfig, now: Date): Promise<Learned> {
  if (server.connection !== undefined) {
    const conninfo = server.connection;
    const facts = await withRetry(() => probeServer(conninfo));
    const identity = {
      systemIdentifier: facts.systemIdentifier,
      pgVersion: facts.pgVersion,
      walSegmentSize: facts.walSegmentSize,
      firstContact: now.toISOString(),
    };
    return { identity, facts };
  }
  return { identity: await learnOffline(catalog, server, now) };
}

/** learnIdentity without `connection`: the catalog's record, psql over SSH, or incoming/'s first segment. */
async function learnOffline(catalog: string, server: ServerConfig, now: Date): Promise<ServerIdentity | undefined> {
  const known = await readIdentity(catalog, server.name);
  if (known !== undefined) return known;
  if (server.backup.method === 'ssh' && server.ssh !== undefined) {
    // SSH-only mode: ask the server through psql over SSH (loaded on demand: ssh2 is heavy).
    const { sshServerFacts } = await import('../backup/ssh/ssh-facts.js');
    const facts = await sshServerFacts(server);
    return {
      systemIdentifier: facts.systemIdentifier,
      pgVersion: facts.pgVersion,
      walSegmentSize: facts.walSegmentSize,
      firstContact: now.toISOString(),
    };
  }
  const first = (await listIncoming(catalog, server.name)).find((f) => f.kind === 'segment');
  if (first === undefined) return undefined;
  return segmentIdentity(server.name, path.join(incomingDir(catalog, server.name), first.name), now);
}

/** Learn the identity from a WAL segment's long page header and record it (first contact). */
export async function identityFromSegment(catalog: string, serverName: string, file: string, now: Date): Promise<ServerIdentity> {
  return recordIdentity(catalog, serverName, await segmentIdentity(serverName, file, now));
}

/** The identity a WAL segment's long page header states (nothing written). */
async function segmentIdentity(serverName: string, file: string, now: Date): Promise<ServerIdentity> {
  const fh = await open(file, 'r');
  let header;
  try {
    const buf = Buffer.alloc(64);
    await fh.read(buf, 0, 64, 0);
    header = readWalHeader(buf);
  } finally {
    await fh.close();
  }
  if (header === undefined) {
    throw new PgbkError('WAL', `cannot learn the cluster identity: ${path.basename(file)} has no WAL long page header`, {
      server: serverName,
      path: file,
    });
  }
  return {
    systemIdentifier: header.systemIdentifier,
    pgVersion: MAGIC_VERSION[header.magic] ?? 0,
    walSegmentSize: header.segSize,
    firstContact: now.toISOString(),
  };
}
