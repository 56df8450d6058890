/**
 * Listing for the s3 driver: ListObjectsV2 page by page (1,000 keys a page, so memory is one page
 * whatever the prefix holds), with delimiter '/' for one level. S3 returns a page's objects and
 * common prefixes as two lists; they are merged back into key order, the order the port promises.
 * Keys that are not valid repository keys (a dot-segment, an empty segment, a "directory" marker
 * object ending in '/') are not objects of the repository and are skipped, as posix skips them.
 */

import type { ListEntry, NameEntry } from '../repository.js';
import { compareKeys } from '../repository-key.js';
import type { S3Context } from './client.js';
import { s3Failure } from './errors.js';

/** A key relative to the repository root that the port could have written. */
function isListable(rel: string, isPrefix: boolean): boolean {
  const segments = (isPrefix ? rel.slice(0, -1) : rel).split('/');
  return segments.every((s) => s !== '' && !s.startsWith('.'));
}

export interface RawObject {
  readonly key: string; // full object key (with the repository prefix)
  readonly size: number;
  readonly mtime: Date;
}

/** Every object under a full key prefix, unfiltered, page by page (deleteTree, stale uploads). */
export async function* listRawPages(ctx: S3Context, objectPrefix: string): AsyncGenerator<RawObject[]> {
  let token: string | undefined;
  do {
    let out;
    try {
      out = await ctx.client.send(
        new ctx.sdk.ListObjectsV2Command({ Bucket: ctx.cfg.bucket, Prefix: objectPrefix, ...(token === undefined ? {} : { ContinuationToken: token }) }),
      );
    } catch (err) {
      throw s3Failure(ctx, 'list', objectPrefix, err);
    }
    yield (out.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [{ key: o.Key, size: o.Size ?? 0, mtime: o.LastModified ?? new Date(0) }]));
    token = out.IsTruncated === true ? out.NextContinuationToken : undefined;
  } while (token !== undefined);
}

export async function* listS3(ctx: S3Context, prefix: string, recursive: boolean): AsyncGenerator<ListEntry> {
  const root = ctx.cfg.prefix;
  const full = root + prefix;
  let token: string | undefined;
  do {
    let out;
    try {
      out = await ctx.client.send(
        new ctx.sdk.ListObjectsV2Command({
          Bucket: ctx.cfg.bucket,
          Prefix: full,
          ...(recursive ? {} : { Delimiter: '/' }),
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
    } catch (err) {
      throw s3Failure(ctx, 'list', full, err);
    }
    const page: ListEntry[] = [];
    for (const o of out.Contents ?? []) {
      if (o.Key === undefined || !o.Key.startsWith(root)) continue;
      const key = o.Key.slice(root.length);
      if (key.endsWith('/') || !isListable(key, false)) continue;
      page.push({ kind: 'object', key, size: o.Size ?? 0, mtime: o.LastModified ?? new Date(0) });
    }
    for (const p of out.CommonPrefixes ?? []) {
      if (p.Prefix === undefined || !p.Prefix.startsWith(root)) continue;
      const key = p.Prefix.slice(root.length);
      if (isListable(key, true)) page.push({ kind: 'prefix', key });
    }
    page.sort((a, b) => compareKeys(a.key, b.key));
    yield* page;
    token = out.IsTruncated === true ? out.NextContinuationToken : undefined;
  } while (token !== undefined);
}

export async function* listNamesS3(ctx: S3Context, prefix: string, recursive: boolean): AsyncGenerator<NameEntry> {
  for await (const e of listS3(ctx, prefix, recursive)) yield { kind: e.kind, key: e.key };
}
