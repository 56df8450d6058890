/** Drive the real dispatcher (src/cli/dispatch.ts) in-process with captured streams. */
import { PassThrough } from 'node:stream';
import { run } from '../../../src/cli/dispatch.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runCli(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; isTTY?: boolean } = {}): Promise<CliResult> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await run(args, { stdout: out, stderr: err, env: opts.env ?? {}, cwd: opts.cwd ?? process.cwd(), isTTY: opts.isTTY ?? false });
  await new Promise((r) => setImmediate(r));
  return { code, stdout, stderr };
}
