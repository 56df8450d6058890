/**
 * OS users: look one up (passwd), find who owns a path (or its nearest existing parent), switch the
 * whole process to a user for good, or the effective ids for one step. Node's process.setuid &c.
 * exist only on POSIX and only in the main thread; glibc applies set*id to every thread of the
 * process, so libuv's file-system threads act as the new user too.
 */

import { access, constants, readFile, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';

export interface OsUser {
  /** Absent for a uid without a passwd entry (a catalog chowned to a bare number). */
  readonly name?: string;
  readonly uid: number;
  readonly gid: number;
  readonly home?: string;
}

/** The name of the OS user this process runs as, for messages ("uid 1234" when it has none). */
export function currentUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** "postgres (uid 105)", or "uid 1234" when the uid has no name. */
export function describeUser(u: { readonly name?: string; readonly uid: number }): string {
  return u.name === undefined ? `uid ${u.uid}` : `${u.name} (uid ${u.uid})`;
}

function parsePasswdLine(line: string): OsUser | undefined {
  const f = line.split(':');
  if (f.length < 7) return undefined;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || f[0] === '') return undefined;
  return { name: f[0]!, uid, gid, ...(f[5] ? { home: f[5] } : {}) };
}

/** `getent passwd KEY`; child_process is loaded only here (a read command's start does not need it). */
async function getent(key: string): Promise<OsUser | undefined> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile('getent', ['passwd', key], { timeout: 5000 }, (err, stdout) => {
      resolve(err ? undefined : parsePasswdLine(stdout.split('\n')[0] ?? ''));
    });
  });
}

/**
 * A user by name or numeric uid: /etc/passwd first (no process to start), then `getent passwd`
 * for users from NSS (LDAP, sssd). Undefined when neither knows it.
 */
export async function lookupUser(key: string | number): Promise<OsUser | undefined> {
  const byUid = typeof key === 'number' || /^\d+$/.test(key);
  const match = (u: OsUser): boolean => (byUid ? u.uid === Number(key) : u.name === key);
  try {
    for (const line of (await readFile('/etc/passwd', 'utf8')).split('\n')) {
      const u = parsePasswdLine(line);
      if (u !== undefined && match(u)) return u;
    }
  } catch {
    // no readable /etc/passwd: ask NSS
  }
  const u = await getent(String(key));
  return u !== undefined && match(u) ? u : undefined;
}

export interface PathOwner {
  /** The path that exists: the one asked for, or its nearest existing parent. */
  readonly path: string;
  readonly exists: boolean;
  readonly uid: number;
  readonly gid: number;
}

/** Who owns `p`, or — when it does not exist yet — its nearest existing parent directory. */
export async function ownerOfNearest(p: string): Promise<PathOwner> {
  const wanted = path.resolve(p);
  let at = wanted;
  for (;;) {
    try {
      const st = await stat(at);
      return { path: at, exists: at === wanted, uid: st.uid, gid: st.gid };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const parent = path.dirname(at);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === at) throw err;
      at = parent;
    }
  }
}

export async function canWrite(p: string): Promise<boolean> {
  return access(p, constants.W_OK | constants.X_OK).then(
    () => true,
    () => false,
  );
}

export function currentUid(): number | undefined {
  return process.getuid?.();
}

/**
 * Become `user` for the rest of the process's life: supplementary groups, then gid, then uid (after
 * setuid the process could no longer change its groups). Real, effective and saved ids all change,
 * so there is no way back to root. HOME, USER and LOGNAME follow, so ~/.pgpass, ~/.ssh and the
 * like are the user's own, as if it had started pgbk itself.
 */
export function becomeUser(user: OsUser): void {
  if (process.setuid === undefined || process.setgid === undefined || process.setgroups === undefined) {
    throw new Error('switching users is not supported on this platform');
  }
  // initgroups is in Node on POSIX but not in @types/node 20.
  const initgroups = (process as { initgroups?: (user: string, extraGroup: number) => void }).initgroups;
  if (user.name !== undefined && initgroups !== undefined) initgroups.call(process, user.name, user.gid);
  else process.setgroups([user.gid]);
  process.setgid(user.gid);
  process.setuid(user.uid);
  if (process.getuid?.() !== user.uid || process.geteuid?.() !== user.uid || process.getgid?.() !== user.gid) {
    throw new Error(`could not switch to ${describeUser(user)}`);
  }
  if (user.home !== undefined) process.env['HOME'] = user.home;
  if (user.name !== undefined) {
    process.env['USER'] = user.name;
    process.env['LOGNAME'] = user.name;
  }
}

/**
 * Run `fn` with the effective uid/gid (and groups) of `user`, then return to the ids it had (root). For a root
 * process that must keep root for other work (restore: the restored files' owners) while the files
 * it writes in the catalog must belong to the catalog's owner. Nothing else may run concurrently:
 * the ids are the whole process's.
 */
export async function asEffectiveUser<T>(user: OsUser, fn: () => Promise<T>): Promise<T> {
  if (process.seteuid === undefined || process.setegid === undefined || process.setgroups === undefined || process.getgroups === undefined) {
    return fn();
  }
  const groups = process.getgroups();
  const egid = process.getegid?.() ?? 0;
  const euid = process.geteuid?.() ?? 0;
  process.setgroups([user.gid]);
  process.setegid(user.gid);
  process.seteuid(user.uid);
  try {
    return await fn();
  } finally {
    process.seteuid(euid);
    process.setegid(egid);
    process.setgroups(groups);
  }
}
