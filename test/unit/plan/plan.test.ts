import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { plan, planServer, planSummary } from '../../../src/plan/plan.js';
import { renderPlanJson, renderPlanText } from '../../../src/cli/render/plan-text.js';
import { ACTION_ORDER } from '../../../src/model/types.js';
import type { Action, BackupRecord, ObservedServer } from '../../../src/model/types.js';
import { backup, config, IDENTITY, observedServer, SEG, seg, segs } from './fixtures.js';
import { DESIRED, NOW, OBSERVED } from './scenario.js';

test('plan: the scenario, action by action', () => {
  const p = plan(DESIRED, OBSERVED, NOW);
  assert.is(p.now, '2026-11-24T03:17:00.000Z');
  assert.equal(
    p.actions.map((a) => `${a.server} ${a.kind} ${a.subject}`),
    [
      `main archive-wal 14 segments ${seg(1, 0xc31)}…${seg(1, 0xc3e)} from incoming/`,
      'main base-backup slot 2026-11-24T03:00Z',
      'main delete-backup 20261109T030002Z',
      `main prune-wal 312 segments (4.9 GiB) before ${seg(1, 0xb02)}`,
      'replica quarantine notes.txt',
      `replica archive-wal 1 segment ${seg(1, 0x21)} from incoming/`,
      'replica finish-backup 20261124T010000Z',
    ],
  );
  const prune = p.actions.find((a) => a.kind === 'prune-wal');
  assert.ok(prune && prune.kind === 'prune-wal');
  assert.is(prune.segments.length, 312);
  assert.is(prune.segments[0], seg(1, 0xb02 - 312));
  assert.is(prune.segments[311], seg(1, 0xb01));
  assert.equal(prune.backupFiles, [`${seg(1, 0xaf6)}.00000028.backup`]);
  const del = p.actions.find((a) => a.kind === 'delete-backup');
  assert.is(del?.reason, 'outside recoveryWindow 14d; 3 newer backups remain');
  const base = p.actions.find((a) => a.kind === 'base-backup');
  assert.ok(base && base.kind === 'base-backup');
  assert.is(base.slot, '2026-11-24T03:00:00.000Z');
  assert.equal(
    p.warnings.map((w) => `${w.server} ${w.code}`),
    ['replica rpo-exceeded', 'replica no-backup-yet', 'replica quarantined-files'],
  );
  assert.is(p.warnings[0]?.message, 'newest archived WAL is 2h 17m old (maxLag 5m); check archive_command on the server');
  assert.is(p.warnings[1]?.message, 'no DONE backup yet; backup 20261124T010000Z is WAITING_FOR_WAL (finished by this plan)');
});

test('plan: deterministic — twice deep-equal and byte-equal JSON and text', () => {
  const a = plan(DESIRED, OBSERVED, NOW);
  const b = plan(DESIRED, OBSERVED, new Date(NOW.getTime()));
  assert.equal(a, b);
  assert.is(renderPlanJson(a), renderPlanJson(b));
  assert.is(renderPlanText(a, { color: false }), renderPlanText(b, { color: false }));
  // Server order in the inputs does not matter either.
  const shuffled = plan({ ...DESIRED, servers: [...DESIRED.servers].reverse() }, { servers: [...OBSERVED.servers].reverse() }, NOW);
  assert.is(renderPlanJson(shuffled), renderPlanJson(a));
});

test('plan: actions sorted by server, then ACTION_ORDER, then subject', () => {
  const p = plan(DESIRED, OBSERVED, NOW);
  const key = (x: Action): [string, number, string] => [x.server, ACTION_ORDER.indexOf(x.kind), x.subject];
  for (let i = 1; i < p.actions.length; i++) {
    const [s0, k0, j0] = key(p.actions[i - 1] as Action);
    const [s1, k1, j1] = key(p.actions[i] as Action);
    assert.ok(s0 < s1 || (s0 === s1 && (k0 < k1 || (k0 === k1 && j0 <= j1))), `order at ${i}`);
  }
});

