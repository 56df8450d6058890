#!/usr/bin/env node
// pgbk's executable: hand the process's arguments and streams to the dispatcher (src/cli/dispatch.ts).
import { createRequire } from 'node:module';
import type { CliIo } from './cli/io.js';

type Runner = (argv: readonly string[], io: CliIo) => Promise<number>;

interface ReadBundle {
  readonly isReadCommand: (argv: readonly string[]) => boolean;
  readonly runRead: Runner;
}

/**
 * The commands the read bundle may run (cli/read-entry.ts): an argument list without any of these
 * words cannot name one, so the other commands (the per-segment wal-push and wal-fetch first) load
 * nothing more than before. The bundle decides with the dispatcher's own reading of the arguments.
 */
const READ_COMMANDS = ['list', 'status'];

/** dist/src/cli/read-bundle.cjs, or undefined when there is none (run from the TypeScript sources). */
function readBundle(): ReadBundle | undefined {
  try {
    return createRequire(import.meta.url)('./cli/read-bundle.cjs') as ReadBundle;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND' && e.message.includes('read-bundle.cjs')) return undefined;
    throw err;
  }
}

/**
 * `list` and `status` run from the bundle of their modules (cli/read-entry.ts says why); every
 * other command, and these when there is no bundle, from the ES modules.
 */
async function runnerFor(argv: readonly string[]): Promise<Runner> {
  if (argv.some((a) => READ_COMMANDS.includes(a))) {
    const bundle = readBundle();
    if (bundle?.isReadCommand(argv) === true) return bundle.runRead;
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
