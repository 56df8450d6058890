import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compressBuffer } from '../../../src/catalog/compress.js';
import { sha256Hex } from '../../../src/lib/checksum.js';
import { checkServed } from '../../../src/wal-fetch/remote-archive.js';
import { fetchOptionArgs, fetchOptionsFrom, fetchWorkerKey } from '../../../src/wal-fetch/source.js';

const SEG = 1024 * 1024;
const SYSID = '7300000000000000001';

/** A minimal valid first page of segment 000000010000000000000003 (1 MiB segments). */
function segment(): Buffer {
  const b = Buffer.alloc(SEG);
  b.writeUInt16LE(0xd110, 0);
  b.writeUInt16LE(0x0002, 2);
  b.writeUInt32LE(1, 4);
  b.writeBigUInt64LE(3n * BigInt(SEG), 8);
  b.writeBigUInt64LE(BigInt(SYSID), 24);
  b.writeUInt32LE(SEG, 32);
  b.writeUInt32LE(8192, 36);
  return b;
}

const hello = { systemIdentifier: SYSID, walSegmentSize: SEG };
const NAME = '000000010000000000000003';

test('checkServed: verified, decompressed segment; absent and errors map to absent and fatal', async () => {
  const data = segment();
  const stored = await compressBuffer(data, 'zstd');
  const ok = await checkServed(
    NAME,
    { name: NAME, found: true, compression: 'zstd', size: stored.length, sha256: sha256Hex(stored), recorded: true },
    stored,
    hello,
  );
  assert.is(ok.kind, 'found');
  assert.ok(ok.kind === 'found' && ok.data.equals(data));
  assert.equal(await checkServed(NAME, { name: NAME, found: false }, Buffer.alloc(0), hello), { kind: 'absent' });
  assert.equal(await checkServed(NAME, { name: NAME, error: 'EIO' }, Buffer.alloc(0), hello), { kind: 'fatal', error: 'EIO' });
});

test('checkServed: a sha256 mismatch, a bad stream, another cluster or a misnamed segment are fatal', async () => {
  const data = segment();
  const stored = await compressBuffer(data, 'zstd');
  const reply = { name: NAME, found: true as const, compression: 'zstd' as const, size: stored.length, sha256: sha256Hex(stored), recorded: true };
  const flipped = Buffer.from(stored);
  flipped[flipped.length - 5]! ^= 0xff;
  assert.match(String(((await checkServed(NAME, reply, flipped, hello)) as { error: string }).error), /corrupt: .*SHA256SUMS/);
  const garbage = Buffer.from('not zstd at all');
  assert.match(
    String(((await checkServed(NAME, { ...reply, sha256: sha256Hex(garbage), size: garbage.length }, garbage, hello)) as { error: string }).error),
    /corrupt/,
  );
  assert.match(String(((await checkServed(NAME, reply, stored, { ...hello, systemIdentifier: '1' })) as { error: string }).error), /not usable/);
  assert.match(
    String(((await checkServed('000000010000000000000004', { ...reply, name: '000000010000000000000004' }, stored, hello)) as { error: string }).error),
    /not usable/,
  );
  // .history files are checked by checksum only.
  const hist = Buffer.from('1\t0/3000000\tno recovery target specified\n');
  assert.is(
    (
      await checkServed(
        '00000002.history',
        { name: '00000002.history', found: true, compression: 'none', size: hist.length, sha256: sha256Hex(hist), recorded: true },
        hist,
        hello,
      )
    ).kind,
    'found',
  );
});

test('wal-fetch --from options round-trip into the worker, and the worker key depends on pgdata', () => {
  const o = fetchOptionsFrom({ from: 'ssh://u@h:2200/cat', identity: '/k', 'known-hosts': '/kh', 'remote-pgbk': 'node /x/cli.js', prefetch: '4' }, 'main', '/');
  const args = fetchOptionArgs(o);
  const values: Record<string, string> = {};
  for (let i = 0; i < args.length; i += 2) values[args[i]!.slice(2)] = args[i + 1]!;
  assert.equal(fetchOptionsFrom(values, 'main', '/'), o);
  assert.is.not(fetchWorkerKey(o, '/pg1'), fetchWorkerKey(o, '/pg2'));
  assert.throws(() => fetchOptionsFrom({ from: 'bk:/cat' }, 'main', '/'), /expected ssh:\/\//);
  assert.throws(() => fetchOptionsFrom({ from: 'ssh://u@h/c', prefetch: 'x' }, 'main', '/'), /--prefetch/);
});

test.run();
