/**
 * Words for the two things a DBA gets wrong first with an S3 endpoint: which credentials the SDK's
 * default chain picked up, and what `s3.tls.caFile` trusts. Pure but for reading the environment;
 * nothing here ever holds a secret (names of variables, profiles and files only).
 */

import { homedir } from 'node:os';
import path from 'node:path';
import type { S3RepositoryConfig } from '../../config/resolved.js';
import { currentUserName } from '../../lib/os-user.js';

/**
 * Whether a CA file's text holds a PEM certificate. OpenSSL skips whatever else a CA file holds
 * without a word, so a file with none (DER, a key, a wrong path's contents) trusts nothing, and
 * every request would then fail as "certificate not trusted" although caFile is set.
 */
export function hasPemCertificate(text: string): boolean {
  return /-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----/.test(text);
}

/** The shared credentials file the SDK reads, spelt out (HOME follows the user pgbk switched to). */
function credentialsFile(env: NodeJS.ProcessEnv): string {
  const named = env['AWS_SHARED_CREDENTIALS_FILE'];
  if (named !== undefined && named !== '') return named;
  const home = env['HOME'] !== undefined && env['HOME'] !== '' ? env['HOME'] : homedir();
  return path.join(home, '.aws', 'credentials');
}

/**
 * Where the SDK's default chain takes the credentials from, as it decides (credential-provider-node):
 * a profile (s3.profile, else AWS_PROFILE) skips the environment's keys; without one, the
 * environment's AWS_ACCESS_KEY_ID comes first, then the shared files' [default] profile.
 */
export function credentialSource(cfg: Pick<S3RepositoryConfig, 'profile'>, env: NodeJS.ProcessEnv = process.env): string {
  const file = credentialsFile(env);
  const user = currentUserName();
  if (cfg.profile !== undefined) return `profile ${cfg.profile} (s3.profile) of ${file}, OS user ${user}`;
  const envProfile = env['AWS_PROFILE'];
  if (envProfile !== undefined && envProfile !== '') return `profile ${envProfile} (AWS_PROFILE) of ${file}, OS user ${user}`;
  if ((env['AWS_ACCESS_KEY_ID'] ?? '') !== '') return `AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment of OS user ${user}`;
  return `profile default of ${file}, OS user ${user}`;
}

/** Why the SDK's chain found nothing, naming the user whose environment and files it read. */
export function noCredentials(cfg: Pick<S3RepositoryConfig, 'profile'>, env: NodeJS.ProcessEnv = process.env): string {
  const file = credentialsFile(env);
  const profile = cfg.profile ?? (env['AWS_PROFILE'] || undefined);
  const where =
    profile === undefined ? `none in its environment (AWS_ACCESS_KEY_ID) nor in profile default of ${file}` : `none in profile ${profile} of ${file}`;
  return `no AWS credentials found for OS user ${currentUserName()}: ${where}`;
}

/** Why a certificate is not trusted, and what to do, knowing whether caFile was set. */
export function untrustedCertificate(endpoint: string, code: string, caFile: string | undefined): { why: string; hint: string } {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return {
      why: `the TLS certificate of ${endpoint} is not issued for its host name (${code})`,
      hint: 'use in s3.endpoint the host name the certificate names',
    };
  }
  if (caFile === undefined) {
    return {
      why: `the TLS certificate of ${endpoint} is not trusted (${code})`,
      hint: 'set s3.tls.caFile to a PEM file with the CA that signed it (tls.verify: false only for a test store)',
    };
  }
  return {
    why: `the TLS certificate of ${endpoint} is not trusted by s3.tls.caFile ${caFile} (${code})`,
    hint: `caFile is the endpoint's whole trust (the public roots are not used beside it): put the CA that signed ${endpoint}'s certificate into ${caFile} (several PEM certificates may follow one another)`,
  };
}
