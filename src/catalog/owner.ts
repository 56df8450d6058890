/**
 * One OS user owns the catalog, and only that user writes it. pgbk writes every file 0640 and every
 * directory 0750 under the writer's own ids, so a second writer strands data: `apply` run by root
 * on a postgres-owned catalog made root-owned wal/ and backups/ that restore_command (PostgreSQL's
 * user) then could not read, and that `list` as postgres could not see.
 *
 * The rule, as Barman keeps it with its barman user:
 * - started as root, pgbk becomes the catalog's owner before it touches anything (the `user:` of
 *   the configuration, else the owner of the catalog directory, else — before the catalog exists —
 *   the owner of its nearest existing parent); a root-owned catalog stays root's;
 * - restore as root is the exception: it keeps root so the restored files can belong to the user
 *   PostgreSQL runs as (which need not own the catalog), and makes its catalog writes (the in-use
 *   mark) as the catalog's owner (asCatalogOwner);
 * - started as any other user, a command that writes refuses unless that user owns the catalog
 *   (or, before it exists, can create it); a command that only reads needs only read access, and
 *   reports what it cannot read.
 */

import { PgbkError } from '../errors.js';
import { asEffectiveUser, becomeUser, canWrite, currentUid, describeUser, lookupUser, ownerOfNearest, type OsUser, type PathOwner } from '../lib/os-user.js';

/** read: list, plan, …; write: apply, backup, wal-push, …; restore: writes only its in-use mark. */
export type CatalogAccess = 'read' | 'write' | 'restore';

export interface CatalogUserRequest {
  readonly catalog: string;
  /** The configuration's `user:`. */
  readonly user?: string;
  readonly configPath?: string;
  readonly access: CatalogAccess;
  /** The command, for messages ("apply"). */
  readonly command: string;
  readonly log: (line: string) => void;
}

export type CatalogUserOutcome =
  | { readonly kind: 'unchanged' }
  /** The process now runs as `user`, for good. */
  | { readonly kind: 'switched'; readonly user: OsUser }
  /** Restore as root: still root, catalog writes go through asCatalogOwner as `user`. */
  | { readonly kind: 'writes-as'; readonly user: OsUser };

const UNCHANGED: CatalogUserOutcome = { kind: 'unchanged' };

/** Set for a root restore: whom its catalog writes must belong to. */
let catalogWriter: OsUser | undefined;

/**
 * Run a catalog write as the catalog's owner. Only a restore started as root needs it (every other
 * command already runs as the owner); otherwise `fn` just runs.
 */
export function asCatalogOwner<T>(fn: () => Promise<T>): Promise<T> {
  return catalogWriter === undefined ? fn() : asEffectiveUser(catalogWriter, fn);
}

function nameOf(u: { readonly name?: string; readonly uid: number }): string {
  return u.name ?? `uid ${u.uid}`;
}

async function userNamed(req: CatalogUserRequest, name: string): Promise<OsUser> {
  const u = await lookupUser(name);
  if (u === undefined) {
    throw new PgbkError('CONFIG', `user: there is no OS user "${name}" on this host`, {
      ...(req.configPath === undefined ? {} : { path: req.configPath }),
      hint: 'user: names the OS user that owns the catalog and that pgbk runs as',
    });
  }
  return u;
}

async function ownerUser(where: PathOwner): Promise<OsUser> {
  return (await lookupUser(where.uid)) ?? { uid: where.uid, gid: where.gid };
}

function ownerMismatch(req: CatalogUserRequest, owner: OsUser, configured: OsUser): PgbkError {
  return new PgbkError(
    'CATALOG',
    `${req.command}: the catalog ${req.catalog} belongs to ${describeUser(owner)}, but the configuration says user: ${nameOf(configured)}`,
    {
      path: req.catalog,
      hint: `give the catalog to that user (chown -R ${nameOf(configured)} ${req.catalog}) or set user: ${nameOf(owner)}`,
    },
  );
}

