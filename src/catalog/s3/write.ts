/**
 * Writes of the s3 driver. Every request body carries a checksum the server checks before it
 * stores anything (a body damaged on the way is refused, never stored): a whole-object put signs
 * the bytes' sha256 as its payload hash (x-amz-content-sha256, see putCommand) and records the same
 * sha256 in the object's metadata (x-amz-meta-sha256), which stat returns and whole-object reads
 * check; a multipart part carries Content-MD5 (BadDigest), whose digests also check the completed
 * object's ETag.
 *
 * put-if-absent is a PUT with `If-None-Match: *`: the server creates the object only if the key is
 * free and answers 412 otherwise, so of concurrent writers exactly one creates it. A PUT is atomic:
 * readers see the old object or the new one, never a part.
 *
 * Streaming writes (openWrite) buffer one part (16 MiB by default) and upload at most `queueSize`
 * parts at once, so memory stays at (queueSize + 1) × partSize whatever the object's size; the
 * writable's callback waits for a free slot (backpressure). Each part is copied out of the incoming
 * chunks into one of at most queueSize part buffers that are reused from part to part: no new
 * part-sized allocation per part, so a long upload leaves no trail of freed 16 MiB buffers waiting
 * for the garbage collector (and then for malloc to give their pages back). Every body larger than
 * 256 KiB, a part or a whole object, goes to the socket piece by piece (sendInPieces), so TLS holds
 * a piece of ciphertext per connection, not a whole part. Nothing is visible until commit():
 * - an object smaller than one part is one PUT at commit (conditional for ifAbsent: exact);
 * - a larger one is a multipart upload, completed at commit. ifAbsent then checks the key before
 *   completing and sends `If-None-Match: *` with the completion, which AWS S3 honours (412). Some
 *   S3-compatible servers ignore it on completion (radosgw 16 does): there two writers that both
 *   find the key free before either completes both succeed, the later completion replacing the
 *   earlier. Streamed ifAbsent writes are content-addressed (same key ⇒ same bytes), so that race
 *   replaces an object by the same bytes; WAL, which must never be overwritten, goes through
 *   putIfAbsent (one conditional PUT).
 * A failed part upload fails the stream; abort() (and a failed commit) aborts the multipart
 * upload, so its parts stop taking space. One that cannot be aborted (the server is gone) is
 * named in the error and found later by abortStaleUploads.
 */

import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { PgbkError } from '../../errors.js';
import { type Bytes, bytesLength } from '../../lib/atomic.js';
import { sha256Hex } from '../../lib/checksum.js';
import type { CreateOutcome, ObjectWriter, PutIfAbsentOptions, WriteOptions, WriteResult } from '../repository.js';
import { type S3Context, urlOf } from './client.js';
import { isNoSuchKey, isPreconditionFailed, s3Failure, statusOf } from './errors.js';
import { SHA256_META } from './read.js';

/** AWS answers 409 ConditionalRequestConflict when conditional writes to one key overlap: try again. */
const CONFLICT_ROUNDS = 5;

/** SigV4's header for the hex sha256 of the body, which the signature covers and the server checks. */
const PAYLOAD_SHA256 = 'x-amz-content-sha256';

/** The size of the pieces a request body is handed to the socket in (see sendInPieces). */
const BODY_PIECE = 256 * 1024;

/**
 * Makes `command` send `body` (its pieces, one after another) to the socket in pieces of at most
 * BODY_PIECE bytes, each after the previous one has been taken (a Readable piped into the
 * request), instead of in one write. One write of a whole part over TLS encrypts all of it at once
 * into the connection's output buffer (malloc'd memory outside V8, as large as the part, per
 * request in flight), and the C heap keeps those pages after they are freed: the backup's peak RSS
 * grew with the number of parts (+34 MB from 1 to 5 parts of 16 MiB over HTTPS, +7 MB over HTTP).
 * Piped, each connection holds about a piece of ciphertext. A body of several pieces (a zstd
 * frame: header, the encoder's blocks, checksum) is sent without first being copied into one
 * buffer (that copy of ~5 MB per archived segment, and the garbage it left, cost the wal-push
 * worker's thread more than the TLS encryption). The swap happens after signing (the signed
 * payload hash is given, see putCommand) and inside the retry loop, so every attempt sends a fresh
 * stream of the same bytes, and the retry strategy still sees a Buffer body (it retries no stream).
 */
