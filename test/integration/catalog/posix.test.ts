import { rm } from 'node:fs/promises';
import { openPosixRepository } from '../../../src/catalog/posix/driver.js';
import { tempDir } from '../../support/postgres.js';
import { repositoryContract } from './repository-contract.js';

repositoryContract('posix', async () => {
  const root = await tempDir('pgbk-repo-posix-');
  return {
    repo: await openPosixRepository(root),
    spec: { kind: 'posix', root },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});
