/**
 * A catalog and a configuration for the command bundles' tests (restore-bundle, apply-bundle):
 * the built CLI spawned with a code-cache directory of its own, beside the in-process dispatcher.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../../src/cli.js', import.meta.url));

export interface Spawned {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Code-cache entries of the bundle under test (one after a run from it). */
  readonly bundleFiles: readonly string[];
  /** Every entry of the cache directory. */
  readonly files: readonly string[];
}

export class BundleWorld {
  dir = '';
  config = '';
  env: NodeJS.ProcessEnv = {};
  #runs = 0;

  /** `prefix`: the bundle's code-cache entries start with it (restore-bundle, apply-bundle). */
  constructor(private readonly prefix: string) {}

  /** test.before: a catalog with one server on a port nothing listens on. */
  setUp(): void {
    this.dir = mkdtempSync(path.join(os.tmpdir(), `pgbk-${this.prefix}-`));
    mkdirSync(path.join(this.dir, 'catalog'));
    this.config = path.join(this.dir, 'pgbk.yaml');
    writeFileSync(
      this.config,
      `catalog: ${path.join(this.dir, 'catalog')}\nservers:\n  main:\n    connection: "host=127.0.0.1 port=1 user=pgbk dbname=postgres"\n    backup: { schedule: "0 3 * * *" }\n    retention: { redundancy: 2 }\n`,
    );
    this.env = { PATH: process.env['PATH'] ?? '', HOME: this.dir };
  }

  tearDown(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Run the built CLI with `cache` as XDG_CACHE_HOME (a new directory unless given). */
  spawn(args: readonly string[], cache = path.join(this.dir, `cache-${++this.#runs}`), extra: NodeJS.ProcessEnv = {}): Spawned {
    mkdirSync(cache, { recursive: true });
    const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...this.env, XDG_CACHE_HOME: cache, ...extra }, encoding: 'utf8' });
    let files: string[] = [];
    try {
      files = readdirSync(path.join(cache, 'pgbk'));
    } catch {
      // no cache directory
    }
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, bundleFiles: files.filter((f) => f.startsWith(`${this.prefix}-`)), files };
  }
}
