/**
 * The drill's check on the promoted copy: the configured SQL must return one row whose first
 * column is true; then, for each database listed in check.amcheck, every valid btree index is
 * verified with bt_index_check (amcheck is created in the copy if missing: the copy is thrown
 * away). Every query runs with a statement_timeout of the time left.
 */

import type pg from 'pg';
import type { DrillSettings } from '../config/resolved.js';
import { withPgClient } from '../pg/pg-session.js';
import type { RunningCopy } from './postgres.js';

export interface CheckOutcome {
  readonly ok: boolean;
  readonly detail: string;
}

const BTREE_INDEXES = `SELECT c.oid::regclass::text AS name
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
 WHERE am.amname = 'btree' AND c.relpersistence <> 't' AND i.indisready AND i.indisvalid
 ORDER BY 1`;

async function limit(client: pg.Client, msLeft: number): Promise<void> {
  await client.query(`SET statement_timeout = ${Math.max(1000, Math.floor(msLeft))}`);
}

function shown(v: unknown): string {
  return v === null ? 'NULL' : typeof v === 'string' ? JSON.stringify(v) : String(v);
}

export async function runDrillCheck(copy: RunningCopy, check: DrillSettings['check'], deadline: number): Promise<CheckOutcome> {
  const parts: string[] = [];
  try {
    const verdict = await withPgClient(copy.conninfo(check.database), async (client) => {
      await limit(client, deadline - Date.now());
      const r = await client.query({ text: check.sql, rowMode: 'array' });
      const rows = r.rows as unknown[][];
      if (rows.length !== 1) return `returned ${rows.length} rows (must be one row, true)`;
      const v = rows[0]?.[0];
      return v === true ? undefined : `returned ${shown(v)} (must be true)`;
    });
    if (verdict !== undefined) return { ok: false, detail: `check sql ${JSON.stringify(check.sql)} ${verdict}` };
    parts.push('check sql returned true');
  } catch (err) {
    return { ok: false, detail: `check sql ${JSON.stringify(check.sql)} failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  for (const db of check.amcheck) {
    try {
      const n = await withPgClient(copy.conninfo(db), async (client) => {
        await limit(client, deadline - Date.now());
        await client.query('CREATE EXTENSION IF NOT EXISTS amcheck');
        const names = (await client.query(BTREE_INDEXES)).rows.map((r: { name: string }) => r.name);
        for (const name of names) {
          try {
            await client.query('SELECT bt_index_check($1::regclass)', [name]);
          } catch (err) {
            throw new Error(`index ${name}: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
        return names.length;
      });
      parts.push(`amcheck: ${n} btree indexes in ${db} intact`);
    } catch (err) {
      return {
        ok: false,
        detail: `${parts.join('; ')}${parts.length > 0 ? '; ' : ''}amcheck in ${db} failed: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
  }
  return { ok: true, detail: parts.join('; ') };
}