/** What apply would leave behind for server main of the scenario. */
function appliedMain(): ObservedServer {
  const main = OBSERVED.servers.find((s) => s.name === 'main') as ObservedServer;
  const taken: BackupRecord = backup('20261124T031700Z', {
    slot: '2026-11-24T03:00:00.000Z',
    beginWal: seg(1, 0xc3e),
    endWal: seg(1, 0xc3e),
  });
  return {
    ...main,
    backups: [...main.backups.filter((b) => b.id !== '20261109T030002Z'), taken],
    wal: {
      segments: segs(1, 0xb02, 0xc3e),
      histories: [],
      backupFiles: [`${seg(1, 0xb02)}.00000060.backup`],
      newestMtime: '2026-11-24T03:17:00.000Z',
    },
    incoming: main.incoming.filter((f) => f.kind === 'in-flight'),
  };
}

test('plan: right after the apply, the next plan is "No changes."', () => {
  const desired = { ...DESIRED, servers: DESIRED.servers.filter((s) => s.name === 'main') };
  const p = plan(desired, { servers: [appliedMain()] }, new Date('2026-11-24T03:20:00Z'));
  assert.equal(p.actions, []);
  assert.equal(p.warnings, []);
  assert.is(renderPlanText(p, { color: false }), 'No changes.\n');
});

test('plan: servers that were not observed are skipped (plan limited to some servers)', () => {
  const p = plan(DESIRED, { servers: OBSERVED.servers.filter((s) => s.name === 'quiet') }, NOW);
  assert.equal(p.actions, []);
  assert.equal(p.warnings, []);
});

