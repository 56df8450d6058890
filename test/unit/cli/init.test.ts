/** `pgbk init`: the next commands it suggests find the file it wrote. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { makeTempDir } from '../catalog/tmp-catalog.js';
import { runCli } from './run-cli.js';

test('init in the working directory suggests plain pgbk validate && pgbk plan', async () => {
  const { dir, cleanup } = makeTempDir();
  const r = await runCli(['init'], { cwd: dir });
  cleanup();
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /then run: pgbk validate && pgbk plan\n$/);
});

test('init of a file discovery would not find suggests --config FILE (elsewhere, another name, PGBK_CONFIG set)', async () => {
  const { dir, cleanup } = makeTempDir();
  const sub = path.join(dir, 'etc');
  const elsewhere = await runCli(['init', path.join(dir, 'x.yaml')], { cwd: sub });
  assert.is(elsewhere.code, 0, elsewhere.stderr);
  assert.ok(
    elsewhere.stdout.includes(`then run: pgbk --config ${path.join(dir, 'x.yaml')} validate && pgbk --config ${path.join(dir, 'x.yaml')} plan`),
    elsewhere.stdout,
  );
  const named = await runCli(['init', 'prod config.yaml'], { cwd: dir });
  assert.ok(named.stdout.includes(`pgbk --config '${path.join(dir, 'prod config.yaml')}' validate`), named.stdout);
  const env = await runCli(['init', 'pgbk.yml'], { cwd: dir, env: { PGBK_CONFIG: '/etc/pgbk/pgbk.yaml' } });
  cleanup();
  assert.ok(env.stdout.includes(`pgbk --config ${path.join(dir, 'pgbk.yml')} validate`), env.stdout);
});

test.run();
