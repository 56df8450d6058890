/**
 * The archive_command's shell fast path, run by the real /bin/sh (dash) and by bash as PostgreSQL
 * would run it (%p, %f and %% expanded, in the data directory): it exits 0 only for a marker pair
 * that brackets this very file's mtime; anything else — no marker, half a pair, a pair for another
 * file, a file changed since, no worker — runs the real client. The command printed by earlier
 * releases (GNU stat of %p against the marker's text) still accepts the markers written now.
 */
import { execFile } from 'node:child_process';
import { type BigIntStats, stat as statCb } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dropMarkers, fastPathArchiveCommand, fileStamp, HI_SUFFIX, MARKER_MARGIN_NS, writeMarker } from '../../../src/wal-push/fast-path.js';

const pexec = promisify(execFile);
const NAME = '000000010000000000000007';

/** PostgreSQL's expansion of archive_command: %p, %f, %% (left to right). */
function expand(cmd: string, p: string, f: string): string {
  return cmd.replace(/%([pf%])/g, (_m, c: string) => (c === 'p' ? p : c === 'f' ? f : '%'));
}

interface World {
  readonly root: string;
  readonly pgdata: string;
  readonly markers: string;
  readonly socket: string;
  readonly server: net.Server;
}

async function world(dirName = 'run'): Promise<World> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pgbk-fastpath-'));
  const pgdata = path.join(root, 'data');
  await mkdir(path.join(pgdata, 'pg_wal'), { recursive: true });
  await writeFile(path.join(pgdata, 'pg_wal', NAME), Buffer.alloc(64 * 1024, 1));
  const markers = path.join(root, dirName, 'acked');
  await mkdir(markers, { recursive: true });
  const socket = path.join(root, dirName, 'w.sock');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(socket, r));
  server.unref(); // a failed assertion skips done(): the open socket must not keep the run alive
  return { root, pgdata, markers, socket, server };
}

async function done(w: World): Promise<void> {
  await new Promise((r) => w.server.close(r));
  await rm(w.root, { recursive: true, force: true });
}

const FALLBACK = ['sh', '-c', 'echo "fallback for $1"; exit 7', 'fallback'];

/**
 * The command the releases before session 23 printed (fast-path.ts then): GNU stat of %p compared
 * with the marker's text. Archive commands already in postgresql.conf keep that text.
 */
function earlierReleaseCommand(w: World, waitSeconds: number): string {
  const tries = Math.max(1, Math.round(waitSeconds / 0.05));
  return [
    `m=${w.markers}/%f; n=0;`,
    `while [ -S ${w.socket} ] && [ $n -lt ${tries} ]; do`,
    'if { read -r s < "$m"; } 2>/dev/null && [ "$s" = "$(stat -c %%d:%%i:%%s:%%.9Y -- %p)" ]; then exit 0; fi;',
    'sleep 0.05; n=$((n+1));',
    'done;',
    `exec ${FALLBACK.map((a) => `'${a}'`).join(' ')} %p`,
  ].join(' ');
}

async function runCommand(
  w: World,
  waitSeconds: number,
  shell = 'sh',
  cmd = fastPathArchiveCommand({ socket: w.socket, markers: w.markers, waitSeconds, fallback: FALLBACK }),
): Promise<{ code: number; out: string; ms: number }> {
  const t0 = Date.now();
  try {
    const r = await pexec(shell, ['-c', expand(cmd, `pg_wal/${NAME}`, NAME)], { cwd: w.pgdata });
    return { code: 0, out: r.stdout, ms: Date.now() - t0 };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout, ms: Date.now() - t0 };
  }
}

function bigStat(file: string): Promise<BigIntStats> {
  return new Promise((resolve, reject) => statCb(file, { bigint: true }, (err, st) => (err ? reject(err) : resolve(st))));
}

async function stampOf(file: string): Promise<string> {
  return fileStamp(await bigStat(file));
}

/** What the worker does once `file` is durable: the marker pair for it, as read now. */
async function mark(markers: string, name: string, file: string): Promise<void> {
  const st = await bigStat(file);
  await writeMarker(markers, name, fileStamp(st), st.mtimeNs);
}

test('the stamp is what GNU stat prints for the file', async () => {
  const w = await world();
  const file = path.join(w.pgdata, 'pg_wal', NAME);
  const { stdout } = await pexec('stat', ['-c', '%d:%i:%s:%.9Y', '--', file]);
  assert.is(await stampOf(file), stdout.trim());
  await done(w);
});

test('a marker pair for this very file answers PostgreSQL without the client, in dash and bash', async () => {
  const w = await world();
  const file = path.join(w.pgdata, 'pg_wal', NAME);
  await mark(w.markers, NAME, file);
  for (const shell of ['sh', 'bash']) {
    const r = await runCommand(w, 2, shell);
    assert.is(r.code, 0, shell);
    assert.is(r.out, '');
  }
  // The pair brackets the file's mtime within the margin (Node's microsecond times, truncated).
  const m = (await bigStat(file)).mtimeNs;
  const lo = (await bigStat(path.join(w.markers, NAME))).mtimeNs;
  const hi = (await bigStat(path.join(w.markers, NAME + HI_SUFFIX))).mtimeNs;
  assert.ok(lo < m && m < hi, `${lo} < ${m} < ${hi}`);
  assert.ok(m - lo <= MARKER_MARGIN_NS + 2_000n && hi - m <= MARKER_MARGIN_NS, `${m - lo} / ${hi - m} ns`);
  // The identity the pair gives: ~10 µs of mtime, not more (a literal, not the constant).
  assert.ok(hi - lo <= 12_000n, `window ${hi - lo} ns`);
  // The text is the stamp, so a command printed by an earlier release (stat) accepts it too.
  assert.is((await runCommand(w, 2, 'sh', earlierReleaseCommand(w, 2))).code, 0);
  await done(w);
});

