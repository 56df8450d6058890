/**
 * The database host over SSH (ssh2): one connection, any number of exec channels on it. The host
 * key is checked against known_hosts before authentication (an unknown, changed or revoked key is
 * a terminal HOSTKEY error and no byte of data moves); keepalives detect a dead peer during long
 * copies. Files are read with `cat` and written with `cat` into a temp name, then size-checked,
 * fsynced and renamed by a second command, so a connection lost mid-write never publishes a
 * truncated file.
 */

import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, type Writable } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { PgbkError } from '../errors.js';
import { collect } from './collect.js';
import { hostKeyError, hostLookupName, readKnownHosts, verifyHostKey, type HostKeyVerdict } from './known-hosts.js';
import { shellJoin } from '../lib/shell-quote.js';
import type { DirEntry, ExecProcess, ExitStatus, FileInfo, FileType, RunResult, Transport } from './transport.js';

const { Client } = ssh2;

export interface SshOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Private key file; default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa (first that exists), plus the agent. */
  readonly identityFile?: string;
  /** Default ~/.ssh/known_hosts. */
  readonly knownHosts?: string;
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveCountMax?: number;
  readonly readyTimeoutMs?: number;
  /** For error messages. */
  readonly server?: string;
}

async function loadPrivateKey(opts: SshOptions): Promise<Buffer | undefined> {
  if (opts.identityFile !== undefined) {
    try {
      return await readFile(opts.identityFile);
    } catch (err) {
      throw new PgbkError('CONFIG', `cannot read SSH identity file ${opts.identityFile}: ${(err as Error).message}`, {
        path: opts.identityFile,
        ...(opts.server === undefined ? {} : { server: opts.server }),
      });
    }
  }
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    try {
      return await readFile(path.join(os.homedir(), '.ssh', name));
    } catch {
      // try the next default key
    }
  }
  return undefined;
}

function typeOf(letter: string): FileType {
  if (letter === 'f') return 'file';
  if (letter === 'd') return 'dir';
  if (letter === 'l') return 'symlink';
  return 'other';
}

function parseFindLine(line: string): FileInfo & { name: string } {
  const [y, size, mtime, mode, name] = line.split('\t');
  return {
    type: typeOf(y ?? ''),
    size: Number(size),
    mtimeMs: Number(mtime) * 1000,
    mode: parseInt(mode ?? '0', 8),
    name: name ?? '',
  };
}

/** Second step of writeFile: publish the temp file only if every byte arrived. */
const PUBLISH_SCRIPT = [
  'set -e',
  't=$1; f=$2; n=$3; m=$4',
  'trap \'rm -f -- "$t"\' EXIT',
  's=$(stat -c %s -- "$t")',
  '[ "$s" = "$n" ] || { echo "short write: $s of $n bytes arrived" >&2; exit 3; }',
  'chmod "$m" -- "$t"',
  'sync -- "$t"',
  'mv -f -- "$t" "$f"',
  'trap - EXIT',
  'sync -- "$(dirname -- "$f")"',
].join('\n');

/**
 * POSIX sh: the real path of $1's deepest existing ancestor (cd -P; pwd -P) plus the missing
 * rest; exit 3 for a dangling symbolic link on the way.
 */
const REAL_PATH_SCRIPT = [
  'p=$1; tail=',
  'while [ ! -e "$p" ] && [ ! -L "$p" ]; do tail="/$(basename -- "$p")$tail"; p=$(dirname -- "$p"); done',
  'if [ -L "$p" ] && [ ! -e "$p" ]; then echo "$p is a symbolic link to a missing target" >&2; exit 3; fi',
  'if [ -d "$p" ]; then r=$(cd -P -- "$p" && pwd -P) || exit 1; else r=$(cd -P -- "$(dirname -- "$p")" && pwd -P) || exit 1; r="${r%/}/$(basename -- "$p")"; fi',
  'printf "%s%s\\n" "${r%/}" "$tail"',
].join('\n');

export class SshTransport implements Transport {
  readonly description: string;
  private readonly client: InstanceType<typeof Client>;
  private readonly channels = new Set<{ fail: (why: string) => void }>();
  private closedReason: string | undefined;

  private constructor(client: InstanceType<typeof Client>, description: string) {
    this.client = client;
    this.description = description;
    client.on('close', () => this.lost('SSH connection closed'));
    client.on('error', (err: Error) => this.lost(`SSH connection error: ${err.message}`));
  }

