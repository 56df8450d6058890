/**
 * restore_command's shell fast path, run by /bin/sh exactly as PostgreSQL would (after its %f/%p
 * substitution, in the data directory), with a stand-in for the Node fallback that records its
 * arguments and exits with a chosen status.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildFastRestoreCommand } from '../../../src/wal-fetch/fast-path.js';
import { placeInPgWal } from '../../../src/wal-fetch/placement.js';
import { bufferFill, pruneSpool, putInSpool } from '../../../src/wal-fetch/spool.js';

const NAME = '000000010000000000000007';
const P = 'pg_wal/RECOVERYXLOG';

/** PostgreSQL's restore_command substitution (%f, %p, %%). */
function substitute(cmd: string, f: string, p: string): string {
  return cmd.replace(/%(.)/g, (_m, c: string) => (c === 'f' ? f : c === 'p' ? p : c === '%' ? '%' : `%${c}`));
}

interface Env {
  readonly pgdata: string;
  readonly spool: string;
  readonly calls: string;
  readonly cmd: string;
  run(name: string, fallbackStatus: number, env?: NodeJS.ProcessEnv, p?: string): { status: number | null; stderr: string };
}

async function withEnv(configPath: string, fn: (e: Env) => Promise<void>): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pgbk-fast-'));
  try {
    const pgdata = path.join(root, 'data');
    await mkdir(path.join(pgdata, 'pg_wal', 'archive_status'), { recursive: true });
    const spool = path.join(pgdata, '.pgbk-spool');
    await mkdir(spool, { mode: 0o700 });
    const calls = path.join(root, 'calls');
    // Stand-in for `node cli.js`: node = /bin/sh, cli = this script.
    const fake = path.join(root, 'fake-cli.sh');
    await writeFile(fake, `printf '%s\\n' "$*" >> ${calls}\nexit "$FALLBACK_STATUS"\n`);
    const cmd = buildFastRestoreCommand({ node: '/bin/sh', cli: fake, configPath, server: 'main' });
    await fn({
      pgdata,
      spool,
      calls,
      cmd,
      run(name, fallbackStatus, env, p = P) {
        const r = spawnSync('/bin/sh', ['-c', substitute(cmd, name, p)], {
          cwd: pgdata,
          encoding: 'utf8',
          env: { ...process.env, ...env, FALLBACK_STATUS: String(fallbackStatus) },
        });
        return { status: r.status, stderr: r.stderr };
      },
    });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** The same as Env.run, without blocking the event loop (another process writes meanwhile). */
function runAsync(e: Env, name: string, fallbackStatus: number): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', substitute(e.cmd, name, P)], {
      cwd: e.pgdata,
      env: { ...process.env, FALLBACK_STATUS: String(fallbackStatus) },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('close', (status) => resolve({ status, stderr }));
  });
}

const callsOf = async (file: string): Promise<string[]> => (existsSync(file) ? (await readFile(file, 'utf8')).trim().split('\n') : []);

test('a verified spooled segment is renamed into %p without running the fallback', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    const data = Buffer.alloc(1 << 20, 3);
    await putInSpool(e.spool, NAME, data);
    const r = e.run(NAME, 99);
    assert.is(r.status, 0, r.stderr);
    assert.ok((await readFile(path.join(e.pgdata, P))).equals(data));
    // The sidecar stays for the worker to prune: one program fewer on PostgreSQL's wait (fast-path.ts).
    assert.equal(await readdir(e.spool), [`${NAME}.ck`], 'the segment is gone from the spool');
    assert.equal(await callsOf(e.calls), []);
  });
});

