/** Test damage to a file on disk (code-cache entries, stored objects). */
import { readFileSync, writeFileSync } from 'node:fs';

/** Flip bits in the last 4 KiB of `file` (its length unchanged): what a torn or rotten write leaves. */
export function damageTail(file: string): void {
  const bytes = readFileSync(file);
  for (let i = Math.max(0, bytes.length - 4096); i < bytes.length; i += 97) bytes[i] = bytes[i]! ^ 0x5a;
  writeFileSync(file, bytes);
}
