/**
 * How the contract suite builds a driver in another process (the lock tests spawn holders): a
 * JSON-serialisable spec per driver. A new driver adds its case here and its own *.test.ts.
 */
import { openPosixRepository } from '../../../src/catalog/posix/driver.js';
import type { Repository } from '../../../src/catalog/repository.js';

export type DriverSpec = { readonly kind: 'posix'; readonly root: string };

export async function openDriver(spec: DriverSpec): Promise<Repository> {
  switch (spec.kind) {
    case 'posix':
      return openPosixRepository(spec.root);
    default: {
      const never: never = spec.kind;
      throw new Error(`unknown driver ${String(never)}`);
    }
  }
}
