/**
 * The push worker stopped by SIGTERM while it still opens its sink (an SSH connection or an object
 * store can take seconds): its socket must not outlive it, or the archive_command's fast path
 * would wait its --wait-seconds for every segment until another worker replaced the socket. Run in
 * a child process (the worker listens for the signal on its process), with TMPDIR pointing the
 * runtime directory into a temp dir.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const workerModule = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/wal-push/worker.js')).href;

test('SIGTERM while the sink is still opening: the worker exits 0 and removes its socket', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pgbk-worker-stop-'));
  try {
    const pgdata = path.join(root, 'data');
    await mkdir(path.join(pgdata, 'pg_wal', 'archive_status'), { recursive: true });
    const script = path.join(root, 'child.mjs');
    // open() never settles: the worker is stopped while it waits for it.
    await writeFile(
      script,
      `import { runPushWorker } from ${JSON.stringify(workerModule)};
const code = await runPushWorker({ key: 'stoptest', pgdata: ${JSON.stringify(pgdata)}, idleMs: 60000, server: 'main',
  log: (l) => console.log(l), open: () => new Promise(() => undefined) });
console.log('returned ' + code);
`,
    );
    const tmp = path.join(root, 'tmp');
    await mkdir(tmp);
    const child = spawn(process.execPath, [script], { env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const sock = path.join(tmp, `pgbk-${process.getuid?.() ?? 'u'}`, 'walpush-stoptest.sock');
    const t0 = Date.now();
    while (!existsSync(sock)) {
      if (Date.now() - t0 > 20_000) throw new Error(`no socket within 20 s: ${out}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGTERM');
    const code = await exited;
    assert.is(code, 0, out);
    assert.match(out, /stopped while opening its sink/);
    assert.ok(!existsSync(sock), `the socket outlived the worker: ${(await readdir(path.dirname(sock))).join(' ')}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test.run();
