/**
 * Per-command help, "did you mean", --version, bash completion and the exit-code table, all
 * generated from the command definitions (src/cli/commands.ts) the parser uses.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { COMMANDS, GLOBAL_OPTIONS } from '../../../src/cli/commands.js';
import { closest, editDistance } from '../../../src/cli/suggest.js';
import { exitCodeFor } from '../../../src/cli/report-error.js';
import { runCli } from './run-cli.js';

test('every command: CMD --help and help CMD print every option with its sentence, exit 0', async () => {
  for (const def of COMMANDS) {
    const a = await runCli([def.name, '--help']);
    assert.is(a.code, 0, `${def.name} --help: ${a.stderr}`);
    const b = await runCli(['help', def.name]);
    assert.is(b.stdout, a.stdout, `help ${def.name} and ${def.name} --help differ`);
    assert.ok(a.stdout.startsWith(`usage: pgbk ${def.name}`), a.stdout);
    const flat = a.stdout.replace(/\s+/g, ' ');
    for (const [name, o] of Object.entries({ ...def.options, ...GLOBAL_OPTIONS })) {
      if (name === 'json' && !def.json) continue;
      assert.ok(a.stdout.includes(`--${name}`), `${def.name} --help lacks --${name}`);
      assert.ok(flat.includes(o.help.replace(/\s+/g, ' ')), `${def.name} --help lacks the help of --${name}`);
    }
  }
});

test('-h works after arguments too, and help does not run the command', async () => {
  const r = await runCli(['restore', 'main', '--target-dir', '/nonexistent', '-h']);
  assert.is(r.code, 0);
  assert.match(r.stdout, /--target-time TIME/);
});

test('main usage lists visible commands only; no command prints usage on stderr and exits 1', async () => {
  const r = await runCli(['--help']);
  assert.is(r.code, 0);
  for (const c of COMMANDS) {
    const listed = new RegExp(`^  ${c.name} `, 'm').test(r.stdout);
    assert.is(listed, c.hidden !== true, `${c.name} listed=${listed}`);
  }
  const none = await runCli([]);
  assert.is(none.code, 1);
  assert.match(none.stderr, /^usage: pgbk/);
});

test('--version comes from package.json', async () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  const r = await runCli(['--version']);
  assert.is(r.code, 0);
  assert.is(r.stdout, `pgbk ${pkg.version}\n`);
});

test('unknown command and option: did you mean', async () => {
  const c = await runCli(['lsit']);
  assert.is(c.code, 1);
  assert.match(c.stderr, /unknown command "lsit" \(did you mean list\?\)/);
  const o = await runCli(['plan', '--detailed-exitcod']);
  assert.is(o.code, 1);
  assert.match(o.stderr, /unknown option --detailed-exitcod \(did you mean --detailed-exitcode\?\)/);
  const far = await runCli(['frobnicate']);
  assert.not.match(far.stderr, /did you mean/);
  assert.is(editDistance('lsit', 'list'), 1);
  assert.is(closest('--lock', ['--lock-timeout', '--now']), '--lock-timeout');
});

test('a command without JSON output refuses --json with a usage error', async () => {
  for (const name of ['init', 'daemon', 'completion']) {
    const r = await runCli([name, '--json']);
    assert.is(r.code, 1, name);
    assert.match(r.stderr, /has no JSON output/);
    assert.is(r.stdout, '');
  }
});

test("exit codes: one table; wal-fetch keeps PostgreSQL's restore_command contract (1 = not found, 255 = fatal)", async () => {
  assert.is(exitCodeFor('USAGE'), 1);
  assert.is(exitCodeFor('NOT_FOUND'), 1);
  assert.is(exitCodeFor('NOT_FOUND', 'restore-command'), 1);
  assert.is(exitCodeFor('CONFIG', 'restore-command'), 255);
  assert.is(exitCodeFor('USAGE', 'restore-command'), 255);
  const bad = await runCli(['wal-fetch', 'main', '--bogus']);
  assert.is(bad.code, 255);
  assert.match(bad.stderr, /FATAL/);
});

test('completion bash: a script completing commands, options per command and option values', async () => {
  const r = await runCli(['completion', 'bash']);
  assert.is(r.code, 0);
  assert.match(r.stdout, /complete -F _pgbk pgbk/);
  for (const c of COMMANDS.filter((x) => x.hidden !== true)) assert.ok(r.stdout.includes(` ${c.name}`), c.name);
  assert.match(r.stdout, /apply\) opts="[^"]*--quiet/);
  assert.match(r.stdout, /--target-action\) COMPREPLY=\(\$\(compgen -W "pause promote shutdown"/);
  assert.not.match(r.stdout, /wal-push-worker/);
  assert.is((await runCli(['completion', 'zsh'])).code, 1);
});

test('completion bash: the script is valid bash', async () => {
  const { spawnSync } = await import('node:child_process');
  const r = await runCli(['completion', 'bash']);
  const b = spawnSync('bash', ['-n'], { input: r.stdout, encoding: 'utf8' });
  assert.is(b.status, 0, b.stderr);
  // Complete "pgbk apply --q" in a real bash.
  const script = `${r.stdout}\nCOMP_WORDS=(pgbk apply --q); COMP_CWORD=2; _pgbk; echo "\${COMPREPLY[@]}"`;
  const c = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
  assert.is(c.stdout.trim(), '--quiet', c.stderr);
});

test('a reader that goes away (pgbk … | head) ends the output quietly: no EPIPE stack, the exit status of the command', async () => {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const bin = fileURLToPath(new URL('../../../src/cli.js', import.meta.url));
  for (const args of [['--help'], ['help', 'apply'], ['nosuchcommand']]) {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed before the child has started: its first write to stdout fails with EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.not.match(stderr, /EPIPE|Unhandled|at /, `${args.join(' ')}: ${stderr}`);
    assert.is(code, args[0] === 'nosuchcommand' ? 1 : 0, `${args.join(' ')}: exit status`);
  }
});

test.run();
