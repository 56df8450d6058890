/**
 * pg_basebackup -P lines: "  1234/56789 kB (2%), 0/1 tablespace (…)". When stderr is not a
 * terminal (pgbk reads it through a pipe) each report ends with a newline, so every report is one
 * line. Data bytes as the server counts them (uncompressed), and its estimate of the total.
 */

export interface BaseBackupProgress {
  readonly doneBytes: number;
  readonly totalBytes: number;
}

export function parseBaseBackupProgress(line: string): BaseBackupProgress | undefined {
  const m = /^\s*(\d+)\/(\d+) kB \(\d+%\)/.exec(line);
  if (m === null) return undefined;
  return { doneBytes: Number(m[1]) * 1024, totalBytes: Number(m[2]) * 1024 };
}
