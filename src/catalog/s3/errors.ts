/**
 * SDK failures → one PgbkError('CATALOG') line a DBA can act on: what was being done, the object's
 * s3:// URL, the endpoint, and why (credentials refused, bucket missing, endpoint unreachable, …),
 * with a hint. Credentials are never part of a message.
 */

import { PgbkError } from '../../errors.js';
import { type S3Context, urlOf } from './client.js';

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
      hint: `set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for pgbk, or the profile${ctx.cfg.profile === undefined ? '' : ` ${ctx.cfg.profile}`} in ~/.aws/credentials`,
    };
  }
  if (name === 'AccessDenied' || status === 403) {
    return {
      why: `${endpoint} denied access to bucket ${ctx.cfg.bucket} (${name || 'HTTP 403'})`,
      hint: 'check the credentials and that their user may read and write the bucket',
    };
  }
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message ?? '')) {
    return {
      why: 'no AWS credentials found',
      hint: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for pgbk, or a profile in ~/.aws/credentials (s3.profile)',
    };
  }
  if (e.code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(e.code)) {
    return {
      why: `the TLS certificate of ${endpoint} is not trusted (${e.code})`,
      hint: 'set s3.tls.caFile to the CA that signed it (tls.verify: false only for a test store)',
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
