// test-lane: light — transport contract over ssh; kill bound is 10 s for a 200 ms kill
import { rm } from 'node:fs/promises';
import { SshTransport } from '../../../src/transport/ssh.js';
import { chownToPostgres, tempDir } from '../../support/postgres.js';
import { startSshd, type TestSshd } from '../../support/sshd.js';
import { transportContract } from './contract.js';

transportContract('ssh (as postgres via a private sshd)', async () => {
  const sshd: TestSshd = await startSshd();
  const dir = await tempDir('pgbk-tr-ssh-');
  await chownToPostgres(dir);
  const transport = await SshTransport.connect({
    host: '127.0.0.1',
    port: sshd.port,
    user: 'postgres',
    identityFile: sshd.identityFile,
    knownHosts: sshd.knownHosts,
  });
  return {
    transport,
    dir,
    share: chownToPostgres,
    async cleanup() {
      await transport.close();
      await sshd.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
