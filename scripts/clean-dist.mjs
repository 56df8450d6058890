// Removes dist/ before tsc writes it again: tsc never deletes the output of a source that was moved
// or deleted, and the test runner would keep running such a stale compiled test file.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

rmSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist'), { recursive: true, force: true });
