/**
 * A one-line progress display for long copies (DESIGN.md §7): bytes, files and rate, rewritten in
 * place on a terminal (stderr), at most a few times a second; nothing when not on a terminal.
 */

export interface Progress {
  update(bytes: number, files: number): void;
  finish(): void;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

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
