/**
 * Deriving where a restored cluster should fetch WAL from, from how it archived it. A database
 * host that pushes WAL with `pgbk wal-push --to ssh://USER@HOST/CATALOG --identity F …` already
 * holds the credentials (key, known_hosts, remote pgbk command) to reach the backup host, so a
 * restore onto it can fetch WAL the same way (`pgbk wal-fetch --from ssh://…`) with no new flag.
 * Pure: configuration text in, settings out; unit-tested.
 */

/**
 * The last value of `name` in postgresql.conf syntax (guc-file.l): `name = 'quoted'`, `name 'x'`
 * or `name = bare`; '' is a quote inside a quoted value and backslash escapes apply; # starts a
 * comment. undefined when the setting is absent (or commented out).
 */
export function confSetting(text: string, name: string): string | undefined {
  let value: string | undefined;
  for (const raw of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=\s*|\s+)(.*)$/.exec(raw);
    if (m === null || m[1]?.toLowerCase() !== name) continue;
    const rest = m[2] ?? '';
    if (rest.startsWith("'")) {
      let out = '';
      let closed = false;
      for (let i = 1; i < rest.length; i++) {
        const c = rest[i]!;
        if (c === "'") {
          if (rest[i + 1] === "'") {
            out += "'";
            i++;
            continue;
          }
          closed = true;
          break;
        }
        if (c === '\\' && i + 1 < rest.length) {
          const n = rest[++i]!;
          out += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : n === 'b' ? '\b' : n === 'f' ? '\f' : n;
          continue;
        }
        out += c;
      }
      if (closed) value = out;
    } else {
      const bare = /^([^\s#]*)/.exec(rest)?.[1] ?? '';
      value = bare;
    }
  }
  return value;
}

/**
 * POSIX sh words of a simple command: single quotes, double quotes (with \ escaping $ ` " \),
 * backslash outside quotes. undefined for anything that is not one simple command (;, &, |,
 * redirections, $(…), backquotes, unbalanced quotes): such an archive_command is not derived from.
 */
export function splitShellWords(cmd: string): string[] | undefined {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i]!;
    if (c === "'") {
      const end = cmd.indexOf("'", i + 1);
      if (end < 0) return undefined;
      cur += cmd.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < cmd.length && cmd[j] !== '"'; j++) {
        const d = cmd[j]!;
        if (d === '$' || d === '`') return undefined;
        if (d === '\\' && j + 1 < cmd.length && '$`"\\\n'.includes(cmd[j + 1]!)) {
          cur += cmd[++j];
          continue;
        }
        cur += d;
      }
      if (j >= cmd.length) return undefined;
      inWord = true;
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= cmd.length) return undefined;
      cur += cmd[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else if (';&|<>()`$'.includes(c)) {
      return undefined;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

export interface DerivedFetch {
  /** How the database host runs pgbk (the words before `wal-push`), e.g. ["pgbk"] or [node, cli.js]. */
  readonly dbPgbk: readonly string[];
  readonly from: string;
  readonly identityFile?: string;
  readonly knownHosts?: string;
  readonly remotePgbk?: string;
  /** The server name wal-push archives as. */
  readonly server: string;
}

/** archive_command's own %-escapes: %p, %f and %% (PostgreSQL substitutes them before sh runs). */
export function unescapePercent(word: string): string {
  return word.replace(/%%/g, '%');
}

/**
 * The words of a `… pgbk … wal-push …` archive_command and the index of `wal-push` (≥ 1: something
 * runs pgbk before it); a reason string when it is not one. The shell fast path `wal-push
 * --print-archive-command` prints (src/wal-push-remote/fast-path.ts) checks a marker, then `exec`s
 * the plain client: its settings are the words after the last exec.
 */
export function walPushWords(cmd: string): { readonly words: readonly string[]; readonly at: number } | string {
  const fast = /^m=\S+ n=0; while \[ -S /.test(cmd) ? cmd.lastIndexOf('; exec ') : -1;
  const words = splitShellWords(fast >= 0 ? cmd.slice(fast + '; exec '.length) : cmd);
  if (words === undefined) return 'archive_command is not one simple command';
  const at = words.indexOf('wal-push');
  if (at < 1) return 'archive_command is not a pgbk wal-push command';
  return { words, at };
}

/**
 * `… wal-push --to ssh://… [--identity F] [--known-hosts F] [--remote-pgbk CMD] [--compression C]
 * SERVER %p` → the fetch settings; a reason string when the command is not of that form.
 */
export function deriveFetchFromArchiveCommand(cmd: string): DerivedFetch | string {
  const split = walPushWords(cmd);
  if (typeof split === 'string') return split;
  const { words, at } = split;
  const dbPgbk = words.slice(0, at).map(unescapePercent);
  const opts = new Map<string, string>();
  const positionals: string[] = [];
  const known = new Set(['--to', '--identity', '--known-hosts', '--remote-pgbk', '--compression', '--config', '-c']);
  for (let i = at + 1; i < words.length; i++) {
    const w = words[i]!;
    const eq = w.indexOf('=');
    const flag = w.startsWith('--') && eq > 0 ? w.slice(0, eq) : w;
    if (known.has(flag)) {
      const v = flag === w ? words[++i] : w.slice(eq + 1);
      if (v === undefined) return `archive_command: ${flag} has no value`;
      opts.set(flag, unescapePercent(v));
    } else if (w === '--debug') {
    } else if (w.startsWith('-')) {
      return `archive_command: unknown wal-push option ${w}`;
    } else {
      positionals.push(w);
    }
  }
  const to = opts.get('--to');
  if (to === undefined || !to.startsWith('ssh://')) return 'archive_command pushes to a local catalog (no --to ssh://…)';
  const server = positionals[0];
  if (server === undefined || positionals[1] !== '%p') return 'archive_command: expected SERVER %p after the options';
  const identityFile = opts.get('--identity');
  const knownHosts = opts.get('--known-hosts');
  const remotePgbk = opts.get('--remote-pgbk');
  return {
    dbPgbk,
    from: to,
    server: unescapePercent(server),
    ...(identityFile === undefined ? {} : { identityFile }),
    ...(knownHosts === undefined ? {} : { knownHosts }),
    ...(remotePgbk === undefined ? {} : { remotePgbk }),
  };
}

/** archive_command as the restored cluster would see it: postgresql.auto.conf wins over postgresql.conf. */
export function effectiveArchiveCommand(postgresqlConf: string, autoConf: string): string | undefined {
  return confSetting(autoConf, 'archive_command') ?? confSetting(postgresqlConf, 'archive_command');
}
