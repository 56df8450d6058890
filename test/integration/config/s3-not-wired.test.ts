/**
 * Until the commands use the S3 driver (issue 12), an s3:// catalog is refused by every command
 * before anything is written: without this guard the URL would be taken for a relative directory
 * ("./s3:/bucket/…") in the working directory.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runPgbk } from '../../support/pgbk.js';

test('plan and status refuse an s3:// catalog and leave the working directory empty', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-s3-guard-'));
  try {
    const config = path.join(dir, 'pgbk.yaml');
    await writeFile(
      config,
      [
        'catalog: s3://pgbk-bucket/prod',
        's3: { endpoint: "http://127.0.0.1:9", region: us-east-1 }',
        'servers:',
        '  main:',
        '    connection: "host=/nonexistent dbname=postgres"',
        '    retention: { redundancy: 1 }',
        '',
      ].join('\n'),
    );
    const work = path.join(dir, 'work');
    await (await import('node:fs/promises')).mkdir(work);
    for (const args of [['plan'], ['status']]) {
      const r = await runPgbk(['--config', config, ...args], { cwd: work });
      assert.is.not(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /catalog s3:\/\/pgbk-bucket\/prod: S3 repositories are not usable by commands yet/, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(await readdir(work), [], `${args.join(' ')} wrote nothing`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
