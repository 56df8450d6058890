/**
 * SDK failures → one PgbkError('CATALOG') line a DBA can act on: what was being done, the object's
 * s3:// URL, the endpoint, and why (credentials refused, bucket missing, endpoint unreachable, …),
 * with a hint. Credentials are never part of a message.
 */

import { PgbkError } from '../../errors.js';
import { type S3Context, urlOf } from './client.js';
import { credentialSource, noCredentials, untrustedCertificate } from './trust.js';

interface SdkErrorShape {
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

function shape(err: unknown): SdkErrorShape {
  return typeof err === 'object' && err !== null ? (err as SdkErrorShape) : {};
}

export function statusOf(err: unknown): number | undefined {
  return shape(err).$metadata?.httpStatusCode;
}

/** 404 of a key (HEAD answers a bare NotFound; GET NoSuchKey); a missing bucket is not "absent". */
export function isNoSuchKey(err: unknown): boolean {
  const e = shape(err);
  return e.name === 'NoSuchKey' || (e.name === 'NotFound' && statusOf(err) === 404);
}

export function isPreconditionFailed(err: unknown): boolean {
  return statusOf(err) === 412 || shape(err).name === 'PreconditionFailed';
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Why a request failed, in words, and what to do about it. */
function explain(ctx: S3Context, err: unknown): { why: string; hint?: string } {
  const e = shape(err);
  const name = e.name ?? '';
  const status = statusOf(err);
  const endpoint = ctx.endpointName;
  if (name === 'NoSuchBucket') {
    return { why: `bucket ${ctx.cfg.bucket} does not exist at ${endpoint}`, hint: 'create the bucket, or fix the bucket in `catalog: s3://BUCKET/…`' };
  }
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'InvalidToken' || name === 'ExpiredToken') {
    return {
      why: `${endpoint} refused the credentials (${name}) for bucket ${ctx.cfg.bucket}`,
      hint: `they came from ${credentialSource(ctx.cfg)}: fix them there, or give pgbk others (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a profile: s3.profile, AWS_PROFILE)`,
    };
  }
  if (name === 'AccessDenied' || status === 403) {
    return {
      why: `${endpoint} denied access to bucket ${ctx.cfg.bucket} (${name || 'HTTP 403'})`,
      hint: `check that the user of the credentials (${credentialSource(ctx.cfg)}) may read and write the bucket`,
    };
  }
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message ?? '')) {
    return {
      why: noCredentials(ctx.cfg),
      hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment pgbk runs with, or a profile in that OS user's ~/.aws/credentials (s3.profile): archive_command and restore_command run with PostgreSQL's environment and OS user",
    };
  }
  if (e.code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(e.code)) {
    return untrustedCertificate(endpoint, e.code, ctx.cfg.caFile);
  }
  if (e.code === 'EPROTO' || /wrong version number/.test(e.message ?? '')) {
    return {
      why: `no TLS handshake with ${endpoint} (${e.code ?? name})`,
      hint: 'check the scheme of s3.endpoint: https:// to a port that speaks plain http fails so',
    };
  }
  if ((e.code !== undefined && NETWORK_CODES.has(e.code)) || name === 'TimeoutError' || name === 'RequestTimeout') {
    return { why: `cannot reach ${endpoint} (${e.code ?? name})`, hint: 'check s3.endpoint and that the object store is up' };
  }
  const detail = e.message !== undefined && e.message !== '' && e.message !== 'UnknownError' ? `: ${e.message}` : '';
  return { why: `${endpoint} answered ${name || 'an error'}${status === undefined ? '' : ` (HTTP ${status})`}${detail}` };
}

export function s3Failure(ctx: S3Context, op: string, objectKey: string, err: unknown): PgbkError {
  if (err instanceof PgbkError) return err;
  const { why, hint } = explain(ctx, err);
  const where = urlOf(ctx, objectKey);
  return new PgbkError('CATALOG', `cannot ${op} ${where}: ${why}`, { path: where, cause: err, ...(hint === undefined ? {} : { hint }) });
}
