import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SEARCH_PLACES } from '../config/discover.js';
import { PgbkError } from '../errors.js';
import { shellQuote } from '../lib/shell-quote.js';
import type { CliIo } from './io.js';
import { parseCommand } from './options.js';

const TEMPLATE = `# yaml-language-server: $schema=https://unpkg.com/pgbk/schema/pgbk.schema.json
# pgbk configuration: see config.example.yaml in the pgbk package for every option.
catalog: /var/lib/pgbk
defaults:
  compression: zstd
  retention: { recoveryWindow: 14d, minRedundancy: 2 }
servers:
  main:
    description: production cluster
    connection: "host=db1 port=5432 user=pgbk dbname=postgres"
    backup:
      schedule: "0 3 * * *"
    wal:
      maxLag: 15m
`;

/** `pgbk init [FILE]`: write a starter configuration; never overwrites. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { positionals } = parseCommand('init', args, {} as const);
  const file = path.resolve(io.cwd, positionals[0] ?? 'pgbk.yaml');
  const exists = await access(file).then(
    () => true,
    () => false,
  );
  if (exists) throw new PgbkError('USAGE', `init: ${file} already exists; not overwriting it`);
  await writeFile(file, TEMPLATE, { flag: 'wx' });
  // Found without --config only where discovery looks first: this directory, under a name it tries.
  const found = io.env['PGBK_CONFIG'] === undefined && path.dirname(file) === path.resolve(io.cwd) && SEARCH_PLACES.includes(path.basename(file));
  const pgbk = found ? 'pgbk' : `pgbk --config ${shellQuote(file)}`;
  io.stdout.write(`wrote ${file}; edit it, then run: ${pgbk} validate && ${pgbk} plan\n`);
  return 0;
}