function sendInPieces(command: { middlewareStack: { addRelativeTo: (mw: never, opts: never) => void } }, body: readonly Buffer[]): void {
  if (body.length <= 1 && (body[0]?.length ?? 0) <= BODY_PIECE) return;
  const pieces = function* (): Generator<Buffer> {
    for (const b of body) for (let at = 0; at < b.length; at += BODY_PIECE) yield b.subarray(at, Math.min(at + BODY_PIECE, b.length));
  };
  const middleware = (next: (args: unknown) => Promise<unknown>) => (args: { request: { body?: unknown } }) => {
    args.request.body = Readable.from(pieces(), { objectMode: false, highWaterMark: BODY_PIECE });
    return next(args);
  };
  command.middlewareStack.addRelativeTo(middleware as never, { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'pgbkBodyInPieces' } as never);
}

/**
 * A whole-object PUT whose signed payload hash is `sha256`, the hash the caller already has of
 * `body` (archived WAL: computed once, for the catalog's record): the SDK's signer takes a payload
 * hash present in the request instead of hashing the body again, and the server recomputes it over
 * the bytes it received and refuses a mismatch (XAmzContentSHA256Mismatch / BadDigest), storing
 * nothing. So one hash serves as the record, the signature and the server's integrity check — no
 * second sha256 by the SDK, no Content-MD5 pass. A caller's wrong sha256 is refused the same way.
 */
function putCommand(ctx: S3Context, objectKey: string, body: readonly Buffer[], sha256: string, ifAbsent: boolean) {
  const command = new ctx.sdk.PutObjectCommand({
    Bucket: ctx.cfg.bucket,
    Key: objectKey,
    // Several pieces: the first stands for the body until sendInPieces sends all of them (the
    // length and the signed sha256 are of the whole, so a body sent short would be refused).
    Body: body[0] ?? Buffer.alloc(0),
    ContentLength: bytesLength(body),
    Metadata: { [SHA256_META]: sha256 },
    ...(ifAbsent ? { IfNoneMatch: '*' } : {}),
  });
  command.middlewareStack.add(
    (next) => (args) => {
      (args.request as { headers: Record<string, string> }).headers[PAYLOAD_SHA256] = sha256;
      return next(args);
    },
    { step: 'build', name: 'pgbkPayloadSha256' },
  );
  sendInPieces(command, body);
  return command;
}