test('the sidecar a hit leaves behind never hands anything over: NAME again misses, a NAME spooled again brings its own; pruneSpool removes it', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    const first = Buffer.alloc(1 << 20, 3);
    await putInSpool(e.spool, NAME, first);
    assert.is(e.run(NAME, 99).status, 0);
    await rm(path.join(e.pgdata, P));
    // Asked again (a restarted recovery re-reads from its checkpoint): the leftover sidecar alone is a miss.
    const again = e.run(NAME, 1);
    assert.is(again.status, 1, again.stderr);
    assert.not.ok(existsSync(path.join(e.pgdata, P)));
    assert.equal(await callsOf(e.calls), [`wal-fetch --config /etc/pgbk.yaml main ${NAME} ${P}`]);
    // Spooled again (other bytes, to tell the copies apart): its own sidecar replaced the old one.
    const second = Buffer.alloc(1 << 20, 5);
    await putInSpool(e.spool, NAME, second);
    assert.is(e.run(NAME, 99).status, 0);
    assert.ok((await readFile(path.join(e.pgdata, P))).equals(second));
    await pruneSpool(e.spool, '000000010000000000000008');
    assert.equal(await readdir(e.spool), [], 'the worker prunes the sidecar of a consumed segment');
  });
});

test('a replaced, truncated or unsidecarred spooled file is never handed over: the fallback answers', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    const data = Buffer.alloc(1 << 20, 3);
    const cases: Array<[string, () => Promise<void>]> = [
      ['replaced (same length, other bytes)', () => writeFile(path.join(e.spool, NAME), Buffer.alloc(1 << 20, 4))],
      ['truncated', () => writeFile(path.join(e.spool, NAME), data.subarray(0, 4096))],
      ['sidecar missing', () => rm(path.join(e.spool, `${NAME}.ck`))],
      ['sidecar of other bytes', () => writeFile(path.join(e.spool, `${NAME}.ck`), '12345 1048576\n')],
      [
        'spooled before a restart of the machine (another boot id)',
        async () => {
          const ck = path.join(e.spool, `${NAME}.ck`);
          await writeFile(ck, (await readFile(ck, 'utf8')).replace(/^[0-9a-f-]{36}/, '00000000-0000-4000-8000-000000000000'));
        },
      ],
      ['same bytes written again in place', () => writeFile(path.join(e.spool, NAME), data)],
    ];
    for (const [label, damage] of cases) {
      await rm(e.calls, { force: true });
      await putInSpool(e.spool, NAME, data);
      await damage();
      const r = e.run(NAME, 1);
      assert.is(r.status, 1, `${label}: the fallback's status is restore_command's`);
      assert.not.ok(existsSync(path.join(e.pgdata, P)), `${label}: nothing left at %p for PostgreSQL to read`);
      assert.equal(await callsOf(e.calls), [`wal-fetch --config /etc/pgbk.yaml main ${NAME} ${P}`], label);
      if (label !== 'sidecar missing') assert.match(r.stderr, /spooled copy of 000000010000000000000007 failed its check/, label);
      assert.not.ok(existsSync(path.join(e.spool, NAME)), `${label}: the bad copy is gone`);
    }
  });
});

