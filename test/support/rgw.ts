/**
 * A real S3-compatible object store for integration tests: a single-node Ceph cluster (one
 * monitor, one memstore OSD, radosgw with the beast frontend) on 127.0.0.1, on free ports, in a
 * temp dir. Debian 12's packages radosgw ceph-mon ceph-osd (.ci/install installs them).
 *
 * Started once per test process, lazily on the first `rgw()` (the whole integration suite runs in
 * one uvu process), and stopped by PID when the process exits. About 12 s on this machine kind.
 * The facts behind the configuration are in ../shared/s3/README.md (auth none needs the crc
 * messenger modes; bucket names are DNS names; memstore keeps objects in memory).
 *
 * Credentials reach the driver the way they reach it in production: the SDK's default chain reads
 * a shared credentials file (AWS_SHARED_CREDENTIALS_FILE, inherited by child processes) with the
 * [default] profile, and a [pgbk-wrong] profile whose secret the gateway refuses.
 */

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3RepositoryConfig } from '../../src/config/resolved.js';
import { freePort } from './free-port.js';
import { isAlive, tempDir } from './postgres.js';

export const RGW_ACCESS_KEY = 'PGBKTESTKEY';
export const RGW_SECRET_KEY = 'PGBKTESTSECRET';
/** A profile in the test credentials file with a secret radosgw refuses. */
export const WRONG_PROFILE = 'pgbk-wrong';

export interface TestRgw {
  readonly dir: string;
  readonly port: number;
  readonly endpoint: string;
  /** The same gateway over HTTPS, with a self-signed certificate for 127.0.0.1 (`caFile`). */
  readonly httpsEndpoint: string;
  readonly caFile: string;
  /** Seconds from the first call to a gateway that answers with the user created. */
  readonly startupSeconds: number;
  /** Where the start-up time went ("mon up 3.1s, …"). */
  readonly startupPhases: string;
  /** A new empty bucket (a DNS name), and the config of a repository in it under `prefix`. */
  bucket(prefix?: string): Promise<S3RepositoryConfig>;
  /** Stop radosgw alone (the cluster keeps its objects), e.g. to cut a transfer off. */
  stopGateway(): Promise<void>;
  /** Start radosgw again on the same port and wait until it answers. */
  startGateway(): Promise<void>;
  readonly gatewayPid: () => number | undefined;
}

const live = new Map<string, ChildProcess>();
let root: string | undefined;

function killAll(): void {
  // radosgw first, the monitor last (the OSD and gateway talk to it while they stop).
  for (const name of ['rgw', 'osd', 'mon']) {
    const c = live.get(name);
    if (c?.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  live.clear();
  if (root !== undefined && process.env['PGBK_KEEP_TEST_DIRS'] !== '1') {
    try {
      rmSync(root, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort
    }
  }
}

let handlers = false;
function installHandlers(): void {
  if (handlers) return;
  handlers = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.kill(process.pid, signal);
    });
  }
}

function run(cmd: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** A Ceph daemon in the foreground as our child (its log goes to DIR/log/, see ceph.conf). */
function daemon(name: string, cmd: string, args: readonly string[]): ChildProcess {
  installHandlers();
  const child = spawn(cmd, args, { stdio: 'ignore' });
  // Unreferenced: the cluster lives as long as the test process needs it and must not keep it
  // from exiting when the last test is done; the 'exit' handler then stops it by PID.
  child.unref();
  live.set(name, child);
  return child;
}

/** Whether the gateway answers HTTP on the port (any status: it is up). */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function until(what: string, timeoutMs: number, fn: () => Promise<boolean>, logTail: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`radosgw test cluster: timed out waiting for ${what}\n${await logTail()}`);
    await sleep(100);
  }
}

/**
 * `work`, failed at once with the daemon's log when `child` exits first, and with the log tail on
 * its own failure: a Ceph daemon that dies leaves its reason only in its log.
 */
