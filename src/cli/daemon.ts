import path from 'node:path';
import { Daemon } from '../daemon/daemon.js';
import { createLogger, parseLogFormat } from '../lib/logger.js';
import { PgbkError, formatError, toPgbkError } from '../errors.js';
import { metricsText, writeMetricsFile } from '../metrics/collect.js';
import { durationFlag } from './apply.js';
import type { CliIo } from './io.js';
import { EXIT } from './io.js';
import { loadDesired } from './load.js';
import { parseCommand } from './options.js';
import { DAEMON_OPTIONS } from './commands.js';

/**
 * `pgbk daemon [--reconcile-interval 5m] [--lock-timeout 30s] [--shutdown-timeout 60s]
 * [--log-format text|json] [--metrics-file FILE] [--switch-wal-after 60s]`. Runs until SIGTERM/SIGINT (exit 0 after the pass
 * in progress finished, or after the shutdown timeout aborted it); SIGHUP reloads the configuration.
 * The catalog may be a local directory or an s3:// bucket (each pass holds the server's S3 lease
 * the way apply does; incoming/ and streaming/ are then in `s3.spool`).
 */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  // Handlers go in first: a SIGTERM while the daemon starts (config, first scan) must stop it
  // cleanly once started, not kill the process with the signal's default action.
  let early: NodeJS.Signals | undefined;
  const earlyTerm = (): void => {
    early ??= 'SIGTERM';
  };
  const earlyInt = (): void => {
    early ??= 'SIGINT';
  };
  process.on('SIGTERM', earlyTerm);
  process.on('SIGINT', earlyInt);
  try {
    const { values, positionals } = parseCommand('daemon', args, DAEMON_OPTIONS);
    if (positionals.length > 0) throw new PgbkError('USAGE', `daemon: takes no arguments, got ${positionals.join(' ')}`);
    // --log-format is a global option now (parseCommand checks it is text or json).
    const format = parseLogFormat(values['log-format'] ?? 'text') ?? 'text';
    const reconcileEveryMs = durationFlag('--reconcile-interval', values['reconcile-interval'], 1);
    const lockTimeoutMs = durationFlag('--lock-timeout', values['lock-timeout']);
    const shutdownTimeoutMs = durationFlag('--shutdown-timeout', values['shutdown-timeout']);
    const metricsFile = values['metrics-file'] === undefined ? undefined : path.resolve(io.cwd, values['metrics-file']);
    const logger = createLogger(format, io.stderr);

    const daemon = new Daemon({
      logger,
      load: () => loadDesired(values.config, io, { s3: true }),
      reconcileEveryMs,
      lockTimeoutMs,
      switchWalAfterMs: durationFlag('--switch-wal-after', values['switch-wal-after']),
      env: io.env,
      ...(metricsFile === undefined
        ? {}
        : {
            afterPass: async (desired) => writeMetricsFile(metricsFile, await metricsText(desired, { withChecks: false, env: io.env, now: new Date() })),
          }),
    });
    try {
      await daemon.start();
    } finally {
      process.off('SIGTERM', earlyTerm);
      process.off('SIGINT', earlyInt);
    }

    return await new Promise<number>((resolve) => {
      let stopping = false;
      const onStop = (signal: NodeJS.Signals): void => {
        if (stopping) {
          logger.log('warn', `${signal} again while stopping: still waiting for the pass in progress`);
          return;
        }
        stopping = true;
        logger.log('info', `${signal} received: stopping`);
        void daemon.stop(shutdownTimeoutMs).then((outcome) => {
          process.off('SIGHUP', onHup);
          logger.log(
            outcome === 'finished' ? 'info' : 'warn',
            outcome === 'finished'
              ? 'daemon stopped'
              : outcome === 'aborted'
                ? 'daemon stopped; the pass in progress was aborted (a backup it was taking is recorded FAILED)'
                : 'daemon stopped; the pass in progress was abandoned (the next start repairs it)',
          );
          resolve(EXIT.ok);
          // An abandoned pass may keep the event loop alive (a child process, a socket).
          if (outcome === 'abandoned') setImmediate(() => process.exit(EXIT.ok));
        });
      };
      const onHup = (): void => {
        logger.log('info', 'SIGHUP received: reloading the configuration');
        daemon.reload().catch((err: unknown) => logger.log('error', `reload failed: ${formatError(toPgbkError(err))}`));
      };
      process.on('SIGTERM', () => onStop('SIGTERM'));
      process.on('SIGINT', () => onStop('SIGINT'));
      process.on('SIGHUP', onHup);
      if (early !== undefined) onStop(early);
    });
  } catch (err) {
    process.off('SIGTERM', earlyTerm);
    process.off('SIGINT', earlyInt);
    throw err;
  }
}
