/**
 * The drill's check on the promoted copy: the configured SQL must return exactly one row of exactly
 * one column whose value is the boolean true (anything else fails, saying what came back); then, for each database listed in check.amcheck, every valid btree index is
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

/** Type names for the few OIDs a check is likely to return (messages only). */
const TYPE_NAMES: Readonly<Record<number, string>> = {
  16: 'boolean',
  18: '"char"',
  20: 'bigint',
  21: 'smallint',
  23: 'integer',
  25: 'text',
  1043: 'character varying',
  1700: 'numeric',
};

export function typeName(oid: number): string {
  return TYPE_NAMES[oid] ?? `type ${oid}`;
}

function shown(v: unknown, type: string | undefined): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return `${JSON.stringify(v)}${type === undefined ? '' : ` (${type})`}`;
  return String(v);
}

/**
 * What the check's result says, undefined when it passed: exactly one row of exactly one column
 * whose value is the boolean true. `types[i]` names column i's type (its count is the column count,
 * also when no row came back); values are booleans for boolean columns, else as the driver gave them.
 */
export function checkVerdict(types: readonly string[], rows: readonly (readonly unknown[])[]): string | undefined {
  if (rows.length !== 1) return `returned ${rows.length} rows (must be one row, true)`;
  const row = rows[0]!;
  if (types.length !== 1) {
    return `returned ${types.length} columns: ${types.map((t, i) => shown(row[i], t === 'boolean' ? undefined : t)).join(', ')} (must be one column, true)`;
  }
  const v = row[0];
  if (v === true && types[0] === 'boolean') return undefined;
  return `returned ${shown(v, types[0] === 'boolean' ? undefined : types[0])} (must be true)`;
}

export async function runDrillCheck(copy: RunningCopy, check: DrillSettings['check'], deadline: number): Promise<CheckOutcome> {
  const parts: string[] = [];
  try {
    const verdict = await withPgClient(copy.conninfo(check.database), async (client) => {
      await limit(client, deadline - Date.now());
      const r = await client.query({ text: check.sql, rowMode: 'array' });
      // Several statements give one result each: only a single SELECT is a check.
      if (Array.isArray(r)) return `returned ${r.length} results (must be one statement returning one row, true)`;
      return checkVerdict(
        r.fields.map((f) => typeName(f.dataTypeID)),
        r.rows as unknown[][],
      );
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
