/**
 * Restore drills and recovery objectives in the pure planner (issue 14): when a drill is due and
 * why, the random target, the drill-failed warning, and objectives met and missed at an injected
 * `now` (the --now of plan and apply).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DrillSettings, ServerConfig } from '../../../src/config/resolved.js';
import type { DrillRecord } from '../../../src/model/types.js';
import { planServer } from '../../../src/plan/plan.js';
import { planDrill } from '../../../src/plan/drill.js';
import { estimateRto, lastMeasuredDrill, objectiveWarnings } from '../../../src/plan/objectives.js';
import { parsePlanJson, renderPlanJson } from '../../../src/plan/plan-json.js';
import { renderPlanText } from '../../../src/cli/render/plan-text.js';
import { parseLsn } from '../../../src/pg/lsn.js';
import { backup, config, observedServer, seg, segs, SEG } from './fixtures.js';

const DRILL: DrillSettings = {
  schedule: '0 5 * * 0',
  timezone: 'UTC',
  target: 'latest',
  scratchDir: '/var/tmp/pgbk-drills',
  timeLimitSeconds: 1800,
  check: { sql: 'SELECT true', database: 'postgres', user: 'postgres', amcheck: [] },
  settings: {},
};

/** Wednesday; the schedule last fired Sunday 2026-11-22 05:00. */
const NOW = new Date('2026-11-25T12:00:00Z');

function withDrill(o: Partial<DrillSettings> = {}, rest: Partial<ServerConfig> = {}): ServerConfig {
  return { ...config(), drill: { ...DRILL, ...o }, ...rest };
}

function drill(id: string, o: Partial<DrillRecord> = {}): DrillRecord {
  return {
    formatVersion: 1,
    id,
    server: 'main',
    status: 'PASSED',
    slot: '2026-11-15T05:00:00.000Z',
    startedAt: '2026-11-15T05:00:10.000Z',
    finishedAt: '2026-11-15T05:10:00.000Z',
    target: 'latest',
    backupId: '20261114T030000Z',
    restoreSeconds: 300,
    replaySeconds: 120,
    dataBytes: 10 * SEG,
    walBytes: 4 * SEG,
    check: { ok: true, detail: 'check sql returned true' },
    errors: [],
    ...o,
  };
}

const B = backup('20261124T030000Z', {
  beginWal: seg(1, 0x10),
  endWal: seg(1, 0x10),
  beginLsn: '0/10000028',
  endLsn: '0/10000100',
  sizes: { data: 20 * SEG, stored: 5 * SEG },
});
const WAL = { segments: segs(1, 0x10, 0x17), histories: [], backupFiles: [], newestMtime: '2026-11-25T11:59:00.000Z' };

test('a fired drill schedule with no drill yet plans restore-drill with its reason', () => {
  const p = planServer(withDrill(), observedServer({ backups: [B], wal: WAL }), NOW);
  const a = p.actions.find((x) => x.kind === 'restore-drill');
  assert.ok(a !== undefined && a.kind === 'restore-drill');
  assert.is(a.subject, 'latest');
  assert.is(a.slot, '2026-11-22T05:00:00.000Z');
  assert.is(a.reason, 'schedule "0 5 * * 0" fired 2026-11-22T05:00Z; no drill yet');
  const text = renderPlanText({ now: NOW.toISOString(), actions: p.actions, warnings: [] }, { color: false });
  assert.match(text, /\+ restore-drill latest {2}schedule "0 5 \* \* 0" fired 2026-11-22T05:00Z; no drill yet/);
  assert.match(text, /1 restore drill to run\./);
});

test('the reason names the last drill and its age; a drill for the slot (passed or failed) covers it', () => {
  const old = drill('20261115T050010Z');
  const due = planDrill(withDrill(), observedServer({ backups: [B], wal: WAL, drills: [old] }), NOW);
  assert.is(due?.due, true);
  assert.match(due?.reason ?? '', /; last drill 20261115T050010Z 10d 6h ago PASSED$/);
  for (const status of ['PASSED', 'FAILED', 'RUNNING'] as const) {
    const d = drill('20261122T050010Z', { slot: '2026-11-22T05:00:00.000Z', status });
    const p = planServer(withDrill(), observedServer({ backups: [B], wal: WAL, drills: [old, d] }), NOW);
    assert.not.ok(
      p.actions.some((x) => x.kind === 'restore-drill'),
      status,
    );
  }
});

test('no drill without a DONE backup, nor without a drill configuration', () => {
  assert.is(planDrill(withDrill(), observedServer({ wal: WAL }), NOW)?.due, false);
  assert.is(planDrill(config(), observedServer({ backups: [B], wal: WAL }), NOW), undefined);
});

