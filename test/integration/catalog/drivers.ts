/**
 * How the contract suite builds a driver in another process (the lock tests spawn holders): a
 * JSON-serialisable spec per driver. A new driver adds its case here and its own *.test.ts.
 */
import { openPosixRepository } from '../../../src/catalog/posix/driver.js';
import type { Repository } from '../../../src/catalog/repository.js';
import type { S3RepositoryConfig } from '../../../src/config/resolved.js';

export type DriverSpec =
  | { readonly kind: 'posix'; readonly root: string }
  /** Credentials are not in the spec: the child inherits AWS_SHARED_CREDENTIALS_FILE (test/support/rgw.ts). */
  | { readonly kind: 's3'; readonly config: S3RepositoryConfig };

export async function openDriver(spec: DriverSpec): Promise<Repository> {
  switch (spec.kind) {
    case 'posix':
      return openPosixRepository(spec.root);
    case 's3': {
      const { openS3Repository } = await import('../../../src/catalog/s3/driver.js');
      return openS3Repository(spec.config);
    }
    default: {
      const never: never = spec;
      throw new Error(`unknown driver ${JSON.stringify(never)}`);
    }
  }
}
