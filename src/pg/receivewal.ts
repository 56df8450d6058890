/**
 * WAL streaming with pg_receivewal on a physical replication slot. The slot makes the server keep
 * every segment the receiver has not yet flushed, so a receiver that is down for a while (a daemon
 * restart, a network cut) resumes where it stopped instead of losing WAL; the price is WAL piling
 * up in pg_wal while nobody streams, which `pgbk check` reports.
 *
 * pg_receivewal writes the segment in progress as NAME.partial and renames it to NAME once
 * complete (fsynced first). With --synchronous it also fsyncs on every write and reports that
 * position as flushed, so what the server shows as the slot's flush position is on our disk.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import type { ServerConfig } from '../config/resolved.js';
import { clientToolConninfo } from './conninfo.js';
import { withPgClient } from './pg-session.js';

/** The configured slot, else pgbk_<server> in the characters a slot name allows. */
export function slotNameFor(server: ServerConfig): string {
  return server.wal.slot ?? `pgbk_${server.name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

export interface SlotState {
  readonly exists: boolean;
  readonly physical: boolean;
  readonly active: boolean;
  /** Bytes of WAL the slot holds back on the server (pg_current_wal_lsn - restart_lsn), if known. */
  readonly retainedBytes: number | null;
}

export async function readSlot(conninfo: string, slot: string): Promise<SlotState> {
  return withPgClient(conninfo, async (client) => {
    const res = await client.query(
      `SELECT slot_type, active,
              CASE WHEN restart_lsn IS NULL OR pg_is_in_recovery() THEN NULL
                   ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text END AS retained
         FROM pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    const row = res.rows[0] as { slot_type: string; active: boolean; retained: string | null } | undefined;
    if (row === undefined) return { exists: false, physical: false, active: false, retainedBytes: null };
    return { exists: true, physical: row.slot_type === 'physical', active: row.active, retainedBytes: row.retained === null ? null : Number(row.retained) };
  });
}

/**
 * Create the physical slot if it is missing, reserving WAL from now on (immediately_reserve), so
 * nothing written after this call can be removed before the receiver has it.
 */
export async function ensureSlot(conninfo: string, slot: string): Promise<'created' | 'exists'> {
  return withPgClient(conninfo, async (client) => {
    const found = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if ((found.rowCount ?? 0) > 0) return 'exists';
    try {
      await client.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
    } catch (err) {
      // Created concurrently by another pgbk: fine.
      if ((err as { code?: string }).code === '42710') return 'exists';
      throw err;
    }
    return 'created';
  });
}

export interface ReceiveWalOptions {
  readonly binary: string;
  readonly conninfo: string;
  readonly directory: string;
  readonly slot: string;
}

/** Arguments for pg_receivewal; the password (if any) goes to PGPASSWORD, never argv. */
export function receiveWalCommand(opts: ReceiveWalOptions): { readonly args: string[]; readonly env: NodeJS.ProcessEnv } {
  const { dbname, env } = clientToolConninfo(opts.conninfo);
  const args = [
    `--dbname=${dbname}`,
    `--directory=${opts.directory}`,
    `--slot=${opts.slot}`,
    // We restart it ourselves, with backoff and a log line per failure.
    '--no-loop',
    '--no-password',
    // Flush every write and report the flushed position every second: an RPO of seconds.
    '--synchronous',
    '--status-interval=1',
    '--verbose',
  ];
  return { args, env };
}

export function spawnReceiveWal(opts: ReceiveWalOptions): ChildProcess {
  const { args, env } = receiveWalCommand(opts);
  return spawn(opts.binary, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
}
