import { userInfo } from 'node:os';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { credentialSource, hasPemCertificate, noCredentials, untrustedCertificate } from '../../../src/catalog/s3/trust.js';

const t = suite('s3 trust and credential words');
const me = userInfo().username;

t('a CA file without a PEM certificate is told apart (OpenSSL would trust nothing, silently)', () => {
  assert.ok(hasPemCertificate('junk\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'));
  assert.ok(hasPemCertificate('-----BEGIN TRUSTED CERTIFICATE-----\nMIIB\n-----END TRUSTED CERTIFICATE-----\n'));
  assert.not.ok(hasPemCertificate('not a cert\n'));
  assert.not.ok(hasPemCertificate('-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n'));
  assert.not.ok(hasPemCertificate('\u0030\u0082\u0001')); // DER
});

t('where the credentials came from, as the SDK chain picks them: profile before the environment keys', () => {
  const file = { AWS_SHARED_CREDENTIALS_FILE: '/etc/pgbk/aws' };
  assert.is(
    credentialSource({ profile: 'pgbk' }, { ...file, AWS_PROFILE: 'x', AWS_ACCESS_KEY_ID: 'K' }),
    `profile pgbk (s3.profile) of /etc/pgbk/aws, OS user ${me}`,
  );
  assert.is(credentialSource({}, { ...file, AWS_PROFILE: 'x', AWS_ACCESS_KEY_ID: 'K' }), `profile x (AWS_PROFILE) of /etc/pgbk/aws, OS user ${me}`);
  assert.is(
    credentialSource({}, { AWS_ACCESS_KEY_ID: 'K', AWS_SECRET_ACCESS_KEY: 'Zq9-the-secret' }),
    `AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment of OS user ${me}`,
  );
  assert.is(credentialSource({}, { HOME: '/var/lib/postgresql' }), `profile default of /var/lib/postgresql/.aws/credentials, OS user ${me}`);
  assert.is(
    noCredentials({}, { HOME: '/var/lib/postgresql' }),
    `no AWS credentials found for OS user ${me}: none in its environment (AWS_ACCESS_KEY_ID) nor in profile default of /var/lib/postgresql/.aws/credentials`,
  );
  assert.is(noCredentials({ profile: 'p' }, file), `no AWS credentials found for OS user ${me}: none in profile p of /etc/pgbk/aws`);
  for (const text of [
    credentialSource({}, { AWS_ACCESS_KEY_ID: 'K', AWS_SECRET_ACCESS_KEY: 'Zq9-the-secret' }),
    noCredentials({}, { AWS_SECRET_ACCESS_KEY: 'Zq9-the-secret' }),
  ]) {
    assert.not.match(text, 'Zq9-the-secret');
  }
});

t('an untrusted certificate: without caFile, set it; with caFile, it is the whole trust and names the file', () => {
  const none = untrustedCertificate('https://s3.example:443', 'SELF_SIGNED_CERT_IN_CHAIN', undefined);
  assert.match(none.hint, /set s3\.tls\.caFile/);
  const withFile = untrustedCertificate('https://s3.example:443', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', '/etc/pgbk/ca.pem');
  assert.match(withFile.why, 'not trusted by s3.tls.caFile /etc/pgbk/ca.pem (UNABLE_TO_VERIFY_LEAF_SIGNATURE)');
  assert.match(withFile.hint, "caFile is the endpoint's whole trust (the public roots are not used beside it)");
  assert.match(untrustedCertificate('https://s3.example:443', 'ERR_TLS_CERT_ALTNAME_INVALID', '/etc/pgbk/ca.pem').hint, /host name/);
});

t.run();
