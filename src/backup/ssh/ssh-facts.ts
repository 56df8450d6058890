import type { ServerConfig } from '../../config/resolved.js';
import { connectServer } from '../../transport/connect.js';
import { psqlServerArgs } from './postmaster-pid.js';
import { PsqlSession } from './psql-session.js';
import { readFacts, type SessionFacts } from './session.js';

/** SSH-only mode: the server's identity and version through psql on the database host. */
export async function sshServerFacts(server: ServerConfig): Promise<SessionFacts> {
  const transport = await connectServer(server);
  try {
    const serverArgs = await psqlServerArgs(transport, server.ssh?.psqlConnection, server.pgdata);
    const session = new PsqlSession(transport, serverArgs, server.name);
    try {
      return await readFacts(session);
    } finally {
      await session.close();
    }
  } finally {
    await transport.close();
  }
}
