import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fingerprintOf, hostKeyError, hostLookupName, verifyHostKey } from '../../../src/transport/known-hosts.js';
import { shellJoin } from '../../../src/lib/shell-quote.js';

/** An ssh-ed25519 public key blob: string "ssh-ed25519", string key (32 bytes). */
function ed25519Blob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
}

function line(hosts: string, blob: Buffer, marker = ''): string {
  return `${marker}${marker ? ' ' : ''}${hosts} ssh-ed25519 ${blob.toString('base64')} comment`;
}

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

const key = ed25519Blob();
const other = ed25519Blob();

test('lookup name: plain on port 22, [host]:port otherwise', () => {
  assert.is(hostLookupName('db1', 22), 'db1');
  assert.is(hostLookupName('127.0.0.1', 2222), '[127.0.0.1]:2222');
});

test('plain, hashed and [host]:port entries are trusted; a port-less entry does not cover another port', () => {
  assert.is(verifyHostKey(line('db1,10.0.0.1', key), 'db1', 22, key).result, 'trusted');
  assert.is(verifyHostKey(line(hashed('db1'), key), 'db1', 22, key).result, 'trusted');
  assert.is(verifyHostKey(line(hashed('[db1]:2222'), key), 'db1', 2222, key).result, 'trusted');
  assert.is(verifyHostKey(line('[db1]:2222', key), 'db1', 2222, key).result, 'trusted');
  assert.is(verifyHostKey(line('db1', key), 'db1', 2222, key).result, 'unknown');
  assert.is(verifyHostKey(line(hashed('db2'), key), 'db1', 22, key).result, 'unknown');
  assert.is(verifyHostKey('# comment\n\n', 'db1', 22, key).result, 'unknown');
});

test('wildcards and negation', () => {
  assert.is(verifyHostKey(line('*.example.com', key), 'db1.example.com', 22, key).result, 'trusted');
  assert.is(verifyHostKey(line('*.example.com,!db1.example.com', key), 'db1.example.com', 22, key).result, 'unknown');
});

test('a different key of the same type for the host is "changed", naming the known fingerprint', () => {
  const v = verifyHostKey(line('db1', other), 'db1', 22, key);
  assert.is(v.result, 'changed');
  assert.equal(v.result === 'changed' ? v.knownFingerprints : [], [fingerprintOf(other)]);
  const err = hostKeyError(v as Exclude<typeof v, { result: 'trusted' }>, 'db1', 22, key, '/kh');
  assert.is(err.code, 'HOSTKEY');
  assert.match(err.message, /CHANGED/);
  assert.ok(err.message.includes(fingerprintOf(key)));
  assert.ok(err.message.includes('db1'));
});

test('@revoked wins over an accepting line', () => {
  const text = [line('db1', key), line('*', key, '@revoked')].join('\n');
  assert.is(verifyHostKey(text, 'db1', 22, key).result, 'revoked');
});

test('fingerprint matches OpenSSH form (SHA256:, unpadded base64)', () => {
  assert.match(fingerprintOf(key), /^SHA256:[A-Za-z0-9+/]{43}$/);
});

test('shellJoin quotes for a POSIX shell', () => {
  assert.is(shellJoin(['cat', '--', "/a b/it's"]), `cat -- '/a b/it'\\''s'`);
  assert.is(shellJoin(['']), `''`);
});

test.run();