test('target random: a stable LSN inside the recoverable window, carried through the plan JSON', () => {
  const o = observedServer({ backups: [B], wal: WAL });
  const d1 = planDrill(withDrill({ target: 'random' }), o, NOW);
  const d2 = planDrill(withDrill({ target: 'random' }), o, NOW);
  assert.ok(d1?.targetLsn !== undefined);
  assert.is(d1.targetLsn, d2?.targetLsn, 'deterministic');
  const lsn = parseLsn(d1.targetLsn);
  assert.ok(lsn >= parseLsn('0/10000100') && lsn <= 0x17n * BigInt(SEG), d1.targetLsn);
  assert.is(d1.subject, `lsn ${d1.targetLsn}`);
  const other = planDrill(withDrill({ target: 'random' }), o, new Date('2026-12-02T12:00:00Z'));
  assert.is.not(other?.targetLsn, d1.targetLsn, 'another slot, another point');
  const plan = { now: NOW.toISOString(), actions: planServer(withDrill({ target: 'random' }), o, NOW).actions, warnings: [] };
  assert.equal(parsePlanJson(renderPlanJson(plan)), plan);
});

test('a failed last drill is a plan warning', () => {
  const d = drill('20261122T050010Z', {
    slot: '2026-11-22T05:00:00.000Z',
    status: 'FAILED',
    errors: ['check sql "SELECT false" returned false (must be true)'],
  });
  const p = planServer(withDrill(), observedServer({ backups: [B], wal: WAL, drills: [d] }), NOW);
  assert.equal(
    p.warnings.filter((w) => w.code === 'drill-failed').map((w) => w.message),
    ['last restore drill 20261122T050010Z failed: check sql "SELECT false" returned false (must be true)'],
  );
});

test('objectives met: no warnings', () => {
  const c = withDrill({}, { objectives: { rpoSeconds: 300, rtoSeconds: 3600 } });
  const w = objectiveWarnings(c, observedServer({ backups: [B], wal: WAL, drills: [drill('20261115T050010Z')] }), SEG, NOW);
  assert.equal(w, { rpo: [], rto: [] });
});

test('rpo missed: the age of the newest WAL, with numbers, at an injected now', () => {
  const c = withDrill({}, { objectives: { rpoSeconds: 300 } });
  const later = new Date('2026-11-25T12:30:00Z');
  const w = objectiveWarnings(c, observedServer({ backups: [B], wal: WAL }), SEG, later);
  assert.equal(w.rpo, ['newest WAL in the catalog is 31m old; objective rpo 5m is not met (a failure now would lose at least that much)']);
  // Streamed WAL counts as well (wal method stream).
  const streamed = objectiveWarnings(c, observedServer({ backups: [B], wal: WAL, newestStreamedMtime: '2026-11-25T12:29:00.000Z' }), SEG, later);
  assert.equal(streamed.rpo, []);
});

test('rto missed: by the last drill, and by the estimate for a bigger newest backup', () => {
  const d = drill('20261115T050010Z');
  const c = withDrill({}, { objectives: { rtoSeconds: 400 } });
  const w = objectiveWarnings(c, observedServer({ backups: [B], wal: WAL, drills: [d] }), SEG, NOW);
  assert.equal(w.rto, [
    'last drill 20261115T050010Z recovered in 7m (restore 5m + replay 2m); objective rto 400s is not met',
    // 20 segments of data at 10 segments / 300 s, 8 WAL segments at 4 / 120 s: 600 + 240 s.
    'estimated recovery from newest backup 20261124T030000Z: 14m (320 MiB data and 8 WAL segments, 128 MiB, at the rates drill 20261115T050010Z measured); objective rto 400s is not met',
  ]);
  const m = lastMeasuredDrill([d]);
  assert.equal(estimateRto(m!, [B], WAL, SEG)?.seconds, 840);
});

test('rto unproven: no drill measured yet, or the last one timed out', () => {
  const c = withDrill({}, { objectives: { rtoSeconds: 1800 } });
  assert.equal(objectiveWarnings(c, observedServer({ backups: [B], wal: WAL }), SEG, NOW).rto, [
    'objective rto 30m is not proven: no restore drill has measured a recovery yet',
  ]);
  const timedOut = drill('20261122T050010Z', {
    status: 'FAILED',
    timedOut: true,
    replaySeconds: undefined as unknown as number,
    errors: ['time limit 30m reached'],
  });
  const { replaySeconds: _r, ...t } = timedOut;
  assert.equal(objectiveWarnings(c, observedServer({ backups: [B], wal: WAL, drills: [drill('20261115T050010Z'), t] }), SEG, NOW).rto, [
    'last drill 20261122T050010Z timed out (time limit 30m) before recovery finished; objective rto 30m is not proven',
  ]);
  const p = planServer(c, observedServer({ backups: [B], wal: WAL }), NOW);
  assert.ok(p.warnings.some((w) => w.code === 'rto-objective'));
});

test('a drill that timed out in its check, after restore and replay were measured, proved its recovery time', () => {
  const c = withDrill({}, { objectives: { rtoSeconds: 1800 } });
  const inCheck = drill('20261122T050010Z', { status: 'FAILED', timedOut: true, errors: ['time limit 30m reached'] });
  assert.equal(objectiveWarnings(c, observedServer({ backups: [B], wal: WAL, drills: [drill('20261115T050010Z'), inCheck] }), SEG, NOW).rto, []);
  assert.is(lastMeasuredDrill([inCheck])?.id, '20261122T050010Z');
});

test.run();
