/**
 * How instants appear in plan reasons: UTC, minute precision when the seconds are zero
 * ("2026-11-24T03:00Z"), so a schedule's fire time reads like the cron line that produced it.
 */

export function formatInstant(d: Date): string {
  const iso = d.toISOString(); // 2026-11-24T03:00:00.000Z
  if (d.getUTCSeconds() === 0 && d.getUTCMilliseconds() === 0) return `${iso.slice(0, 16)}Z`;
  if (d.getUTCMilliseconds() === 0) return `${iso.slice(0, 19)}Z`;
  return iso;
}

/** An ISO string from a record, re-rendered; an unparsable one is shown as it is. */
export function formatIsoText(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : formatInstant(new Date(t));
}

/** An elapsed time for a DBA: "45s", "12m 5s", "2h 3m", "3d 4h" (two largest units, floored). */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const units: readonly (readonly [string, number])[] = [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  for (let i = 0; i < units.length; i++) {
    const [name, size] = units[i] as readonly [string, number];
    if (s < size && size > 1) continue;
    const whole = Math.floor(s / size);
    const next = units[i + 1];
    if (next === undefined) return `${whole}${name}`;
    const rest = Math.floor((s % size) / next[1]);
    return rest === 0 ? `${whole}${name}` : `${whole}${name} ${rest}${next[0]}`;
  }
  return `${s}s`;
}
