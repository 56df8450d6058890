import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WAL_PAGE_MAGIC, majorVersionForMagic, readWalHeader, validateSegment } from '../../../src/pg/wal-header.js';
import { makeRealSegment, withSystemIdentifier, type RealSegment } from './real-segment.js';

let real: RealSegment;

test.before(() => {
  real = makeRealSegment();
});
test.after(() => real.cleanup());

test('reads the long header of a real PostgreSQL 15 segment', () => {
  const h = readWalHeader(real.bytes);
  assert.ok(h);
  assert.is(h.magic, WAL_PAGE_MAGIC[15]);
  assert.is(majorVersionForMagic(h.magic), 15);
  assert.ok((h.info & 0x0002) !== 0, 'long header flag');
  assert.is(h.timeline, 1);
  assert.is(h.pageAddr, 1n * BigInt(real.segSize));
  assert.is(h.systemIdentifier, real.systemIdentifier, 'matches pg_controldata');
  assert.is(h.segSize, real.segSize);
  assert.is(h.segSize, 16 * 1024 * 1024);
  assert.is(h.blockSize, 8192);
});

test('readWalHeader: too short or no long header', () => {
  assert.is(readWalHeader(real.bytes.subarray(0, 39)), undefined);
  const short = Buffer.from(real.bytes.subarray(0, 64));
  short.writeUInt16LE(0x0000, 2);
  assert.is(readWalHeader(short), undefined);
});

test('validateSegment accepts the real segment', () => {
  assert.equal(validateSegment(real.name, real.bytes, {}), { ok: true });
  assert.equal(validateSegment(real.name, real.bytes, { systemIdentifier: real.systemIdentifier, segSize: real.segSize }), { ok: true });
  assert.equal(validateSegment(`${real.name}.partial`, real.bytes, { systemIdentifier: real.systemIdentifier }), {
    ok: true,
  });
  // a later timeline may begin with a copy of the older timeline's segment
  assert.equal(validateSegment('000000020000000000000001', real.bytes, {}), { ok: true });
});

function reasonOf(name: string, buf: Buffer, expected = { systemIdentifier: real.systemIdentifier, segSize: real.segSize }): string {
  const v = validateSegment(name, buf, expected);
  assert.is(v.ok, false, `expected ${name} to be rejected`);
  return v.ok ? '' : v.reason;
}

test("validateSegment rejects what is not this cluster's complete segment", () => {
  assert.match(reasonOf(real.name, real.bytes.subarray(0, real.segSize - 8192)), /truncated/);
  assert.match(reasonOf(real.name, Buffer.concat([real.bytes, Buffer.alloc(1)])), /bytes/);
  assert.match(reasonOf(real.name, Buffer.alloc(real.segSize, 0x41)), /page magic 0x4141/);
  assert.match(reasonOf(real.name, Buffer.alloc(10)), /too short/);
  assert.match(reasonOf(real.name, withSystemIdentifier(real.bytes, 42n)), /cluster 42.*cluster \d+/);
  assert.match(reasonOf('000000010000000000000002', real.bytes), /page address 0x1000000 .*expected 0x2000000/);
  assert.match(reasonOf('000000010000000100000001', real.bytes), /page address/);
  assert.match(reasonOf(real.name, real.bytes, { systemIdentifier: real.systemIdentifier, segSize: 64 * 1024 * 1024 }), /segment size/);
  assert.match(reasonOf('00000001.history', real.bytes), /not a WAL segment name/);

  const tli3 = Buffer.from(real.bytes);
  tli3.writeUInt32LE(3, 4);
  assert.match(reasonOf('000000020000000000000001', tli3), /timeline 3/);

  const noLong = Buffer.from(real.bytes);
  noLong.writeUInt16LE(noLong.readUInt16LE(2) & ~0x0002, 2);
  assert.match(reasonOf(real.name, noLong), /long header/);

  const badBits = Buffer.from(real.bytes);
  badBits.writeUInt16LE(badBits.readUInt16LE(2) | 0x0100, 2);
  assert.match(reasonOf(real.name, badBits), /info bits/);

  const pg14 = Buffer.from(real.bytes);
  pg14.writeUInt16LE(0xd10d, 0);
  assert.equal(validateSegment(real.name, pg14, {}), { ok: true }, 'PG14 magic is known');
});

test('known page magics per major version', () => {
  assert.equal(
    [13, 14, 15, 16, 17].map((v) => WAL_PAGE_MAGIC[v]),
    [0xd106, 0xd10d, 0xd110, 0xd113, 0xd116],
  );
  assert.is(majorVersionForMagic(0x1234), undefined);
});

test.run();
