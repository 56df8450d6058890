/**
 * What a DBA meets in the first hour with an s3:// catalog, against a real radosgw: the messages
 * of a CA file that is not PEM or not the endpoint's CA (s3.tls.caFile is the endpoint's whole
 * trust), https to a plain-http port, credentials refused or missing (where they were looked for,
 * never the secret), and the WAL archive as status and list see it.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { registerS3Catalog } from '../../../src/catalog/open.js';
import { openS3Repository, type S3Repository } from '../../../src/catalog/s3/driver.js';
import { readWalOverview } from '../../../src/catalog/wal-overview.js';
import type { S3RepositoryConfig } from '../../../src/config/resolved.js';
import { rgw, RGW_SECRET_KEY, WRONG_PROFILE } from '../../support/rgw.js';
import { pgbkErrorOf } from '../../support/wait.js';
import { collect } from './repository-contract.js';

type Ctx = { config?: S3RepositoryConfig; repo?: S3Repository; dir?: string };
const t = suite<Ctx>('s3 catalog: a DBA first hour (radosgw)', {});

t.before(async (ctx) => {
  const gw = await rgw();
  ctx.config = await gw.bucket('p/');
  ctx.repo = await openS3Repository(ctx.config);
  ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-s3-first-hour-'));
});
t.after(async (ctx) => {
  ctx.repo?.close();
  if (ctx.dir !== undefined) await rm(ctx.dir, { recursive: true, force: true });
});

const noSecret = (text: string): void => assert.not.match(text, new RegExp(`${RGW_SECRET_KEY}|not-the-secret`));

t('a CA file with no PEM certificate is refused naming it, before any request; nothing written', async (ctx) => {
  const gw = await rgw();
  const caFile = path.join(ctx.dir!, 'not-pem.crt');
  await writeFile(caFile, 'not a certificate\n');
  const before = await collect(ctx.repo!.listNames('', { recursive: true }));
  const e = await pgbkErrorOf(openS3Repository({ ...ctx.config!, endpoint: gw.httpsEndpoint, caFile }, { maxAttempts: 1 }));
  assert.is(e.code, 'CATALOG');
  assert.match(e.message, `the CA file ${caFile} for ${ctx.config!.url} holds no PEM certificate`);
  assert.match(e.hint ?? '', /s3\.tls\.caFile/);
  assert.equal(await collect(ctx.repo!.listNames('', { recursive: true })), before);
});

t("a CA file of another CA: the message names the file and says it is the endpoint's whole trust", async (ctx) => {
  const gw = await rgw();
  // A public root: trusted by Node's bundle, but not the CA of radosgw's self-signed certificate.
  const caFile = path.join(ctx.dir!, 'other-ca.pem');
  await writeFile(caFile, `${rootCertificates[0]}\n`);
  const e = await pgbkErrorOf(openS3Repository({ ...ctx.config!, endpoint: gw.httpsEndpoint, caFile }, { maxAttempts: 1 }));
  assert.match(e.message, `the TLS certificate of ${gw.httpsEndpoint} is not trusted by s3.tls.caFile ${caFile} (`);
  assert.match(e.hint ?? '', `caFile is the endpoint's whole trust`);
  assert.match(e.hint ?? '', caFile);
});

t('https:// to the plain-http port: says no TLS handshake, and to check the scheme', async (ctx) => {
  const gw = await rgw();
  const endpoint = gw.endpoint.replace('http:', 'https:');
  const e = await pgbkErrorOf(openS3Repository({ ...ctx.config!, endpoint }, { maxAttempts: 1 }));
  assert.match(e.message, `cannot open the catalog ${ctx.config!.url}: no TLS handshake with ${endpoint} (EPROTO)`);
  assert.match(e.hint ?? '', /scheme of s3\.endpoint/);
});

t('credentials refused or missing: where they came from (profile, file, OS user), never the secret', async (ctx) => {
  const file = process.env['AWS_SHARED_CREDENTIALS_FILE']!;
  const refused = await pgbkErrorOf(openS3Repository({ ...ctx.config!, profile: WRONG_PROFILE }, { maxAttempts: 1 }));
  assert.match(refused.hint ?? '', `profile ${WRONG_PROFILE} (s3.profile) of ${file}, OS user ${os.userInfo().username}`);
  noSecret(`${refused.message}${refused.hint}`);
  const nowhere = path.join(ctx.dir!, 'no-credentials');
  process.env['AWS_SHARED_CREDENTIALS_FILE'] = nowhere;
  try {
    const missing = await pgbkErrorOf(openS3Repository(ctx.config!, { maxAttempts: 1 }));
    assert.match(
      missing.message,
      `no AWS credentials found for OS user ${os.userInfo().username}: none in its environment (AWS_ACCESS_KEY_ID) nor in profile default of ${nowhere}`,
    );
    noSecret(`${missing.message}${missing.hint}`);
  } finally {
    process.env['AWS_SHARED_CREDENTIALS_FILE'] = file;
  }
});

t('status and list see the WAL archive of an s3:// catalog (they saw none: the overview stat-ed a local path)', async (ctx) => {
  const cfg = ctx.config!;
  registerS3Catalog(cfg);
  for (const seg of ['000000010000000000000003', '000000010000000000000004', '000000010000000100000000']) {
    await ctx.repo!.put(`main/wal/${seg.slice(0, 16)}/${seg}.zst`, 'stands for a segment');
  }
  const overview = await readWalOverview(cfg.url, 'main');
  assert.is(overview.count, 3);
  assert.equal(overview.runs.length, 2);
  assert.ok(overview.newestMtime !== undefined);
});

t.run();