async function putObject(ctx: S3Context, objectKey: string, body: readonly Buffer[], sha256: string, ifAbsent: boolean): Promise<CreateOutcome> {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256 (64 lower-case hex digits): ${JSON.stringify(sha256)}`);
  for (let round = 1; ; round++) {
    try {
      await ctx.client.send(putCommand(ctx, objectKey, body, sha256, ifAbsent));
      return 'created';
    } catch (err) {
      // A 412 after a retried request whose first attempt did succeed also reads 'exists': the
      // caller then finds the same bytes there (a duplicate), which is what happened.
      if (ifAbsent && isPreconditionFailed(err)) return 'exists';
      if (statusOf(err) === 409 && round < CONFLICT_ROUNDS) continue;
      throw err;
    }
  }
}

/** `data` as the pieces of a request body (never copied into one buffer). */
function bodyPieces(data: Bytes): readonly Buffer[] {
  if (typeof data === 'string') return [Buffer.from(data, 'utf8')];
  return Buffer.isBuffer(data) ? [data] : data;
}

export async function putS3(ctx: S3Context, objectKey: string, data: Bytes): Promise<void> {
  const body = bodyPieces(data);
  try {
    await putObject(ctx, objectKey, body, sha256Hex(body), false);
  } catch (err) {
    throw s3Failure(ctx, 'write', objectKey, err);
  }
}

export async function putS3IfAbsent(ctx: S3Context, objectKey: string, data: Bytes, opts: PutIfAbsentOptions = {}): Promise<CreateOutcome> {
  const body = bodyPieces(data);
  try {
    return await putObject(ctx, objectKey, body, opts.sha256 ?? sha256Hex(body), true);
  } catch (err) {
    throw s3Failure(ctx, 'write', objectKey, err);
  }
}

interface Part {
  readonly PartNumber: number;
  readonly ETag: string;
  readonly md5: Buffer;
}

/** One streaming upload; see the module comment for its memory bound and publication rules. */
class MultipartWriter implements ObjectWriter {
  readonly stream: Writable;
  #state: 'open' | 'committed' | 'aborted' = 'open';
  #hash = createHash('sha256');
  #size = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #uploadId: Promise<string> | undefined;
  #parts: Part[] = [];
  #nextPart = 1;
  #inFlight = new Set<Promise<void>>();
  /** Part buffers (partSize each) whose upload finished, to fill again: at most queueSize exist. */
  #spare: Buffer[] = [];
  #failure: unknown;

  constructor(
    private readonly ctx: S3Context,
    readonly key: string,
    private readonly objectKey: string,
    private readonly ifAbsent: boolean,
  ) {
    this.stream = new Writable({
      highWaterMark: 1024 * 1024,
      write: (chunk: Buffer, _enc, cb) => {
        this.#accept(chunk).then(() => cb(), cb);
      },
      final: (cb) => {
        this.#finish().then(() => cb(), cb);
      },
    });
  }

  async #accept(chunk: Buffer): Promise<void> {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    while (this.#pendingBytes >= this.ctx.partSize) {
      // Backpressure: a new part waits for a free slot, so at most queueSize parts are in memory.
      await this.#slot();
      this.#startPart(this.#takePart(this.ctx.partSize));
    }
    await this.#slot();
  }

  async #slot(): Promise<void> {
    while (this.#inFlight.size >= this.ctx.queueSize) await Promise.race(this.#inFlight);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** The first `n` pending bytes, copied into a reused part buffer; what follows stays pending. */
  #takePart(n: number): Buffer {
    const part = (this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.ctx.partSize)).subarray(0, n);
    let at = 0;
    while (at < n) {
      const c = this.#pending[0]!;
      const take = Math.min(c.length, n - at);
      c.copy(part, at, 0, take);
      at += take;
      if (take === c.length) this.#pending.shift();
      else this.#pending[0] = c.subarray(take);
    }
    this.#pendingBytes -= n;
    return part;
  }

  /** End of the bytes: a started multipart upload gets its last part; a small object waits for commit. */
  async #finish(): Promise<void> {
    if (this.#uploadId !== undefined && this.#pendingBytes > 0) {
      await this.#slot();
      this.#startPart(this.#takePart(this.#pendingBytes));
    }
    await Promise.all(this.#inFlight);
    this.#spare = []; // no more parts
    if (this.#failure !== undefined) throw this.#failure;
  }

  #createUpload(): Promise<string> {
    this.#uploadId ??= this.ctx.client.send(new this.ctx.sdk.CreateMultipartUploadCommand({ Bucket: this.ctx.cfg.bucket, Key: this.objectKey })).then((out) => {
      if (out.UploadId === undefined) throw new Error('the server returned no upload id');
      return out.UploadId;
    });
    return this.#uploadId;
  }

  #startPart(body: Buffer): void {
    const PartNumber = this.#nextPart++;
    const md5 = createHash('md5').update(body).digest();
    const upload = (async (): Promise<void> => {
      const UploadId = await this.#createUpload();
      const command = new this.ctx.sdk.UploadPartCommand({
        Bucket: this.ctx.cfg.bucket,
        Key: this.objectKey,
        UploadId,
        PartNumber,
        Body: body,
        ContentLength: body.length,
        ContentMD5: md5.toString('base64'),
      });
      sendInPieces(command, [body]);
      const out = await this.ctx.client.send(command);
      if (out.ETag === undefined) throw new Error(`the server returned no ETag for part ${PartNumber}`);
      this.#parts.push({ PartNumber, ETag: out.ETag, md5 });
      // The request has been answered, so its body is no longer read: fill it again. (A failed
      // part is not reused: the stream fails anyway.)
      this.#spare.push(Buffer.from(body.buffer, body.byteOffset, this.ctx.partSize));
    })().catch((err: unknown) => {
      this.#failure ??= s3Failure(this.ctx, `upload part ${PartNumber} of`, this.objectKey, err);
    });
    const tracked = upload.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  async commit(): Promise<WriteResult> {
    const where = urlOf(this.ctx, this.objectKey);
    if (this.#state !== 'open') throw new PgbkError('CATALOG', `cannot commit ${where}: the write was already ${this.#state}`, { path: where });
    if (!this.stream.writableFinished || this.stream.errored !== null) {
      throw new PgbkError('CATALOG', `cannot commit ${where}: the stream has not finished (end it, or await the pipeline, first)`, { path: where });
    }
    this.#state = 'committed';
    const sha256 = this.#hash.digest('hex');
    const size = this.#size;
    try {
      if (this.#uploadId === undefined) {
        const body = this.#pending;
        this.#pending = [];
        return { outcome: await putObject(this.ctx, this.objectKey, body, sha256, this.ifAbsent), size, sha256 };
      }
      return { outcome: await this.#complete(await this.#uploadId), size, sha256 };
    } catch (err) {
      const failure = s3Failure(this.ctx, 'publish', this.objectKey, err);
      await this.#abortUpload().catch(() => undefined);
      throw failure;
    }
  }

  async #complete(UploadId: string): Promise<CreateOutcome> {
    const { bucket } = this.ctx.cfg;
    if (this.ifAbsent && (await this.#exists())) {
      await this.#abortUpload();
      return 'exists';
    }
    const parts = [...this.#parts].sort((a, b) => a.PartNumber - b.PartNumber);
    let etag: string | undefined;
    try {
      const out = await this.ctx.client.send(
        new this.ctx.sdk.CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: this.objectKey,
          UploadId,
          MultipartUpload: { Parts: parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })) },
          ...(this.ifAbsent ? { IfNoneMatch: '*' } : {}),
        }),
      );
      etag = out.ETag;
    } catch (err) {
      if (this.ifAbsent && isPreconditionFailed(err)) {
        await this.#abortUpload();
        return 'exists';
      }
      throw err;
    }
    // The multipart ETag is md5(md5(part 1) ‖ … ‖ md5(part n))-n on AWS, radosgw and MinIO: the
    // server assembled exactly the parts whose bytes we hashed, in our order.
    const got = etag?.replace(/"/g, '');
    if (got !== undefined && /^[0-9a-f]{32}-\d+$/.test(got)) {
      const want = `${createHash('md5')
        .update(Buffer.concat(parts.map((p) => p.md5)))
        .digest('hex')}-${parts.length}`;
      if (got !== want) throw new Error(`the completed object's ETag ${got} is not the one of the parts sent (${want})`);
    }
    return 'created';
  }

  async #exists(): Promise<boolean> {
    try {
      await this.ctx.client.send(new this.ctx.sdk.HeadObjectCommand({ Bucket: this.ctx.cfg.bucket, Key: this.objectKey }));
      return true;
    } catch (err) {
      if (isNoSuchKey(err)) return false;
      throw err;
    }
  }

  async #abortUpload(): Promise<void> {
    if (this.#uploadId === undefined) return;
    let UploadId: string;
    try {
      UploadId = await this.#uploadId;
    } catch {
      return; // never created: nothing to abort
    }
    try {
      await this.ctx.client.send(new this.ctx.sdk.AbortMultipartUploadCommand({ Bucket: this.ctx.cfg.bucket, Key: this.objectKey, UploadId }));
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchUpload' || statusOf(err) === 404) return;
      const f = s3Failure(this.ctx, `abort the multipart upload ${UploadId} of`, this.objectKey, err);
      throw new PgbkError('CATALOG', f.message, { path: f.path, cause: err, hint: 'a later abortStaleUploads (apply) removes it' });
    }
  }

  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    if (!this.stream.destroyed) this.stream.destroy();
    this.#pending = [];
    // Parts still uploading would otherwise land after the abort and keep the upload alive.
    await Promise.all(this.#inFlight);
    await this.#abortUpload();
  }
}

export function openS3Write(ctx: S3Context, key: string, objectKey: string, opts: WriteOptions = {}): ObjectWriter {
  return new MultipartWriter(ctx, key, objectKey, opts.ifAbsent === true);
}