async function whileAlive<T>(child: ChildProcess, name: string, work: Promise<T>, logTail: () => Promise<string>): Promise<T> {
  let onExit: (() => void) | undefined;
  const died = new Promise<never>((_, reject) => {
    onExit = (): void => {
      void logTail().then((tail) => reject(new Error(`radosgw test cluster: ${name} exited (${child.exitCode ?? child.signalCode}) while starting\n${tail}`)));
    };
    if (child.exitCode !== null || child.signalCode !== null) onExit();
    else child.once('exit', onExit);
  });
  died.catch(() => undefined);
  try {
    return await Promise.race([work, died]);
  } catch (err) {
    if ((err as Error).message.startsWith('radosgw test cluster:')) throw err;
    throw new Error(`${(err as Error).message}\n${await logTail()}`);
  } finally {
    if (onExit !== undefined) child.off('exit', onExit);
  }
}

async function start(): Promise<TestRgw> {
  const t0 = Date.now();
  const dir = await tempDir('pgbk-rgw-');
  root = dir;
  installHandlers();
  for (const d of ['mon', 'osd/0', 'run', 'log']) await mkdir(path.join(dir, d), { recursive: true });
  const port = await freePort();
  const tlsPort = await freePort();
  const monPort = await freePort();
  const phases: string[] = [];
  const phase = (name: string): void => {
    phases.push(`${name} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  };
  // A self-signed certificate for 127.0.0.1 (clients that speak only HTTPS, TLS tests), made
  // while the cluster starts.
  const cert = path.join(dir, 'rgw.crt');
  const key = path.join(dir, 'rgw.key');
  const certMade = run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  const fsid = (await readFile('/proc/sys/kernel/random/uuid', 'utf8')).trim();
  const conf = path.join(dir, 'ceph.conf');
  await writeFile(
    conf,
    `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 1
osd pool default pgp num = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail crit = 0
mon data avail warn = 0
paxos propose interval = 0.05
paxos min wait = 0.01
run dir = ${dir}/run
log file = ${dir}/log/$name.log
admin socket = ${dir}/run/$name.$pid.asok
keyring = ${dir}/keyring
[mon.a]
mon data = ${dir}/mon/a
[osd]
osd data = ${dir}/osd/$id
osd objectstore = memstore
memstore device bytes = 4294967296
[client.rgw.a]
# tcp_nodelay=1: without it every GET of a small object took ~48 ms (Nagle between the headers and
# the body, against the client's delayed ACK; 4.6 ms with it): pgBackRest's per-file restore paid it.
rgw frontends = beast tcp_nodelay=1 endpoint=127.0.0.1:${port} ssl_endpoint=127.0.0.1:${tlsPort} ssl_certificate=${cert} ssl_private_key=${key}
`,
  );
  const C = ['-c', conf];
  const logTail = async (): Promise<string> => {
    const parts: string[] = [];
    for (const f of ['mon.a.log', 'osd.0.log', 'client.rgw.a.log']) {
      try {
        parts.push(`--- ${f}\n${(await readFile(path.join(dir, 'log', f), 'utf8')).split('\n').slice(-15).join('\n')}`);
      } catch {
        // not written yet
      }
    }
    return parts.join('\n');
  };
  await run('ceph-authtool', ['--create-keyring', path.join(dir, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
  await run('monmaptool', ['--create', '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, '--fsid', fsid, path.join(dir, 'monmap')]);
  await run('ceph-mon', [...C, '--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap'), '--keyring', path.join(dir, 'keyring')]);
  phase('mon mkfs');
  const mon = daemon('mon', 'ceph-mon', ['-f', ...C, '-i', 'a']);
  // The monitor takes a moment to form its quorum of one: `ceph` retries inside its timeout. A
  // monitor that exits at start (it refuses to run when its filesystem has less free space than
  // `mon data avail crit`, 5 % by default — hence 0 above: a CI disk may be that full) is reported
  // with its log instead of as a bare client timeout.
  await whileAlive(mon, 'ceph-mon', run('ceph', [...C, '--connect-timeout', '30', 'osd', 'create'], 45_000), logTail);
  phase('mon up');
  await run('ceph-osd', [...C, '-i', '0', '--mkfs']);
  phase('osd mkfs');
  daemon('osd', 'ceph-osd', ['-f', ...C, '-i', '0']);
  await certMade;
  const startGw = async (): Promise<void> => {
    // Idempotent: a second radosgw on the same port (beast binds with SO_REUSEPORT) would replace
    // the first in `live`, so a later stopGateway would stop only one of them and the other would
    // go on serving (and leak past the run).
    const running = live.get('rgw');
    if (running?.pid !== undefined && running.exitCode === null && running.signalCode === null && isAlive(running.pid)) return;
    daemon('rgw', 'radosgw', ['-f', ...C, '-n', 'client.rgw.a']);
    await until('radosgw to answer', 60_000, () => answers(port), logTail);
  };
  await startGw();
  phase('rgw answers');
  // The gateway creates its pools on first use; until they exist the user cannot be stored.
  for (let attempt = 1; ; attempt++) {
    try {
      await run('radosgw-admin', [
        ...C,
        '-n',
        'client.admin',
        'user',
        'create',
        '--uid=pgbk',
        '--display-name=pgbk',
        `--access-key=${RGW_ACCESS_KEY}`,
        `--secret-key=${RGW_SECRET_KEY}`,
      ]);
      break;
    } catch (err) {
      if (attempt >= 5) throw new Error(`${(err as Error).message}\n${await logTail()}`);
      await sleep(1000);
    }
  }

  // Credentials the way production gets them: a shared credentials file (no keys in the YAML).
  const credentials = path.join(dir, 'aws-credentials');
  await writeFile(
    credentials,
    `[default]\naws_access_key_id = ${RGW_ACCESS_KEY}\naws_secret_access_key = ${RGW_SECRET_KEY}\n\n[${WRONG_PROFILE}]\naws_access_key_id = ${RGW_ACCESS_KEY}\naws_secret_access_key = not-the-secret\n`,
    { mode: 0o644 },
  );
  const awsConfig = path.join(dir, 'aws-config');
  await writeFile(awsConfig, '[default]\nregion = us-east-1\n', { mode: 0o644 });
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) delete process.env[k];
  process.env['AWS_SHARED_CREDENTIALS_FILE'] = credentials;
  process.env['AWS_CONFIG_FILE'] = awsConfig;
  // No instance-metadata probe (169.254.169.254) when a test runs without credentials.
  process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';

  phase('user created');
  const endpoint = `http://127.0.0.1:${port}`;
  const startupSeconds = (Date.now() - t0) / 1000;
  return {
    dir,
    port,
    endpoint,
    httpsEndpoint: `https://127.0.0.1:${tlsPort}`,
    caFile: cert,
    startupSeconds,
    startupPhases: phases.join(', '),
    gatewayPid: () => live.get('rgw')?.pid,
    async bucket(prefix = ''): Promise<S3RepositoryConfig> {
      const bucket = `pgbk-${randomBytes(5).toString('hex')}`;
      const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
      const client = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: RGW_ACCESS_KEY, secretAccessKey: RGW_SECRET_KEY },
      });
      try {
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
      } finally {
        client.destroy();
      }
      return { url: `s3://${bucket}/${prefix}`, bucket, prefix, endpoint, region: 'us-east-1', pathStyle: true, verifyTls: true };
    },
    async stopGateway(): Promise<void> {
      const c = live.get('rgw');
      if (c?.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
      c.kill('SIGKILL');
      live.delete('rgw');
      await until('radosgw to stop', 10_000, async () => !isAlive(c.pid!) && !(await answers(port)), logTail);
    },
    startGateway: startGw,
  };
}

let started: Promise<TestRgw> | undefined;

/** The test process's radosgw, started on first use. */
export function rgw(): Promise<TestRgw> {
  started ??= start();
  return started;
}
