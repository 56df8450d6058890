// test-lane: light — host key refusals against one sshd; no time bound
/**
 * Host-key verification against a real sshd: unknown, changed and revoked keys are refused with a
 * terminal HOSTKEY error naming host and fingerprint before any command runs; hashed entries work.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PgbkError } from '../../../src/errors.js';
import { SshTransport } from '../../../src/transport/ssh.js';
import { startSshd, type TestSshd } from '../../support/sshd.js';

const pexec = promisify(execFile);
const t = suite<{ sshd?: TestSshd }>('ssh host keys', {});
t.before(async (ctx) => {
  ctx.sshd = await startSshd();
});
t.after(async (ctx) => {
  await ctx.sshd?.stop();
});

async function hostFingerprint(sshd: TestSshd): Promise<string> {
  const out = (await pexec('ssh-keygen', ['-l', '-E', 'sha256', '-f', path.join(sshd.dir, 'host_ed25519.pub')])).stdout;
  return out.split(/\s+/)[1] ?? '?';
}

async function connectWith(sshd: TestSshd, knownHostsText: string): Promise<unknown> {
  const file = path.join(sshd.dir, `kh-${Math.random().toString(16).slice(2)}`);
  await writeFile(file, knownHostsText);
  try {
    const tr = await SshTransport.connect({
      host: '127.0.0.1',
      port: sshd.port,
      user: 'postgres',
      identityFile: sshd.identityFile,
      knownHosts: file,
      server: 'main',
    });
    const r = await tr.run(['true']);
    await tr.close();
    return r.code;
  } catch (err) {
    return err;
  }
}

t('unknown host key is refused, naming host and fingerprint', async (ctx) => {
  const sshd = ctx.sshd!;
  const err = await connectWith(sshd, '');
  assert.instance(err, PgbkError);
  const e = err as PgbkError;
  assert.is(e.code, 'HOSTKEY');
  assert.is(e.server, 'main');
  assert.ok(e.message.includes(`[127.0.0.1]:${sshd.port}`), e.message);
  assert.ok(e.message.includes(await hostFingerprint(sshd)), e.message);
});

t('changed host key is refused', async (ctx) => {
  const sshd = ctx.sshd!;
  const otherKey = (await readFile(`${sshd.identityFile}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  const err = (await connectWith(sshd, `[127.0.0.1]:${sshd.port} ${otherKey}\n`)) as PgbkError;
  assert.is(err.code, 'HOSTKEY');
  assert.match(err.message, /CHANGED/);
  assert.ok(err.message.includes(await hostFingerprint(sshd)));
});

t('revoked host key is refused even with an accepting line', async (ctx) => {
  const sshd = ctx.sshd!;
  const err = (await connectWith(sshd, `[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}\n@revoked * ${sshd.hostKeyLine}\n`)) as PgbkError;
  assert.is(err.code, 'HOSTKEY');
  assert.match(err.message, /revoked/);
});

t('entry for port 22 does not vouch for another port', async (ctx) => {
  const sshd = ctx.sshd!;
  const err = (await connectWith(sshd, `127.0.0.1 ${sshd.hostKeyLine}\n`)) as PgbkError;
  assert.is(err.code, 'HOSTKEY');
});

t('plain and ssh-keygen -H hashed entries are accepted', async (ctx) => {
  const sshd = ctx.sshd!;
  assert.is(await connectWith(sshd, `[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}\n`), 0);
  const file = path.join(sshd.dir, 'kh-hashed');
  await writeFile(file, `[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}\n`);
  await pexec('ssh-keygen', ['-H', '-f', file]);
  const text = await readFile(file, 'utf8');
  assert.match(text, /^\|1\|/);
  assert.is(await connectWith(sshd, text), 0);
});

t('a connection lost mid-command reports no exit status (never success)', async (ctx) => {
  const sshd = ctx.sshd!;
  const tr = await SshTransport.connect({ host: '127.0.0.1', port: sshd.port, user: 'postgres', identityFile: sshd.identityFile, knownHosts: sshd.knownHosts });
  const p = tr.exec(['sleep', '30']);
  p.stdout.resume();
  p.stderr.resume();
  setTimeout(() => void tr.close(), 200);
  const s = await p.done;
  assert.is(s.code, null);
});

t.run();
