/**
 * A BackupSession over a `pg` connection from the backup host (when `connection` is configured).
 * TCP keepalives are on: the session idles for the whole copy, which is exactly when firewalls
 * drop idle connections (Barman issues #149, #665).
 */

import type pg from 'pg';
import { PgbkError } from '../../errors.js';
import { toClientConfig } from '../../pg/client-config.js';
import { displayConninfo } from '../../pg/conninfo.js';
import { pgDriver } from '../../pg/pg-driver.js';
import { toPgError } from '../../pg/pg-session.js';
import type { BackupSession } from './session.js';

export class PgClientSession implements BackupSession {
  readonly description: string;
  private constructor(
    private readonly client: pg.Client,
    private readonly conninfo: string,
  ) {
    this.description = `PostgreSQL at ${displayConninfo(conninfo)}`;
  }

  static async open(conninfo: string): Promise<PgClientSession> {
    // Loaded here, not at import: SSH-only servers (psql over SSH) never need it, and it costs
    // tens of ms of every `pgbk backup` start (pg/pg-driver.ts).
    const driver = pgDriver();
    const client = new driver.Client({ ...toClientConfig(conninfo), keepAlive: true, keepAliveInitialDelayMillis: 10_000, application_name: 'pgbk' });
    client.on('error', () => undefined); // reported by the pending query instead
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw toPgError(err, conninfo, 'connect');
    }
    return new PgClientSession(client, conninfo);
  }

  async query(sql: string): Promise<string[][]> {
    try {
      const res = await this.client.query({ text: sql, rowMode: 'array' });
      return (res.rows as unknown[][]).map((r) => r.map((v) => (v === null || v === undefined ? '' : String(v))));
    } catch (err) {
      const e = toPgError(err, this.conninfo, 'query');
      throw e instanceof PgbkError ? e : new PgbkError('PG', String(err));
    }
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}
