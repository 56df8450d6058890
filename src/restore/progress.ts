/**
 * A one-line progress display for long copies (DESIGN.md §7): bytes, files and rate, rewritten in
 * place on a terminal (stderr), at most a few times a second; nothing when not on a terminal.
 */

import { formatBytes } from '../plan/byte-size.js';

export interface Progress {
  update(bytes: number, files: number): void;
  finish(): void;
}

export { formatBytes };

export function createProgress(out: NodeJS.WritableStream, enabled: boolean, total: number | undefined, label: string): Progress {
  const started = Date.now();
  let last = 0;
  let shown = false;
  const line = (bytes: number, files: number): string => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    const pct = total !== undefined && total > 0 ? ` ${Math.min(100, Math.floor((bytes / total) * 100))}%` : '';
    return `${label}${pct} ${formatBytes(bytes)}${total !== undefined ? ` of ${formatBytes(total)}` : ''}, ${files} files, ${formatBytes(bytes / secs)}/s`;
  };
  return {
    update(bytes: number, files: number): void {
      if (!enabled) return;
      const now = Date.now();
      if (now - last < 250) return;
      last = now;
      shown = true;
      out.write(`\r\x1b[K${line(bytes, files)}`);
    },
    finish(): void {
      if (enabled && shown) out.write('\r\x1b[K');
    },
  };
}
