/** check on an object store: the clock verdict from the store's Date header (pure parts). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clockSkewMs, judgeClockSkew, MAX_CLOCK_SKEW_MS, tlsTrustText } from '../../../src/check/object-store-checks.js';

const EP = 'http://127.0.0.1:7480';

test('skew is the store minus the midpoint of the request', () => {
  const sent = Date.parse('2026-12-02T10:00:00.000Z');
  assert.is(clockSkewMs('Wed, 02 Dec 2026 10:00:30 GMT', sent, sent + 1000), 29_500);
  assert.is(clockSkewMs('Wed, 02 Dec 2026 09:59:00 GMT', sent, sent), -60_000);
  assert.is(clockSkewMs('not a date', sent, sent), undefined);
});

test('within the limit passes; beyond it fails naming the direction and the endpoint', () => {
  assert.is(judgeClockSkew(EP, 400).ok, true);
  assert.match(judgeClockSkew(EP, 400).detail, `within 1s of the object store's (${EP})`);
  assert.is(judgeClockSkew(EP, -MAX_CLOCK_SKEW_MS).ok, true);
  const behind = judgeClockSkew(EP, 120_000);
  assert.is(behind.ok, false);
  assert.is(behind.detail, `this host's clock is 120s behind the object store's (${EP})`);
  const ahead = judgeClockSkew(EP, -MAX_CLOCK_SKEW_MS - 1000);
  assert.is(ahead.ok, false);
  assert.match(ahead.detail, /61s ahead of the object store's/);
  assert.match(ahead.hint ?? '', /synchronise the clock/);
});

test("the catalog's OK line says what TLS trusted: caFile alone, or nothing verified", () => {
  const base = { url: 's3://b/p/', bucket: 'b', prefix: 'p/', region: 'us-east-1', pathStyle: true, verifyTls: true };
  assert.is(tlsTrustText({ ...base, endpoint: 'https://rgw:7480', caFile: '/etc/pgbk/ca.pem' }), '; TLS trusts only s3.tls.caFile /etc/pgbk/ca.pem');
  assert.is(tlsTrustText({ ...base, endpoint: 'https://rgw:7480', verifyTls: false }), '; TLS certificate NOT verified (tls.verify: false)');
  assert.is(tlsTrustText({ ...base, endpoint: 'https://rgw:7480' }), '');
  assert.is(tlsTrustText({ ...base, endpoint: 'http://rgw:7480' }), '');
  assert.is(tlsTrustText({ ...base, caFile: '/etc/pgbk/ca.pem' }), '; TLS trusts only s3.tls.caFile /etc/pgbk/ca.pem');
});

test.run();
