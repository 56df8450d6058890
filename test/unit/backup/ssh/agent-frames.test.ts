import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeFrame, FrameDecoder, type Frame } from '../../../../src/backup/ssh/agent-frames.js';

const data = Buffer.from('x'.repeat(3000));
const hash = createHash('sha256').update(data).digest();
const frames: Frame[] = [
  { type: 'hello', version: 1 },
  { type: 'chunk', hash, data },
  { type: 'same' },
  { type: 'end', size: 3000 + 4096, missing: false },
  { type: 'end', size: 0, missing: true },
  { type: 'compressed', hash, length: 3000, frame: Buffer.from('zstd-frame-bytes') },
  { type: 'done', files: 2, bytesRead: 7096, lsnSkipped: 4, walSkipped: 3 },
];
const wire = Buffer.concat(frames.flatMap(encodeFrame));

function decodeInPieces(bytes: Buffer, piece: number): { frames: Frame[]; decoder: FrameDecoder } {
  const decoder = new FrameDecoder();
  const out: Frame[] = [];
  for (let i = 0; i < bytes.length; i += piece) out.push(...decoder.push(bytes.subarray(i, i + piece)));
  return { frames: out, decoder };
}

test('frames round-trip whatever the pieces the stream arrives in', () => {
  for (const piece of [1, 3, 5, 7, 512, wire.length]) {
    const { frames: got, decoder } = decodeInPieces(wire, piece);
    decoder.finish();
    assert.is(got.length, frames.length, `piece ${piece}`);
    assert.equal(
      got.map((f) => f.type),
      frames.map((f) => f.type),
    );
    const c = got[1] as Extract<Frame, { type: 'chunk' }>;
    assert.ok(c.data.equals(data) && c.hash.equals(hash), `piece ${piece}`);
    assert.equal(got[3], { type: 'end', size: 7096, missing: false });
    assert.equal(got[4], { type: 'end', size: 0, missing: true });
    const k = got[5] as Extract<Frame, { type: 'compressed' }>;
    assert.ok(k.hash.equals(hash) && k.frame.toString() === 'zstd-frame-bytes' && k.length === 3000, `piece ${piece}`);
    assert.equal(got[6], { type: 'done', files: 2, bytesRead: 7096, lsnSkipped: 4, walSkipped: 3 });
  }
});

test('a torn stream is detected: cut inside a frame, or between frames before done', () => {
  for (const cut of [3, 20, 1500, wire.length - 10]) {
    const { decoder } = decodeInPieces(wire.subarray(0, cut), 64);
    assert.throws(() => decoder.finish(), /torn/, `cut at ${cut}`);
  }
  const beforeDone = Buffer.concat(frames.slice(0, 5).flatMap(encodeFrame));
  const { decoder } = decodeInPieces(beforeDone, 100);
  assert.throws(() => decoder.finish(), /before the done frame/);
});

test('corrupt streams are refused: unknown type, absurd length, data after done', () => {
  assert.throws(() => new FrameDecoder().push(Buffer.from([0x51, 0, 0, 0, 0])), /unknown frame type 0x51/);
  assert.throws(() => new FrameDecoder().push(Buffer.from([0x43, 0xff, 0xff, 0xff, 0xff])), /frame of/);
  assert.throws(() => new FrameDecoder().push(Buffer.concat([wire, Buffer.from('S')])), /after the done frame/);
  assert.throws(() => new FrameDecoder().push(Buffer.from([0x43, 0, 0, 0, 4, 1, 2, 3, 4])), /shorter than its hash/);
});

test.run();
