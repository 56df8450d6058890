/**
 * A local unpack's pipeline (src/restore/unpack.ts LOCAL_PIPELINE): the pipe from the
 * decompressor to tar is sized to 1 MiB, and the decompressor's own failure is still told apart
 * from tar's though the shell between them has no pipefail. Real sh, perl and GNU tar; the
 * decompressor is a small perl or sh program standing in for zstd.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PgbkError } from '../../../src/errors.js';
import { localHost } from '../../../src/restore/host.js';
import { PIPE_BYTES, unpackInto } from '../../../src/restore/unpack.js';

async function* bytes(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

/** A small tar holding one file `hello` ("hi\n"). */
async function smallTar(dir: string): Promise<string> {
  const src = path.join(dir, 'src');
  await mkdir(src);
  await writeFile(path.join(src, 'hello'), 'hi\n');
  const tar = path.join(dir, 'small.tar');
  const r = spawnSync('tar', ['-c', '-f', tar, '-C', src, 'hello']);
  assert.is(r.status, 0, r.stderr.toString());
  return tar;
}

test("the decompressor writes into a 1 MiB pipe (it waits up to 5 s for the pipeline's perl to size it)", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-unpack-pipe-'));
  try {
    const tar = await smallTar(dir);
    const seen = path.join(dir, 'pipe-size');
    const target = path.join(dir, 'target');
    await mkdir(target);
    // F_GETPIPE_SZ (1032) on its stdout, polled until it reaches PIPE_BYTES, written aside; then the tar.
    const fake = [
      'my ($seen, $tar) = @ARGV; my $sz = 0;',
      `for (1..500) { $sz = fcntl(STDOUT, 1032, 0) + 0; last if $sz >= ${PIPE_BYTES}; select(undef, undef, undef, 0.01); }`,
      'open(my $f, ">", $seen) or die; print $f $sz; close $f;',
      'open(my $t, "<", $tar) or die; binmode $t; binmode STDOUT; local $/; print STDOUT <$t>;',
    ].join(' ');
    const r = await unpackInto({
      host: localHost(),
      dir: target,
      source: bytes(Buffer.from('ignored')),
      decompress: ['perl', '-e', fake, seen, tar],
      what: 'small.tar.fake',
    });
    assert.is(r.files, 1);
    assert.is(await readFile(path.join(target, 'hello'), 'utf8'), 'hi\n');
    assert.is(Number(await readFile(seen, 'utf8')), PIPE_BYTES);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the decompressor's failure is reported as the stored file's damage, with its own words", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-unpack-pipe-'));
  try {
    const target = path.join(dir, 'target');
    await mkdir(target);
    const err = await unpackInto({
      host: localHost(),
      dir: target,
      source: bytes(Buffer.from('not a frame')),
      decompress: ['sh', '-c', 'cat > /dev/null; echo "fake-zstd: unknown header" >&2; exit 3'],
      what: 'base.tar.zst',
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof PgbkError, String(err));
    assert.match(err.message, /^sh could not decompress base\.tar\.zst: .*fake-zstd: unknown header/s);
    assert.match(err.hint ?? '', /damaged/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a decompressor killed by SIGPIPE after tar read the end of the archive: not a failure', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-unpack-pipe-'));
  try {
    const tar = await smallTar(dir);
    const target = path.join(dir, 'target');
    await mkdir(target);
    // The archive, then 50 MB of zeros: tar stops at the end-of-archive blocks, and the writer of
    // the rest dies of SIGPIPE (exit status 141 in the shell), as zstd can with trailing padding.
    const r = await unpackInto({
      host: localHost(),
      dir: target,
      source: bytes(Buffer.from('x')),
      decompress: ['sh', '-c', 'cat > /dev/null; cat "$0"; exec head -c 50000000 /dev/zero', tar],
      what: 'base.tar.zst',
    });
    assert.is(r.files, 1);
    assert.is(await readFile(path.join(target, 'hello'), 'utf8'), 'hi\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
