/**
 * Commands use the S3 driver for an s3:// catalog (issue 12): the URL must never be taken for a
 * relative directory ("./s3:/bucket/…") in the working directory, and an unreachable store fails
 * before anything is written, naming the endpoint.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runPgbk } from '../../support/pgbk.js';

test('plan, apply and status on an s3:// catalog whose endpoint is unreachable: a clear error naming it, nothing written in the working directory', async () => {
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
    for (const args of [['plan'], ['apply'], ['status']]) {
      // Some credentials (never sent anywhere but the endpoint): the endpoint is what must be named.
      const env = { AWS_ACCESS_KEY_ID: 'PGBKTESTKEY', AWS_SECRET_ACCESS_KEY: 'PGBKTESTSECRET', AWS_EC2_METADATA_DISABLED: 'true' };
      const r = await runPgbk(['--config', config, ...args], { cwd: work, env });
      assert.is.not(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      // Wired now: they open the bucket first, and an endpoint nobody listens on is named.
      assert.match(r.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(await readdir(work), [], `${args.join(' ')} wrote nothing`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
