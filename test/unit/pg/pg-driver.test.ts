/**
 * pg/pg-driver.ts: loading the `pg` driver must not load Node's fetch implementation (undici, ~20 ms
 * of every process that talks to PostgreSQL), must leave `Response` working, and comes from the
 * one-file bundle the build writes (scripts/bundle-sdk.mjs) with its code cache. Each case runs in
 * a fresh Node process: whether undici is loaded is process-wide and cannot be undone.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DRIVER = fileURLToPath(new URL('../../../src/pg/pg-driver.js', import.meta.url));
const home = mkdtempSync(path.join(os.tmpdir(), 'pgbk-pg-driver-'));

function inFreshNode(body: string): Record<string, unknown> {
  const script = `import { pgDriver, requireHidingResponse } from ${JSON.stringify(DRIVER)};\n${body}`;
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: path.join(home, 'cache') };
  delete env['PGBK_NO_CACHE'];
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const UNDICI = `process.moduleLoadList.some((m) => m.includes('undici'))`;

test('the driver loads without undici, takes Node sockets, and Response still works afterwards', () => {
  const out = inFreshNode(`
    const pg = pgDriver();
    const undiciAfterLoad = ${UNDICI};
    const client = new pg.Client({ host: '/nonexistent' });
    const netSocket = client.connection.stream instanceof (await import('node:net')).Socket;
    const again = pgDriver() === pg;
    const text = await new Response('still here').text();
    console.log(JSON.stringify({ undiciAfterLoad, netSocket, again, text, undiciAtEnd: ${UNDICI} }));
  `);
  assert.equal(out, { undiciAfterLoad: false, netSocket: true, again: true, text: 'still here', undiciAtEnd: true });
});

test('a plain require of pg does load undici (what pgDriver avoids)', () => {
  const out = inFreshNode(`
    const { createRequire } = await import('node:module');
    createRequire(${JSON.stringify(DRIVER)})('pg');
    console.log(JSON.stringify({ undici: ${UNDICI} }));
  `);
  assert.equal(out, { undici: true });
});

test('once Response is loaded, it is left alone, and errors from the load are passed through', () => {
  const out = inFreshNode(`
    typeof Response;
    const before = Object.getOwnPropertyDescriptor(globalThis, 'Response');
    const seen = requireHidingResponse(() => typeof Response);
    let thrown = '';
    try { requireHidingResponse(() => { throw new Error('load failed'); }); } catch (e) { thrown = e.message; }
    const after = Object.getOwnPropertyDescriptor(globalThis, 'Response');
    console.log(JSON.stringify({ seen, thrown, same: before.value === after.value }));
  `);
  assert.equal(out, { seen: 'function', thrown: 'load failed', same: true });
});

test('while hidden, Response reads as undefined; the lazy accessor is put back even when the load throws', () => {
  const out = inFreshNode(`
    let seen = '';
    try { requireHidingResponse(() => { seen = typeof Response; throw new Error('x'); }); } catch {}
    const d = Object.getOwnPropertyDescriptor(globalThis, 'Response');
    console.log(JSON.stringify({ seen, accessor: typeof d.get === 'function', undici: ${UNDICI} }));
  `);
  assert.equal(out, { seen: 'undefined', accessor: true, undici: false });
});

test('the driver comes from the bundle, its code cache written by the first process and used by the next', () => {
  const probe = `
    const { createRequire } = await import('node:module');
    const pg = pgDriver();
    const fromNodeModules = Object.keys(createRequire(${JSON.stringify(DRIVER)}).cache).some((f) => f.includes('node_modules/pg/'));
    console.log(JSON.stringify({ fromNodeModules, client: typeof pg.Client, pool: typeof pg.Pool }));
  `;
  rmSync(path.join(home, 'cache'), { recursive: true, force: true });
  mkdirSync(path.join(home, 'cache'));
  assert.equal(inFreshNode(probe), { fromNodeModules: false, client: 'function', pool: 'function' });
  const entries = readdirSync(path.join(home, 'cache', 'pgbk')).filter((f) => f.startsWith('pg-'));
  assert.is(entries.length, 1, `one code-cache entry for the bundle: ${entries.join(', ')}`);
  assert.equal(inFreshNode(probe), { fromNodeModules: false, client: 'function', pool: 'function' });
});

test.after(() => rmSync(home, { recursive: true, force: true }));

test.run();
