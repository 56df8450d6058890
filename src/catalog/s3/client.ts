/**
 * The S3 client of the s3 driver: the AWS SDK v3 (@aws-sdk/client-s3), loaded on first use here
 * (loadSdk: a one-file bundle with a V8 code cache) and nowhere else, so only a command that opens
 * an S3 repository pays for loading it; the per-segment clients never do (test/unit/architecture).
 *
 * What is configured, and why:
 * - credentials: the SDK's default provider chain only (environment, shared credentials/config
 *   files, an optional named profile) — never the YAML, never printed;
 * - retries: the SDK's standard strategy (exponential backoff with jitter) retries throttling
 *   (SlowDown, 503), 5xx and transient network errors (reset, refused, timeouts) up to
 *   `maxAttempts`; bodies are Buffers, so every retry resends the same bytes;
 * - timeouts: connecting, and socket inactivity of a request, so a vanished server fails the
 *   operation instead of hanging it;
 * - checksums: only when an operation requires one. The SDK's default (CRC32 "flexible checksums"
 *   with aws-chunked trailers) is not understood by every S3-compatible server (radosgw 16 ignores
 *   x-amz-checksum-*); the driver has the server check the signed payload sha256 of a PUT and the
 *   Content-MD5 of a multipart part, which every S3 server verifies;
 * - no `Expect: 100-continue` (the SDK's default for bodies of 2 MiB or more): it holds each body
 *   back for a round trip until the server answers "100 Continue", one more exchange per request
 *   for both sides. Measured with archived WAL (~3 MB zstd frames, 6 PUTs at a time to radosgw over
 *   HTTPS): 0.7–1.2 ms less CPU per PUT in the client and 0.3–1 ms in radosgw. What it would save —
 *   not sending a body the server refuses anyway (412 of a conditional PUT: a duplicate, rare;
 *   credentials refused: the first request tells) — is not worth a round trip on every request.
 */

