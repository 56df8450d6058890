/**
 * A BackupSession through `psql` on the database host, over an exec channel of the SSH connection
 * that also performs the copy: SQL goes in on stdin, each statement followed by an \echo marker
 * that tells where its output ends. ON_ERROR_STOP makes psql exit on the first error, whose
 * message (PostgreSQL's own) is reported.
 */

import { randomBytes } from 'node:crypto';
import { secretKeyword } from '../../config/conninfo.js';
import { PgbkError } from '../../errors.js';
import type { ExecProcess, Transport } from '../../transport/transport.js';
import type { BackupSession } from './session.js';

const SEP = '\x1f';

interface Pending {
  readonly marker: string;
  readonly rows: string[][];
  readonly resolve: (rows: string[][]) => void;
  readonly reject: (err: PgbkError) => void;
}

/** The lines of psql's stderr worth showing: PostgreSQL's ERROR/FATAL/DETAIL/HINT or psql's own. */
export function psqlErrorText(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const pick = lines.filter((l) => /(ERROR|FATAL|DETAIL|HINT|error):/.test(l));
  return (pick.length > 0 ? pick : lines.slice(-3)).join('; ') || '(no message)';
}

export class PsqlSession implements BackupSession {
  readonly description: string;
  private readonly proc: ExecProcess;
  private readonly queue: Pending[] = [];
  private buffered = '';
  private stderr = '';
  private ended: PgbkError | undefined;
  private readonly tag = randomBytes(8).toString('hex');
  private seq = 0;

  /**
   * `serverArgs`: what selects the server (`-d CONNINFO`, or `-h DIR -p PORT` from postmaster.pid:
   * psqlServerArgs in postmaster-pid.ts).
   */
  constructor(transport: Transport, serverArgs: readonly string[], server: string) {
    this.description = `psql on ${transport.description}`;
    // The conninfo goes on the remote command line (and an environment variable would too: the
    // SSH exec request is one command string), where `ps` on the database host shows it.
    const conninfo = serverArgs[0] === '-d' ? serverArgs[1] : undefined;
    const secret = conninfo === undefined ? undefined : secretKeyword(conninfo);
    if (secret !== undefined) {
      throw new PgbkError('CONFIG', `ssh.psqlConnection contains ${secret}: it would be visible on the command line of psql on ${transport.description}`, {
        server,
        hint: 'put the password in ~/.pgpass of the SSH user on the database host',
      });
    }
    const argv = ['psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-F', SEP, ...serverArgs];
    this.proc = transport.exec(argv, { env: { PGAPPNAME: 'pgbk' } });
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (d: string) => this.onData(d));
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d: string) => {
      if (this.stderr.length < 16_384) this.stderr += d;
    });
    this.proc.stdin.on('error', () => undefined);
    void this.proc.done.then((status) => {
      const lost = status.code === null;
      const msg = lost
        ? `${this.description}: session lost (${this.stderr.trim() || 'connection closed'})`
        : `${this.description}: ${psqlErrorText(this.stderr)}`;
      this.ended = new PgbkError(lost ? 'NETWORK' : 'PG', msg, { server });
      for (const p of this.queue.splice(0)) p.reject(this.ended);
    });
  }

  private onData(d: string): void {
    this.buffered += d;
    for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const head = this.queue[0];
      if (head === undefined) continue;
      if (line === head.marker) {
        this.queue.shift();
        head.resolve(head.rows);
      } else {
        head.rows.push(line.split(SEP));
      }
    }
  }

  query(sql: string): Promise<string[][]> {
    if (this.ended !== undefined) return Promise.reject(this.ended);
    const marker = `--pgbk-${this.tag}-${this.seq++}--`;
    return new Promise((resolve, reject) => {
      this.queue.push({ marker, rows: [], resolve, reject });
      this.proc.stdin.write(`${sql.trim().replace(/;$/, '')};\n\\echo ${marker}\n`);
    });
  }

  async close(): Promise<void> {
    if (this.ended === undefined) this.proc.stdin.end('\\q\n');
    const timer = setTimeout(() => this.proc.kill(), 10_000);
    await this.proc.done;
    clearTimeout(timer);
  }
}
