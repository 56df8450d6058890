import { PgbkError } from '../errors.js';
import { registerS3Catalog } from '../catalog/open.js';
import { loadConfig } from '../config/load.js';
import type { Desired } from '../config/resolved.js';
import type { CliIo } from './io.js';
import { diag } from './diag.js';
import { runAsCatalogOwner } from './run-as-owner.js';

/**
 * Load the configuration the way every command does: --config, then PGBK_CONFIG, then discovery.
 * Then, before the command touches the catalog, run as its owner (or refuse): run-as-owner.ts.
 */
export async function loadDesired(configFlag: string | undefined, io: CliIo, use: CatalogUse = {}): Promise<Desired> {
  const load = (): Promise<Desired> => loadConfig({ ...(configFlag === undefined ? {} : { configPath: configFlag }), cwd: io.cwd, env: io.env });
  return runAsCatalogOwner(refuseUnwiredS3(await load(), use), io, load);
}

/** What a command can do with the catalog it loads. */
export interface CatalogUse {
  /** The command works with an object-storage (s3://) catalog; the others refuse one (issue 12). */
  readonly s3?: boolean;
}

/**
 * The S3 driver of the repository port exists (catalog/s3, tested against radosgw), but the
 * commands still treat the catalog as a local directory: an s3:// catalog would be taken for a
 * relative path. Refused before anything is touched until the commands use the driver (issue 12).
 */
function refuseUnwiredS3(desired: Desired, use: CatalogUse): Desired {
  if (desired.s3 === undefined) return desired;
  registerS3Catalog(desired.s3);
  if (use.s3 === true) return desired;
  throw new PgbkError('CONFIG', `catalog ${desired.catalog}: S3 repositories are not usable by commands yet (the driver exists, the commands do not use it)`, {
    path: desired.configPath,
    hint: 'use a local catalog directory for now',
  });
}

export function logTo(io: CliIo): (line: string) => void {
  return (line) => diag(io, 'info', line);
}

/**
 * An AbortSignal that fires on the first SIGINT/SIGTERM, so a running pg_basebackup is stopped and
 * its backup recorded FAILED before pgbk exits (the locks are released on the way out). A second
 * signal kills the process the default way.
 */
export function abortOnSignals(io: CliIo): AbortSignal {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    diag(io, 'warn', `pgbk: ${sig} received: stopping the current action`);
    controller.abort(new Error(`interrupted by ${sig}`));
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return controller.signal;
}
