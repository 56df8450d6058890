/** Daemon logs on stderr: plain lines for people, one JSON object per line for log shippers. */

export type LogFormat = 'text' | 'json';
export type LogLevel = 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, msg: string, fields?: Readonly<Record<string, string | number | boolean>>): void;
}

export function createLogger(format: LogFormat, out: NodeJS.WritableStream, clock: () => Date = () => new Date()): Logger {
  return {
    log(level, msg, fields = {}) {
      const time = clock().toISOString();
      if (format === 'json') {
        out.write(`${JSON.stringify({ time, level, msg, ...fields })}\n`);
        return;
      }
      const extra = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`)
        .join(' ');
      out.write(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra === '' ? '' : ` ${extra}`}\n`);
    },
  };
}

export function parseLogFormat(value: string): LogFormat | undefined {
  return value === 'text' || value === 'json' ? value : undefined;
}
