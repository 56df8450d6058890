/**
 * The s3 repository driver: the catalog as objects under `s3://BUCKET/PREFIX` on AWS S3 or an
 * S3-compatible service (Ceph radosgw, MinIO, …). Keys are checked exactly as posix checks them
 * (repository-key.ts), then prefixed; see README.md in this folder for what each operation
 * guarantees and how (conditional PUTs, signed payload sha256 and Content-MD5, multipart uploads, the lease).
 *
 * Opening probes the bucket once (a one-key listing), so wrong credentials, a missing bucket or an
 * unreachable endpoint fail at once with a message naming them, before anything is written.
 */

import type { Readable } from 'node:stream';
import type { S3RepositoryConfig } from '../../config/resolved.js';
import type { Bytes } from '../../lib/atomic.js';
import type {
  CreateOutcome,
  ListEntry,
  ListOptions,
  LockAttempt,
  LockHolder,
  LockOptions,
  NameEntry,
  GetOptions,
  ObjectInfo,
  ObjectWriter,
  PutIfAbsentOptions,
  PutOptions,
  ReadRange,
  Repository,
  WriteOptions,
} from '../repository.js';
import { checkKey, checkPrefix, checkTreePrefix } from '../repository-key.js';
import { makeContext, type S3Context, type S3Tuning, urlOf } from './client.js';
import { deleteObjects, deleteTreeS3 } from './delete.js';
import { s3Failure } from './errors.js';
import { listNamesS3, listS3 } from './list.js';
import { readLockS3, tryLockS3 } from './lock.js';
import { getS3, readS3, statS3 } from './read.js';
import { openS3Write, putS3, putS3IfAbsent } from './write.js';

export type { S3Tuning } from './client.js';

/** A multipart upload that was started and neither completed nor aborted. */
export interface OpenUpload {
  readonly key: string; // full object key
  readonly uploadId: string;
  readonly initiated: Date;
}

export interface S3Repository extends Repository {
  /** Multipart uploads under the repository's prefix that were never completed nor aborted. */
  listUploads(): Promise<OpenUpload[]>;
  /**
   * Abort the uploads older than `olderThanMs` (a writer that crashed, or whose abort could not
   * reach the server); returns how many. Uploads younger than that may still be running.
   * `under`: only uploads of keys under this repository key prefix (e.g. one server's backups/).
   */
  abortStaleUploads(olderThanMs: number, now?: Date, under?: string): Promise<number>;
  /** Close the client's idle connections. */
  close(): void;
}

class S3RepositoryImpl implements S3Repository {
  constructor(private readonly ctx: S3Context) {}

  private full(key: string): string {
    return this.ctx.cfg.prefix + checkKey(key);
  }

  where(key: string): string {
    return urlOf(this.ctx, this.full(key));
  }

  get(key: string, opts?: GetOptions): Promise<Buffer | undefined> {
    return getS3(this.ctx, this.full(key), opts?.into);
  }

  read(key: string, range?: ReadRange): Promise<Readable | undefined> {
    return readS3(this.ctx, this.full(key), range);
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return statS3(this.ctx, this.full(key));
  }

  put(key: string, data: Bytes, _opts?: PutOptions): Promise<void> {
    return putS3(this.ctx, this.full(key), data);
  }

  putIfAbsent(key: string, data: Bytes, opts?: PutIfAbsentOptions): Promise<CreateOutcome> {
    return putS3IfAbsent(this.ctx, this.full(key), data, opts);
  }

  async openWrite(key: string, opts?: WriteOptions): Promise<ObjectWriter> {
    return openS3Write(this.ctx, key, this.full(key), opts);
  }

  list(prefix: string, opts?: ListOptions): AsyncIterable<ListEntry> {
    return listS3(this.ctx, checkPrefix(prefix), opts?.recursive === true);
  }

  listNames(prefix: string, opts?: ListOptions): AsyncIterable<NameEntry> {
    return listNamesS3(this.ctx, checkPrefix(prefix), opts?.recursive === true);
  }

  delete(keys: readonly string[], _opts?: { readonly removeEmptyParents?: boolean }): Promise<void> {
    return deleteObjects(
      this.ctx,
      keys.map((k) => this.full(k)),
    );
  }

  deleteTree(prefix: string): Promise<void> {
    return deleteTreeS3(this.ctx, this.ctx.cfg.prefix + checkTreePrefix(prefix));
  }

  tryLock(key: string, holder: LockHolder, opts: LockOptions): Promise<LockAttempt> {
    return tryLockS3(this.ctx, this.full(key), holder, opts);
  }

  readLock(key: string): Promise<LockHolder | 'unreadable' | undefined> {
    return readLockS3(this.ctx, this.full(key));
  }

  async listUploads(): Promise<OpenUpload[]> {
    const { ctx } = this;
    const out: OpenUpload[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await ctx.client.send(
          new ctx.sdk.ListMultipartUploadsCommand({
            Bucket: ctx.cfg.bucket,
            Prefix: ctx.cfg.prefix,
            ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
            ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }),
          }),
        );
      } catch (err) {
        throw s3Failure(ctx, 'list the multipart uploads under', ctx.cfg.prefix, err);
      }
      for (const u of page.Uploads ?? []) {
        if (u.Key !== undefined && u.UploadId !== undefined) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) });
      }
      if (page.IsTruncated !== true) return out;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async abortStaleUploads(olderThanMs: number, now: Date = new Date(), under?: string): Promise<number> {
    const { ctx } = this;
    const within = under === undefined ? ctx.cfg.prefix : this.ctx.cfg.prefix + checkPrefix(under);
    let n = 0;
    for (const u of await this.listUploads()) {
      if (!u.key.startsWith(within)) continue;
      if (now.getTime() - u.initiated.getTime() < olderThanMs) continue;
      try {
        await ctx.client.send(new ctx.sdk.AbortMultipartUploadCommand({ Bucket: ctx.cfg.bucket, Key: u.key, UploadId: u.uploadId }));
        n++;
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchUpload') continue;
        throw s3Failure(ctx, `abort the multipart upload ${u.uploadId} of`, u.key, err);
      }
    }
    return n;
  }

  close(): void {
    this.ctx.client.destroy();
  }
}

/** The repository at `cfg` (catalog: s3://BUCKET/PREFIX); the bucket must exist and be reachable. */
export async function openS3Repository(cfg: S3RepositoryConfig, tuning: S3Tuning = {}): Promise<S3Repository> {
  const ctx = await makeContext(cfg, tuning);
  try {
    // A GET (not HeadBucket, whose errors have no body): the error code tells a missing bucket
    // (NoSuchBucket) from refused credentials (InvalidAccessKeyId, SignatureDoesNotMatch).
    await ctx.client.send(new ctx.sdk.ListObjectsV2Command({ Bucket: cfg.bucket, Prefix: cfg.prefix, MaxKeys: 1 }));
  } catch (err) {
    ctx.client.destroy();
    throw s3Failure(ctx, 'open the catalog', cfg.prefix, err);
  }
  return new S3RepositoryImpl(ctx);
}
