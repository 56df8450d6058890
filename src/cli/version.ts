import { readFileSync } from 'node:fs';

/**
 * pgbk's version from its package.json, read at run time relative to this module: compiled, it is
 * dist/src/cli/version.js, three levels below the package root both in a checkout and in an
 * npm-installed package (run from the sources by tsx, two levels).
 */
export function pgbkVersion(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    let pkg: { name?: unknown; version?: unknown };
    try {
      pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
    } catch {
      continue;
    }
    if (pkg.name === 'pgbk' && typeof pkg.version === 'string') return pkg.version;
  }
  throw new Error("cannot find pgbk's package.json next to its modules");
}
