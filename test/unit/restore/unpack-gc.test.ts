/**
 * unpackInto (src/restore/unpack.ts) lets go of the pieces it has passed on as it goes: memory held
 * in dead Buffers stays a few MiB however much is unpacked, instead of growing until V8's
 * external-memory trigger (~64 MB) collects them. Real tar; the source is a tar of one file made
 * of fresh 1 MiB Buffers, as an S3 response yields fresh pieces.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exposedGc } from '../../../src/lib/v8-gc.js';
import { localHost } from '../../../src/restore/host.js';
import { unpackInto } from '../../../src/restore/unpack.js';

const MIB = 1 << 20;

/** A ustar header for a regular file `name` of `size` bytes. */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const field = (at: number, len: number, value: string): void => void h.write(value, at, len, 'ascii');
  field(0, 100, name);
  field(100, 8, '0000644\0');
  field(108, 8, '0000000\0');
  field(116, 8, '0000000\0');
  field(124, 12, `${size.toString(8).padStart(11, '0')}\0`);
  field(
    136,
    12,
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
  );
  field(148, 8, '        ');
  field(156, 1, '0');
  field(257, 8, 'ustar\u000000');
  let sum = 0;
  for (const b of h) sum += b;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

test('dead pieces are collected as the unpack goes: 96 MiB through it, < 20 MiB of Buffers held at once (without: 32)', async () => {
  const gc = exposedGc();
  assert.ok(gc !== undefined, 'this V8 refuses --expose-gc at run time');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-unpack-gc-'));
  const pieces = 96;
  try {
    gc({ type: 'major' });
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const source = async function* (): AsyncGenerator<Buffer> {
      yield tarHeader('big', pieces * MIB);
      for (let i = 0; i < pieces; i++) {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
        yield Buffer.alloc(MIB, i);
      }
      yield Buffer.alloc(1024);
    };
    const r = await unpackInto({ host: localHost(), dir, source: source(), decompress: undefined, what: 'big.tar' });
    assert.is(r.files, 1);
    assert.is((await stat(path.join(dir, 'big'))).size, pieces * MIB);
    assert.ok(peak < 20 * MIB, `${(peak / MIB).toFixed(1)} MiB of Buffers held at once`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