import { readFileSync } from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import { createSecureContext, type SecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type * as SdkModule from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { PgbkError } from '../../errors.js';
import type { S3RepositoryConfig } from '../../config/resolved.js';
import { hasPemCertificate } from './trust.js';
import { loadCommonJsCached } from '../../lib/v8-code-cache.js';

export type Sdk = typeof SdkModule;

/** Knobs that are not configuration (tests shorten them; the defaults suit production). */
export interface S3Tuning {
  /** Bytes per multipart part (≥ 5 MiB, S3's minimum for all but the last part). Default 16 MiB. */
  readonly partSize?: number;
  /** Parts uploading at once per streaming write. Default 2: memory ≤ (queue + 1) × partSize. */
  readonly queueSize?: number;
  /** Attempts per request, the first included (SDK standard retry strategy). Default 6. */
  readonly maxAttempts?: number;
  readonly connectTimeoutMs?: number;
  /** Socket inactivity during one request. Default 60 s. */
  readonly requestTimeoutMs?: number;
}

export interface S3Context {
  readonly sdk: Sdk;
  readonly client: S3Client;
  readonly cfg: S3RepositoryConfig;
  /** Where requests go, for messages: the endpoint, or AWS S3's regional one. */
  readonly endpointName: string;
  readonly partSize: number;
  readonly queueSize: number;
}

export const MIN_PART_SIZE = 5 * 1024 * 1024;

/**
 * The TLS context trusting the certificates of `caFile` (instead of Node's bundled roots, as
 * AWS_CA_BUNDLE, curl's --cacert and pgBackRest's repo-storage-ca-file do: the file is the
 * endpoint's trust, and parsing the ~150 bundled roots with it cost ~27 ms of CPU in every
 * command), made once per file per process.
 * Not the agent's `ca` option: https.Agent names its connection pool after its options, `ca`
 * included, so every request joined the ~150 bundled roots (~200 KB of text) into the pool's key,
 * and every new connection parsed them again; a SecureContext is parsed once and is no part of
 * the key.
 */
const secureContexts = new Map<string, SecureContext>();

export function secureContextFor(cfg: S3RepositoryConfig, caFile: string): SecureContext {
  const known = secureContexts.get(caFile);
  if (known !== undefined) return known;
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (err) {
    throw new PgbkError('CATALOG', `cannot read the CA file ${caFile} for ${cfg.url}: ${(err as Error).message}`, {
      path: caFile,
      hint: 'fix s3.tls.caFile in the configuration',
    });
  }
  if (!hasPemCertificate(ca)) {
    throw new PgbkError('CATALOG', `the CA file ${caFile} for ${cfg.url} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`, {
      path: caFile,
      hint: "s3.tls.caFile must name a PEM file with the CA certificate(s) that signed the endpoint's certificate (a DER one converts with openssl x509 -inform DER -in FILE -out FILE.pem)",
    });
  }
  let made: SecureContext;
  try {
    made = createSecureContext({ ca });
  } catch (err) {
    throw new PgbkError('CATALOG', `the CA file ${caFile} for ${cfg.url} is not a PEM certificate: ${(err as Error).message}`, {
      path: caFile,
      hint: 'fix s3.tls.caFile in the configuration',
    });
  }
  secureContexts.set(caFile, made);
  return made;
}

/** The SDK as bundled by scripts/bundle-sdk.mjs, next to this module once built. */
const SDK_BUNDLE = fileURLToPath(new URL('./sdk-bundle.cjs', import.meta.url));
let sdkLoaded: Sdk | undefined;

/**
 * The SDK, once per process: the one-file bundle with its V8 code cache (lib/v8-code-cache.ts:
 * 35–50 ms instead of 60–80), or the package itself when there is no bundle (the sources run
 * directly). require, not import(): the package has no ESM entry Node uses (no "exports"; "module"
 * is bundlers' only), so import() loads the same CommonJS files and first scans them for export
 * names: 95–140 ms of wall against 60–84 ms.
 */
function loadSdk(): Sdk {
  if (sdkLoaded !== undefined) return sdkLoaded;
  const bundled = loadCommonJsCached<Sdk>(SDK_BUNDLE, process.env, 's3-sdk');
  if (bundled === undefined) {
    sdkLoaded = createRequire(import.meta.url)('@aws-sdk/client-s3') as Sdk;
  } else {
    // Written at exit, so that the entry holds what the command compiled (the request path too).
    if (bundled.cache === 'absent') process.once('exit', () => bundled.save());
    sdkLoaded = bundled.exports;
  }
  return sdkLoaded;
}

export async function makeContext(cfg: S3RepositoryConfig, tuning: S3Tuning = {}): Promise<S3Context> {
  // The SDK warns on stderr, once per process, that its releases from 2027 on will need Node 22.
  // This pinned release supports Node 20 (its engines say >=20); pgbk's stderr is for pgbk's own
  // messages, which archive_command's log shows to the DBA.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const sdk = loadSdk();
  const secureContext = cfg.caFile === undefined ? undefined : secureContextFor(cfg, cfg.caFile);
  const partSize = Math.max(MIN_PART_SIZE, tuning.partSize ?? 16 * 1024 * 1024);
  const queueSize = Math.max(1, tuning.queueSize ?? 2);
  const httpsAgent = new https.Agent({
    keepAlive: true,
    maxSockets: 64,
    rejectUnauthorized: cfg.verifyTls,
    ...(secureContext === undefined ? {} : { secureContext }),
  });
  const client = new sdk.S3Client({
    region: cfg.region,
    ...(cfg.endpoint === undefined ? {} : { endpoint: cfg.endpoint }),
    forcePathStyle: cfg.pathStyle,
    ...(cfg.profile === undefined ? {} : { profile: cfg.profile }),
    maxAttempts: tuning.maxAttempts ?? 6,
    retryMode: 'standard',
    expectContinueHeader: false,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      httpsAgent,
      connectionTimeout: tuning.connectTimeoutMs ?? 10_000,
      requestTimeout: tuning.requestTimeoutMs ?? 60_000,
    },
  });
  const endpointName = endpointOf(cfg);
  return { sdk, client, cfg, endpointName, partSize, queueSize };
}

/** The endpoint requests go to: s3.endpoint, else AWS's for the region. */
export function endpointOf(cfg: Pick<S3RepositoryConfig, 'endpoint' | 'region'>): string {
  return cfg.endpoint ?? `https://s3.${cfg.region}.amazonaws.com`;
}

/** The s3:// URL of a full object key, for messages. */
export function urlOf(ctx: S3Context, objectKey: string): string {
  return `s3://${ctx.cfg.bucket}/${objectKey}`;
}
