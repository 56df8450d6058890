#!/usr/bin/env node
// pgbk's executable: hand the process's arguments and streams to the dispatcher (src/cli/dispatch.ts).
// The build also writes this file as CommonJS, dist/src/cli.cjs, package.json's bin (an ES module
// entry costs ~5 ms of Node's ES module loader at every start; scripts/bundle-read.mjs): keep it to
// import.meta.url, no other import.meta, no top-level await.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { CliIo } from './cli/io.js';
import type { loadReadBundle } from './cli/read-bundle-loader.js';

/**
 * The command bundles (scripts/bundle-read.mjs) and the words that may name their commands:
 * `list` and `status` (cli/read-entry.ts), `restore` (cli/restore-bundle-entry.ts), `apply` and
 * `backup` (cli/apply-bundle-entry.ts). An argument
 * list without any of these words cannot name one, so the other commands (the per-segment wal-push
 * and wal-fetch first) load nothing more than before. A bundle decides with the dispatcher's own
 * reading of the arguments.
 */
const BUNDLES: readonly { readonly file: string; readonly prefix: string; readonly commands: readonly string[] }[] = [
  { file: './cli/read-bundle.cjs', prefix: 'read-bundle', commands: ['list', 'status'] },
  { file: './cli/restore-bundle.cjs', prefix: 'restore-bundle', commands: ['restore'] },
  { file: './cli/apply-bundle.cjs', prefix: 'apply-bundle', commands: ['apply', 'backup'] },
];

/**
 * cli/read-bundle-loader.ts as the build bundled it (dist/src/cli/read-bundle-loader.cjs: one
 * CommonJS file costs less than its two ES modules), or undefined when there is no build of it
 * (run from the TypeScript sources): then there are no bundles either.
 */
function readBundleLoader(): typeof loadReadBundle | undefined {
  try {
    return (createRequire(import.meta.url)('./cli/read-bundle-loader.cjs') as { loadReadBundle: typeof loadReadBundle }).loadReadBundle;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND' && e.message.includes('read-bundle-loader.cjs')) return undefined;
    throw err;
  }
}

/**
 * `list`, `status`, `restore`, `apply` and `backup` run from a bundle of their modules, loaded with a code cache
 * (cli/read-bundle-loader.ts); every other command, and these when there is no bundle, from the
 * ES modules.
 */
async function runPgbk(argv: readonly string[], io: CliIo): Promise<number> {
  const wanted = BUNDLES.find((b) => argv.some((a) => b.commands.includes(a)));
  if (wanted !== undefined) {
    const loaded = readBundleLoader()?.(io.env, fileURLToPath(new URL(wanted.file, import.meta.url)), wanted.prefix);
    if (loaded?.bundle.isBundledCommand(argv) === true) {
      const code = await loaded.bundle.runBundled(argv, io);
      loaded.save();
      return code;
    }
  }
  return (await import('./cli/dispatch.js')).run(argv, io);
}

// The reader of stdout went away (`pgbk list --json | head`): what is left to print has nowhere to
// go, as a C tool would die of SIGPIPE; but the command itself runs to its end (an apply must not
// stop half-way because a pager closed), quietly, with its own exit status. Other errors still throw.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
});

runPgbk(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  isTTY: process.stdout.isTTY === true,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`pgbk: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
