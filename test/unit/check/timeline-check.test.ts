/** check: a timeline in the archive newer than the server's (a restored copy archived as this server). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkArchiveTimeline } from '../../../src/check/timeline-check.js';

test("the server's own timeline is the newest: OK (also after its own promotion to timeline 2)", () => {
  assert.is(checkArchiveTimeline('main', 1, { histories: [], segments: ['000000010000000000000005'] }).ok, true);
  assert.is(checkArchiveTimeline('main', 2, { histories: ['00000002.history'], segments: ['000000010000000000000005', '000000020000000000000006'] }).ok, true);
  assert.is(checkArchiveTimeline('main', 1, { histories: [], segments: [] }).ok, true);
  assert.is(
    checkArchiveTimeline('main', 1, { histories: [], segments: ['000000010000000000000005'] }).detail,
    'server on timeline 1, the newest in the archive',
  );
});

test('a promoted server none of whose new timeline is archived yet: OK, and not called the newest in the archive', () => {
  const r = checkArchiveTimeline('main', 2, { histories: [], segments: ['000000010000000000000005'] });
  assert.is(r.ok, true);
  assert.is(r.detail, 'server on timeline 2; the archive holds up to timeline 1, none of timeline 2 yet');
});

test("a newer timeline than the server's: FAILED, naming it, and how to restore meanwhile", () => {
  const r = checkArchiveTimeline('main', 1, {
    histories: ['00000002.history'],
    segments: ['000000010000000000000005', '00000001000000000000000A', '000000020000000000000006'],
  });
  assert.is(r.ok, false);
  assert.match(r.detail, "the archive holds timeline 2 (00000002.history), newer than the server's timeline 1");
  assert.match(r.hint ?? '', '--target-timeline 1');
  // Either cluster may be the wrong one: a copy that archived as the server, or this server a stale
  // old primary after a failover (session 17's DR walk-through: the advice was backwards then).
  assert.match(r.detail, 'or this server is an old primary still running after a failover promoted timeline 2');
  assert.match(r.hint ?? '', "if timeline 2 is the primary now, stop this server and point main's connection at the new primary");
  const hex = checkArchiveTimeline('main', 9, { histories: ['0000000A.history'], segments: [] });
  assert.match(hex.detail, 'timeline 10 (0000000A.history)');
});

test.run();
