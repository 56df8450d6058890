/**
 * The first executable `name` in `dirs` (an absolute path), or null: for optional helper programs
 * (setpriv, openssl) whose absence selects another way, decided once before anything is started.
 */

import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export function findExecutable(name: string, dirs: readonly string[]): string | null {
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** The directories of $PATH (Debian's default when unset). */
export function pathDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin').split(':');
}
