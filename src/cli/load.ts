import { loadConfig } from '../config/load.js';
import type { Desired } from '../config/resolved.js';
import type { CliIo } from './io.js';

/** Load the configuration the way every command does: --config, then PGBK_CONFIG, then discovery. */
export function loadDesired(configFlag: string | undefined, io: CliIo): Promise<Desired> {
  return loadConfig({ ...(configFlag === undefined ? {} : { configPath: configFlag }), cwd: io.cwd, env: io.env });
}

export function logTo(io: CliIo): (line: string) => void {
  return (line) => io.stderr.write(`${line}\n`);
}