async function asRoot(req: CatalogUserRequest): Promise<CatalogUserOutcome> {
  const where = await ownerOfNearest(req.catalog);
  const configured = req.user === undefined ? undefined : await userNamed(req, req.user);
  if (configured !== undefined && where.exists && where.uid !== configured.uid && req.access !== 'read') {
    throw ownerMismatch(req, await ownerUser(where), configured);
  }
  const target = configured ?? (await ownerUser(where));
  if (!where.exists && req.access !== 'read') {
    const why = configured !== undefined ? 'the user: of the configuration' : `the owner of ${where.path} (set user: in the configuration to choose)`;
    req.log(`pgbk: the catalog ${req.catalog} does not exist yet: it will belong to ${describeUser(target)}, ${why}`);
  }
  if (target.uid === 0) return UNCHANGED;
  if (req.access === 'restore') {
    catalogWriter = target;
    return { kind: 'writes-as', user: target };
  }
  try {
    becomeUser(target);
  } catch (err) {
    throw new PgbkError('INTERNAL', `${req.command}: cannot switch to ${describeUser(target)}, the catalog's owner: ${(err as Error).message}`, {
      path: req.catalog,
    });
  }
  return { kind: 'switched', user: target };
}

async function checkWriter(req: CatalogUserRequest, uid: number): Promise<void> {
  const me = async (): Promise<OsUser> => (await lookupUser(uid)) ?? { uid, gid: process.getgid?.() ?? uid };
  if (req.user !== undefined) {
    const configured = await userNamed(req, req.user);
    if (configured.uid !== uid) {
      throw new PgbkError('CATALOG', `${req.command}: the configuration says user: ${nameOf(configured)}, but pgbk is running as ${describeUser(await me())}`, {
        path: req.catalog,
        hint: `run it as ${nameOf(configured)} (sudo -u ${nameOf(configured)} pgbk ${req.command} …), or as root: pgbk then switches to ${nameOf(configured)} itself`,
      });
    }
  }
  const where = await ownerOfNearest(req.catalog);
  if (where.exists) {
    if (where.uid === uid) return;
    const owner = await ownerUser(where);
    const self = await me();
    throw new PgbkError(
      'CATALOG',
      `${req.command}: the catalog ${req.catalog} belongs to ${describeUser(owner)}, but pgbk is running as ${describeUser(self)}; ` +
        `files written now would belong to ${nameOf(self)} and could be unreadable to ${nameOf(owner)} and to restore_command`,
      {
        path: req.catalog,
        hint: `run it as ${nameOf(owner)} (sudo -u ${nameOf(owner)} pgbk ${req.command} …), or as root: pgbk then switches to ${nameOf(owner)} itself`,
      },
    );
  }
  if (!(await canWrite(where.path))) {
    const owner = await ownerUser(where);
    throw new PgbkError(
      'CATALOG',
      `${req.command}: cannot create the catalog ${req.catalog}: ${where.path} belongs to ${describeUser(owner)} and ${describeUser(await me())} cannot write it`,
      { path: req.catalog, hint: `create ${req.catalog} owned by the user pgbk should run as (install -d -o USER ${req.catalog})` },
    );
  }
}

/**
 * An object-storage catalog (s3://…) has no files and so no owner on this host: the store's
 * credentials decide who may write. Only a configured `user:` still applies (started as root,
 * pgbk becomes it, so its ~/.aws and spool are used); nothing is checked otherwise.
 */
async function objectStoreUser(req: CatalogUserRequest, uid: number): Promise<CatalogUserOutcome> {
  if (req.user === undefined || uid !== 0 || req.access === 'restore') return UNCHANGED;
  const target = await userNamed(req, req.user);
  if (target.uid === 0) return UNCHANGED;
  try {
    becomeUser(target);
  } catch (err) {
    throw new PgbkError('INTERNAL', `${req.command}: cannot switch to ${describeUser(target)} (user:): ${(err as Error).message}`, { path: req.catalog });
  }
  return { kind: 'switched', user: target };
}

/**
 * Make the process the right user for `req.access` to the catalog, or refuse — before anything is
 * written. Cheap when not root: one stat of the catalog root for a writer, nothing for a reader
 * (wal-push runs this once per WAL segment).
 */
export async function ensureCatalogUser(req: CatalogUserRequest): Promise<CatalogUserOutcome> {
  const uid = currentUid();
  if (uid === undefined) return UNCHANGED; // no POSIX users (Windows)
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(req.catalog)) return objectStoreUser(req, uid);
  if (uid === 0) return asRoot(req);
  if (req.access === 'read') return UNCHANGED;
  await checkWriter(req, uid);
  return UNCHANGED;
}
