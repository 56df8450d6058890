import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isBackupDue } from '../../../src/plan/schedule.js';
import type { BackupRecord } from '../../../src/model/types.js';
import { backup, config } from './fixtures.js';

interface Row {
  readonly name: string;
  readonly schedule?: string;
  readonly timezone?: string;
  readonly backups: readonly BackupRecord[];
  readonly now: string;
  readonly due: boolean;
  readonly slot?: string;
  readonly reason?: string | RegExp;
}

const DAILY = '0 3 * * *';

const rows: readonly Row[] = [
  {
    name: 'first backup with a schedule that has fired: due now, for the last fire time',
    schedule: DAILY,
    backups: [],
    now: '2026-11-24T10:00:00Z',
    due: true,
    slot: '2026-11-24T03:00:00.000Z',
    reason: 'no backup yet; schedule "0 3 * * *" fired 2026-11-24T03:00Z',
  },
  {
    name: 'first backup: only FAILED attempts exist, so still due',
    schedule: DAILY,
    backups: [backup('20261124T030001Z', { status: 'FAILED', slot: '2026-11-24T03:00:00.000Z' })],
    now: '2026-11-24T10:00:00Z',
    due: true,
    slot: '2026-11-24T03:00:00.000Z',
    reason: /^no backup yet/,
  },
  {
    name: 'no schedule and no backup: never due by schedule (pgbk backup is for that)',
    backups: [],
    now: '2026-11-24T10:00:00Z',
    due: false,
    reason: 'no schedule configured; no backup yet',
  },
  {
    name: 'no schedule with backups: not due',
    backups: [backup('20261101T120000Z')],
    now: '2026-11-24T10:00:00Z',
    due: false,
    reason: /^no schedule configured; newest backup 20261101T120000Z/,
  },
  {
    name: 'schedule fired after the newest slot: due, reason names both',
    schedule: DAILY,
    backups: [backup('20261123T030004Z', { slot: '2026-11-23T03:00:00.000Z' })],
    now: '2026-11-24T03:17:00Z',
    due: true,
    slot: '2026-11-24T03:00:00.000Z',
    reason: 'schedule "0 3 * * *" fired 2026-11-24T03:00Z; newest backup 20261123T030004Z (slot 2026-11-23T03:00Z)',
  },
  {
    name: 'fire time exactly now counts',
    schedule: DAILY,
    backups: [backup('20261123T030004Z', { slot: '2026-11-23T03:00:00.000Z' })],
    now: '2026-11-24T03:00:00Z',
    due: true,
    slot: '2026-11-24T03:00:00.000Z',
  },
  {
    name: 'not fired since the newest slot: not due',
    schedule: DAILY,
    backups: [backup('20261123T030004Z', { slot: '2026-11-23T03:00:00.000Z' })],
    now: '2026-11-24T02:59:59Z',
    due: false,
    reason: 'schedule "0 3 * * *" fired 2026-11-23T03:00Z; newest backup 20261123T030004Z (slot 2026-11-23T03:00Z) covers it',
  },
  {
    name: 'a backup that began late still satisfies its slot',
    schedule: DAILY,
    backups: [backup('20261124T051700Z', { slot: '2026-11-24T03:00:00.000Z' })],
    now: '2026-11-24T23:00:00Z',
    due: false,
  },
  {
    name: 'missed windows (a week down) are caught up once, for the last fire time',
    schedule: DAILY,
    backups: [backup('20261117T030002Z', { slot: '2026-11-17T03:00:00.000Z' })],
    now: '2026-11-24T12:00:00Z',
    due: true,
    slot: '2026-11-24T03:00:00.000Z',
  },
  {
    name: 'after the catch-up backup for the last slot, nothing more is due',
    schedule: DAILY,
    backups: [backup('20261117T030002Z', { slot: '2026-11-17T03:00:00.000Z' }), backup('20261124T120001Z', { slot: '2026-11-24T03:00:00.000Z' })],
    now: '2026-11-24T12:30:00Z',
    due: false,
  },
  {
    name: 'a STARTED backup for the current slot means not due',
    schedule: DAILY,
    backups: [
      backup('20261123T030004Z', { slot: '2026-11-23T03:00:00.000Z' }),
      backup('20261124T030001Z', { slot: '2026-11-24T03:00:00.000Z', status: 'STARTED' }),
    ],
    now: '2026-11-24T03:05:00Z',
    due: false,
    reason: /newest backup 20261124T030001Z STARTED \(slot 2026-11-24T03:00Z\) covers it$/,
  },
  {
    name: 'a WAITING_FOR_WAL backup for the current slot means not due',
    schedule: DAILY,
    backups: [backup('20261124T030001Z', { slot: '2026-11-24T03:00:00.000Z', status: 'WAITING_FOR_WAL' })],
    now: '2026-11-24T04:00:00Z',
    due: false,
  },
  {
    name: 'a FAILED backup for the current slot is retried',
    schedule: DAILY,
    backups: [
      backup('20261123T030004Z', { slot: '2026-11-23T03:00:00.000Z' }),
      backup('20261124T030001Z', { slot: '2026-11-24T03:00:00.000Z', status: 'FAILED' }),
    ],
    now: '2026-11-24T04:00:00Z',
    due: true,
    slot: '2026-11-24T03:00:00.000Z',
  },
  {
    name: 'a one-off backup after the fire time (slot = its begin) satisfies the slot',
    schedule: DAILY,
    backups: [backup('20261124T050000Z')],
    now: '2026-11-24T23:59:00Z',
    due: false,
  },
  {
    name: 'a one-off backup before the fire time does not',
    schedule: DAILY,
    backups: [backup('20261124T020000Z')],
    now: '2026-11-24T03:01:00Z',
    due: true,
    slot: '2026-11-24T03:00:00.000Z',
  },
  {
    name: 'timezone: 03:00 in Berlin (winter, UTC+1) is 02:00Z',
    schedule: DAILY,
    timezone: 'Europe/Berlin',
    backups: [backup('20261123T020003Z', { slot: '2026-11-23T02:00:00.000Z' })],
    now: '2026-11-24T02:30:00Z',
    due: true,
    slot: '2026-11-24T02:00:00.000Z',
    reason: /^schedule "0 3 \* \* \*" \(Europe\/Berlin\) fired 2026-11-24T02:00Z;/,
  },
  {
    name: 'timezone: not yet 03:00 in New York (UTC-5) at 07:59Z',
    schedule: DAILY,
    timezone: 'America/New_York',
    backups: [backup('20261123T080003Z', { slot: '2026-11-23T08:00:00.000Z' })],
    now: '2026-11-24T07:59:00Z',
    due: false,
  },
  {
    name: 'DST spring forward (Berlin 2026-03-29): 03:00 CEST is 01:00Z, not due at 00:59Z',
    schedule: DAILY,
    timezone: 'Europe/Berlin',
    backups: [backup('20260328T020003Z', { slot: '2026-03-28T02:00:00.000Z' })],
    now: '2026-03-29T00:59:00Z',
    due: false,
  },
  {
    name: 'DST spring forward: due from 01:00Z',
    schedule: DAILY,
    timezone: 'Europe/Berlin',
    backups: [backup('20260328T020003Z', { slot: '2026-03-28T02:00:00.000Z' })],
    now: '2026-03-29T01:00:00Z',
    due: true,
    slot: '2026-03-29T01:00:00.000Z',
  },
  {
    name: 'DST spring forward: a time inside the gap (02:30) still fires once that day',
    schedule: '30 2 * * *',
    timezone: 'Europe/Berlin',
    backups: [backup('20260328T013003Z', { slot: '2026-03-28T01:30:00.000Z' })],
    now: '2026-03-29T12:00:00Z',
    due: true,
  },
  {
    name: 'DST fall back (Berlin 2026-10-25): 02:30 repeats, but one backup covers the day',
    schedule: '30 2 * * *',
    timezone: 'Europe/Berlin',
    backups: [backup('20261025T003003Z', { slot: '2026-10-25T00:30:00.000Z' })],
    now: '2026-10-25T01:45:00Z',
    due: false,
  },
];

for (const row of rows) {
  test(row.name, () => {
    const cfg = config({
      ...(row.schedule === undefined ? {} : { schedule: row.schedule }),
      ...(row.timezone === undefined ? {} : { timezone: row.timezone }),
    });
    const d = isBackupDue(cfg, row.backups, new Date(row.now));
    assert.is(d.due, row.due, d.reason);
    if (row.slot !== undefined) assert.is(d.slot, row.slot);
    if (typeof row.reason === 'string') assert.is(d.reason, row.reason);
    else if (row.reason !== undefined) assert.match(d.reason, row.reason);
  });
}

test('without a schedule the slot of a one-off backup is now', () => {
  const d = isBackupDue(config(), [], new Date('2026-11-24T10:11:12Z'));
  assert.is(d.slot, '2026-11-24T10:11:12.000Z');
});

test.run();
