import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderPlanText } from '../../../src/cli/render/plan-text.js';
import { parsePlanJson, renderPlanJson } from '../../../src/plan/plan-json.js';
import { planServer } from '../../../src/plan/plan.js';
import { CLOCK_MARGIN_MS, chunksToSweep, planChunkSweep, type ListedChunk } from '../../../src/plan/chunk-sweep.js';
import { backup, config, observedServer, segs } from './fixtures.js';

const h = (c: string): string => c.repeat(64);
const T0 = new Date('2026-12-01T03:00:00Z');
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);
const chunk = (c: string, minutes: number): ListedChunk => ({ hash: h(c), mtime: at(minutes) });

test('chunks no retained backup refers to are removed; shared and referenced ones stay', () => {
  const d = chunksToSweep({
    listed: [chunk('a', 0), chunk('b', 0), chunk('c', 0), chunk('d', 60)],
    // backup 1 (a, b) expired; backup 2 refers to b (shared) and d.
    retained: [{ id: '20261201T040000Z', refs: [h('b'), h('d')], beginTime: at(60).toISOString() }],
    listingStartedAt: at(24 * 60),
    clockMarginMs: CLOCK_MARGIN_MS,
  });
  assert.ok(d.sweep);
  if (!d.sweep) return;
  assert.equal(d.remove, [h('a'), h('c')]);
  assert.is(d.keptReferenced, 2);
  assert.is(d.keptRecent, 0);
  assert.match(d.reason, /no retained backup refers to them \(1 retained backup, 2 referenced chunks\)/);
});

test('a chunk written after the listing started (less the clock margin) is never removed', () => {
  const d = chunksToSweep({
    listed: [chunk('a', 0), chunk('b', 100), chunk('c', 110), chunk('e', 200)],
    retained: [],
    listingStartedAt: at(120),
    clockMarginMs: CLOCK_MARGIN_MS,
  });
  assert.ok(d.sweep);
  if (!d.sweep) return;
  // cutoff = 120 - 15 = minute 105: a (0) and b (100) go; c (110) and e (200, a later clock) stay.
  assert.equal(d.remove, [h('a'), h('b')]);
  assert.is(d.keptRecent, 2);
});

test('a backup in progress has no file list yet: every chunk written since its start (less the margin) stays', () => {
  const d = chunksToSweep({
    listed: [chunk('a', 0), chunk('b', 50), chunk('c', 70)],
    retained: [{ id: '20261201T040000Z', refs: 'in-progress', beginTime: at(60).toISOString() }],
    listingStartedAt: at(500),
    clockMarginMs: CLOCK_MARGIN_MS,
  });
  assert.ok(d.sweep);
  if (!d.sweep) return;
  assert.equal(d.remove, [h('a')]);
  assert.is(d.keptRecent, 2);
});

test('a retained backup whose file list cannot be read refuses the sweep: nothing removed', () => {
  const d = chunksToSweep({
    listed: [chunk('a', 0)],
    retained: [
      { id: '20261201T040000Z', refs: [], beginTime: at(0).toISOString() },
      { id: '20261202T040000Z', refs: 'unreadable', beginTime: at(0).toISOString() },
    ],
    listingStartedAt: at(500),
    clockMarginMs: 0,
  });
  assert.not.ok(d.sweep);
  assert.match(d.reason, /20261202T040000Z cannot be read: no chunk is removed/);
});

test('planChunkSweep: only on a chunk store, only when an ssh backup leaves; the reason names them', () => {
  assert.is(planChunkSweep(false, [{ id: '20261201T040000Z', method: 'ssh' }]), undefined);
  assert.is(planChunkSweep(true, [{ id: '20261201T040000Z', method: 'basebackup' }]), undefined);
  assert.is(planChunkSweep(true, []), undefined);
  const p = planChunkSweep(true, [
    { id: '20261201T040000Z', method: 'ssh' },
    { id: '20261202T040000Z', method: 'basebackup' },
    { id: '20261203T040000Z', method: 'ssh' },
  ]);
  assert.equal(p, {
    subject: 'chunks',
    reason:
      'backup 20261201T040000Z, 20261203T040000Z leaves the catalog: remove the chunks no retained backup (DONE, in progress or in use by a restore or drill) refers to',
  });
});

test('planServer: an ssh backup leaving an object-store catalog plans sweep-chunks after the deletions; the plan text shows the reason; JSON round-trips', () => {
  const now = new Date('2026-11-24T12:00:00Z');
  const backups = [backup('20261101T030000Z', { method: 'ssh' }), backup('20261110T030000Z', { method: 'ssh' }), backup('20261123T030000Z', { method: 'ssh' })];
  const cfg = config({ retention: { minRedundancy: 1, recoveryWindowSeconds: 7 * 86400 } });
  // Their WAL is archived (a backup missing its own WAL is neither counted nor deleted by retention).
  const wal = { segments: segs(1, 2, 3), histories: [], backupFiles: [] };
  const none = planServer(cfg, observedServer({ backups, wal }), now);
  assert.ok(none.actions.some((a) => a.kind === 'delete-backup'));
  assert.not.ok(
    none.actions.some((a) => a.kind === 'sweep-chunks'),
    'a local catalog keeps hard-link trees: no sweep',
  );
  const p = planServer(cfg, observedServer({ backups, wal, chunkStore: true }), now);
  const kinds = p.actions.map((a) => a.kind);
  assert.ok(kinds.indexOf('sweep-chunks') > kinds.indexOf('delete-backup'), `order: ${kinds.join(', ')}`);
  const sweep = p.actions.find((a) => a.kind === 'sweep-chunks')!;
  assert.match(sweep.reason, /^backup 20261101T030000Z leaves the catalog: remove the chunks no retained backup/);
  const full = { now: now.toISOString(), actions: p.actions, warnings: p.warnings };
  assert.match(renderPlanText(full, { color: false }), /- sweep-chunks +chunks {2}backup 20261101T030000Z leaves the catalog/);
  assert.equal(parsePlanJson(renderPlanJson(full)).actions, full.actions);
});

test.run();