const WARNING_ROWS: readonly {
  name: string;
  cfg: Parameters<typeof config>[0];
  server: ObservedServer;
  now: string;
  expect: readonly string[];
}[] = [
  {
    name: 'rpo: no WAL at all long after first contact',
    cfg: { maxLag: 300, schedule: '0 3 * * *' },
    server: observedServer({ backups: [backup('20261124T030000Z', { status: 'WAITING_FOR_WAL' })] }),
    now: '2026-11-24T04:00:00Z',
    expect: [
      'rpo-exceeded: no WAL archived since first contact at 2026-10-01T00:00Z (maxLag 5m); check archive_command on the server',
      'no-backup-yet: no DONE backup yet; backup 20261124T030000Z is WAITING_FOR_WAL',
    ],
  },
  {
    name: 'rpo: nothing before first contact',
    cfg: { maxLag: 300 },
    server: observedServer({ identity: undefined }),
    now: '2026-11-24T04:00:00Z',
    expect: ['no-backup-yet: no DONE backup yet; no schedule is configured: run "pgbk backup main"'],
  },
  {
    name: 'rpo: newest WAL within maxLag is fine',
    cfg: { maxLag: 300 },
    server: observedServer({
      backups: [backup('20261124T030000Z', { beginWal: seg(1, 3), endWal: seg(1, 3) })],
      wal: { segments: segs(1, 3, 4), histories: [], backupFiles: [], newestMtime: '2026-11-24T03:56:00Z' },
    }),
    now: '2026-11-24T04:00:00Z',
    expect: [],
  },
  {
    name: 'first backup with a schedule: planned, and warned about',
    cfg: { schedule: '0 3 * * *' },
    server: observedServer(),
    now: '2026-11-24T04:00:00Z',
    expect: ['no-backup-yet: no DONE backup yet; the first base backup is planned now'],
  },
  {
    name: 'identity unknown with WAL waiting in incoming/',
    cfg: {},
    server: observedServer({ identity: undefined, incoming: [{ name: seg(1, 1), kind: 'segment', size: SEG }] }),
    now: '2026-11-24T04:00:00Z',
    expect: [
      'identity-unknown: no server.json yet: the cluster identity and WAL segment size are recorded at first contact; incoming sizes are not checked until then',
      'no-backup-yet: no DONE backup yet; no schedule is configured: run "pgbk backup main"',
    ],
  },
  {
    name: 'min-redundancy, backup-in-use and wal-gap together',
    cfg: { retention: { redundancy: 1, minRedundancy: 3 } },
    server: observedServer({
      backups: [
        backup('20261120T030000Z', { beginWal: seg(1, 2), endWal: seg(1, 2), inUse: [{ pid: 7, host: 'h', since: '2026-11-24T03:30:00.000Z' }] }),
        backup('20261121T030000Z', { beginWal: seg(1, 4), endWal: seg(1, 4) }),
        backup('20261122T030000Z', { beginWal: seg(1, 6), endWal: seg(1, 6) }),
      ],
      wal: { segments: [...segs(1, 2, 4), ...segs(1, 6, 6)], histories: [], backupFiles: [] },
    }),
    now: '2026-11-24T04:00:00Z',
    expect: [
      'wal-gap: timeline 1: 1 WAL segment missing from the archive, first 000000010000000000000005; recovery cannot replay past it',
      'min-redundancy: retention held back: 1 obsolete backup (20261121T030000Z) kept because minRedundancy is 3 (3 DONE backups remain)',
      'backup-in-use: backup 20261120T030000Z is beyond redundancy 1, but in use by a restore (pid 7 on h since 2026-11-24T03:30:00.000Z); not deleted',
    ],
  },
  {
    name: 'server unreachable before first contact, catalog missing',
    cfg: { schedule: '0 3 * * *' },
    server: observedServer({
      identity: undefined,
      contact: { reachable: false, error: 'connect failed on host=db: ECONNREFUSED' },
      catalogMissing: '/srv/pgbk-typo',
    }),
    now: '2026-11-24T04:00:00Z',
    expect: [
      'catalog-missing: catalog /srv/pgbk-typo does not exist: apply creates it empty; if backups should be there, fix `catalog` in the configuration',
      'server-unreachable: cannot reach PostgreSQL: connect failed on host=db: ECONNREFUSED; apply cannot prepare this server (its identity is not recorded yet) and will fail for it',
      'no-backup-yet: no DONE backup yet; the first base backup is planned now',
    ],
  },
  {
    name: 'server unreachable with a known identity and a backup due',
    cfg: { schedule: '0 3 * * *' },
    server: observedServer({
      backups: [backup('20261123T030000Z', { beginWal: seg(1, 3), endWal: seg(1, 3) })],
      wal: { segments: segs(1, 3, 4), histories: [], backupFiles: [] },
      contact: { reachable: false, error: 'timeout' },
    }),
    now: '2026-11-24T04:00:00Z',
    expect: [
      'server-unreachable: cannot reach PostgreSQL: timeout; apply archives WAL from incoming/ with the identity recorded at first contact, but the planned base backup will fail',
    ],
  },
  {
    name: "archive_command = 'false' on a reachable server that pushes its WAL, a backup due",
    cfg: { schedule: '0 3 * * *' },
    server: observedServer({
      backups: [backup('20261123T030000Z', { beginWal: seg(1, 3), endWal: seg(1, 3) })],
      wal: { segments: segs(1, 3, 4), histories: [], backupFiles: [] },
      contact: { reachable: true, archiverNeverArchives: "archive_command is 'false': the server archives no WAL" },
    }),
    now: '2026-11-24T04:00:00Z',
    expect: [
      "archiving-refused: archive_command is 'false': the server archives no WAL: no WAL reaches the catalog and base backups are refused (the planned one too) until archiving works; pgbk check main says what to change",
    ],
  },
  {
    name: "the archive holds a timeline newer than the reachable server's (a copy archived as it, or a stale old primary)",
    cfg: {},
    server: observedServer({
      backups: [backup('20261123T030000Z', { beginWal: seg(1, 3), endWal: seg(1, 3) })],
      wal: { segments: [...segs(1, 3, 4), ...segs(2, 5, 5)], histories: ['00000002.history'], backupFiles: [] },
      contact: { reachable: true, timeline: 1 },
    }),
    now: '2026-11-24T04:00:00Z',
    expect: [
      "newer-timeline: the archive holds timeline 2 (00000002.history), newer than the server's timeline 1: a copy restored from this catalog archived into it as this server, or the server is an old primary still running after a failover; a restore that follows the latest timeline (the default) replays timeline 2 (pgbk check main says what to do)",
    ],
  },
  {
    name: 'the server on the newest timeline of the archive says nothing',
    cfg: {},
    server: observedServer({
      backups: [backup('20261123T030000Z', { beginWal: seg(1, 3), endWal: seg(1, 3) })],
      wal: { segments: [...segs(1, 3, 4), ...segs(2, 5, 5)], histories: ['00000002.history'], backupFiles: [] },
      contact: { reachable: true, timeline: 2 },
    }),
    now: '2026-11-24T04:00:00Z',
    expect: [],
  },
  {
    name: 'a reachable server says nothing',
    cfg: {},
    server: observedServer({
      backups: [backup('20261123T030000Z', { beginWal: seg(1, 3), endWal: seg(1, 3) })],
      wal: { segments: segs(1, 3, 4), histories: [], backupFiles: [] },
      contact: { reachable: true },
    }),
    now: '2026-11-24T04:00:00Z',
    expect: [],
  },
];

