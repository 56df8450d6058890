/**
 * loadConfig: find the config file and turn it into Desired (parse-config.ts), or take the result
 * of an earlier load of the very same bytes from the per-user cache (config-cache.ts), which spares
 * a read command most of its start-up. Only a file that loaded without a problem is ever cached, so
 * every error is still found and reported by parse-config.ts.
 */

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { PgbkError } from '../errors.js';
import { readCachedConfig, writeCachedConfig } from './config-cache.js';
import { currentUserName } from '../lib/os-user.js';
import { discoverConfigFile, unreadableConfig, type DiscoverOptions } from './discover.js';
import type { Desired } from './resolved.js';

export type LoadConfigOptions = DiscoverOptions;

export async function loadConfig(opts: LoadConfigOptions): Promise<Desired> {
  const file = await discoverConfigFile(opts);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const { message, hint } = unreadableConfig('config file', file, code, currentUserName());
    throw new PgbkError('CONFIG', message, { path: file, cause: err, ...(hint === undefined ? {} : { hint }) });
  }
  const configHash = createHash('sha256').update(bytes).digest('hex');
  const home = opts.env['HOME'] !== undefined && opts.env['HOME'] !== '' ? opts.env['HOME'] : os.homedir();
  const inputs = { file, configHash, home, env: opts.env };
  const cached = readCachedConfig(inputs);
  if (cached !== undefined) return cached;
  const { parseConfig } = await import('./parse-config.js');
  const desired = await parseConfig(file, bytes, configHash, home);
  writeCachedConfig(inputs, desired);
  return desired;
}
