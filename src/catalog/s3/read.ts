/**
 * Reads of the s3 driver. A whole-object read (get, or read without a range) is checked against
 * the sha256 recorded in the object's metadata when it has one: bytes that changed at rest or on
 * the way fail the read instead of reaching a restore (end-to-end integrity; the upload's own
 * check was the server verifying the signed payload sha256 or Content-MD5).
 */

import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { PgbkError } from '../../errors.js';
import { sha256Hasher, sha256Hex } from '../../lib/checksum.js';
import type { ObjectInfo, ReadRange } from '../repository.js';
import { type S3Context, urlOf } from './client.js';
import { isNoSuchKey, s3Failure, statusOf } from './errors.js';

/** The metadata key (x-amz-meta-sha256) holding the hex sha256 of the object's bytes. */
export const SHA256_META = 'sha256';

function mismatch(ctx: S3Context, objectKey: string, want: string, got: string): PgbkError {
  return new PgbkError('CATALOG', `${urlOf(ctx, objectKey)} does not match its recorded sha256 (recorded ${want}, read ${got})`, {
    path: urlOf(ctx, objectKey),
    hint: 'the stored object is damaged: restore from another backup or re-archive it',
  });
}

async function getObject(ctx: S3Context, objectKey: string, range?: string): Promise<GetObjectCommandOutput | undefined> {
  try {
    return await ctx.client.send(new ctx.sdk.GetObjectCommand({ Bucket: ctx.cfg.bucket, Key: objectKey, ...(range === undefined ? {} : { Range: range }) }));
  } catch (err) {
    if (isNoSuchKey(err)) return undefined;
    throw err;
  }
}

/**
 * The body into `into` (a view of it), when the response says it fits: the chunks as they come
 * from the socket are small and their memory is reused, where the SDK would join them into a
 * fresh array of the object's size. Undefined when it does not fit (the body is then unread).
 */
async function bodyInto(out: GetObjectCommandOutput, into: Buffer | undefined): Promise<Buffer | undefined> {
  const length = out.ContentLength;
  if (into === undefined || length === undefined || length > into.length) return undefined;
  let at = 0;
  for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
    if (at + chunk.length > length) throw new Error(`the response is longer than its Content-Length ${length}`);
    into.set(chunk, at);
    at += chunk.length;
  }
  if (at !== length) throw new Error(`the response ended after ${at} of its ${length} bytes`);
  return into.subarray(0, at);
}

export async function getS3(ctx: S3Context, objectKey: string, into?: Buffer): Promise<Buffer | undefined> {
  try {
    const out = await getObject(ctx, objectKey);
    if (out === undefined) return undefined;
    // A view, not Buffer.from(bytes): the SDK has joined the response into a fresh array already,
    // and copying it once more was as much new memory again (a WAL segment, backup_manifest).
    let body = await bodyInto(out, into);
    if (body === undefined) {
      const bytes = await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
      body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const want = out.Metadata?.[SHA256_META];
    if (want !== undefined) {
      const got = sha256Hex(body);
      if (got !== want) throw mismatch(ctx, objectKey, want, got);
    }
    return body;
  } catch (err) {
    throw s3Failure(ctx, 'read', objectKey, err);
  }
}

/** Passes the bytes on and fails the stream at its end if their sha256 is not `want`. */
class VerifyTap extends Transform {
  readonly #hash = sha256Hasher();
  constructor(private readonly onEnd: (got: string) => Error | undefined) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#hash.update(chunk);
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    done(this.onEnd(this.#hash.hex()) ?? null);
  }
}

export async function readS3(ctx: S3Context, objectKey: string, range: ReadRange = {}): Promise<Readable | undefined> {
  const offset = range.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0 || (range.length !== undefined && !(Number.isSafeInteger(range.length) && range.length >= 0))) {
    throw s3Failure(ctx, 'read', objectKey, new Error(`invalid range ${JSON.stringify(range)}`));
  }
  try {
    if (range.length === 0) return (await statS3(ctx, objectKey)) === undefined ? undefined : Readable.from([]);
    const whole = offset === 0 && range.length === undefined;
    const header = whole ? undefined : `bytes=${offset}-${range.length === undefined ? '' : offset + range.length - 1}`;
    let out: GetObjectCommandOutput | undefined;
    try {
      out = await getObject(ctx, objectKey, header);
    } catch (err) {
      // 416: the range starts at or past the end. Reading past the end yields what exists: nothing.
      if (statusOf(err) === 416 || (err as { name?: string }).name === 'InvalidRange') {
        return (await statS3(ctx, objectKey)) === undefined ? undefined : Readable.from([]);
      }
      throw err;
    }
    if (out === undefined) return undefined;
    const body = out.Body as Readable;
    const want = out.Metadata?.[SHA256_META];
    if (!whole || want === undefined) return body;
    const tap = new VerifyTap((got) => (got === want ? undefined : mismatch(ctx, objectKey, want, got)));
    body.on('error', (err) => tap.destroy(s3Failure(ctx, 'read', objectKey, err)));
    // A reader that stops early destroys the tap: let go of the response (and its socket) too.
    tap.on('close', () => {
      if (!body.destroyed) body.destroy();
    });
    return body.pipe(tap);
  } catch (err) {
    throw s3Failure(ctx, 'read', objectKey, err);
  }
}

export async function statS3(ctx: S3Context, objectKey: string): Promise<ObjectInfo | undefined> {
  try {
    const out = await ctx.client.send(new ctx.sdk.HeadObjectCommand({ Bucket: ctx.cfg.bucket, Key: objectKey }));
    const sha256 = out.Metadata?.[SHA256_META];
    const info = { size: out.ContentLength ?? 0, mtime: out.LastModified ?? new Date(0) };
    return sha256 === undefined ? info : { ...info, sha256 };
  } catch (err) {
    if (isNoSuchKey(err)) return undefined;
    throw s3Failure(ctx, 'stat', objectKey, err);
  }
}
