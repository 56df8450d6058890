/**
 * The thread that summarizes WAL for an incremental `ssh` backup (wal-changes.ts): it decodes the
 * segments the backup host's main thread reads from the archive and walks every record's block
 * references (pg/wal-blocks.ts), so that ~50 ms of CPU per 16 MiB segment run on the other core
 * while the main thread connects over SSH, starts the backup and lists the files.
 * Messages are handled one at a time, in order; each gets one reply.
 */

import { parentPort, workerData } from 'node:worker_threads';
import type { Compression } from '../../config/resolved.js';
import { decodeWalPieces } from '../../catalog/wal-archive.js';
import { type SummaryState, WalBlockSummary } from '../../pg/wal-blocks.js';
import { type FeedResult, WalRecordReader } from '../../pg/wal-records.js';

export interface SummaryWorkerData {
  readonly segSize: number;
  /** The previous backup's start: records before it are not summarized. */
  readonly fromLsn: number;
}

export type ToSummaryWorker =
  /** An archived segment's stored bytes (decoded and checked here). */
  | {
      readonly kind: 'stored';
      readonly segno: number;
      readonly name: string;
      readonly path: string;
      readonly server: string;
      readonly compression: Compression;
      readonly bytes: Uint8Array;
    }
  /** A segment's plain bytes: a whole one (from incoming/), or the head of the start segment. */
  | { readonly kind: 'plain'; readonly segno: number; readonly bytes: Uint8Array; readonly head: boolean }
  /** This backup's start: records from it on are not summarized. */
  | { readonly kind: 'to'; readonly lsn: number }
  | { readonly kind: 'result' };

export type FromSummaryWorker =
  | { readonly kind: 'fed'; readonly failed?: string }
  | { readonly kind: 'ok' }
  | { readonly kind: 'result'; readonly state: SummaryState; readonly reachedTo: boolean };

const PIECE_BYTES = 1 << 20;

const data = workerData as SummaryWorkerData;
const summary = new WalBlockSummary();
let to = Number.POSITIVE_INFINITY;
let reachedTo = false;
const reader = new WalRecordReader({
  segSize: data.segSize,
  startLsn: data.fromLsn,
  wants: () => true,
  // No CRC: the archive's frames carry checksums, and the head is WAL the server flushed.
  checkCrc: false,
  raw: (buf, off, totLen, lsn, rmid, info) => {
    if (lsn >= to) reachedTo = true;
    else summary.addRaw(buf, off, totLen, lsn, rmid, info);
  },
});
const out = Buffer.allocUnsafe(Math.min(PIECE_BYTES, data.segSize));
const ignored = (): void => undefined;

function fedResult(r: FeedResult, what: string): FromSummaryWorker {
  if (r.ended) return { kind: 'fed', failed: `the WAL ends in ${what} (${r.reason})` };
  return summary.unusable === undefined ? { kind: 'fed' } : { kind: 'fed', failed: summary.unusable };
}

async function handle(m: ToSummaryWorker): Promise<FromSummaryWorker> {
  switch (m.kind) {
    case 'stored': {
      let r: FeedResult = { ended: false };
      const bytes = Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
      try {
        const length = await decodeWalPieces({ name: m.name, bytes, compression: m.compression, path: m.path, server: m.server }, out, (piece, offset) => {
          if (!r.ended) r = reader.feedPiece(m.segno, offset, piece, ignored);
        });
        if (!r.ended) r = reader.endOfSegment(m.segno, length);
      } catch (err) {
        return { kind: 'fed', failed: `WAL segment ${m.name}: ${(err as Error).message}` };
      }
      return fedResult(r, m.name);
    }
    case 'plain': {
      const bytes = Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
      let r = reader.feedPiece(m.segno, 0, bytes, ignored);
      if (!m.head && !r.ended) r = reader.endOfSegment(m.segno, bytes.length);
      return m.head ? { kind: 'fed' } : fedResult(r, `segment ${m.segno}`);
    }
    case 'to':
      to = m.lsn;
      return { kind: 'ok' };
    case 'result':
      return { kind: 'result', state: summary.exportState(), reachedTo };
  }
}

let queue: Promise<void> = Promise.resolve();
parentPort?.on('message', (m: ToSummaryWorker) => {
  queue = queue.then(async () => {
    const reply = await handle(m).catch((err: unknown): FromSummaryWorker => ({ kind: 'fed', failed: (err as Error).message }));
    parentPort?.postMessage(reply);
  });
});
