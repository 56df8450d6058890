import type { Readable } from 'node:stream';
import type { ExecProcess, RunResult } from './transport.js';

/** Drain both output streams (a full pipe would stall the program) and wait for the exit. */
export async function collect(proc: ExecProcess, input: Buffer | string | undefined, maxStderr = 64 * 1024): Promise<RunResult> {
  const out: Buffer[] = [];
  let err = '';
  proc.stdout.on('data', (d: Buffer) => out.push(d));
  proc.stderr.on('data', (d: Buffer) => {
    if (err.length < maxStderr) err += d.toString('utf8');
  });
  proc.stdin.on('error', () => undefined); // the program may exit without reading its input
  if (input !== undefined) proc.stdin.end(input);
  else proc.stdin.end();
  const status = await proc.done;
  return { ...status, stdout: Buffer.concat(out), stderr: err };
}

/** Resolves when a readable stream has been fully consumed or failed. */
export function streamFinished(stream: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', reject);
  });
}
