/**
 * Which commands touch the catalog, and how (src/catalog/owner.ts has the rule): dispatch tags the
 * command's io with it, and loadDesired — the first thing every such command does — switches to
 * the catalog's owner or refuses, before anything is written.
 *
 * Not here: wal-fetch (PostgreSQL's restore_command: it runs as the database's OS user, which
 * PostgreSQL never lets be root, and only reads the catalog), the remote-protocol ends and
 * init/validate (no catalog).
 */
import type { CatalogAccess } from '../catalog/owner.js';
import type { Desired } from '../config/resolved.js';
import { PgbkError, toPgbkError } from '../errors.js';
import type { CliIo } from './io.js';

const ACCESS: Readonly<Record<string, CatalogAccess>> = {
  apply: 'write',
  backup: 'write',
  daemon: 'write',
  keep: 'write',
  'wal-push': 'write',
  restore: 'restore',
  plan: 'read',
  list: 'read',
  show: 'read',
  status: 'read',
  verify: 'read',
  check: 'read',
  metrics: 'read',
};

export type { CatalogUse } from './io.js';

/** The io a command runs with: tagged with its catalog access when it has one. */
export function withCatalogUse(command: string, io: CliIo): CliIo {
  const access = ACCESS[command];
  return access === undefined ? io : { ...io, catalogUse: { command, access } };
}

/**
 * After the configuration is loaded: become the catalog's owner (started as root) or refuse (a
 * writer that is not the owner). Once switched, the configuration is read again as the new user,
 * so ~ and the files it names (.pgpass, SSH keys) are that user's, as when it starts pgbk itself.
 */
export async function runAsCatalogOwner(desired: Desired, io: CliIo, reload: () => Promise<Desired>): Promise<Desired> {
  const use = io.catalogUse;
  if (use === undefined) return desired;
  const { ensureCatalogUser } = await import('../catalog/owner.js');
  const request = (d: Desired) => ({
    catalog: d.catalog,
    ...(d.user === undefined ? {} : { user: d.user }),
    configPath: d.configPath,
    access: use.access,
    command: use.command,
    log: (line: string) => io.stderr.write(`${line}\n`),
  });
  const outcome = await ensureCatalogUser(request(desired));
  if (outcome.kind !== 'switched') return desired;
  let again: Desired;
  try {
    again = await reload();
  } catch (err) {
    const e = toPgbkError(err);
    const who = outcome.user.name ?? `uid ${outcome.user.uid}`;
    throw new PgbkError(e.code, `${e.message} (pgbk switched to ${who}, the catalog's owner, and reads the configuration again as ${who})`, {
      ...(e.path === undefined ? {} : { path: e.path }),
      hint: `the configuration file must be readable by the catalog's owner`,
    });
  }
  // The file may have changed in between, or name the catalog through ~: check the one we use.
  if (again.catalog !== desired.catalog) await ensureCatalogUser(request(again));
  return again;
}
