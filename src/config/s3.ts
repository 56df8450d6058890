/**
 * An object-storage catalog in the configuration: `catalog: s3://BUCKET/PREFIX` and the `s3:`
 * section (endpoint, region, addressing, TLS). Pure: parsing the URL, the checks a schema cannot
 * express (bucket naming, a prefix that is a valid key prefix, an endpoint URL without credentials
 * or a path, TLS settings only for https), and resolving defaults.
 *
 * Credentials have no place here on purpose: a key in the YAML would end up in backups of /etc,
 * in version control and in `ps`-visible environments of child processes. pgbk leaves them to the
 * AWS SDK's default chain (environment, shared credentials/config files, profiles).
 */

import type { Problem } from './problem.js';
import type { S3RepositoryConfig } from './resolved.js';
import type { ConfigPath } from './yaml-position.js';

export const S3_SCHEME = 's3://';

/** S3's bucket naming rules (DNS-compatible, which radosgw requires too). */
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function isS3Url(catalog: string): boolean {
  return catalog.startsWith(S3_SCHEME);
}

/** Bucket and key prefix ('' or ending in '/') of `s3://BUCKET[/PREFIX]`, or why it is not one. */
export function parseS3Url(url: string): { readonly bucket: string; readonly prefix: string } | { readonly error: string } {
  const rest = url.slice(S3_SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  if (!BUCKET_RE.test(bucket) || bucket.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    return {
      error: `"${bucket}" is not a valid bucket name: 3 to 63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit (write s3://BUCKET/PREFIX)`,
    };
  }
  if (path === '') return { bucket, prefix: '' };
  for (const segment of path.split('/')) {
    if (segment === '' || segment.startsWith('.') || segment.includes('\0')) {
      return { error: `the prefix "${path}" must be '/'-separated names, none empty or starting with '.'` };
    }
  }
  return { bucket, prefix: `${path}/` };
}

/** Key names that look like credentials: refused with a message saying where they belong. */
const SECRET_KEY_RE = /access.?key|secret|token|credential|password/i;

const CREDENTIALS_HINT =
  'credentials are never read from the configuration: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment pgbk runs in, or use a profile of ~/.aws/credentials (s3.profile)';

type Rec = Readonly<Record<string, unknown>>;
const isRecord = (v: unknown): v is Rec => v !== null && typeof v === 'object' && !Array.isArray(v);

function checkEndpoint(endpoint: string, tlsSet: boolean, out: Problem[]): void {
  const path: ConfigPath = ['s3', 'endpoint'];
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    out.push({ path, anchor: 'value', message: 'must be a URL like https://host:port' });
    return;
  }
  if (url.username !== '' || url.password !== '') {
    out.push({ path, anchor: 'value', message: `contains credentials: ${CREDENTIALS_HINT}` });
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    out.push({ path, anchor: 'value', message: `must be an http:// or https:// URL (got ${url.protocol}//…)` });
    return;
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    out.push({ path, anchor: 'value', message: `must be scheme and host[:port] only, without a path (the bucket goes in catalog: s3://BUCKET/PREFIX)` });
    return;
  }
  if (url.protocol === 'http:' && tlsSet) {
    out.push({ path: ['s3', 'tls'], anchor: 'key', message: `applies to an https endpoint; ${endpoint} is http` });
  }
}

/** Problems of the catalog URL and the s3 section; nothing when the catalog is a directory without s3. */
export function checkS3(root: Rec, out: Problem[]): void {
  const catalog = typeof root['catalog'] === 'string' ? root['catalog'] : undefined;
  const s3 = root['s3'];
  if (catalog !== undefined && /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(catalog) && !isS3Url(catalog)) {
    out.push({
      path: ['catalog'],
      anchor: 'value',
      message: `only s3:// URLs are supported besides a local directory (got ${catalog.slice(0, catalog.indexOf('://') + 3)}…)`,
    });
    return;
  }
  if (catalog !== undefined && isS3Url(catalog)) {
    const parsed = parseS3Url(catalog);
    if ('error' in parsed) out.push({ path: ['catalog'], anchor: 'value', message: parsed.error });
  } else if (s3 !== undefined && catalog !== undefined) {
    out.push({ path: ['s3'], anchor: 'key', message: 'is only for an object-storage catalog: catalog: s3://BUCKET/PREFIX' });
  }
  if (!isRecord(s3)) return;
  for (const key of Object.keys(s3)) {
    if (SECRET_KEY_RE.test(key)) out.push({ path: ['s3', key], anchor: 'key', message: CREDENTIALS_HINT });
  }
  const tls = s3['tls'];
  if (typeof s3['endpoint'] === 'string') checkEndpoint(s3['endpoint'], tls !== undefined, out);
  if (isRecord(tls)) {
    const ca = tls['caFile'];
    if (typeof ca === 'string' && ca.startsWith('~') && ca !== '~' && !ca.startsWith('~/')) {
      out.push({ path: ['s3', 'tls', 'caFile'], anchor: 'value', message: `"${ca}": only ~ and ~/ are expanded; write the full path` });
    }
  }
  const spool = s3['spool'];
  if (typeof spool === 'string' && spool.startsWith('~') && spool !== '~' && !spool.startsWith('~/')) {
    out.push({ path: ['s3', 'spool'], anchor: 'value', message: `"${spool}": only ~ and ~/ are expanded; write the full path` });
  }
}

export interface S3Section {
  readonly endpoint?: string;
  readonly region?: string;
  readonly pathStyle?: boolean;
  readonly tls?: { readonly verify?: boolean; readonly caFile?: string };
  readonly profile?: string;
  readonly spool?: string;
}

/** Assumes checkS3 found nothing wrong. `resolvePath` resolves caFile like every path in the file. */
export function resolveS3(catalog: string, s3: S3Section | undefined, resolvePath: (p: string) => string): S3RepositoryConfig {
  const parsed = parseS3Url(catalog);
  if ('error' in parsed) throw new Error(parsed.error);
  const endpoint = s3?.endpoint?.replace(/\/$/, '');
  return {
    url: catalog,
    bucket: parsed.bucket,
    prefix: parsed.prefix,
    ...(endpoint === undefined ? {} : { endpoint }),
    region: s3?.region ?? 'us-east-1',
    pathStyle: s3?.pathStyle ?? endpoint !== undefined,
    verifyTls: s3?.tls?.verify ?? true,
    ...(s3?.tls?.caFile === undefined ? {} : { caFile: resolvePath(s3.tls.caFile) }),
    ...(s3?.profile === undefined ? {} : { profile: s3.profile }),
    ...(s3?.spool === undefined ? {} : { spool: resolvePath(s3.spool) }),
  };
}
