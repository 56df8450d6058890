/**
 * known_hosts verification, as OpenSSH does it: plain and hashed (|1|salt|hmac) host patterns,
 * the [host]:port form for ports other than 22, wildcards and !negation, and @revoked keys
 * (refused even when another line accepts them). There is no trust on first use: a host with no
 * entry is refused like one whose key changed. Pure apart from reading the file.
 */

import { createHash, createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PgbkError } from '../errors.js';

export type HostKeyVerdict =
  | { readonly result: 'trusted' }
  | { readonly result: 'revoked' }
  | { readonly result: 'changed'; readonly knownFingerprints: readonly string[] }
  | { readonly result: 'unknown' };

interface KnownHostLine {
  readonly marker: 'revoked' | 'cert-authority' | undefined;
  readonly patterns: readonly string[];
  readonly keyType: string;
  readonly keyBase64: string;
}

/** The name known_hosts files use for host:port: plain host on port 22, [host]:port otherwise. */
export function hostLookupName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's fingerprint form: "SHA256:" + unpadded base64 of the key blob's sha256. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type string at the start of an SSH public key blob ("ssh-ed25519", …). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return '?';
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

export function parseKnownHosts(text: string): KnownHostLine[] {
  const lines: KnownHostLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostLine['marker'];
    if (fields[0] === '@revoked') marker = 'revoked';
    else if (fields[0] === '@cert-authority') marker = 'cert-authority';
    else if (fields[0]?.startsWith('@') === true) continue; // unknown marker: ignore the line, as ssh does
    const rest = marker === undefined ? fields : fields.slice(1);
    const [hosts, keyType, keyBase64] = rest;
    if (hosts === undefined || keyType === undefined || keyBase64 === undefined) continue;
    lines.push({ marker, patterns: hosts.split(','), keyType, keyBase64 });
  }
  return lines;
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

function hashedMatches(pattern: string, name: string): boolean {
  const parts = pattern.split('|'); // "", "1", salt, hmac
  if (parts.length !== 4 || parts[1] !== '1' || parts[2] === undefined || parts[3] === undefined) return false;
  const salt = Buffer.from(parts[2], 'base64');
  const mac = createHmac('sha1', salt).update(name).digest('base64');
  return mac === parts[3];
}

/** Whether a line's host patterns select `name`: a matching !negation excludes the line outright. */
export function patternsMatch(patterns: readonly string[], name: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('|')) {
      if (hashedMatches(p, name)) matched = true;
    } else if (p.startsWith('!')) {
      if (globToRegExp(p.slice(1)).test(name)) return false;
    } else if (globToRegExp(p).test(name)) {
      matched = true;
    }
  }
  return matched;
}

/** Decide about a presented host key (its raw blob) for host:port against known_hosts text. */
export function verifyHostKey(text: string, host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  const name = hostLookupName(host, port);
  const presented = keyBlob.toString('base64');
  const type = keyTypeOf(keyBlob);
  const lines = parseKnownHosts(text);
  // A revoked key is refused whatever other lines say (sshd(8) "@revoked").
  if (lines.some((l) => l.marker === 'revoked' && l.keyBase64 === presented)) return { result: 'revoked' };
  const forHost = lines.filter((l) => l.marker === undefined && patternsMatch(l.patterns, name));
  if (forHost.some((l) => l.keyBase64 === presented)) return { result: 'trusted' };
  const sameType = forHost.filter((l) => l.keyType === type);
  if (sameType.length > 0) {
    return {
      result: 'changed',
      knownFingerprints: sameType.map((l) => {
        try {
          return fingerprintOf(Buffer.from(l.keyBase64, 'base64'));
        } catch {
          return '?';
        }
      }),
    };
  }
  return { result: 'unknown' };
}

/** The terminal error for a key that is not trusted: names host, port, key type and fingerprint. */
export function hostKeyError(verdict: Exclude<HostKeyVerdict, { result: 'trusted' }>, host: string, port: number, keyBlob: Buffer, file: string): PgbkError {
  const who = hostLookupName(host, port);
  const key = `${keyTypeOf(keyBlob)} ${fingerprintOf(keyBlob)}`;
  switch (verdict.result) {
    case 'revoked':
      return new PgbkError('HOSTKEY', `host key of ${who} (${key}) is marked @revoked in ${file}; refusing to connect`, { path: file });
    case 'changed':
      return new PgbkError(
        'HOSTKEY',
        `host key of ${who} CHANGED: it presented ${key}, ${file} has ${verdict.knownFingerprints.join(', ')}; refusing to connect (possible man-in-the-middle)`,
        {
          path: file,
          hint: `if the host was really re-keyed, remove its old line with ssh-keygen -R '${who}' -f ${file} and add the new key after checking its fingerprint`,
        },
      );
    case 'unknown':
      return new PgbkError('HOSTKEY', `host key of ${who} (${key}) is not in ${file}; refusing to connect (no trust on first use)`, {
        path: file,
        hint: `check the fingerprint out of band, then add it: ssh-keyscan -p ${port} ${host} >> ${file}`,
      });
    default: {
      const never: never = verdict;
      throw new PgbkError('INTERNAL', `unknown verdict ${String(never)}`);
    }
  }
}

export async function readKnownHosts(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new PgbkError('HOSTKEY', `cannot read known_hosts file ${file}: ${(err as Error).message}`, {
      path: file,
      hint: "set servers.<name>.ssh.knownHosts to a file holding the database host's key",
    });
  }
}
