/**
 * Which config file to use: an explicit --config path wins, then $PGBK_CONFIG, then the first of
 * pgbk.yaml, pgbk.yml, .pgbkrc.yaml, .pgbkrc.yml, .pgbkrc found in the working directory or one of
 * its parents (cosmiconfig, stopping at a directory with a package.json, or at /).
 */

import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Loader } from 'cosmiconfig';
import { PgbkError } from '../errors.js';
import { currentUserName } from '../lib/os-user.js';

export const SEARCH_PLACES: readonly string[] = ['pgbk.yaml', 'pgbk.yml', '.pgbkrc.yaml', '.pgbkrc.yml', '.pgbkrc'];

export interface DiscoverOptions {
  readonly configPath?: string;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
}

/**
 * The message of a config file this process cannot read: with EACCES, which OS user was refused
 * (pgbk started as root reads it again as the catalog's owner; archive_command runs as PostgreSQL's
 * user) and how to grant it, as README's setup does.
 */
export function unreadableConfig(origin: string, file: string, code: string, user: string): { message: string; hint?: string } {
  if (code === 'ENOENT') return { message: `${origin} ${file} does not exist` };
  if (code !== 'EACCES' && code !== 'EPERM') return { message: `${origin} ${file} cannot be read (${code})` };
  return {
    message: `${origin} ${file} cannot be read by OS user ${user} (${code})`,
    hint: `let ${user} read it and search its directories (e.g. chown root:GROUP ${file}; chmod 0640 ${file}, with ${user} in GROUP)`,
  };
}

async function mustBeFile(file: string, origin: string): Promise<string> {
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new PgbkError('CONFIG', `${origin} ${file} is not a file`, { path: file });
    return file;
  } catch (err) {
    if (err instanceof PgbkError) throw err;
    const { message, hint } = unreadableConfig(origin, file, (err as NodeJS.ErrnoException).code ?? String(err), currentUserName());
    throw new PgbkError('CONFIG', message, { path: file, cause: err, ...(hint === undefined ? {} : { hint }) });
  }
}

/**
 * cosmiconfig only locates the file: load.ts reads its bytes once itself, so the hash and the
 * error positions come from the same bytes. The loader parses with `yaml` (cosmiconfig's default
 * would be js-yaml, a second parser with other rules) and hands back a marker object, never the
 * config, so cosmiconfig's own `$import` merging can never apply to a pgbk file.
 */
function yamlLoader(parseDocument: (source: string) => unknown): Loader {
  return (_filepath, content) => {
    parseDocument(content);
    return { found: true };
  };
}

/** Absolute path of the config file to load. Throws PgbkError('CONFIG') when there is none. */
export async function discoverConfigFile(opts: DiscoverOptions): Promise<string> {
  if (opts.configPath !== undefined && opts.configPath !== '') {
    return mustBeFile(path.resolve(opts.cwd, opts.configPath), 'config file');
  }
  const fromEnv = opts.env['PGBK_CONFIG'];
  if (fromEnv !== undefined && fromEnv !== '') {
    return mustBeFile(path.resolve(opts.cwd, fromEnv), 'PGBK_CONFIG file');
  }
  // cosmiconfig and its dependencies cost more to load than a read command does in all: only a
  // search needs them (an explicit --config or PGBK_CONFIG does not).
  const [{ cosmiconfig }, { parseDocument }] = await Promise.all([import('cosmiconfig'), import('yaml')]);
  const loader = yamlLoader((source) => parseDocument(source));
  const explorer = cosmiconfig('pgbk', {
    searchPlaces: [...SEARCH_PLACES],
    searchStrategy: 'project',
    loaders: { '.yaml': loader, '.yml': loader, noExt: loader },
    // An empty pgbk.yaml is still the config the user meant: report it, do not search past it.
    ignoreEmptySearchPlaces: false,
    cache: false,
  });
  const start = path.resolve(opts.cwd);
  const found = await explorer.search(start);
  if (found === null) {
    throw new PgbkError('CONFIG', `no config file (${SEARCH_PLACES.join(', ')}) in ${start} or its parent directories`, {
      hint: 'create pgbk.yaml (see config.example.yaml), pass --config FILE or set PGBK_CONFIG',
    });
  }
  return found.filepath;
}
