/**
 * After a pgbk killed mid-drill (SIGKILL, a crash): its record stays RUNNING with an owner that is
 * gone, the copy's PostgreSQL may still run and the scratch directory stays. The next apply, under
 * the server lock, cleans up each such drill:
 *
 *   the PID in <scratch>/data/postmaster.pid is stopped (stop.ts's ladder) only when that process
 *   really runs in that directory — postmaster.pid names it as its data directory and the
 *   process's working directory (/proc/PID/cwd, where PostgreSQL chdirs) is it, real paths
 *   compared — then the scratch directory is removed, only when it is the one the drill created
 *   (<scratchDir>/<server>-<id>, as recorded), and the record is marked FAILED ("interrupted").
 *
 * A drill on a drill host is cleaned up there over SSH when drill.host still names that host;
 * otherwise the record is marked FAILED with what is left there. Only owners on this host are
 * judged (one elsewhere is presumed alive, like a lock's).
 */

import os from 'node:os';
import path from 'node:path';
import type { ExecContext } from '../apply/context.js';
import { readDrills, writeDrillRecord } from '../catalog/drills.js';
import { toPgbkError } from '../errors.js';
import { isOwnerAlive } from '../lib/process-identity.js';
import type { DrillRecord } from '../model/types.js';
import { LocalTransport } from '../transport/local.js';
import type { Transport } from '../transport/transport.js';
import { connectDrillHost } from './remote.js';
import { pidOn, stopByPid } from './stop.js';

/** What was done about the drill's copy and scratch directory, for the record and the output. */
async function cleanUp(t: Transport, d: DrillRecord, scratch: string): Promise<{ done: string[]; left: string[] }> {
  const done: string[] = [];
  const left: string[] = [];
  const where = t.description === 'local' ? '' : ` on ${t.description}`;
  // Only the directory the drill created: its name is <server>-<id>.
  if (path.posix.basename(scratch) !== `${d.server}-${d.id}`) {
    left.push(`the recorded scratch directory ${scratch} is not this drill's (<server>-<id>); left alone`);
    return { done, left };
  }
  const real = await t.realPath(scratch);
  if (real !== scratch || (await t.stat(scratch))?.type !== 'dir') {
    if ((await t.stat(scratch)) === undefined) return { done: [`its scratch directory ${scratch} was gone already`], left };
    left.push(`${scratch}${where} is not the directory the drill created (really ${real}); left alone`);
    return { done, left };
  }
  const dataDir = `${scratch}/data`;
  const pidFile = await t.run(['cat', '--', `${dataDir}/postmaster.pid`]);
  if (pidFile.code === 0) {
    const [first, second] = pidFile.stdout.toString('utf8').split('\n');
    const pid = Number((first ?? '').trim());
    if (Number.isInteger(pid) && pid > 1) {
      const control = pidOn(t, pid);
      if (await control.alive()) {
        const realData = await t.realPath(dataDir);
        const named = await t.realPath((second ?? '').trim() || '/nonexistent').catch(() => '');
        const cwd = await t.run(['readlink', '--', `/proc/${pid}/cwd`]);
        const runsIn = cwd.code === 0 ? cwd.stdout.toString('utf8').trim() : '';
        if (named !== realData || runsIn !== realData) {
          left.push(
            `pid ${pid} of ${dataDir}/postmaster.pid${where} does not run in that directory (${runsIn === '' ? 'its directory cannot be read' : `it runs in ${runsIn}`}); not stopped, ${scratch} left`,
          );
          return { done, left };
        }
        if (!(await stopByPid(control))) {
          left.push(`its PostgreSQL (pid ${pid})${where} did not stop; ${scratch} left`);
          return { done, left };
        }
        done.push(`stopped its PostgreSQL (pid ${pid})`);
      }
    }
  }
  await t.remove([scratch]);
  done.push(`removed ${scratch}${where}`);
  return { done, left };
}

async function reapOne(ctx: ExecContext, d: DrillRecord, thisHost: string): Promise<void> {
  const owner = `owner pid ${d.owner?.pid ?? '?'} on ${d.owner?.host ?? thisHost}`;
  let done: string[] = [];
  let left: string[] = [];
  if (d.scratch !== undefined) {
    let t: Transport | undefined;
    try {
      const configured = ctx.server.drill?.host;
      if (d.host === undefined) t = new LocalTransport();
      else if (configured !== undefined && configured.url === d.host) t = await connectDrillHost(configured, ctx.server.name);
      else left.push(`its copy on ${d.host} (${d.scratch}) was not checked: drill.host no longer names that host`);
      if (t !== undefined) ({ done, left } = await cleanUp(t, d, d.scratch));
    } catch (err) {
      const e = toPgbkError(err);
      left.push(`cleaning up ${d.scratch}${d.host === undefined ? '' : ` on ${d.host}`} failed: ${e.message}`);
    } finally {
      await t?.close().catch(() => undefined);
    }
  }
  const { owner: _owner, ...rest } = d;
  await writeDrillRecord(ctx.catalog, {
    ...rest,
    status: 'FAILED',
    finishedAt: new Date().toISOString(),
    errors: [...d.errors, `interrupted: ${owner} gone${done.length === 0 ? '' : `; ${done.join(', ')}`}${left.length === 0 ? '' : `; ${left.join('; ')}`}`],
  });
  const what = [...done, ...left].join(', ');
  ctx.log(`${ctx.server.name}: restore drill ${d.id} was interrupted (${owner} is gone)${what === '' ? '' : `: ${what}`}; recorded FAILED`);
}

/** Clean up the server's drills whose pgbk is gone (call under the server lock). */
export async function reapInterruptedDrills(ctx: ExecContext): Promise<void> {
  const thisHost = os.hostname();
  for (const d of await readDrills(ctx.catalog, ctx.server.name)) {
    if (d.status !== 'RUNNING' || d.owner === undefined || d.owner.host !== thisHost || isOwnerAlive(d.owner, thisHost)) continue;
    await reapOne(ctx, d, thisHost);
  }
}
