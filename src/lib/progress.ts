/**
 * A one-line progress display for long copies (DESIGN.md §7): bytes, files and rate, rewritten in
 * place on a terminal (stderr), at most a few times a second; nothing when not on a terminal.
 */

import { formatBytes } from './byte-size.js';

export interface Progress {
  /** files undefined: not counted (pg_basebackup reports bytes only). */
  update(bytes: number, files?: number): void;
  finish(): void;
}

export { formatBytes };

/** Makes a progress display for one long copy; what executors get when progress is wanted. */
export type ProgressFactory = (label: string, total: number | undefined) => Progress;

/**
 * Show progress? On a terminal (stderr) only, unless PGBK_PROGRESS says otherwise: 1 forces it
 * (tests, `script` sessions), 0 turns it off.
 */
export function progressEnabled(stream: NodeJS.WritableStream, env: NodeJS.ProcessEnv): boolean {
  const forced = env['PGBK_PROGRESS'];
  if (forced === '1') return true;
  if (forced === '0') return false;
  return (stream as { isTTY?: boolean }).isTTY === true;
}

/** A ProgressFactory writing to `out`, or undefined when progress is not wanted there. */
export function progressFactory(out: NodeJS.WritableStream, env: NodeJS.ProcessEnv): ProgressFactory | undefined {
  if (!progressEnabled(out, env)) return undefined;
  return (label, total) => createProgress(out, true, total, label);
}

export function createProgress(out: NodeJS.WritableStream, enabled: boolean, total: number | undefined, label: string): Progress {
  const started = Date.now();
  let last = 0;
  let shown = false;
  const line = (bytes: number, files: number | undefined): string => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    const pct = total !== undefined && total > 0 ? ` ${Math.min(100, Math.floor((bytes / total) * 100))}%` : '';
    return `${label}${pct} ${formatBytes(bytes)}${total !== undefined ? ` of ${formatBytes(total)}` : ''}${files === undefined ? '' : `, ${files} files`}, ${formatBytes(bytes / secs)}/s`;
  };
  return {
    update(bytes: number, files?: number): void {
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
