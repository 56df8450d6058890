/**
 * A private OpenSSH server for integration tests: its own host key, config and authorized_keys in a
 * temp dir, listening on 127.0.0.1 on a free port, in the foreground (-D) as our child so it is
 * stopped by its PID (never by name). Logins as `postgres` (so psql and PGDATA work as on a real
 * database host) and as root use one generated client key. UsePAM yes: the postgres account has a
 * locked password ("!"), which sshd refuses without PAM even for key authentication.
 */

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { chownToPostgres, tempDir } from './postgres.js';
import { freePort } from './free-port.js';

export interface TestSshd {
  readonly dir: string;
  readonly port: number;
  readonly pid: number;
  /** Client private key (readable by root). */
  readonly identityFile: string;
  /** The same key, owned by postgres (for pgbk running as PostgreSQL's archive_command). */
  readonly postgresIdentityFile: string;
  /** known_hosts with the plain "[127.0.0.1]:PORT" line for this server's key. */
  readonly knownHosts: string;
  /** The host public key line "ssh-ed25519 AAAA…". */
  readonly hostKeyLine: string;
  stop(): Promise<void>;
}

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) if (c.pid !== undefined && c.exitCode === null) c.kill('SIGTERM');
});

export async function startSshd(): Promise<TestSshd> {
  const dir = await tempDir('pgbk-sshd-');
  await mkdir('/run/sshd', { recursive: true });
  const hostKey = path.join(dir, 'host_ed25519');
  const clientKey = path.join(dir, 'client_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
  const authorized = path.join(dir, 'authorized_keys');
  await writeFile(authorized, await readFile(`${clientKey}.pub`, 'utf8'), { mode: 0o644 });
  const pgKeyDir = path.join(dir, 'pgkey');
  await mkdir(pgKeyDir, { mode: 0o700 });
  const postgresIdentityFile = path.join(pgKeyDir, 'id_ed25519');
  await copyFile(clientKey, postgresIdentityFile);
  await chmod(postgresIdentityFile, 0o600);
  await chownToPostgres(pgKeyDir);
  const hostKeyLine = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = path.join(dir, 'sshd_config');
    await writeFile(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorized}`,
        'StrictModes no',
        'UsePAM yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin prohibit-password',
        'MaxSessions 64',
        'MaxStartups 64:30:100',
        'Subsystem sftp internal-sftp',
        // pgbk run through this sshd (the remote side) keeps its runtime directory where the
        // local side does: under the test run's TMPDIR (test/uvu-timed.mjs), removed at its end.
        ...(process.env['PGBK_TEST_RUN_TMPDIR'] === undefined ? [] : [`SetEnv TMPDIR=${process.env['PGBK_TEST_RUN_TMPDIR']}`]),
        'LogLevel ERROR',
        '',
      ].join('\n'),
    );
    const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (log += d));
    live.add(child);
    const deadline = Date.now() + 10_000;
    let up = false;
    while (Date.now() < deadline && child.exitCode === null) {
      if (await canConnect(port)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!up) {
      if (child.exitCode === null) child.kill('SIGTERM');
      live.delete(child);
      if (attempt < 3 && /Address already in use|Bind to port/.test(log)) continue;
      throw new Error(`sshd did not start: ${log}`);
    }
    const knownHosts = path.join(dir, 'known_hosts');
    await writeFile(knownHosts, `[127.0.0.1]:${port} ${hostKeyLine}\n`, { mode: 0o644 });
    return {
      dir,
      port,
      pid: child.pid ?? -1,
      identityFile: clientKey,
      postgresIdentityFile,
      knownHosts,
      hostKeyLine,
      async stop() {
        if (child.exitCode === null) {
          child.kill('SIGTERM');
          await new Promise((r) => child.once('close', r));
        }
        live.delete(child);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}
