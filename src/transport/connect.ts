import type { ServerConfig } from '../config/resolved.js';
import { PgbkError } from '../errors.js';
import { SshTransport } from './ssh.js';

/** Open the SSH connection a server's `ssh:` block describes (host key verified). */
export async function connectServer(server: ServerConfig): Promise<SshTransport> {
  const ssh = server.ssh;
  if (ssh === undefined) {
    throw new PgbkError('CONFIG', 'this needs servers.<name>.ssh (host, user) to reach the database host', { server: server.name });
  }
  return SshTransport.connect({
    host: ssh.host,
    port: ssh.port,
    user: ssh.user,
    ...(ssh.identityFile === undefined ? {} : { identityFile: ssh.identityFile }),
    ...(ssh.knownHosts === undefined ? {} : { knownHosts: ssh.knownHosts }),
    server: server.name,
  });
}