test('the file checked is the file handed over: a file swapped in during the rename is compared with it (same bytes: a hit; other bytes: the fallback)', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    const data = Buffer.alloc(1 << 20, 3);
    // A `mv` first in PATH that puts a new file (new inode) under the spooled name before the real
    // rename: the descriptor the fast path summed is then not the file at %p.
    const bin = path.join(path.dirname(e.pgdata), 'bin');
    await mkdir(bin);
    const swapIn = path.join(path.dirname(e.pgdata), 'swap-in');
    await writeFile(path.join(bin, 'mv'), `#!/bin/sh\ncp "${swapIn}" "$2.new" && /bin/mv -f "$2.new" "$2" && exec /bin/mv "$@"\n`, { mode: 0o755 });
    const env = { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` };
    await writeFile(swapIn, data);
    await putInSpool(e.spool, NAME, data);
    const same = e.run(NAME, 99, env);
    assert.is(same.status, 0, `an identical copy under a new inode is compared at %p and handed over\n${same.stderr}`);
    assert.ok((await readFile(path.join(e.pgdata, P))).equals(data));
    assert.equal(await callsOf(e.calls), []);
    await rm(path.join(e.pgdata, P));
    const other = Buffer.from(data);
    other[4096] = 4;
    await writeFile(swapIn, other);
    await putInSpool(e.spool, NAME, data);
    const r = e.run(NAME, 1, env);
    assert.is(r.status, 1, 'the fallback answers');
    assert.match(r.stderr, /failed its check/);
    assert.not.ok(existsSync(path.join(e.pgdata, P)), 'the swapped-in bytes are not left at %p');
    assert.equal(await callsOf(e.calls), [`wal-fetch --config /etc/pgbk.yaml main ${NAME} ${P}`]);
  });
});

test('the sidecar is read before the rename: a writer that spools NAME again once the rename took it away cannot fail the check of the file handed over', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    const data = Buffer.alloc(1 << 20, 3);
    // A `mv` first in PATH that replaces the sidecar before the real rename, as a second writer's
    // publish would right after the rename (the CI failure of session 19: "failed its check").
    const bin = path.join(path.dirname(e.pgdata), 'bin');
    await mkdir(bin);
    await writeFile(path.join(bin, 'mv'), `#!/bin/sh\nprintf 'another copy\\n' > "$2.ck.new" && /bin/mv -f "$2.ck.new" "$2.ck" && exec /bin/mv "$@"\n`, {
      mode: 0o755,
    });
    await putInSpool(e.spool, NAME, data);
    const r = e.run(NAME, 99, { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` });
    assert.is(r.status, 0, r.stderr);
    assert.not.match(r.stderr, /failed its check/);
    assert.ok((await readFile(path.join(e.pgdata, P))).equals(data));
    assert.equal(await callsOf(e.calls), []);
  });
});

test('a spooled file rewritten in place with the same length and the same CRC-32 (what a `cksum` check passed) is never handed over', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    const data = Buffer.alloc(1 << 20, 3);
    for (let i = 0; i < data.length; i += 4099) data[i] = i & 0xff;
    await putInSpool(e.spool, NAME, data);
    const file = path.join(e.spool, NAME);
    const cksum = (): string => execFileSync('sh', ['-c', 'cksum < "$1"', 'sh', file], { encoding: 'utf8' }).trim();
    const before = cksum();
    // XOR cksum's generator polynomial (x^32 + x^26 + … + 1 = 0x104C11DB7, 5 bytes) into the file:
    // the difference is a multiple of the polynomial, so the CRC (and the length) stay the same.
    const fh = await open(file, 'r+');
    const patch = Buffer.alloc(5);
    await fh.read(patch, 0, 5, 8192);
    for (const [i, x] of [0x01, 0x04, 0xc1, 0x1d, 0xb7].entries()) patch[i] = patch[i]! ^ x;
    await fh.write(patch, 0, 5, 8192);
    await fh.close();
    assert.is(cksum(), before, 'same CRC-32 and length as the verified bytes');
    assert.not.ok((await readFile(file)).equals(data), 'other bytes');
    const r = e.run(NAME, 1);
    assert.is(r.status, 1, 'the fallback answers');
    assert.match(r.stderr, /spooled copy of 000000010000000000000007 failed its check/);
    assert.not.ok(existsSync(path.join(e.pgdata, P)), 'nothing left at %p for PostgreSQL to read');
    assert.equal(await callsOf(e.calls), [`wal-fetch --config /etc/pgbk.yaml main ${NAME} ${P}`]);
  });
});

test('pg_wal on another filesystem (mv copies): a verified segment is still handed over, a damaged one is not', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    // Another filesystem than the data directory's when the machine has one (tmpfs /dev/shm vs /tmp).
    const here = statSync(e.pgdata).dev;
    const elsewhere = ['/dev/shm', '/tmp', '/var/tmp'].find((d) => existsSync(d) && statSync(d).dev !== here);
    const walDir = await mkdtemp(path.join(elsewhere ?? os.tmpdir(), 'pgbk-fast-wal-'));
    try {
      await rm(path.join(e.pgdata, 'pg_wal'), { recursive: true });
      await symlink(walDir, path.join(e.pgdata, 'pg_wal'));
      const data = Buffer.alloc(1 << 20, 6);
      await putInSpool(e.spool, NAME, data);
      const hit = e.run(NAME, 99);
      assert.is(hit.status, 0, hit.stderr);
      assert.ok((await readFile(path.join(walDir, 'RECOVERYXLOG'))).equals(data));
      assert.equal(await callsOf(e.calls), []);
      await rm(path.join(walDir, 'RECOVERYXLOG'));
      await putInSpool(e.spool, NAME, data);
      await writeFile(path.join(e.spool, NAME), Buffer.alloc(1 << 20, 7));
      const bad = e.run(NAME, 1);
      assert.is(bad.status, 1, 'the fallback answers');
      assert.not.ok(existsSync(path.join(walDir, 'RECOVERYXLOG')));
    } finally {
      await rm(walDir, { recursive: true, force: true });
    }
  });
});

test('a miss runs the fallback with the exact arguments and keeps its exit status (1 and fatal)', async () => {
  await withEnv("/tmp/100% o'k/p.yaml", async (e) => {
    for (const status of [0, 1, 255]) {
      await rm(e.calls, { force: true });
      const r = e.run('00000002.history', status);
      assert.is(r.status, status);
      assert.equal(await callsOf(e.calls), [`wal-fetch --config /tmp/100% o'k/p.yaml main 00000002.history ${P}`]);
      assert.is(r.stderr, '', 'a plain miss is silent');
    }
  });
});

