import type { CliIo } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand } from './options.js';
import { writeJson } from './json-output.js';
import { toPgbkError } from '../errors.js';
import { EXIT } from './io.js';
import { plural } from '../lib/plural.js';

/** `pgbk validate`: load and check the configuration; print what it declares. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand('validate', args, {} as const);
  let desired;
  try {
    desired = await loadDesired(values.config, io, { s3: true });
  } catch (err) {
    // --json: an invalid file is an answer ({ valid: false, error }), still exit 1.
    const e = toPgbkError(err);
    if (values.json !== true || e.code !== 'CONFIG') throw err;
    writeJson(io, 'validate', { valid: false, config: e.path ?? null, servers: [], error: { code: e.code, message: e.message, hint: e.hint ?? null } });
    return EXIT.failure;
  }
  if (values.json === true) {
    writeJson(io, 'validate', { valid: true, config: desired.configPath, servers: desired.servers.map((s) => s.name) });
  } else {
    io.stdout.write(`${desired.configPath}: valid (${plural(desired.servers.length, 'server')}: ${desired.servers.map((s) => s.name).join(', ')})\n`);
  }
  return 0;
}
