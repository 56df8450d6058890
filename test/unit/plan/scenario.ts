/**
 * A realistic three-server state shared by the plan tests and the golden renderings:
 * - main: daily schedule fired, 14-day window with one expired backup, old WAL to prune and
 *   14 segments waiting in incoming/ (DESIGN.md §5's example);
 * - replica: no schedule, a WAITING_FOR_WAL backup that incoming/ completes, a stray file, an RPO
 *   alarm and quarantined files;
 * - quiet: converged, nothing to do (prints nothing).
 */

import type { Desired } from '../../../src/config/resolved.js';
import type { BackupRecord, Observed } from '../../../src/model/types.js';
import { backup, config, IDENTITY, observedServer, SEG, seg, segs } from './fixtures.js';

export const NOW = new Date('2026-11-24T03:17:00Z');

export const DESIRED: Desired = {
  configPath: '/etc/pgbk/pgbk.yaml',
  configHash: '0'.repeat(64),
  catalog: '/var/lib/pgbk',
  servers: [
    config({ name: 'replica', maxLag: 300 }),
    config({ name: 'main', schedule: '0 3 * * *', retention: { recoveryWindowSeconds: 14 * 86400 }, maxLag: 300 }),
    config({ name: 'quiet', schedule: '0 3 * * *', retention: { redundancy: 2 } }),
  ],
};

function walBackup(server: string, id: string, slot: string, from: number, to: number, o: Partial<BackupRecord> = {}): BackupRecord {
  return backup(id, { server, slot, beginWal: seg(1, from), endWal: seg(1, to), ...o });
}

export const MAIN_BACKUPS: readonly BackupRecord[] = [
  walBackup('main', '20261109T030002Z', '2026-11-09T03:00:00.000Z', 0xaf6, 0xaf7),
  walBackup('main', '20261110T030001Z', '2026-11-10T03:00:00.000Z', 0xb02, 0xb03),
  walBackup('main', '20261116T030003Z', '2026-11-16T03:00:00.000Z', 0xb80, 0xb81),
  walBackup('main', '20261123T030004Z', '2026-11-23T03:00:00.000Z', 0xc10, 0xc11),
];

export const MAIN_INCOMING = segs(1, 0xc31, 0xc3e);

export const OBSERVED: Observed = {
  servers: [
    observedServer({
      name: 'main',
      backups: MAIN_BACKUPS,
      wal: {
        segments: segs(1, 0xb02 - 312, 0xc30),
        histories: [],
        backupFiles: [`${seg(1, 0xaf6)}.00000028.backup`, `${seg(1, 0xb02)}.00000060.backup`],
        newestMtime: '2026-11-24T03:16:30.000Z',
      },
      incoming: [
        ...MAIN_INCOMING.map((name) => ({ name, kind: 'segment' as const, size: SEG })),
        { name: `.${seg(1, 0xc3f)}.tmp-777`, kind: 'in-flight' as const, size: 4096 },
      ],
    }),
    observedServer({
      name: 'quiet',
      backups: [
        walBackup('quiet', '20261123T030001Z', '2026-11-23T03:00:00.000Z', 0x40, 0x40),
        walBackup('quiet', '20261124T030001Z', '2026-11-24T03:00:00.000Z', 0x48, 0x48),
      ],
      wal: { segments: segs(1, 0x40, 0x49), histories: [], backupFiles: [], newestMtime: '2026-11-24T03:10:00.000Z' },
    }),
    observedServer({
      name: 'replica',
      identity: { ...IDENTITY, systemIdentifier: '7312345678901234999' },
      backups: [
        walBackup('replica', '20261123T220000Z', '2026-11-23T22:00:00.000Z', 0x10, 0x11, { status: 'FAILED', error: 'connection reset' }),
        walBackup('replica', '20261124T010000Z', '2026-11-24T01:00:00.000Z', 0x20, 0x21, { status: 'WAITING_FOR_WAL' }),
      ],
      wal: { segments: segs(1, 0x1e, 0x20), histories: ['00000002.history'], backupFiles: [], newestMtime: '2026-11-24T01:00:00.000Z' },
      incoming: [
        { name: seg(1, 0x21), kind: 'segment', size: SEG },
        { name: 'notes.txt', kind: 'unknown', size: 12 },
      ],
      quarantined: 2,
    }),
  ],
};
