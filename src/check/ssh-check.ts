/**
 * `ssh` check for servers with an `ssh:` block: the host answers, its key is in known_hosts (an
 * unknown or changed key is refused, never accepted), the login works, and the data directory is
 * there when `pgdata` is configured.
 */

import type { ServerConfig } from '../config/resolved.js';
import { toPgbkError } from '../errors.js';
import { connectServer } from '../transport/connect.js';
import { fail, pass, type CheckResult } from './types.js';

export async function checkSsh(server: ServerConfig): Promise<CheckResult | undefined> {
  const ssh = server.ssh;
  if (ssh === undefined) return undefined;
  const who = `${ssh.user}@${ssh.host}:${ssh.port}`;
  let transport;
  try {
    transport = await connectServer(server);
  } catch (err) {
    const e = toPgbkError(err);
    return fail('ssh', `${who}: ${e.message}`, e.hint ?? 'check ssh.host, ssh.port and that sshd runs; add the host key with ssh-keyscan to ssh.knownHosts');
  }
  try {
    if (server.pgdata !== undefined) {
      const r = await transport.run(['test', '-d', server.pgdata]);
      if (r.code !== 0)
        return fail(
          'ssh',
          `${who} reachable, but ${server.pgdata} is not a directory there`,
          'fix servers.<name>.pgdata (the data directory on the database host)',
        );
    }
    return pass('ssh', `${who} reachable, host key verified${server.pgdata === undefined ? '' : `, ${server.pgdata} present`}`);
  } catch (err) {
    return fail('ssh', `${who}: ${toPgbkError(err).message}`, 'check that the SSH user may run commands on the host');
  } finally {
    await transport.close().catch(() => undefined);
  }
}
