import type { CliIo } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand } from './options.js';

/** `pgbk validate`: load and check the configuration; print what it declares. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand('validate', args, {} as const);
  const desired = await loadDesired(values.config, io);
  if (values.json === true) {
    io.stdout.write(`${JSON.stringify({ valid: true, config: desired.configPath, servers: desired.servers.map((s) => s.name) }, null, 2)}\n`);
  } else {
    io.stdout.write(`${desired.configPath}: valid (${desired.servers.length} server(s): ${desired.servers.map((s) => s.name).join(', ')})\n`);
  }
  return 0;
}