for (const row of WARNING_ROWS) {
  test(`warnings: ${row.name}`, () => {
    const p = planServer(config(row.cfg), row.server, new Date(row.now));
    assert.equal(
      p.warnings.map((w) => `${w.code}: ${w.message}`),
      row.expect,
    );
  });
}

test('planSummary counts', () => {
  const s = planSummary(plan(DESIRED, OBSERVED, NOW));
  assert.equal(s, {
    actions: 7,
    warnings: 3,
    backupsToTake: 1,
    backupsToFinish: 1,
    backupsToDelete: 1,
    failedToCleanUp: 0,
    walToArchive: 15,
    walToPrune: 312,
    bytesToPrune: 312 * SEG,
    filesToQuarantine: 1,
  });
});

test('200,000 archived segments: correct prune, finish and gap results', () => {
  const N = 200_000;
  const segments = segs(1, 0, N - 1);
  const server = observedServer({
    backups: [
      backup('20261120T030000Z', { beginWal: seg(1, 100_000), endWal: seg(1, 100_001) }),
      backup('20261122T030000Z', { beginWal: seg(1, 150_000), endWal: seg(1, 150_001) }),
      backup('20261123T030000Z', { beginWal: seg(1, 190_000), endWal: seg(1, 190_002) }),
      backup('20261124T030000Z', { status: 'WAITING_FOR_WAL', beginWal: seg(1, 199_990), endWal: seg(1, N + 4) }),
    ],
    wal: { segments, histories: ['00000002.history'], backupFiles: [], newestMtime: '2026-11-24T03:59:00Z' },
    incoming: segs(1, N, N + 4).map((name) => ({ name, kind: 'segment' as const, size: SEG })),
  });
  const p = planServer(config({ retention: { redundancy: 2 } }), server, new Date('2026-11-24T04:00:00Z'));
  assert.equal(
    p.actions.map((a) => `${a.kind} ${a.kind === 'prune-wal' ? a.segments.length : a.subject}`),
    [
      `archive-wal 5 segments ${seg(1, N)}…${seg(1, N + 4)} from incoming/`,
      'finish-backup 20261124T030000Z',
      'delete-backup 20261120T030000Z',
      'prune-wal 150000',
    ],
  );
  const prune = p.actions.find((a) => a.kind === 'prune-wal');
  assert.ok(prune && prune.kind === 'prune-wal');
  assert.is(prune.segments[0], seg(1, 0));
  assert.is(prune.segments[149_999], seg(1, 149_999));
  assert.is(prune.bytes, 150_000 * SEG);
  assert.equal(p.warnings, []);
  assert.is(server.identity, IDENTITY);
});

test('200,000 archived segments with a hole: the gap is found', () => {
  const N = 200_000;
  const segments = segs(1, 0, N - 1).filter((_, i) => i !== 180_000 && i !== 180_001);
  const server = observedServer({
    backups: [backup('20261120T030000Z', { beginWal: seg(1, 100_000), endWal: seg(1, 100_001) })],
    wal: { segments, histories: [], backupFiles: [] },
  });
  const p = planServer(config({ retention: { redundancy: 2 } }), server, new Date('2026-11-24T04:00:00Z'));
  assert.equal(
    p.warnings.map((w) => w.message),
    [`timeline 1: 2 WAL segments missing from the archive, first ${seg(1, 180_000)}; recovery cannot replay past it`],
  );
});

test.run();
