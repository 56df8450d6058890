import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readTarMember } from '../../../../src/restore/remote-tar.js';

test('readTarMember: tablespace_map out of a plain or zstd tar, "./" names, absent member', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgbk-tarmember-'));
  try {
    const tree = path.join(dir, 'tree');
    await mkdir(path.join(tree, 'base'), { recursive: true });
    await writeFile(path.join(tree, 'backup_label'), 'START WAL LOCATION: 0/2000028\n');
    await writeFile(path.join(tree, 'tablespace_map'), '16385 /srv/ts\n');
    await writeFile(path.join(tree, 'base', 'big'), Buffer.alloc(4 << 20, 1));
    const plain = path.join(dir, 'base.tar');
    execFileSync('tar', ['-C', tree, '-cf', plain, 'backup_label', 'tablespace_map', 'base']);
    execFileSync('zstd', ['-q', '-1', plain, '-o', `${plain}.zst`]);
    assert.is(await readTarMember(createReadStream(plain), undefined, 'tablespace_map'), '16385 /srv/ts\n');
    assert.is(await readTarMember(createReadStream(`${plain}.zst`), ['zstd', '-d', '-c', '-q'], 'tablespace_map'), '16385 /srv/ts\n');
    const dotted = path.join(dir, 'dotted.tar');
    execFileSync('tar', ['-C', tree, '-cf', dotted, '.']);
    assert.is(await readTarMember(createReadStream(dotted), undefined, './tablespace_map'), '16385 /srv/ts\n');
    assert.is(await readTarMember(createReadStream(plain), undefined, 'no_such_member'), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
