import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'uvu';
import { Sha256Tap, sha256Hasher, sha256Hex, sha256HexAsync, sha256OfFile } from '../../../src/lib/checksum.js';

// The reference is sha256sum(1): every stored checksum must be checkable with `sha256sum -c`.
function sha256sum(file: string): string {
  return execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]!;
}

test('all shapes agree with sha256sum on a multi-MiB file', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-checksum-'));
  try {
    const data = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 11)) & 0xff;
    const file = path.join(dir, 'f');
    await writeFile(file, data);
    const want = sha256sum(file);
    assert.equal(sha256Hex(data), want);
    assert.equal(await sha256HexAsync(data), want);
    assert.equal(await sha256OfFile(file), want);
    const h = sha256Hasher();
    h.update(data.subarray(0, 1000));
    h.update(data.subarray(1000));
    assert.equal(h.hex(), want);

    const tap = new Sha256Tap();
    const seen: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        seen.push(chunk);
        cb();
      },
    });
    await pipeline(Readable.from([data.subarray(0, 5), data.subarray(5)]), tap, sink);
    assert.equal(tap.digest(), want);
    assert.equal(tap.bytes, data.length);
    assert.ok(Buffer.concat(seen).equals(data), 'the tap passes the bytes through unchanged');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('strings hash as UTF-8; a missing file is an error, not a checksum', async () => {
  assert.equal(sha256Hex('é'), sha256Hex(Buffer.from('é', 'utf8')));
  await assert.rejects(sha256OfFile('/nonexistent/pgbk-checksum'), /ENOENT/);
  assert.throws(() => new Sha256Tap().digest(), /before the stream ended/);
});

test.run();