test('no marker: the real client runs after the wait', async () => {
  const w = await world();
  const r = await runCommand(w, 0.2);
  assert.is(r.code, 7);
  assert.is(r.out, `fallback for pg_wal/${NAME}\n`);
  assert.ok(r.ms >= 150, `waited only ${r.ms} ms`);
  await done(w);
});

test('a marker written while the command waits is taken', async () => {
  const w = await world();
  setTimeout(() => void mark(w.markers, NAME, path.join(w.pgdata, 'pg_wal', NAME)), 200);
  const r = await runCommand(w, 5);
  assert.is(r.code, 0, r.out);
  assert.ok(r.ms < 4000);
  await done(w);
});

test('half a pair, a pair for another file, or a file changed since fall back to the real client, in dash and bash', async () => {
  const w = await world();
  const file = path.join(w.pgdata, 'pg_wal', NAME);
  const other = path.join(w.pgdata, 'other');
  const lo = path.join(w.markers, NAME);
  const hi = lo + HI_SUFFIX;
  const expect = async (code: number, why: string): Promise<void> => {
    for (const shell of ['sh', 'bash']) assert.is((await runCommand(w, 0.1, shell)).code, code, `${shell}: ${why}`);
  };
  await mark(w.markers, NAME, file);
  await expect(0, 'the pair for this file');
  await unlink(hi);
  await expect(7, 'no NAME.hi');
  await mark(w.markers, NAME, file);
  await unlink(lo);
  await expect(7, 'no NAME (bash: -nt is true when the second file is missing)');
  // A pair made for another file written 30 ms later does not bracket this one.
  await new Promise((r) => setTimeout(r, 30));
  await writeFile(other, Buffer.alloc(64 * 1024, 1));
  await mark(w.markers, NAME, other);
  await expect(7, 'a pair for another file');
  // The pair for this file, then the file is written again (recycled, rewritten): not trusted.
  await mark(w.markers, NAME, file);
  await expect(0, 'the pair for this file again');
  await new Promise((r) => setTimeout(r, 30));
  await writeFile(file, Buffer.alloc(64 * 1024, 2));
  await expect(7, 'the file written since');
  // Its mtime set back exactly to the marked one's second but not its microseconds: still not trusted.
  const st = await bigStat(file);
  await mark(w.markers, NAME, file);
  await utimes(file, Number(st.mtimeNs / 1_000_000_000n), Number(st.mtimeNs / 1_000_000_000n) + 0.5);
  await expect(7, 'another mtime in the same second');
  await done(w);
});

test('a new pair for a name never pairs with the old one: NAME is removed before NAME.hi is replaced', async () => {
  const w = await world();
  const file = path.join(w.pgdata, 'pg_wal', NAME);
  await mark(w.markers, NAME, file);
  const before = await readdir(w.markers);
  assert.equal(before.sort(), [NAME, NAME + HI_SUFFIX]);
  // Written again for a changed file: both halves replaced, no temp file left.
  await new Promise((r) => setTimeout(r, 30));
  await writeFile(file, Buffer.alloc(64 * 1024, 3));
  await mark(w.markers, NAME, file);
  assert.equal((await readdir(w.markers)).sort(), [NAME, NAME + HI_SUFFIX]);
  assert.is((await runCommand(w, 0.1)).code, 0);
  await done(w);
});

test('no worker socket: the real client runs at once, marker or not', async () => {
  const w = await world();
  await mark(w.markers, NAME, path.join(w.pgdata, 'pg_wal', NAME));
  await new Promise((r) => w.server.close(r));
  const r = await runCommand(w, 5);
  assert.is(r.code, 7);
  assert.ok(r.ms < 2000, `waited ${r.ms} ms with no worker`);
  await rm(w.root, { recursive: true, force: true });
});

test('paths with spaces, quotes and % survive sh quoting and PostgreSQL expansion', async () => {
  const w = await world("it's 100% here");
  await mark(w.markers, NAME, path.join(w.pgdata, 'pg_wal', NAME));
  assert.is((await runCommand(w, 1)).code, 0);
  await done(w);
});

test('dropMarkers keeps markers of files still .ready and removes the rest', async () => {
  const w = await world();
  for (const n of ['A', 'B', 'C']) await writeMarker(w.markers, n, 'x', 1_700_000_000_000_000_000n);
  await writeFile(path.join(w.markers, '.D.1.tmp'), 'x');
  await dropMarkers(w.markers, await readdir(w.markers), new Set(['B']));
  assert.equal((await readdir(w.markers)).sort(), ['.D.1.tmp', 'B', `B${HI_SUFFIX}`]);
  assert.ok((await stat(path.join(w.markers, 'B'))).isFile());
  await done(w);
});

test.run();
