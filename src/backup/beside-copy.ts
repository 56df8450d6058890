/**
 * The executor's work a method runs beside the end of its copy (TakeHooks): what happens to it
 * when the copy fails.
 */
import { toPgbkError } from '../errors.js';
import type { BackupContext } from './context.js';

/** After a failed copy, let the work beside it settle; its own error is logged (the copy's is the one thrown). */
export async function settleAfterFailure(ctx: BackupContext, id: string, work: Promise<void> | undefined): Promise<void> {
  await work?.catch((err: unknown) => ctx.log(`${ctx.server.name}: archiving incoming/ beside backup ${id}: ${toPgbkError(err).message}`));
}
