// test-lane: light — npm pack + install from the tarball; the install seconds are printed, not asserted
/**
 * Issue 10 item 1: the packed tarball installs globally on a host without a C compiler and runs.
 *
 * `npm pack` (scripts skipped: the test runs on the freshly built dist/, and prepack is checked to
 * be the build) → `npm i -g --prefix TMP --ignore-scripts` with a PATH whose cc, gcc, g++, c++ and
 * make fail and leave a mark → the installed bin runs `--version`, `init`, `validate`, and the
 * installed zstd code compresses with the prebuilt native binary. No compiler may have been called.
 *
 * Dependencies come from npm's cache first (`--prefer-offline`; `npm ci` filled it) and from the
 * registry for what is missing there (a global install resolves versions from the registry's
 * metadata, which `npm ci` does not cache). Without a reachable registry that step fails with
 * ENOTCACHED/ENOTFOUND/… (or a certificate error when a TLS proxy's CA is not known): the test
 * then says so and stops without judging the package.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../../support/postgres.js';
import { REPO_ROOT } from '../../support/pgbk.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

function run(cmd: string, args: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - t0) / 1000 }));
  });
}

async function duBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(path.join(e.parentPath, e.name))).size;
  }
  return total;
}

let root: string;

test.before(async () => {
  root = await tempDir('pgbk-install-');
});

test.after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('npm pack ships only what runs; the tarball installs without a compiler and pgbk runs', async () => {
  const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
    version: string;
    bin: { pgbk: string };
  };
  assert.match(pkg.scripts['prepack'] ?? '', /npm run build/, 'prepack builds, so a fresh clone packs something runnable');

  // A PATH where every compiler fails loudly (and leaves a mark), ahead of the real one.
  const fakeBin = path.join(root, 'fakebin');
  const mark = path.join(root, 'compiler-called');
  await mkdir(fakeBin);
  for (const c of ['cc', 'gcc', 'g++', 'c++', 'make']) {
    await writeFile(path.join(fakeBin, c), `#!/bin/sh\necho "$0 $*" >> '${mark}'\nexit 1\n`);
    await chmod(path.join(fakeBin, c), 0o755);
  }
  // npm needs the environment's CA to reach the registry where a TLS proxy stands in between
  // (test/run.mjs keeps it as PGBK_TEST_REGISTRY_CA; without it every fetch fails with
  // SELF_SIGNED_CERT_IN_CHAIN, retried for minutes per package). Retries stay short: an unreachable
  // registry is reported as such within seconds, not after npm's default back-off.
  const registryCa = process.env['PGBK_TEST_REGISTRY_CA'] ?? process.env['NODE_EXTRA_CA_CERTS'];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${fakeBin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
    npm_config_update_notifier: 'false',
    npm_config_fetch_retries: '1',
    npm_config_fetch_retry_mintimeout: '1000',
    npm_config_fetch_retry_maxtimeout: '3000',
    ...(registryCa === undefined ? {} : { NODE_EXTRA_CA_CERTS: registryCa }),
  };

  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', root], { cwd: REPO_ROOT, env });
  assert.is(packed.code, 0, packed.stderr);
  const info = (JSON.parse(packed.stdout) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[])[0]!;
  const files = info.files.map((f) => f.path);
  assert.ok(files.includes('dist/src/cli.js'), 'the CLI is in the tarball');
  assert.ok(files.includes(pkg.bin.pgbk), 'the bin (dist/src/cli.cjs) is in the tarball');
  assert.ok(files.includes('dist/src/config/schema-validator.cjs'), 'the precompiled validator is in the tarball');
  assert.ok(files.includes('dist/src/cli/read-bundle.cjs'), 'the read commands’ bundle is in the tarball');
  for (const b of ['restore-bundle.cjs', 'apply-bundle.cjs']) assert.ok(files.includes(`dist/src/cli/${b}`), `${b} is in the tarball`);
  for (const b of ['catalog/s3/sdk-bundle.cjs', 'pg/pg-bundle.cjs']) assert.ok(files.includes(`dist/src/${b}`), `${b} (a package bundled) is in the tarball`);
  for (const f of ['schema/pgbk.schema.json', 'config.example.yaml', 'README.md', 'contrib/pgbk.service']) assert.ok(files.includes(f), f);
  const stray = files.filter((f) => /^(dist\/(test|bench|demo)|test|bench|demo|src|scripts)\//.test(f) || f.endsWith('.map') || f.endsWith('.ts'));
  assert.equal(stray, [], 'no tests, benchmarks, demo, sources or source maps');

  const prefix = path.join(root, 'prefix');
  const tgz = path.join(root, info.filename);
  const install = await run('npm', ['install', '--global', '--prefix', prefix, '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', tgz], {
    cwd: root,
    env,
  });
  if (
    install.code !== 0 &&
    /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT/.test(install.stderr)
  ) {
    console.log(`  skipped: the npm registry is not reachable and npm's cache lacks metadata:\n${install.stderr.slice(-600)}`);
    return;
  }
  assert.is(install.code, 0, install.stdout + install.stderr);
  assert.not.ok(existsSync(mark), `a compiler was called during install:\n${existsSync(mark) ? await readFile(mark, 'utf8') : ''}`);
  assert.not.match(install.stdout + install.stderr, /gyp (info|ERR)/, 'node-gyp did not run');
  const installed = await duBytes(prefix);
  console.log(
    `  tarball ${(info.size / 1024).toFixed(0)} kB (${info.files.length} files, ${(info.unpackedSize / 1024).toFixed(0)} kB unpacked); ` +
      `install ${install.seconds.toFixed(1)} s, ${(installed / 1048576).toFixed(1)} MiB installed`,
  );

  const bin = path.join(prefix, 'bin', 'pgbk');
  const version = await run(bin, ['--version'], { cwd: root, env });
  assert.is(version.code, 0, version.stderr);
  assert.match(version.stdout, new RegExp(`pgbk ${pkg.version.replace(/\./g, '\\.')}`));

  const work = path.join(root, 'work');
  await mkdir(work);
  const init = await run(bin, ['init'], { cwd: work, env });
  assert.is(init.code, 0, init.stderr);
  const validate = await run(bin, ['--config', path.join(work, 'pgbk.yaml'), 'validate'], { cwd: work, env });
  assert.is(validate.code, 0, validate.stdout + validate.stderr);
  // list runs from its bundle (dist/src/cli/read-bundle.cjs), which requires the installed packages
  // (yaml here: without the per-user cache the configuration is parsed).
  const list = await run(bin, ['--config', path.join(work, 'pgbk.yaml'), 'list', '--json'], { cwd: work, env: { ...env, PGBK_NO_CACHE: '1' } });
  assert.is(list.code, 0, list.stdout + list.stderr);
  assert.equal((JSON.parse(list.stdout) as { backups: unknown[] }).backups, []);

  // The installed zstd: native compression (the prebuilt binary for this platform was installed),
  // standard frames with content size and checksum, read back by the WebAssembly decoder.
  const pkgDir = path.join(prefix, 'lib', 'node_modules', 'pgbk');
  const probe = [
    `const c = await import(${JSON.stringify(path.join(pkgDir, 'dist', 'src', 'catalog', 'compress.js'))});`,
    "const data = Buffer.concat([Buffer.alloc(1 << 20), Buffer.from('pgbk '.repeat(5000))]);",
    "const z = await c.compressBuffer(data, 'zstd');",
    "const back = await c.decompressBuffer(z, 'zstd');",
    "const { createRequire } = await import('node:module');",
    `const native = (() => { try { createRequire(${JSON.stringify(path.join(pkgDir, 'package.json'))})('@toondepauw/node-zstd'); return true; } catch { return false; } })();`,
    // --ignore-scripts left out zstd-napi: wal-push's compression threads fall back to the
    // prebuilt encoder (and copy its frame into the pool's output).
    `const zstd = await import(${JSON.stringify(path.join(pkgDir, 'dist', 'src', 'catalog', 'zstd.js'))});`,
    `const { CompressPool, sharedBuffer } = await import(${JSON.stringify(path.join(pkgDir, 'dist', 'src', 'wal-push', 'compress-pool.js'))});`,
    'const pool = new CompressPool(1);',
    'const input = sharedBuffer(data.length); data.copy(input);',
    'const lent = await pool.compress(input);',
    'const pooled = (await c.decompressBuffer(Buffer.concat(lent.frame.parts), "zstd")).equals(data);',
    'lent.release(); await pool.close();',
    'console.log(JSON.stringify({ equal: back.equals(data), checksum: (z[4] & 4) !== 0, native, zstdNapi: zstd.hasNativeEncoder(), pooled }));',
  ].join('\n');
  // From a file: the pool's worker threads inherit the process's flags, and --input-type (needed
  // for -e) refuses their entry files.
  await writeFile(path.join(work, 'probe.mjs'), probe);
  const zr = await run(process.execPath, [path.join(work, 'probe.mjs')], { cwd: work, env });
  assert.is(zr.code, 0, zr.stderr);
  assert.equal(JSON.parse(zr.stdout.trim()), { equal: true, checksum: true, native: true, zstdNapi: false, pooled: true });
});

test.run();