test('while the worker is writing the segment (NAME.pending) the fast path waits for it; a stale marker only delays', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    const data = Buffer.alloc(1 << 20, 5);
    const pending = path.join(e.spool, `${NAME}.pending`);
    await writeFile(pending, '');
    const script = `setTimeout(async () => { const m = await import(${JSON.stringify(new URL('../../../src/wal-fetch/spool.js', import.meta.url).href)}); await m.putInSpool(${JSON.stringify(e.spool)}, '${NAME}', Buffer.alloc(1 << 20, 5)); (await import('node:fs')).rmSync(${JSON.stringify(pending)}); }, 300);`;
    const writer = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
    const writerDone = new Promise<number | null>((res) => writer.once('close', res));
    const r = await runAsync(e, NAME, 99);
    assert.is(await writerDone, 0, 'the stand-in worker published the segment');
    assert.is(r.status, 0, r.stderr);
    assert.ok((await readFile(path.join(e.pgdata, P))).equals(data));
    assert.equal(await callsOf(e.calls), [], 'no Node start');

    await writeFile(path.join(e.spool, '000000010000000000000008.pending'), '');
    const stale = await runAsync(e, '000000010000000000000008', 1);
    assert.is(stale.status, 1);
    assert.is((await callsOf(e.calls)).length, 1, 'the fallback answers after a bounded wait');
  });
});

test('without a spool directory at all the fallback answers', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    await rm(e.spool, { recursive: true });
    assert.is(e.run(NAME, 1).status, 1);
    assert.is((await callsOf(e.calls)).length, 1);
  });
});

/** Place `data` as the prefetch worker does (placement.ts). */
function place(e: Env, name: string, data: Buffer): Promise<'placed' | 'exists'> {
  return placeInPgWal(e.spool, path.join(e.pgdata, 'pg_wal'), name, bufferFill(data));
}

test('a segment placed in pg_wal: exit 1 sends PostgreSQL there, nothing is moved or started, NAME.used tells the worker; .done as for a restored file', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    const data = Buffer.alloc(1 << 20, 7);
    assert.is(await place(e, NAME, data), 'placed');
    assert.ok(existsSync(path.join(e.pgdata, 'pg_wal', 'archive_status', `${NAME}.done`)));
    assert.equal((await readdir(path.join(e.pgdata, 'pg_wal'))).sort(), [NAME, 'archive_status'], 'no temp file left in pg_wal');
    const r = e.run(NAME, 99);
    assert.is(r.status, 1, r.stderr);
    assert.match(r.stderr, /pgbk wal-fetch: 000000010000000000000007 prefetched into pg_wal/);
    assert.ok((await readFile(path.join(e.pgdata, 'pg_wal', NAME))).equals(data));
    assert.not.ok(existsSync(path.join(e.pgdata, P)));
    assert.ok(existsSync(path.join(e.spool, `${NAME}.used`)));
    assert.equal(await callsOf(e.calls), []);
    // Consumed: the worker prunes link, reference and marker; pg_wal/NAME stays PostgreSQL's.
    await pruneSpool(e.spool, '000000010000000000000008');
    assert.equal(await readdir(e.spool), []);
    assert.ok(existsSync(path.join(e.pgdata, 'pg_wal', NAME)));
  });
});

