/**
 * One restore over the Transport port (issue 11): a local restore runs on LocalTransport — so the
 * Transport contract suite (test/integration/transport/) now guards code that runs in production —
 * and the modules that act on the target host do so only through it: none imports a writing
 * node:fs function or spawns a program itself. (unpack.ts spawns the decompressor on this side of
 * an SSH connection, by design, and reads no file itself.)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { localHost, remoteHost } from '../../../src/restore/host.js';
import { LocalTransport } from '../../../src/transport/local.js';

const SRC = path.resolve(process.cwd(), 'src');
const TARGET_SIDE = [
  'restore/restore.ts',
  'restore/remote.ts',
  'restore/target-dir.ts',
  'restore/finalize-pgdata.ts',
  'restore/host.ts',
  'restore/wal-setup.ts',
  'restore/unpack.ts',
];
/** Reading the catalog (this host's files) is fine; writing goes through the Transport. */
const READ_ONLY_FS = new Set(['createReadStream', 'readFile', 'readdir', 'stat']);

function fsImports(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(/^import\s+(.*?)\s+from\s+'node:fs(?:\/promises)?';/gms)) {
    const spec = m[1]!;
    const braces = /\{([^}]*)\}/.exec(spec);
    if (braces === null) names.push(`default/namespace import: ${spec}`);
    else
      names.push(
        ...braces[1]!
          .split(',')
          .map((s) => s.trim().split(/\s+as\s+/)[0]!)
          .filter((s) => s !== ''),
      );
  }
  return names;
}

test('a local restore runs on LocalTransport; --remote on the transport it is given', () => {
  assert.instance(localHost().transport, LocalTransport);
  assert.is(localHost().local, true);
  const t = new LocalTransport();
  assert.is(remoteHost(t).transport, t);
  assert.is(remoteHost(t).local, false);
});

test('the restore acts on its target host only through the Transport', () => {
  for (const rel of TARGET_SIDE) {
    const text = readFileSync(path.join(SRC, rel), 'utf8');
    const writes = fsImports(text).filter((n) => !READ_ONLY_FS.has(n));
    assert.equal(writes, [], `${rel} imports node:fs functions that act on files directly`);
    if (rel !== 'restore/unpack.ts') assert.not.match(text, /from 'node:child_process'/, `${rel} spawns programs itself`);
  }
  // The guard reads what it guards: the one restore does import a catalog reader.
  assert.equal(fsImports(readFileSync(path.join(SRC, 'restore/restore.ts'), 'utf8')), ['createReadStream']);
});

test.run();
