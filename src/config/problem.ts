/**
 * One thing wrong with a config file. Validation collects all of them, so the user fixes the file
 * in one pass; load.ts turns them into "file:line:col: path: message" lines.
 */

import type { Anchor, ConfigPath } from './yaml-position.js';

export interface Problem {
  /** The config path the message is about, shown to the user. */
  readonly path: ConfigPath;
  readonly message: string;
  /** Where to point in the file; defaults to `path`. */
  readonly at?: ConfigPath;
  /** Point at the key of `at` (unknown or missing keys) or at its value (bad values). */
  readonly anchor: Anchor;
}
