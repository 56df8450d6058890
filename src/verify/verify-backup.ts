/**
 * `pgbk verify`: is a stored backup still what was written, and can it be recovered?
 *
 * 1. Every stored file is re-read and compared with the sha256 recorded in backup.json (bit rot,
 *    truncation, a file replaced by hand). A file present but not recorded, or recorded but gone,
 *    is a problem too.
 * 2. pg_verifybackup checks the backup's content against its backup_manifest (every data file's
 *    size and CRC32C). PostgreSQL 15's pg_verifybackup reads only plain-format backups, and pgbk
 *    stores tar archives, so each tar is unpacked into a temporary directory first — in the same
 *    single pass that hashes the stored bytes (step 1 for tars). Cost: temporary disk space equal to
 *    the backup's uncompressed data size, and one full decompression. `--quick` skips this step
 *    (step 1 still reads every stored byte).
 * 3. The WAL the backup needs to become consistent (beginWal…endWal) is complete in the archive and
 *    every segment decompresses, matches its SHA256SUMS entry and carries this cluster's header.
 */

import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compressionOfFile } from '../catalog/compress.js';
import { toPgbkError } from '../errors.js';
import { findPgBinary } from '../pg/pg-bin.js';
import type { BackupRecord, CopiedBackup, ServerIdentity } from '../model/types.js';
import { sha256Hasher } from '../lib/checksum.js';
import { extractStoredTar } from '../restore/extract.js';
import { storedSource, type StoredSource } from '../catalog/stored-source.js';
import type { Progress, ProgressFactory } from '../lib/progress.js';
import { verifyWalRange } from './verify-wal.js';
import { plural } from '../lib/plural.js';
import { mapLimited } from '../lib/map-limited.js';
import type { StoredObject } from '../backup/ssh/stored-tree.js';

export interface BackupVerification {
  readonly id: string;
  readonly status: BackupRecord['status'];
  readonly ok: boolean;
  readonly problems: readonly string[];
  /** What was checked, for the report ("3 files", "pg_verifybackup ok", "WAL 4 segments"). */
  readonly checked: readonly string[];
}

export interface VerifyOptions {
  readonly catalog: string;
  readonly server: string;
  readonly identity: ServerIdentity | undefined;
  /** Skip unpacking and pg_verifybackup (checksums and WAL are still verified). */
  readonly quick: boolean;
  /** Where tar archives are unpacked for pg_verifybackup. */
  readonly tempRoot: string;
  readonly env: NodeJS.ProcessEnv;
  /** On a terminal: show stored bytes read per backup. */
  readonly progress?: ProgressFactory;
}

const TAR_RE = /^(base|\d+)\.tar(\.zst|\.gz)?$/;

function run(binary: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-16384)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-16384)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/**
 * An `ssh` backup: files.json and backup_label against backup.json, then every stored chunk of
 * every file against the sha256 files.json records (stored-tree.ts walks it as restore does), and
 * nothing recorded missing or unrecorded present. There is no backup_manifest for pg_verifybackup.
 */
/** Stored objects read at once by verify, and how many are listed ahead of the reads. */
const VERIFY_READS = 16;
const VERIFY_BATCH = 256;

async function verifySshFiles(record: CopiedBackup, opts: VerifyOptions, problems: string[], checked: string[]): Promise<void> {
  const { readStoredManifest, sha256OfStored } = await import('../backup/ssh/restore-tree.js');
  const { openStoredTree, readStoredObject, walkStoredRoot } = await import('../backup/ssh/stored-tree.js');
  const tree = await openStoredTree(opts.catalog, opts.server, record.id);
  const recorded = record.checksums;
  for (const name of Object.keys(recorded)) {
    const actual = await sha256OfStored(tree, name);
    if (actual === undefined) problems.push(`${name} is missing`);
    else if (actual !== recorded[name]) problems.push(`${name} does not match its recorded sha256 (recorded ${recorded[name]}, read ${actual})`);
  }
  if (problems.length > 0) return;
  const manifest = await readStoredManifest(tree);
  const roots = ['data', ...manifest.tablespaces.map((t) => `tablespaces/${t.oid}`)];
  let chunks = 0;
  let files = 0;
  let readBytes = 0;
  // Every chunk is read back, uncompressed, reused ones included: the total is the data size.
  const progress = opts.progress?.(`verifying ${record.id}:`, record.sizes.data);
  for (const root of roots) {
    try {
      // Several reads at once across files: on object storage each chunk is a GET, and most
      // files are one chunk. A batch of objects at a time keeps memory flat on large clusters.
      let batch: StoredObject[] = [];
      const readBatch = async (): Promise<void> => {
        await mapLimited(batch, VERIFY_READS, async (o) => {
          try {
            await readStoredObject(o, opts.server, tree);
            chunks++;
            readBytes += o.length;
            progress?.update(readBytes, files);
          } catch (err) {
            problems.push(toPgbkError(err).message);
          }
        });
        batch = [];
      };
      for await (const e of walkStoredRoot(tree, root, manifest, opts.server)) {
        if (e.kind !== 'file') continue;
        files++;
        batch.push(...e.objects);
        if (batch.length >= VERIFY_BATCH) await readBatch();
      }
      await readBatch();
    } catch (err) {
      problems.push(toPgbkError(err).message);
    }
  }
  progress?.finish();
  const unhashed = manifest.formatVersion === 1 ? ' (formatVersion 1: no chunk hashes, sizes only)' : '';
  checked.push(
    `${plural(Object.keys(recorded).length, 'recorded file')} checksummed; ${plural(files, 'data file')}, ${plural(chunks, 'chunk')} read${unhashed}`,
  );
  checked.push('pg_verifybackup skipped (ssh backup: no backup_manifest)');
}

