import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSavedPlan, planBasis, serializeSavedPlan, stalenessReason, type PlanBasis } from '../../../src/apply/saved-plan.js';
import { PgbkError } from '../../../src/errors.js';
import type { ObservedServer, Plan, ServerIdentity } from '../../../src/model/types.js';

const plan: Plan = {
  now: '2026-11-24T03:17:00.000Z',
  actions: [{ kind: 'base-backup', server: 'main', subject: '2026-11-24T03:00:00.000Z', reason: 'schedule fired', slot: '2026-11-24T03:00:00.000Z' }],
  warnings: [],
};
const basis: PlanBasis = { createdAt: '2026-11-24T03:17:01.000Z', configHash: 'c1', servers: { main: 'h1' } };
const at = (iso: string) => new Date(iso);

test('round trip: the saved plan parses back to the same plan and basis', () => {
  const saved = parseSavedPlan(serializeSavedPlan({ plan, basis }), 'plan.json');
  assert.equal(saved.plan, plan);
  assert.equal(saved.basis, basis);
});

test('staleness: fresh and unchanged → applicable', () => {
  assert.is(stalenessReason({ plan, basis }, { ...basis, createdAt: 'x' }, at('2026-11-24T03:20:00Z'), 3600_000), undefined);
});

const cases: [string, PlanBasis, string, RegExp][] = [
  ['config changed', { ...basis, configHash: 'c2' }, '2026-11-24T03:20:00Z', /configuration file changed/],
  ['catalog changed', { ...basis, servers: { main: 'h2' } }, '2026-11-24T03:20:00Z', /catalog of server main changed/],
  ['server added', { ...basis, servers: { main: 'h1', other: 'h9' } }, '2026-11-24T03:20:00Z', /server other changed/],
  ['too old', basis, '2026-11-24T05:00:00Z', /old \(max 3600s\)/],
];
for (const [name, current, now, expected] of cases) {
  test(`staleness: ${name} → refused with the reason`, () => {
    const why = stalenessReason({ plan, basis }, current, at(now), 3600_000);
    assert.ok(why !== undefined && expected.test(why), String(why));
  });
}

test('staleness: first contact recorded the identity after the plan (none seen) → applicable', () => {
  const current: PlanBasis = { ...basis, createdAt: 'x', identities: { main: '7412345678901234567' } };
  assert.is(stalenessReason({ plan, basis: { ...basis, identities: {} } }, current, at('2026-11-24T03:20:00Z'), 3600_000), undefined);
  // Saved plans written before identities were kept apart read the same way.
  assert.is(stalenessReason({ plan, basis }, current, at('2026-11-24T03:20:00Z'), 3600_000), undefined);
});

test('staleness: the identity the plan saw is another cluster now → refused', () => {
  const seen: PlanBasis = { ...basis, identities: { main: '7412345678901234567' } };
  const why = stalenessReason({ plan, basis: seen }, { ...seen, identities: { main: '7499999999999999999' } }, at('2026-11-24T03:20:00Z'), 3600_000);
  assert.ok(why !== undefined && /belongs to cluster 7499999999999999999.*made for cluster 7412345678901234567/.test(why), String(why));
  const gone = stalenessReason({ plan, basis: seen }, { ...seen, identities: {} }, at('2026-11-24T03:20:00Z'), 3600_000);
  assert.ok(gone !== undefined && /none recorded/.test(gone), String(gone));
});

test('planBasis: the catalog hash does not change when first contact records the identity', () => {
  const server = (identity?: ServerIdentity): ObservedServer => ({
    name: 'main',
    ...(identity === undefined ? {} : { identity }),
    backups: [],
    wal: { segments: [], backupFiles: [], histories: [] },
    incoming: [{ name: '000000010000000000000001', kind: 'segment', size: 16777216 }],
    quarantined: 0,
  });
  const before = planBasis('c1', { servers: [server()] });
  const after = planBasis('c1', {
    servers: [server({ systemIdentifier: '7412345678901234567', pgVersion: 150018, walSegmentSize: 16777216, firstContact: 'x' })],
  });
  assert.is(before.servers['main'], after.servers['main']);
  assert.equal(before.identities, {});
  assert.equal(after.identities, { main: '7412345678901234567' });
  assert.is(stalenessReason({ plan, basis: before }, after, new Date(), 3600_000), undefined);
});

test('a plan without basis (plain plan --json output) is refused with a hint', () => {
  const text = JSON.stringify({ formatVersion: '1.0', now: plan.now, actions: [], warnings: [] });
  assert.throws(
    () => parseSavedPlan(text, 'p.json'),
    (e: unknown) => e instanceof PgbkError && e.code === 'USAGE' && /pgbk plan -o/.test(e.message),
  );
});

test('garbage is refused naming the file', () => {
  assert.throws(
    () => parseSavedPlan('{nope', 'p.json'),
    (e: unknown) => e instanceof PgbkError && /p\.json/.test(e.message),
  );
});

test.run();
