// test-lane: light — check output over ssh; no time bound
/**
 * The `ssh` check against a private sshd: OK with the right known_hosts; FAILED with a hint when the
 * host key is unknown, and when pgdata is not there.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runPgbk } from '../../support/pgbk.js';
import { tempDir } from '../../support/postgres.js';
import { startSshd, type TestSshd } from '../../support/sshd.js';

let sshd: TestSshd;
let root: string;

async function checkWith(knownHosts: string, pgdata: string): Promise<string> {
  const cfg = path.join(root, 'pgbk.yaml');
  await writeFile(
    cfg,
    `catalog: ${path.join(root, 'catalog')}\nservers:\n  db:\n    pgdata: ${pgdata}\n    ssh: { host: 127.0.0.1, port: ${sshd.port}, user: postgres, identityFile: ${sshd.identityFile}, knownHosts: ${knownHosts} }\n    retention: { redundancy: 1 }\n`,
  );
  const r = await runPgbk(['--config', cfg, 'check']);
  return r.stdout + r.stderr;
}

test.before(async () => {
  sshd = await startSshd();
  root = await tempDir('pgbk-sshcheck-');
});

test.after(async () => {
  await sshd?.stop();
  await rm(root, { recursive: true, force: true });
});

test('ssh OK with a known host key and an existing pgdata', async () => {
  const out = await checkWith(sshd.knownHosts, '/tmp');
  assert.match(out, new RegExp(`OK ssh: postgres@127\\.0\\.0\\.1:${sshd.port} reachable, host key verified, /tmp present`), out);
});

test('ssh FAILED with a hint for an unknown host key', async () => {
  const empty = path.join(root, 'empty_known_hosts');
  await writeFile(empty, '');
  const out = await checkWith(empty, '/tmp');
  assert.match(out, /FAILED ssh: postgres@127\.0\.0\.1:\d+: /, out);
  assert.match(out, /FAILED ssh: [^\n]*\n {4}hint: /, out);
});

test('ssh FAILED when pgdata is not a directory on the host', async () => {
  const out = await checkWith(sshd.knownHosts, '/nonexistent/pgdata');
  assert.match(out, /FAILED ssh: .* reachable, but \/nonexistent\/pgdata is not a directory there/, out);
});

test.run();
