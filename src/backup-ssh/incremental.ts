/**
 * Incremental by file: which files of a new backup can be hard-linked from the previous one.
 *
 * A file is reused only when its size and mtime are what the previous backup's listing recorded
 * AND that mtime lies safely before the previous listing (margin): then nothing wrote it between
 * the previous listing and now (a write would move mtime forward), so the previous copy — taken
 * after that listing — holds exactly today's bytes. A file written around the previous listing
 * could have been copied torn; its repair lives in WAL before this backup's start, which this
 * backup does not replay, so such a file is copied again. Pure.
 */

/** One file of a backup, by its path in the backup directory ("data/base/1/1259", "tablespaces/16385/…"). */
export interface FileRecord {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

/** files.json in an `ssh` backup: the listing the next backup compares with. */
export interface FileManifest {
  readonly formatVersion: 1;
  /** Database host clock (ms since the epoch) just before the listing was taken. */
  readonly listedAtMs: number;
  readonly pgdata: string;
  readonly tablespaces: readonly { readonly oid: string; readonly location: string }[];
  /** [path, size, mtimeMs], sorted by path. */
  readonly files: readonly (readonly [string, number, number])[];
}

/** Margin between a reused file's mtime and the previous listing: covers coarse timestamps. */
export const REUSE_MARGIN_MS = 2000;

export interface ReusePlan {
  readonly reuse: readonly FileRecord[];
  readonly copy: readonly FileRecord[];
}

export function planReuse(current: readonly FileRecord[], previous: FileManifest | undefined, marginMs = REUSE_MARGIN_MS): ReusePlan {
  if (previous === undefined) return { reuse: [], copy: [...current] };
  const before = new Map<string, readonly [number, number]>();
  for (const [p, size, mtime] of previous.files) before.set(p, [size, mtime]);
  const reuse: FileRecord[] = [];
  const copy: FileRecord[] = [];
  for (const f of current) {
    const old = before.get(f.path);
    const same = old !== undefined && old[0] === f.size && old[1] === f.mtimeMs && f.mtimeMs < previous.listedAtMs - marginMs;
    (same ? reuse : copy).push(f);
  }
  return { reuse, copy };
}

export function parseManifest(text: string): FileManifest {
  const o = JSON.parse(text) as Partial<FileManifest>;
  if (o.formatVersion !== 1 || typeof o.listedAtMs !== 'number' || !Array.isArray(o.files) || typeof o.pgdata !== 'string') {
    throw new Error('files.json is not a pgbk file manifest (formatVersion 1)');
  }
  return o as FileManifest;
}
