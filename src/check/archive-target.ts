/**
 * Where an archive_command sends WAL, when it is pgbk's own: `[…] pgbk [--config F] wal-push
 * [--to ssh://USER@HOST/CATALOG …] SERVER %p`, or the shell fast path `wal-push
 * --print-archive-command` prints (a marker loop that ends in `exec <the plain command> %p`).
 * Pure: the text in, the server name, config file and catalog it names out. `check` compares them
 * with its own so a command copied from another server's setup is reported by the name it carries.
 */

import { splitShellWords } from '../restore/archive-command.js';

export interface ArchiveTarget {
  /** The server name wal-push archives as. */
  readonly server: string;
  /** --config/-c given to pgbk, if any (PostgreSQL runs the command in the data directory). */
  readonly config?: string;
  /** The catalog path of `--to ssh://…/CATALOG`, if WAL goes over SSH. */
  readonly sshCatalog?: string;
  /** The shell fast path's worker socket (`[ -S SOCKET ]`), when the command is the fast path. */
  readonly fastPathSocket?: string;
}

const VALUE_FLAGS: ReadonlySet<string> = new Set(['--to', '--identity', '--known-hosts', '--remote-pgbk', '--compression', '--config', '-c']);

/** undefined when the command is not (recognisably) `pgbk … wal-push … SERVER %p`. */
export function parseArchiveTarget(cmd: string): ArchiveTarget | undefined {
  // One shell word: quoted parts, backslash escapes and plain characters (shArg quotes paths).
  const word = String.raw`(?:'[^']*'|\\.|[^\s'\\])+`;
  const fast = new RegExp(String.raw`^m=${word} n=0; while \[ -S `).test(cmd) ? cmd.lastIndexOf('; exec ') : -1;
  const words = splitShellWords(fast >= 0 ? cmd.slice(fast + '; exec '.length) : cmd);
  if (words === undefined) return undefined;
  const at = words.indexOf('wal-push');
  if (at < 1) return undefined;
  const opts = new Map<string, string>();
  const positionals: string[] = [];
  // Global options may come before the command word too (`pgbk --config F wal-push …`).
  for (let i = 1; i < words.length; i++) {
    if (i === at) continue;
    const w = words[i]!;
    const eq = w.indexOf('=');
    const flag = w.startsWith('--') && eq > 0 ? w.slice(0, eq) : w;
    if (VALUE_FLAGS.has(flag)) {
      const v = flag === w ? words[++i] : w.slice(eq + 1);
      if (v === undefined) return undefined;
      opts.set(flag === '-c' ? '--config' : flag, v.replace(/%%/g, '%'));
    } else if (w.startsWith('-')) {
    } else if (i > at) {
      positionals.push(w);
    }
  }
  const server = positionals[0];
  if (server === undefined || positionals[1] !== '%p') return undefined;
  const socketWords = fast >= 0 ? splitShellWords(new RegExp(String.raw`while \[ -S (${word}) \]`).exec(cmd)?.[1] ?? '') : undefined;
  const socket = socketWords?.length === 1 ? socketWords[0]!.replace(/%%/g, '%') : undefined;
  const config = opts.get('--config');
  const to = opts.get('--to');
  const m = to === undefined ? null : /^ssh:\/\/[^/\s]+(\/.*)$/.exec(to);
  return {
    server: server.replace(/%%/g, '%'),
    ...(config === undefined ? {} : { config }),
    ...(m?.[1] === undefined ? {} : { sshCatalog: decodeURIComponent(m[1]) }),
    ...(socket === undefined ? {} : { fastPathSocket: socket }),
  };
}
