/**
 * `restore --force` never reaches the catalog through a symbolic link (issue 9, item 3): the
 * overlap check compares real paths — the deepest existing ancestor of the target, resolved, plus
 * the rest — with the catalog's real path, for --target-dir and --tablespace-dir alike.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PgbkError } from '../../../src/errors.js';
import { inspectTargetDir, resolveReal } from '../../../src/restore/target-dir.js';

async function world(): Promise<{ root: string; catalog: string; backups: string; done: () => Promise<void> }> {
  const root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'pgbk-realpath-')));
  const catalog = path.join(root, 'catalog');
  const backups = path.join(catalog, 'main', 'backups');
  await mkdir(path.join(backups, '20260101T000000Z'), { recursive: true });
  await writeFile(path.join(backups, '20260101T000000Z', 'backup.json'), '{}');
  return { root, catalog, backups, done: () => rm(root, { recursive: true, force: true }) };
}

async function refused(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, PgbkError);
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable(`expected a refusal matching ${re}`);
}

test('resolveReal: existing prefix resolved, missing rest appended; a dangling link is refused', async () => {
  const w = await world();
  try {
    const link = path.join(w.root, 'l');
    await symlink(path.join(w.catalog, 'main'), link);
    assert.is(await resolveReal(path.join(link, 'backups'), '--target-dir'), w.backups);
    assert.is(await resolveReal(path.join(link, 'new', 'deeper'), '--target-dir'), path.join(w.catalog, 'main', 'new', 'deeper'));
    assert.is(await resolveReal(path.join(w.root, 'plain', 'x'), '--target-dir'), path.join(w.root, 'plain', 'x'));
    const dangling = path.join(w.root, 'dangling');
    await symlink(path.join(w.root, 'nowhere'), dangling);
    await refused(resolveReal(path.join(dangling, 'x'), '--target-dir'), /is a symbolic link to a missing target/);
  } finally {
    await w.done();
  }
});

test('--target-dir through a link into the catalog is refused, even with --force; nothing deleted', async () => {
  const w = await world();
  try {
    const link = path.join(w.root, 'l');
    await symlink(path.join(w.catalog, 'main'), link);
    await refused(
      inspectTargetDir(path.join(link, 'backups'), true, w.catalog),
      /--target-dir .*\/l\/backups \(really .*\/catalog\/main\/backups\) overlaps the catalog/,
    );
    await refused(inspectTargetDir(path.join(link, 'backups', 'not', 'yet'), true, w.catalog), /overlaps the catalog/);
    // A link to a directory that holds the catalog.
    const up = path.join(w.root, 'up');
    await symlink(w.root, up);
    await refused(inspectTargetDir(up, true, w.catalog), /overlaps the catalog/);
    assert.equal(await readdir(w.backups), ['20260101T000000Z']);
  } finally {
    await w.done();
  }
});

test('a catalog configured through a link protects its real directory', async () => {
  const w = await world();
  try {
    const catLink = path.join(w.root, 'catalog-link');
    await symlink(w.catalog, catLink);
    await refused(inspectTargetDir(w.backups, true, catLink), /overlaps the catalog .*catalog-link \(really .*\/catalog\)/);
    await refused(inspectTargetDir(path.join(catLink, 'main'), true, catLink), /overlaps the catalog/);
    const elsewhere = await inspectTargetDir(path.join(w.root, 'restore'), true, catLink);
    assert.is(elsewhere.exists, false);
  } finally {
    await w.done();
  }
});

test('--tablespace-dir through a link is checked the same way', async () => {
  const w = await world();
  try {
    const link = path.join(w.root, 'tslink');
    await symlink(path.join(w.catalog, 'main'), link);
    await refused(inspectTargetDir(path.join(link, 'backups'), true, w.catalog, '--tablespace-dir'), /^--tablespace-dir .* overlaps the catalog/);
    assert.equal(await readdir(w.backups), ['20260101T000000Z']);
  } finally {
    await w.done();
  }
});

test.run();
