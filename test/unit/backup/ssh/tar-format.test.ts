import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { padding, TarReader, tarEnd, tarHeader, type TarEvent } from '../../../../src/backup/ssh/tar-format.js';

function readAll(bytes: Buffer, piece: number): { files: Map<string, Buffer>; reader: TarReader } {
  const reader = new TarReader();
  const files = new Map<string, Buffer>();
  let name = '';
  let parts: Buffer[] = [];
  const on = (ev: TarEvent): void => {
    if (ev.type === 'file') {
      name = ev.name;
      parts = [];
    } else if (ev.type === 'data') parts.push(Buffer.from(ev.data));
    else files.set(name, Buffer.concat(parts));
  };
  for (let i = 0; i < bytes.length; i += piece) reader.push(bytes.subarray(i, i + piece)).forEach(on);
  return { files, reader };
}

const longName = `base/1/${'d'.repeat(120)}/${'f'.repeat(90)}`;

test('reads what GNU tar writes: long names, empty files, odd sizes, in any pieces', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-tar-'));
  try {
    mkdirSync(path.join(dir, path.dirname(longName)), { recursive: true });
    const want = new Map<string, Buffer>([
      [longName, Buffer.from('long'.repeat(1000))],
      ['base/1/empty', Buffer.alloc(0)],
      ['base/1/odd', Buffer.from('z'.repeat(513))],
    ]);
    for (const [n, b] of want) writeFileSync(path.join(dir, n), b);
    const r = spawnSync('tar', ['-C', dir, '-cf', '-', '--no-recursion', '--null', '-T', '-'], {
      input: [...want.keys()].map((n) => `${n}\0`).join(''),
      maxBuffer: 1 << 26,
    });
    assert.is(r.status, 0, r.stderr.toString());
    for (const piece of [1, 100, 512, 4096, r.stdout.length]) {
      const { files, reader } = readAll(r.stdout, piece);
      reader.finish();
      assert.equal([...files.keys()].sort(), [...want.keys()].sort(), `piece ${piece}`);
      for (const [n, b] of want) assert.ok(files.get(n)?.equals(b), `${n} piece ${piece}`);
    }
    // Torn: the end-of-archive blocks never came.
    const { reader } = readAll(r.stdout.subarray(0, 2000), 300);
    assert.throws(() => reader.finish(), /torn/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('what tarHeader writes, GNU tar unpacks: dirs, long names (pax), symlinks, modes, mtimes', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbk-tarw-'));
  try {
    const body = Buffer.from('hello world');
    const e = { mode: 0o640, mtimeMs: 1_700_000_000_000, uid: 0, gid: 0 };
    const parts = [
      tarHeader({ name: './d', type: 'dir', size: 0, ...e, mode: 0o700 }),
      tarHeader({ name: `./d/${'n'.repeat(150)}`, type: 'file', size: body.length, ...e }),
      body,
      Buffer.alloc(padding(body.length)),
      tarHeader({ name: './d/link', type: 'symlink', size: 0, ...e, linkTarget: `/srv/${'t'.repeat(120)}` }),
      tarEnd(),
    ];
    const r = spawnSync('tar', ['-C', dir, '-xf', '-'], { input: Buffer.concat(parts) });
    assert.is(r.status, 0, r.stderr.toString());
    const f = path.join(dir, 'd', 'n'.repeat(150));
    assert.ok(readFileSync(f).equals(body));
    const st = spawnSync('stat', ['-c', '%a %Y', f]).stdout.toString().trim();
    assert.is(st, '640 1700000000');
    assert.is(
      spawnSync('readlink', [path.join(dir, 'd', 'link')])
        .stdout.toString()
        .trim(),
      `/srv/${'t'.repeat(120)}`,
    );
    // And our own reader reads it back.
    const { files, reader } = readAll(Buffer.concat(parts), 77);
    reader.finish();
    assert.ok(files.get(`./d/${'n'.repeat(150)}`)?.equals(body));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
