/**
 * Checks for `wal.method: stream`: the physical replication slot exists, a receiver is streaming on
 * it (the slot is active), and how much WAL the slot holds back on the server.
 */

import type { ServerConfig } from '../config/resolved.js';
import { toPgbkError } from '../errors.js';
import { formatBytes } from '../lib/byte-size.js';
import { readSlot, slotNameFor } from '../pg/receivewal.js';
import { fail, pass, type CheckResult } from './types.js';

export async function checkStreaming(server: ServerConfig, conninfo: string): Promise<CheckResult[]> {
  const slot = slotNameFor(server);
  let state;
  try {
    state = await readSlot(conninfo, slot);
  } catch (err) {
    return [fail('replication slot', `cannot read pg_replication_slots: ${toPgbkError(err).message}`, 'grant the role pg_monitor or make it a superuser')];
  }
  if (!state.exists) {
    return [
      fail(
        'replication slot',
        `physical replication slot ${slot} does not exist: WAL the receiver has not fetched can be recycled by the server`,
        `start pgbk daemon (it creates the slot), or run SELECT pg_create_physical_replication_slot('${slot}', true);`,
      ),
    ];
  }
  if (!state.physical) {
    return [fail('replication slot', `slot ${slot} is a logical slot`, `drop it or set wal.slot to another name for a physical slot`)];
  }
  const held = state.retainedBytes === null ? '' : `, holding ${formatBytes(state.retainedBytes)} of WAL on the server`;
  const results: CheckResult[] = [pass('replication slot', `${slot} exists${held}`)];
  if (!state.active) {
    results.push(
      fail(
        'wal receiver',
        `no pg_receivewal is streaming on slot ${slot}${held}`,
        'start (or restart) pgbk daemon, which runs pg_receivewal; see its log for why the receiver stopped. WAL accumulates in pg_wal meanwhile',
      ),
    );
  } else {
    results.push(pass('wal receiver', `streaming on slot ${slot}`));
  }
  return results;
}
