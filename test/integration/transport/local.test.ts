// test-lane: light — transport contract, local; kill bound is 10 s for a 200 ms kill
import { rm } from 'node:fs/promises';
import { LocalTransport } from '../../../src/transport/local.js';
import { tempDir } from '../../support/postgres.js';
import { transportContract } from './contract.js';

transportContract('local', async () => {
  const dir = await tempDir('pgbk-tr-local-');
  return {
    transport: new LocalTransport(),
    dir,
    share: async () => undefined,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
