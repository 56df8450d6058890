#!/usr/bin/env node
// pgbk's executable: hand the process's arguments and streams to the dispatcher (src/cli/dispatch.ts).
import { run } from './cli/dispatch.js';

// The reader of stdout went away (`pgbk list --json | head`): what is left to print has nowhere to
// go, as a C tool would die of SIGPIPE; but the command itself runs to its end (an apply must not
// stop half-way because a pager closed), quietly, with its own exit status. Other errors still throw.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
});

run(process.argv.slice(2), {
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
