/**
 * Deletion for the s3 driver: DeleteObjects, up to 1,000 keys a request (S3's limit). Deleting a
 * missing key succeeds in S3, so deletion is idempotent. A tree is listed page by page and each
 * page deleted as it comes: S3 has no rename to hide a tree first, so callers delete the object
 * that makes the tree valid (backup.json) before the rest (repository.ts deleteTree).
 */

import type { S3Context } from './client.js';
import { s3Failure } from './errors.js';
import { listRawPages } from './list.js';

export const DELETE_BATCH = 1000;

export async function deleteObjects(ctx: S3Context, objectKeys: readonly string[]): Promise<void> {
  for (let i = 0; i < objectKeys.length; i += DELETE_BATCH) {
    const batch = objectKeys.slice(i, i + DELETE_BATCH);
    let out;
    try {
      out = await ctx.client.send(
        new ctx.sdk.DeleteObjectsCommand({ Bucket: ctx.cfg.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      );
    } catch (err) {
      throw s3Failure(ctx, `delete ${batch.length} objects such as`, batch[0]!, err);
    }
    const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (failed.length > 0) {
      const first = failed[0]!;
      const err = Object.assign(new Error(`${first.Code ?? 'error'}: ${first.Message ?? ''}`), { name: first.Code ?? 'Error' });
      throw s3Failure(ctx, `delete (${failed.length} of ${batch.length} refused)`, first.Key ?? batch[0]!, err);
    }
  }
}

export async function deleteTreeS3(ctx: S3Context, objectPrefix: string): Promise<void> {
  for await (const page of listRawPages(ctx, objectPrefix)) {
    await deleteObjects(
      ctx,
      page.map((o) => o.key),
    );
  }
}