  /** Connect and authenticate; the host key is verified first. Errors: HOSTKEY (terminal), NETWORK, CONFIG. */
  static async connect(opts: SshOptions): Promise<SshTransport> {
    const knownHostsFile = opts.knownHosts ?? path.join(os.homedir(), '.ssh', 'known_hosts');
    const knownText = await readKnownHosts(knownHostsFile);
    const privateKey = await loadPrivateKey(opts);
    const client = new Client();
    let rejected: PgbkError | undefined;
    const config: ConnectConfig = {
      host: opts.host,
      port: opts.port,
      username: opts.user,
      ...(privateKey === undefined ? {} : { privateKey }),
      ...(process.env['SSH_AUTH_SOCK'] !== undefined ? { agent: process.env['SSH_AUTH_SOCK'] } : {}),
      keepaliveInterval: opts.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: opts.keepaliveCountMax ?? 4,
      readyTimeout: opts.readyTimeoutMs ?? 20_000,
      hostVerifier: (key: Buffer): boolean => {
        const verdict: HostKeyVerdict = verifyHostKey(knownText, opts.host, opts.port, key);
        if (verdict.result === 'trusted') return true;
        rejected = hostKeyError(verdict, opts.host, opts.port, key, knownHostsFile);
        return false;
      },
    };
    const who = `${opts.user}@${hostLookupName(opts.host, opts.port)}`;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error & { level?: string }): void => {
        client.removeListener('ready', onReady);
        client.end();
        if (rejected !== undefined) {
          reject(
            opts.server === undefined
              ? rejected
              : new PgbkError('HOSTKEY', rejected.message, {
                  server: opts.server,
                  ...(rejected.path ? { path: rejected.path } : {}),
                  ...(rejected.hint ? { hint: rejected.hint } : {}),
                }),
          );
          return;
        }
        const auth = err.level === 'client-authentication';
        reject(
          new PgbkError(auth ? 'CONFIG' : 'NETWORK', `ssh ${who}: ${auth ? 'authentication failed' : err.message}`, {
            cause: err,
            ...(opts.server === undefined ? {} : { server: opts.server }),
            ...(auth ? { hint: "check ssh.user and ssh.identityFile, and the key in the host's authorized_keys" } : {}),
          }),
        );
      };
      const onReady = (): void => {
        client.removeListener('error', onError);
        resolve();
      };
      client.once('error', onError);
      client.once('ready', onReady);
      client.connect(config);
      // No Nagle: a session is a conversation of small messages (psql queries and their rows, agent
      // requests, channel window updates), and a small write held back until the previous one is
      // ACKed meets the peer's delayed ACK: ~40 ms per round trip instead of a fraction of one.
      client.setNoDelay(true);
    });
    return new SshTransport(client, `ssh ${who}`);
  }

  private lost(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    for (const ch of [...this.channels]) ch.fail(reason);
    this.channels.clear();
  }

  exec(argv: readonly string[], opts: { readonly env?: Readonly<Record<string, string>> } = {}): ExecProcess {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let channel: ClientChannel | undefined;
    let resolveDone!: (s: ExitStatus) => void;
    const done = new Promise<ExitStatus>((r) => (resolveDone = r));
    let settled = false;
    const entry = {
      fail: (why: string): void => {
        if (settled) return;
        settled = true;
        this.channels.delete(entry);
        stderr.write(`pgbk: ${why}\n`);
        stdout.end();
        stderr.end();
        stdin.resume(); // nobody reads it any more
        resolveDone({ code: null, signal: null });
      },
    };
    if (this.closedReason !== undefined) {
      queueMicrotask(() => entry.fail(this.closedReason ?? 'SSH connection closed'));
      return { stdin, stdout, stderr, done, kill: () => undefined };
    }
    this.channels.add(entry);
    const envPrefix = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const command = shellJoin(envPrefix.length > 0 ? ['env', ...envPrefix, ...argv] : argv);
    this.client.exec(command, (err, ch) => {
      if (err !== undefined && err !== null) {
        entry.fail(`cannot start remote command: ${err.message}`);
        return;
      }
      channel = ch;
      let code: number | null = null;
      let signal: string | null = null;
      ch.on('exit', (c: number | null, s?: string) => {
        code = c;
        signal = s ?? null;
      });
      ch.pipe(stdout);
      ch.stderr.pipe(stderr);
      stdin.pipe(ch as unknown as Writable);
      ch.once('close', () => {
        if (settled) return;
        settled = true;
        this.channels.delete(entry);
        // Let buffered output reach the proxies before reporting the end.
        setImmediate(() => {
          if (!stdout.writableEnded) stdout.end();
          if (!stderr.writableEnded) stderr.end();
          resolveDone({ code, signal });
        });
      });
    });
    return {
      stdin,
      stdout,
      stderr,
      done,
      kill: () => {
        if (channel === undefined) return;
        try {
          channel.signal('TERM');
        } catch {
          // older servers: closing the channel below is enough
        }
        channel.close();
      },
    };
  }

  run(argv: readonly string[], input?: Buffer | string): Promise<RunResult> {
    return collect(this.exec(argv), input);
  }

  private failure(what: string, file: string, r: RunResult): PgbkError {
    if (r.code === null) return new PgbkError('NETWORK', `${this.description}: ${what} ${file}: ${r.stderr.trim() || 'connection lost'}`, { path: file });
    if (/No such file or directory/.test(r.stderr))
      return new PgbkError('NOT_FOUND', `${this.description}: ${file}: no such file or directory`, { path: file });
    return new PgbkError('CATALOG', `${this.description}: ${what} ${file} failed (exit ${r.code}): ${r.stderr.trim()}`, { path: file });
  }

  readStream(file: string): Readable {
    const out = new PassThrough();
    const proc = this.exec(['cat', '--', file]);
    proc.stdin.end();
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    proc.stdout.pipe(out, { end: false });
    const stdoutEnded = new Promise<void>((r) => proc.stdout.once('end', r));
    void Promise.all([proc.done, stdoutEnded]).then(([status]) => {
      if (status.code === 0) out.end();
      else out.destroy(this.failure('read', file, { ...status, stdout: Buffer.alloc(0), stderr: err }));
    });
    return out;
  }

  async writeFile(file: string, source: Readable | Buffer | string, mode = 0o600): Promise<void> {
    const tmp = path.posix.join(path.posix.dirname(file), `.${path.posix.basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
    const proc = this.exec(['sh', '-c', 'umask 077 && exec cat > "$1"', 'sh', tmp]);
    let bytes = 0;
    const input = typeof source === 'string' || Buffer.isBuffer(source) ? Readable.from([Buffer.from(source)]) : source;
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    proc.stdout.resume();
    let sourceError: unknown;
    try {
      for await (const chunk of input) {
        const buf = chunk as Buffer;
        bytes += buf.length;
        if (!proc.stdin.write(buf)) await new Promise((r) => proc.stdin.once('drain', r));
      }
    } catch (e) {
      sourceError = e;
    }
    if (sourceError !== undefined) {
      proc.kill();
      await proc.done;
      await this.run(['rm', '-f', '--', tmp]).catch(() => undefined);
      throw sourceError;
    }
    proc.stdin.end();
    const status = await proc.done;
    if (status.code !== 0) {
      await this.run(['rm', '-f', '--', tmp]).catch(() => undefined);
      throw this.failure('write', file, { ...status, stdout: Buffer.alloc(0), stderr: err });
    }
    const r = await this.run(['sh', '-c', PUBLISH_SCRIPT, 'sh', tmp, file, String(bytes), mode.toString(8)]);
    if (r.code !== 0) throw this.failure('publish', file, r);
  }

  async stat(file: string): Promise<FileInfo | undefined> {
    const r = await this.run(['find', file, '-maxdepth', '0', '-printf', '%y\\t%s\\t%T@\\t%m\\t\\n']);
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return undefined;
      throw this.failure('stat', file, r);
    }
    const { name: _n, ...info } = parseFindLine(r.stdout.toString('utf8').replace(/\n$/, ''));
    return info;
  }

  async list(dir: string): Promise<DirEntry[]> {
    const r = await this.run(['find', dir, '-mindepth', '1', '-maxdepth', '1', '-printf', '%y\\t%s\\t%T@\\t%m\\t%f\\0']);
    if (r.code !== 0) throw this.failure('list', dir, r);
    return r.stdout
      .toString('utf8')
      .split('\0')
      .filter((l) => l !== '')
      .map(parseFindLine)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async realPath(file: string): Promise<string> {
    const r = await this.run(['sh', '-c', REAL_PATH_SCRIPT, 'sh', file]);
    const out = r.stdout.toString('utf8').replace(/\n$/, '');
    if (r.code === 3) throw new PgbkError('USAGE', r.stderr.trim(), { path: file });
    // "/" itself prints as the empty string (its trailing slash is stripped).
    if (r.code === 0 && out === '') return '/';
    if (r.code !== 0 || !out.startsWith('/')) {
      throw new PgbkError(r.code === null ? 'NETWORK' : 'USAGE', `cannot resolve its real path: ${r.stderr.trim() || 'connection lost'}`, { path: file });
    }
    return path.posix.normalize(out);
  }

  private async must(what: string, file: string, argv: readonly string[]): Promise<void> {
    const r = await this.run(argv);
    if (r.code !== 0) throw this.failure(what, file, r);
  }

  mkdir(dir: string, mode: number): Promise<void> {
    const m = mode.toString(8);
    return this.must('mkdir', dir, ['sh', '-c', 'mkdir -p -m "$1" -- "$2" && chmod "$1" -- "$2"', 'sh', m, dir]);
  }

  async remove(paths: readonly string[]): Promise<void> {
    if (paths.length > 0) await this.must('remove', paths[0]!, ['rm', '-rf', '--', ...paths]);
  }

  symlink(target: string, link: string): Promise<void> {
    return this.must('symlink', link, ['sh', '-c', 'rm -rf -- "$2" && ln -s -- "$1" "$2"', 'sh', target, link]);
  }

  async chownLike(reference: string, paths: readonly string[], recursive = false): Promise<void> {
    if (paths.length === 0) return;
    await this.must('chown', paths[0]!, ['chown', ...(recursive ? ['-R'] : []), '-h', `--reference=${reference}`, '--', ...paths]);
  }

  private uid: number | undefined;

  async userId(): Promise<number> {
    if (this.uid === undefined) {
      const r = await this.run(['id', '-u']);
      if (r.code !== 0) throw this.failure('id -u', '', r);
      this.uid = Number(r.stdout.toString('utf8').trim());
    }
    return this.uid;
  }

  async close(): Promise<void> {
    this.lost('SSH connection closed by pgbk');
    this.client.end();
  }
}
