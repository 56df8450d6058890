#!/usr/bin/env node
// pgbk's executable: hand the process's arguments and streams to the dispatcher (src/cli/dispatch.ts).
import { createRequire } from 'node:module';
import { BUNDLED_COMMANDS, splitArgv } from './cli/argv.js';
import type { CliIo } from './cli/io.js';

type Runner = (argv: readonly string[], io: CliIo) => Promise<number>;

/**
 * `list` and `status` run from the bundle of their modules (cli/read-entry.ts says why); every
 * other command, and these when there is no bundle (run from the TypeScript sources), from the
 * ES modules.
 */
async function runnerFor(argv: readonly string[]): Promise<Runner> {
  const command = splitArgv(argv).command;
  if (command !== undefined && BUNDLED_COMMANDS.has(command)) {
    let mod: { runRead: Runner } | undefined;
    try {
      mod = createRequire(import.meta.url)('./cli/read-bundle.cjs') as { runRead: Runner };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'MODULE_NOT_FOUND' || !e.message.includes('read-bundle.cjs')) throw err;
    }
    if (mod !== undefined) return mod.runRead;
  }
  return (await import('./cli/dispatch.js')).run;
}

// The reader of stdout went away (`pgbk list --json | head`): what is left to print has nowhere to
// go, as a C tool would die of SIGPIPE; but the command itself runs to its end (an apply must not
// stop half-way because a pager closed), quietly, with its own exit status. Other errors still throw.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
});

const argv = process.argv.slice(2);
runnerFor(argv)
  .then((run) =>
    run(argv, {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      cwd: process.cwd(),
      isTTY: process.stdout.isTTY === true,
    }),
  )
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`pgbk: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
