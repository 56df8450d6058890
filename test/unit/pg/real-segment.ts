/**
 * A real WAL segment for tests: initdb (as the postgres OS user: PostgreSQL refuses root) into a
 * temp dir, then read pg_wal/000000010000000000000001 and the system identifier pg_controldata
 * reports. initdb costs seconds and four unit files need a segment: it runs once per test process
 * (uvu runs every unit file in one), each caller gets its own copy of the bytes, and the directory
 * is removed when the process exits. Callers still call cleanup() (a no-op for the shared one).
 */

import { spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface RealSegment {
  readonly name: string;
  readonly bytes: Buffer;
  readonly systemIdentifier: string;
  readonly segSize: number;
  /** The temp directory (pgdata is <dir>/data). */
  readonly dir: string;
  cleanup(): void;
}

function run(args: readonly string[]): string {
  const asPostgres = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  const argv = [...asPostgres, ...args];
  const r = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

interface Made {
  readonly name: string;
  readonly bytes: Buffer;
  readonly systemIdentifier: string;
  readonly segSize: number;
  readonly dir: string;
}

let made: Made | undefined;

export function makeRealSegment(): RealSegment {
  made ??= initdbSegment();
  // A fresh Buffer per caller: a test that patches its segment cannot change another file's.
  return { ...made, bytes: Buffer.from(made.bytes), cleanup: () => undefined };
}

function initdbSegment(): Made {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-initdb-'));
  if (process.getuid?.() === 0) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const pgdata = path.join(dir, 'data');
  run([path.join(PG_BIN, 'initdb'), '-D', pgdata, '-A', 'trust', '--no-sync', '--no-instructions', '-U', 'postgres']);
  const control = run([path.join(PG_BIN, 'pg_controldata'), '-D', pgdata]);
  const sysid = /^Database system identifier:\s+(\d+)$/m.exec(control)?.[1];
  const segSize = /^Bytes per WAL segment:\s+(\d+)$/m.exec(control)?.[1];
  if (sysid === undefined || segSize === undefined) throw new Error(`unexpected pg_controldata output:\n${control}`);
  const name = '000000010000000000000001';
  const segment: Made = {
    name,
    bytes: readFileSync(path.join(pgdata, 'pg_wal', name)),
    systemIdentifier: sysid,
    segSize: Number(segSize),
    dir,
  };
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return segment;
}

/** A copy of `bytes` with the long header's system identifier replaced (another cluster's WAL). */
export function withSystemIdentifier(bytes: Buffer, sysid: bigint): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeBigUInt64LE(sysid, 24);
  return copy;
}
