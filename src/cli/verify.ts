import { readBackup, readBackupsWithProblems, readIdentity } from '../catalog/index.js';
import { selectServers } from '../config/select-servers.js';
import { PgbkError } from '../errors.js';
import { defaultTempRoot, verifyBackup, type BackupVerification } from '../verify/verify-backup.js';
import { verifyArchive, type WalVerification } from '../verify/verify-wal.js';
import { progressFactory } from '../lib/progress.js';
import type { CliIo } from './io.js';
import { EXIT } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand, requirePositional } from './options.js';
import { VERIFY_OPTIONS } from './commands.js';
import { writeJson } from './json-output.js';
import { plural } from '../lib/plural.js';

/**
 * `pgbk verify SERVER [ID|latest|all] [--quick] [--temp-dir DIR]`: one verdict per backup; `all`
 * (the default) also reads back every file of the WAL archive. Exit 1 on any problem.
 */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand('verify', args, VERIFY_OPTIONS);
  const server = requirePositional('verify', positionals, 0, 'SERVER');
  const which = positionals[1] ?? 'all';
  if (positionals.length > 2) throw new PgbkError('USAGE', 'verify: expected SERVER [ID|latest|all]');
  const desired = await loadDesired(values.config, io, { s3: true });
  selectServers(desired, [server]); // unknown server → USAGE error naming the configured ones
  const catalog = desired.catalog;
  const identity = await readIdentity(catalog, server);
  const progress = progressFactory(io.stderr, io.env);
  const opts = {
    catalog,
    server,
    identity,
    quick: values.quick === true,
    tempRoot: values['temp-dir'] ?? defaultTempRoot(io.env),
    env: io.env,
    ...(progress === undefined ? {} : { progress }),
  };

  const results: BackupVerification[] = [];
  const unreadable: string[] = [];
  const { backups, problems } = await readBackupsWithProblems(catalog, server);
  if (which === 'all') {
    for (const p of problems) unreadable.push(`backup ${p.id}: ${p.reason}`);
    for (const b of backups) results.push(await verifyBackup(b, opts));
  } else {
    const done = backups.filter((b) => b.status === 'DONE');
    const id = which === 'latest' ? done[done.length - 1]?.id : which;
    if (id === undefined) throw new PgbkError('NOT_FOUND', 'no completed backup to verify', { server });
    results.push(await verifyBackup(await readBackup(catalog, server, id), opts));
  }
  let archive: WalVerification | undefined;
  if (which === 'all') {
    const pitrWindowSeconds = desired.servers.find((s) => s.name === server)?.retention.pitrWindowSeconds;
    archive =
      identity === undefined
        ? { checked: 0, problems: ['server.json is missing: cannot verify WAL'] }
        : await verifyArchive(catalog, server, identity, backups, { now: new Date(), ...(pitrWindowSeconds === undefined ? {} : { pitrWindowSeconds }) });
  }
  const ok = unreadable.length === 0 && results.every((r) => r.ok) && (archive?.problems.length ?? 0) === 0;
  if (values.json === true) {
    writeJson(io, 'verify', { server, ok, backups: results, unreadable, archive: archive ?? null });
  } else {
    const lines: string[] = [];
    for (const r of results) {
      lines.push(`${r.ok ? 'OK' : 'FAILED'} ${r.id} (${r.status}): ${r.checked.join('; ')}`);
      for (const p of r.problems) lines.push(`  problem: ${p}`);
    }
    for (const u of unreadable) lines.push(`FAILED ${u}`);
    if (archive !== undefined) {
      lines.push(`${archive.problems.length === 0 ? 'OK' : 'FAILED'} WAL archive: ${plural(archive.checked, 'file')} read`);
      for (const p of archive.problems) lines.push(`  problem: ${p}`);
    }
    lines.push(ok ? 'Verify: no problems.' : 'Verify: problems found.');
    io.stdout.write(`${lines.join('\n')}\n`);
  }
  return ok ? EXIT.ok : EXIT.failure;
}