/** Stored files vs backup.json; tars are unpacked on the way when the manifest is checked. */
async function verifyFiles(record: CopiedBackup, source: StoredSource, opts: VerifyOptions, problems: string[], checked: string[]): Promise<void> {
  const recorded = record.checksums;
  const present = (await source.names()).filter((n) => n !== 'backup.json' && !n.startsWith('.')).sort();
  for (const name of Object.keys(recorded)) if (!present.includes(name)) problems.push(`${name} is missing`);
  for (const name of present) if (recorded[name] === undefined) problems.push(`${name} is not recorded in backup.json`);
  const files = present.filter((n) => recorded[n] !== undefined);
  const withManifest = !opts.quick && files.includes('backup_manifest') && files.some((n) => TAR_RE.test(n));
  let unpackDir: string | undefined;
  let progress: Progress | undefined;
  try {
    if (opts.progress !== undefined) {
      const sizes = await Promise.all(files.map((n) => source.size(n)));
      progress = opts.progress(
        `verifying ${record.id}:`,
        sizes.reduce((a, b) => a + b, 0),
      );
    }
    let readBytes = 0;
    let readFiles = 0;
    if (withManifest) unpackDir = await mkdtemp(path.join(opts.tempRoot, `pgbk-verify-${record.id}-`));
    let unpackFailed = false;
    for (const name of files) {
      const file = source.where(name);
      const expected = recorded[name]!;
      const m = TAR_RE.exec(name);
      if (unpackDir !== undefined && m !== null) {
        // A tablespace tar (<oid>.tar) holds what a plain backup has under pg_tblspc/<oid>/.
        const dest = m[1] === 'base' ? unpackDir : path.join(unpackDir, 'pg_tblspc', m[1]!);
        await mkdir(dest, { recursive: true });
        try {
          const before = readBytes;
          const filesBefore = readFiles;
          const r = await extractStoredTar({
            file,
            source: source.open(name),
            compression: compressionOfFile(name),
            expectedSha256: expected,
            destDir: dest,
            server: opts.server,
            ...(progress === undefined ? {} : { onProgress: (b: number, f: number) => progress?.update(before + b, filesBefore + f) }),
          });
          readBytes += r.storedBytes;
          readFiles += r.files;
        } catch (err) {
          problems.push(`${name}: ${toPgbkError(err).message}`);
          unpackFailed = true;
        }
        continue;
      }
      const hash = sha256Hasher();
      let size = 0;
      for await (const chunk of source.open(name)) {
        hash.update(chunk);
        size += chunk.length;
      }
      const actual = hash.hex();
      if (actual !== expected) problems.push(`${name} does not match its recorded sha256 (recorded ${expected}, read ${actual})`);
      if (progress !== undefined) {
        readBytes += size;
        readFiles++;
        progress.update(readBytes, readFiles);
      }
    }
    progress?.finish();
    checked.push(`${plural(files.length, 'stored file')} checksummed`);
    if (unpackDir === undefined) {
      checked.push(opts.quick ? 'pg_verifybackup skipped (--quick)' : 'pg_verifybackup skipped (no manifest)');
      return;
    }
    if (unpackFailed) {
      checked.push('pg_verifybackup skipped (a tar could not be unpacked)');
      return;
    }
    const binary = findPgBinary('pg_verifybackup', record.pgVersion, opts.env);
    // WAL is verified from the archive below (step 3): pg_verifybackup has none to parse here.
    const manifest = await source.localFile('backup_manifest');
    let r: { code: number | null; output: string };
    try {
      r = await run(binary, ['--no-parse-wal', '--quiet', '--manifest-path', manifest.path, unpackDir], opts.env);
    } finally {
      await manifest.dispose();
    }
    if (r.code === 0) checked.push('pg_verifybackup ok');
    else problems.push(`pg_verifybackup failed: ${r.output.trim().split('\n').slice(-5).join('; ')}`);
  } finally {
    progress?.finish();
    if (unpackDir !== undefined) await rm(unpackDir, { recursive: true, force: true });
  }
}

export async function verifyBackup(record: BackupRecord, opts: VerifyOptions): Promise<BackupVerification> {
  const problems: string[] = [];
  const checked: string[] = [];
  const result = (): BackupVerification => ({ id: record.id, status: record.status, ok: problems.length === 0, problems, checked });
  if (record.status === 'FAILED' || record.status === 'STARTED') {
    checked.push(`not verified: status ${record.status}`);
    return result();
  }
  try {
    if (record.method === 'ssh') await verifySshFiles(record, opts, problems, checked);
    else await verifyFiles(record, await storedSource(opts.catalog, opts.server, record.id), opts, problems, checked);
  } catch (err) {
    problems.push(toPgbkError(err).message);
  }
  if (record.status === 'WAITING_FOR_WAL') {
    checked.push('WAL not verified: the backup is still waiting for its end segment');
    return result();
  }
  if (opts.identity === undefined) {
    problems.push('server.json is missing: cannot check the WAL segment size and cluster');
    return result();
  }
  const wal = await verifyWalRange(opts.catalog, opts.server, record.beginWal, record.endWal, opts.identity);
  problems.push(...wal.problems);
  checked.push(`WAL ${record.beginWal}…${record.endWal}: ${plural(wal.checked, 'segment')} read`);
  return result();
}

export function defaultTempRoot(env: NodeJS.ProcessEnv): string {
  return env['TMPDIR'] ?? os.tmpdir();
}
