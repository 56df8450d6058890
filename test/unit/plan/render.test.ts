import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PgbkError } from '../../../src/errors.js';
import { plan } from '../../../src/plan/plan.js';
import { parsePlanJson, renderPlanJson, renderPlanText } from '../../../src/cli/render/plan-text.js';
import type { Plan } from '../../../src/model/types.js';
import { assertGolden } from './golden.js';
import { DESIRED, NOW, OBSERVED } from './scenario.js';

const PLAN = plan(DESIRED, OBSERVED, NOW);

test('text rendering matches the golden file', () => {
  assertGolden('plan.txt', renderPlanText(PLAN, { color: false }));
});

test('coloured text rendering matches the golden file', () => {
  assertGolden('plan.color.txt', renderPlanText(PLAN, { color: true }));
});

test('JSON rendering matches the golden file', () => {
  assertGolden('plan.json', renderPlanJson(PLAN));
});

test('text: the lines DESIGN.md §5 shows', () => {
  const text = renderPlanText(PLAN, { color: false });
  const lines = text.split('\n');
  assert.ok(lines.includes('main'));
  assert.ok(lines.includes('  + base-backup   schedule "0 3 * * *" fired 2026-11-24T03:00Z; newest backup 20261123T030004Z (slot 2026-11-23T03:00Z)'));
  assert.ok(lines.includes('  - delete-backup 20261109T030002Z  outside recoveryWindow 14d; 3 newer backups remain'));
  assert.ok(
    lines.includes(
      '  - prune-wal     312 segments (4.9 GiB) before 000000010000000B00000002  not needed by any retained backup: the oldest, 20261110T030001Z, begins at 000000010000000B00000002',
    ),
  );
  assert.ok(lines.includes('  ! quarantined-files: 2 files in errors/ (quarantined); inspect and remove them once understood'));
  assert.is(lines[lines.length - 2], 'Plan: 1 backup to take, 1 to finish, 1 to delete, 15 WAL to archive, 312 WAL to prune, 1 file to quarantine.');
  assert.is(lines[lines.length - 1], '');
  assert.not.match(text, /\x1b\[/);
  assert.not.ok(lines.includes('quiet'), 'a server with nothing to do prints nothing');
});

test('text: the summary line of the DESIGN example', () => {
  const p: Plan = {
    now: NOW.toISOString(),
    actions: PLAN.actions.filter((a) => a.server === 'main'),
    warnings: [],
  };
  const text = renderPlanText(p, { color: false });
  assert.match(text, /\nPlan: 1 backup to take, 1 to delete, 14 WAL to archive, 312 WAL to prune\.\n$/);
});

test('text: an empty plan is "No changes." and still prints warnings', () => {
  assert.is(renderPlanText({ now: NOW.toISOString(), actions: [], warnings: [] }, { color: false }), 'No changes.\n');
  const p: Plan = {
    now: NOW.toISOString(),
    actions: [],
    warnings: [{ server: 'main', code: 'rpo-exceeded', message: 'newest archived WAL is 1h old (maxLag 5m)' }],
  };
  assert.is(renderPlanText(p, { color: false }), 'main\n  ! rpo-exceeded: newest archived WAL is 1h old (maxLag 5m)\nNo changes.\n');
});

test('JSON: formatVersion, field order, 2-space indent, trailing newline', () => {
  const json = renderPlanJson(PLAN);
  assert.ok(
    json.startsWith(
      '{\n  "formatVersion": "1.0",\n  "now": "2026-11-24T03:17:00.000Z",\n  "actions": [\n    {\n      "server": "main",\n      "kind": "archive-wal",\n      "subject"',
    ),
  );
  assert.ok(json.endsWith('}\n'));
  const doc = JSON.parse(json) as { actions: { kind: string; segments?: string[]; bytes?: number }[] };
  const prune = doc.actions.find((a) => a.kind === 'prune-wal');
  assert.is(prune?.segments?.length, 312);
  assert.is(prune?.bytes, 312 * 16 * 1024 * 1024);
});

test('JSON: parse(render(plan)) gives the plan back', () => {
  assert.equal(parsePlanJson(renderPlanJson(PLAN)), PLAN);
});

test('JSON: a newer minor version with extra fields is accepted', () => {
  const doc = JSON.parse(renderPlanJson(PLAN)) as Record<string, unknown>;
  doc['formatVersion'] = '1.7';
  doc['configHash'] = 'abc';
  assert.equal(parsePlanJson(JSON.stringify(doc)), PLAN);
});

function usageError(text: string): PgbkError {
  try {
    parsePlanJson(text);
  } catch (err) {
    assert.instance(err, PgbkError);
    assert.is((err as PgbkError).code, 'USAGE');
    return err as PgbkError;
  }
  return assert.unreachable('parsePlanJson accepted bad input') as never;
}

test('JSON: an unknown major formatVersion is refused clearly', () => {
  const doc = JSON.parse(renderPlanJson(PLAN)) as Record<string, unknown>;
  doc['formatVersion'] = '2.0';
  const err = usageError(JSON.stringify(doc));
  assert.is(err.message, 'plan file format 2.0 is not supported: this pgbk reads format 1.x');
});

test('JSON: malformed plans are refused naming the problem', () => {
  assert.match(usageError('{').message, /^invalid plan file: not JSON/);
  assert.match(usageError('[]').message, /top level must be an object/);
  assert.match(usageError('{"formatVersion": 1}').message, /formatVersion must be a string like "1.0"/);
  const base = JSON.parse(renderPlanJson(PLAN)) as { actions: Record<string, unknown>[] };
  const unknownKind = structuredClone(base);
  (unknownKind.actions[0] as Record<string, unknown>)['kind'] = 'format-disk';
  assert.match(usageError(JSON.stringify(unknownKind)).message, /actions\[0\]\.kind "format-disk" is not an action/);
  const badFiles = structuredClone(base);
  (badFiles.actions[0] as Record<string, unknown>)['files'] = 'x';
  assert.match(usageError(JSON.stringify(badFiles)).message, /actions\[0\]\.files must be an array of strings/);
});

test.run();
