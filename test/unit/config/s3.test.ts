/**
 * An object-storage catalog in the configuration (issue 12): `catalog: s3://BUCKET/PREFIX` with the
 * `s3:` section, resolved with its defaults; every mistake reported at file:line:col with its key,
 * and credentials refused (never echoed) wherever someone tries to put them in the YAML.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../src/config/load.js';
import { PgbkError } from '../../../src/errors.js';

const HOME = '/home/dba';
const SERVERS = 'servers:\n  main:\n    retention: { redundancy: 1 }\n';
const temps: string[] = [];

function configFile(yaml: string): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-config-s3-'));
  temps.push(dir);
  const file = path.join(dir, 'pgbk.yaml');
  writeFileSync(file, yaml);
  return { dir, file };
}

test.after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

test('s3:// catalog with an endpoint: bucket, prefix, path-style by default, TLS verified, caFile and spool resolved', async () => {
  const { dir, file } = configFile(
    `catalog: s3://pgbk-backups/prod/eu/\ns3:\n  endpoint: https://rgw.example.net:7480/\n  tls: { caFile: certs/ca.pem }\n  profile: backup\n  spool: spool\n${SERVERS}`,
  );
  const desired = await loadConfig({ cwd: dir, env: { HOME } });
  assert.is(desired.configPath, file);
  assert.is(desired.catalog, 's3://pgbk-backups/prod/eu/');
  assert.equal(desired.s3, {
    url: 's3://pgbk-backups/prod/eu/',
    bucket: 'pgbk-backups',
    prefix: 'prod/eu/',
    endpoint: 'https://rgw.example.net:7480',
    region: 'us-east-1',
    pathStyle: true,
    verifyTls: true,
    caFile: path.join(dir, 'certs/ca.pem'),
    profile: 'backup',
    spool: path.join(dir, 'spool'),
  });
});

test('AWS S3 (no endpoint): virtual-hosted addressing, the region given, an empty prefix', async () => {
  const { dir } = configFile(`catalog: s3://my.bucket-1\ns3: { region: eu-central-1, tls: { caFile: ~/ca.pem } }\n${SERVERS}`);
  const desired = await loadConfig({ cwd: dir, env: { HOME } });
  assert.equal(desired.s3, {
    url: 's3://my.bucket-1',
    bucket: 'my.bucket-1',
    prefix: '',
    region: 'eu-central-1',
    pathStyle: false,
    verifyTls: true,
    caFile: '/home/dba/ca.pem',
  });
});

test('a local catalog has no s3 settings', async () => {
  const { dir } = configFile(`catalog: /var/lib/pgbk\n${SERVERS}`);
  assert.is((await loadConfig({ cwd: dir, env: { HOME } })).s3, undefined);
});

const errorCases: readonly { name: string; yaml: string; lines: readonly string[] }[] = [
  {
    name: 'a bucket name S3 refuses',
    yaml: `catalog: s3://My_Bucket/x\n${SERVERS}`,
    lines: [
      `1:10: catalog: "My_Bucket" is not a valid bucket name: 3 to 63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit (write s3://BUCKET/PREFIX)`,
    ],
  },
  {
    name: 'a prefix with a dot-segment or an empty segment',
    yaml: `catalog: s3://bucket/a//.b\n${SERVERS}`,
    lines: [`1:10: catalog: the prefix "a//.b" must be '/'-separated names, none empty or starting with '.'`],
  },
  {
    name: 'another scheme',
    yaml: `catalog: gs://bucket/x\n${SERVERS}`,
    lines: ['1:10: catalog: only s3:// URLs are supported besides a local directory (got gs://…)'],
  },
  {
    name: 's3 settings with a local catalog',
    yaml: `catalog: /x\ns3:\n  region: us-east-1\n${SERVERS}`,
    lines: ['2:1: s3: is only for an object-storage catalog: catalog: s3://BUCKET/PREFIX'],
  },
  {
    name: 'credentials in the YAML are refused and not echoed',
    yaml: `catalog: s3://bucket\ns3:\n  accessKeyId: AKIAEXAMPLE\n  secretAccessKey: hunter2\n${SERVERS}`,
    lines: [
      '3:3: s3.accessKeyId: credentials are never read from the configuration: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment pgbk runs in, or use a profile of ~/.aws/credentials (s3.profile)',
      '3:3: s3.accessKeyId: unknown key (allowed: endpoint, region, pathStyle, tls, profile, spool)',
      '4:3: s3.secretAccessKey: credentials are never read from the configuration: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment pgbk runs in, or use a profile of ~/.aws/credentials (s3.profile)',
      '4:3: s3.secretAccessKey: unknown key (allowed: endpoint, region, pathStyle, tls, profile, spool)',
    ],
  },
  {
    name: 'credentials in the endpoint URL are refused and not echoed',
    yaml: `catalog: s3://bucket\ns3:\n  endpoint: https://AKIA:hunter2@rgw.example.net\n${SERVERS}`,
    lines: [
      '3:13: s3.endpoint: contains credentials: credentials are never read from the configuration: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment pgbk runs in, or use a profile of ~/.aws/credentials (s3.profile)',
    ],
  },
  {
    name: 'an endpoint with a path, one that is no URL, another scheme',
    yaml: `catalog: s3://bucket\ns3:\n  endpoint: https://rgw.example.net/bucket\n${SERVERS}`,
    lines: ['3:13: s3.endpoint: must be scheme and host[:port] only, without a path (the bucket goes in catalog: s3://BUCKET/PREFIX)'],
  },
  {
    name: 'an endpoint that is no URL',
    yaml: `catalog: s3://bucket\ns3:\n  endpoint: rgw.example.net\n${SERVERS}`,
    lines: ['3:13: s3.endpoint: must be a URL like https://host:port'],
  },
  {
    name: 'TLS settings for an http endpoint',
    yaml: `catalog: s3://bucket\ns3:\n  endpoint: http://127.0.0.1:7480\n  tls: { verify: false }\n${SERVERS}`,
    lines: ['4:3: s3.tls: applies to an https endpoint; http://127.0.0.1:7480 is http'],
  },
  {
    name: 'unknown keys and wrong types in s3',
    yaml: `catalog: s3://bucket\ns3:\n  pathstyle: true\n  tls: { verify: "no" }\n${SERVERS}`,
    lines: [
      '3:3: s3.pathstyle: unknown key (allowed: endpoint, region, pathStyle, tls, profile, spool)',
      '4:18: s3.tls.verify: must be boolean (got string "no")',
    ],
  },
];

for (const c of errorCases) {
  test(`s3 config error: ${c.name}`, async () => {
    const { dir, file } = configFile(c.yaml);
    let err: unknown;
    try {
      await loadConfig({ cwd: dir, env: { HOME } });
    } catch (e) {
      err = e;
    }
    assert.instance(err, PgbkError);
    assert.is((err as PgbkError).code, 'CONFIG');
    assert.equal(
      (err as PgbkError).message.split('\n'),
      c.lines.map((l) => `${file}:${l}`),
    );
    assert.not.match((err as PgbkError).message, /hunter2|AKIA/);
  });
}

test.run();
