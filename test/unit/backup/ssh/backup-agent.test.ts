import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameDecoder, type AgentRequest, type Frame } from '../../../../src/backup/ssh/agent-frames.js';
import { CLI } from '../../../support/pgbk.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function runAgent(req: AgentRequest | string): { frames: Frame[]; code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'backup-agent'], { input: typeof req === 'string' ? req : JSON.stringify(req), maxBuffer: 1 << 26 });
  const d = new FrameDecoder();
  const frames = d.push(r.stdout);
  return { frames, code: r.status, stderr: r.stderr.toString() };
}

test('pgbk backup-agent sends only chunks whose sha256 differs from the previous ones; missing files reported', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-agent-'));
  try {
    const chunk = 4096;
    const a = Buffer.concat([Buffer.alloc(chunk, 1), Buffer.alloc(chunk, 2), Buffer.alloc(100, 3)]);
    writeFileSync(path.join(dir, 'a'), a);
    writeFileSync(path.join(dir, 'empty'), '');
    const prevA = [sha(Buffer.alloc(chunk, 1)), sha(Buffer.alloc(chunk, 9)), sha(Buffer.alloc(100, 3))];
    const { frames, code, stderr } = runAgent({
      version: 1,
      chunkSize: chunk,
      files: [{ path: path.join(dir, 'a'), hashes: prevA }, { path: path.join(dir, 'gone') }, { path: path.join(dir, 'empty') }],
    });
    assert.is(code, 0, stderr);
    assert.equal(
      frames.map((f) => f.type),
      ['hello', 'same', 'chunk', 'same', 'end', 'end', 'chunk', 'end', 'done'],
    );
    const changed = frames[2] as Extract<Frame, { type: 'chunk' }>;
    assert.ok(changed.data.equals(Buffer.alloc(chunk, 2)));
    assert.is(changed.hash.toString('hex'), sha(Buffer.alloc(chunk, 2)));
    assert.equal(frames[4], { type: 'end', size: a.length, missing: false });
    assert.equal(frames[5], { type: 'end', size: 0, missing: true });
    assert.is((frames[6] as Extract<Frame, { type: 'chunk' }>).data.length, 0);
    assert.equal(frames[8], { type: 'done', files: 3, bytesRead: a.length });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad request ends in an error frame and exit 1, after the hello', () => {
  const r = runAgent('{"version":99}');
  assert.is(r.code, 1);
  assert.equal(
    r.frames.map((f) => f.type),
    ['hello', 'error'],
  );
  assert.match((r.frames[1] as Extract<Frame, { type: 'error' }>).message, /request version 99/);
});

test.run();
