/**
 * cli.ts's BUNDLES names each command bundle's file and the words its commands answer to; each
 * bundle's entry (read-entry.ts, restore-bundle-entry.ts, apply-bundle-entry.ts) lists the same
 * commands in its loaders. cli.ts cannot import the entries (that would load the bundles at every
 * start), so the list is written twice on purpose. If the two drift apart a command silently runs
 * from the ES modules (correct, only slower) or cli.ts loads a bundle for nothing: this test pins
 * them, reading the table from the built cli.js.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { APPLY_LOADERS } from '../../../src/cli/apply-bundle-entry.js';
import type { CommandLoaders } from '../../../src/cli/dispatch.js';
import { READ_LOADERS } from '../../../src/cli/read-entry.js';
import { RESTORE_LOADERS } from '../../../src/cli/restore-bundle-entry.js';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

interface TableRow {
  readonly file: string;
  readonly prefix: string;
  readonly commands: readonly string[];
}

/** BUNDLES as cli.js spells it: `{ file: '…', prefix: '…', commands: ['…', …] }` rows. */
function bundleTable(): TableRow[] {
  const text = readFileSync(path.join(SRC, 'cli.js'), 'utf8');
  const table = /const BUNDLES = \[([\s\S]*?)\];/.exec(text)?.[1];
  assert.ok(table !== undefined, 'cli.js has no BUNDLES table');
  const rows = [...table.matchAll(/\{\s*file:\s*'([^']+)',\s*prefix:\s*'([^']+)',\s*commands:\s*\[([^\]]*)\]\s*\}/g)];
  return rows.map((m) => ({
    file: m[1] ?? '',
    prefix: m[2] ?? '',
    commands: [...(m[3] ?? '').matchAll(/'([^']+)'/g)].map((c) => c[1] ?? ''),
  }));
}

const ENTRIES: Readonly<Record<string, CommandLoaders>> = {
  './cli/read-bundle.cjs': READ_LOADERS,
  './cli/restore-bundle.cjs': RESTORE_LOADERS,
  './cli/apply-bundle.cjs': APPLY_LOADERS,
};

test('every bundle in cli.ts answers to exactly the commands its entry loads, and is built', () => {
  const rows = bundleTable();
  assert.equal(rows.map((r) => r.file).sort(), Object.keys(ENTRIES).sort(), 'cli.ts BUNDLES and the bundle entries name different files');
  for (const row of rows) {
    const loaders = ENTRIES[row.file];
    assert.ok(loaders !== undefined);
    assert.equal([...row.commands].sort(), Object.keys(loaders).sort(), `${row.file}: cli.ts's words differ from its entry's loaders`);
    assert.ok(existsSync(path.join(SRC, row.file)), `${row.file} was not built`);
  }
});

test('no two bundles share a command or a code-cache prefix', () => {
  const rows = bundleTable();
  const commands = rows.flatMap((r) => r.commands);
  assert.is(new Set(commands).size, commands.length, `a command is in two bundles: ${commands.join(', ')}`);
  assert.is(new Set(rows.map((r) => r.prefix)).size, rows.length, 'two bundles share a code-cache prefix');
});

test.run();