test('placement never replaces a pg_wal file, and a pg_wal file the worker did not place is never a hit', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    const theirs = Buffer.alloc(1 << 20, 1);
    await writeFile(path.join(e.pgdata, 'pg_wal', NAME), theirs);
    assert.is(await place(e, NAME, Buffer.alloc(1 << 20, 7)), 'exists');
    assert.ok((await readFile(path.join(e.pgdata, 'pg_wal', NAME))).equals(theirs), 'left alone');
    assert.equal(await readdir(e.spool), [], 'nothing published');
    assert.equal(await readdir(path.join(e.pgdata, 'pg_wal', 'archive_status')), [], 'no .done for a file that is not ours');
    const r = e.run(NAME, 1);
    assert.is(r.status, 1);
    assert.equal(await callsOf(e.calls), [`wal-fetch --config /etc/pgbk.yaml main ${NAME} ${P}`], 'Node answers: the archive decides, not pg_wal');
  });
});

test('a placed segment written, replaced or unreferenced since is never a hit: its link goes, the fallback answers and PostgreSQL gets the archive copy at %p', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    const data = Buffer.alloc(1 << 20, 7);
    const wal = path.join(e.pgdata, 'pg_wal', NAME);
    const cases: Array<[string, () => Promise<void>, boolean]> = [
      ['same bytes written again in place', () => writeFile(wal, data), true],
      ['truncated', () => writeFile(wal, data.subarray(0, 4096)), true],
      [
        'replaced by another file',
        async () => {
          await rm(wal);
          await writeFile(wal, data);
        },
        false,
      ],
      ['reference missing', () => rm(path.join(e.spool, `${NAME}.ref`)), true],
      ['link missing', () => rm(path.join(e.spool, `${NAME}.link`)), false],
    ];
    for (const [label, damage, saysFailed] of cases) {
      await rm(e.calls, { force: true });
      await rm(wal, { force: true });
      await rm(path.join(e.pgdata, 'pg_wal', 'archive_status', `${NAME}.done`), { force: true });
      for (const f of await readdir(e.spool)) await rm(path.join(e.spool, f));
      assert.is(await place(e, NAME, data), 'placed', label);
      await damage();
      const r = e.run(NAME, 0);
      assert.is(r.status, 0, `${label}: the fallback's status is restore_command's`);
      assert.equal(await callsOf(e.calls), [`wal-fetch --config /etc/pgbk.yaml main ${NAME} ${P}`], label);
      assert.not.ok(existsSync(path.join(e.spool, `${NAME}.used`)), label);
      if (saysFailed) {
        assert.match(r.stderr, /prefetched copy of 000000010000000000000007 in pg_wal failed its check/, label);
        assert.not.ok(existsSync(path.join(e.spool, `${NAME}.link`)), `${label}: the placement is forgotten`);
      }
    }
  });
});

test("a placement is never an exit 1 for another caller than PostgreSQL's restore (%p not pg_wal/RECOVERYXLOG, e.g. pg_rewind): the file comes to %p", async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    assert.is(await place(e, NAME, Buffer.alloc(1 << 20, 7)), 'placed');
    const other = `pg_wal/${NAME}.rewind`;
    const r = e.run(NAME, 0, undefined, other);
    assert.is(r.status, 0, r.stderr);
    assert.equal(await callsOf(e.calls), [`wal-fetch --config /etc/pgbk.yaml main ${NAME} ${other}`]);
    assert.not.match(r.stderr, /failed its check/);
    assert.ok(existsSync(path.join(e.spool, `${NAME}.link`)), 'the placement stays for PostgreSQL');
  });
});

test('while the worker is placing the segment (NAME.pending) the fast path waits for the placement', async () => {
  await withEnv('/etc/pgbk.yaml', async (e) => {
    await writeFile(path.join(e.spool, `${NAME}.pending`), '');
    const pending = runAsync(e, NAME, 99);
    await new Promise((r) => setTimeout(r, 150));
    assert.is(await place(e, NAME, Buffer.alloc(1 << 20, 7)), 'placed');
    await rm(path.join(e.spool, `${NAME}.pending`));
    const r = await pending;
    assert.is(r.status, 1, r.stderr);
    assert.match(r.stderr, /prefetched into pg_wal/);
    assert.equal(await callsOf(e.calls), []);
  });
});

test.run();
