/**
 * Diagnostic lines on stderr, the same way for every command: plain text (with an ISO UTC
 * timestamp for the commands cron runs: apply, backup) or, with --log-format json, one JSON object
 * per line with time, level and msg (src/daemon/logger.ts, shared with the daemon).
 */
import { createLogger, type LogLevel } from '../lib/logger.js';
import type { CliIo } from './io.js';

export function diag(io: CliIo, level: LogLevel, msg: string, fields: Readonly<Record<string, string | number | boolean>> = {}): void {
  if (io.logFormat === 'json' || io.timestamps === true) {
    createLogger(io.logFormat ?? 'text', io.stderr).log(level, msg, fields);
    return;
  }
  const extra = Object.entries(fields)
    .map(([k, v]) => ` ${k}=${String(v)}`)
    .join('');
  io.stderr.write(`${msg}${extra}\n`);
}

/**
 * Colour on stdout: NO_COLOR (set and non-empty) turns it off, FORCE_COLOR (set, not 0/false)
 * turns it on where stdout is not a terminal; otherwise only on a terminal (no-color.org).
 */
export function useColor(io: Pick<CliIo, 'env' | 'isTTY'>): boolean {
  const no = io.env['NO_COLOR'];
  if (no !== undefined && no !== '') return false;
  const force = io.env['FORCE_COLOR'];
  if (force !== undefined && force !== '' && force !== '0' && force !== 'false') return true;
  return io.isTTY;
}
