/**
 * Cron fit without a server: colour rules (NO_COLOR / FORCE_COLOR / terminal), --log-format json
 * for any command's diagnostics, ISO timestamps on apply/backup diagnostics. The apply --quiet runs
 * against PostgreSQL are in test/integration/apply/cron.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { useColor } from '../../../src/cli/diag.js';
import { runCli } from './run-cli.js';

const MISSING = '/nonexistent/pgbk.yaml';
const RED_FAILED = '\x1b[31mFAILED\x1b[0m';

test('useColor: terminal by default; NO_COLOR (non-empty) off even with FORCE_COLOR; FORCE_COLOR on off a terminal', () => {
  assert.is(useColor({ env: {}, isTTY: true }), true);
  assert.is(useColor({ env: {}, isTTY: false }), false);
  assert.is(useColor({ env: { NO_COLOR: '1' }, isTTY: true }), false);
  assert.is(useColor({ env: { NO_COLOR: '' }, isTTY: true }), true, 'an empty NO_COLOR does not count (no-color.org)');
  assert.is(useColor({ env: { FORCE_COLOR: '1' }, isTTY: false }), true);
  assert.is(useColor({ env: { FORCE_COLOR: '0' }, isTTY: false }), false);
  assert.is(useColor({ env: { NO_COLOR: '1', FORCE_COLOR: '1' }, isTTY: false }), false);
});

test('check: FAILED in red on a terminal or with FORCE_COLOR, plain with NO_COLOR or in a pipe', async () => {
  const tty = await runCli(['check', '--config', MISSING], { isTTY: true });
  assert.is(tty.code, 1);
  assert.ok(tty.stdout.includes(RED_FAILED), tty.stdout);
  const forced = await runCli(['check', '--config', MISSING], { env: { FORCE_COLOR: '1' } });
  assert.ok(forced.stdout.includes(RED_FAILED), forced.stdout);
  const no = await runCli(['check', '--config', MISSING], { isTTY: true, env: { NO_COLOR: '1', FORCE_COLOR: '1' } });
  assert.not.ok(no.stdout.includes('\x1b['), no.stdout);
  const pipe = await runCli(['check', '--config', MISSING]);
  assert.not.ok(pipe.stdout.includes('\x1b['), pipe.stdout);
  assert.match(pipe.stdout, /FAILED configuration/);
});

test('--log-format json: an error of any command is one JSON line with time, level, msg and code', async () => {
  for (const args of [
    ['validate', '--config', MISSING, '--log-format', 'json'],
    ['--log-format', 'json', 'list', '--config', MISSING],
    ['show', 'main', 'latest', '--config', MISSING, '--log-format=json'],
  ]) {
    const r = await runCli(args);
    assert.is(r.code, 1);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.is(lines.length, 1, r.stderr);
    const o = JSON.parse(lines[0]!) as { time: string; level: string; msg: string; code: string };
    assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.is(o.level, 'error');
    assert.match(o.msg, /config/);
    assert.is(o.code, 'CONFIG');
  }
  const bad = await runCli(['list', '--log-format', 'xml']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /--log-format must be text or json/);
});

test('apply and backup: text diagnostics start with an ISO UTC timestamp; other commands keep plain lines', async () => {
  for (const cmd of [['apply'], ['backup', 'main']]) {
    const r = await runCli([...cmd, '--config', MISSING]);
    assert.is(r.code, 1);
    assert.match(r.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ERROR pgbk: /, r.stderr);
  }
  const list = await runCli(['list', '--config', MISSING]);
  assert.match(list.stderr, /^pgbk: /);
});

test('apply --quiet and --json conflict', async () => {
  const r = await runCli(['apply', '--quiet', '--json', '--config', MISSING]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /--quiet and --json conflict/);
});

test.run();
