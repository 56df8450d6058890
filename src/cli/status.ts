import { countQuarantined, listArchivedWal, listIncoming, readBackups, readIdentity, readLock } from '../catalog/index.js';
import { selectServers } from '../config/select-servers.js';
import { formatAge, formatBytes } from './format.js';
import type { CliIo } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand } from './options.js';
import { writeJson } from './json-output.js';

/** `pgbk status [SERVER...]`: one block per server — identity, backups, WAL archive, lock. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('status', args, {} as const);
  const desired = await loadDesired(values.config, io);
  const now = Date.now();
  const out = [];
  for (const s of selectServers(desired, positionals)) {
    const [identity, backups, wal, incoming, quarantined, lock] = await Promise.all([
      readIdentity(desired.catalog, s.name),
      readBackups(desired.catalog, s.name),
      listArchivedWal(desired.catalog, s.name),
      listIncoming(desired.catalog, s.name),
      countQuarantined(desired.catalog, s.name),
      readLock(desired.catalog, s.name),
    ]);
    const done = backups.filter((b) => b.status === 'DONE');
    const last = done[done.length - 1];
    const byStatus: Record<string, number> = {};
    for (const b of backups) byStatus[b.status] = (byStatus[b.status] ?? 0) + 1;
    out.push({
      server: s.name,
      description: s.description ?? null,
      systemIdentifier: identity?.systemIdentifier ?? null,
      pgVersion: identity?.pgVersion ?? null,
      backups: byStatus,
      lastBackup: last === undefined ? null : { id: last.id, endTime: last.endTime ?? null, size: last.sizes?.stored ?? null },
      lastBackupAgeSeconds: last?.endTime === undefined ? null : Math.round((now - Date.parse(last.endTime)) / 1000),
      walSegments: wal.segments.length,
      firstWal: wal.segments[0] ?? null,
      lastWal: wal.segments[wal.segments.length - 1] ?? null,
      lastWalAgeSeconds: wal.newestMtime === undefined ? null : Math.round((now - Date.parse(wal.newestMtime)) / 1000),
      incoming: incoming.filter((f) => f.kind !== 'in-flight').length,
      quarantined,
      lock: lock ?? null,
    });
  }
  if (values.json === true) {
    writeJson(io, 'status', { servers: out });
    return 0;
  }
  for (const st of out) {
    const lines = [
      `${st.server}${st.description ? ` — ${st.description}` : ''}`,
      `  cluster       ${st.systemIdentifier ?? 'not contacted yet'}${st.pgVersion ? ` (PostgreSQL ${st.pgVersion})` : ''}`,
      `  backups       ${Object.entries(st.backups).map(([k, v]) => `${v} ${k}`).join(', ') || 'none'}`,
      `  last backup   ${st.lastBackup ? `${st.lastBackup.id}, ${formatAge(st.lastBackupAgeSeconds ?? 0)} ago, ${formatBytes(st.lastBackup.size ?? undefined)}` : 'none'}`,
      `  WAL archive   ${st.walSegments} segment(s)${st.lastWal ? `, ${st.firstWal} … ${st.lastWal}, newest ${formatAge(st.lastWalAgeSeconds ?? 0)} ago` : ''}`,
      `  incoming      ${st.incoming} file(s) waiting`,
      `  errors/       ${st.quarantined} quarantined file(s)`,
      `  lock          ${st.lock ? `held by pid ${st.lock.pid} on ${st.lock.host} (${st.lock.command}) since ${st.lock.since}` : 'free'}`,
    ];
    io.stdout.write(`${lines.join('\n')}\n`);
  }
  return 0;
}
