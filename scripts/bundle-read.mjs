#!/usr/bin/env node
// Bundle the read commands (src/cli/read-entry.ts: list, status) into one CommonJS file,
// dist/src/cli/read-bundle.cjs, and `restore` (src/cli/restore-bundle-entry.ts) into
// dist/src/cli/restore-bundle.cjs, and `apply`/`backup` (src/cli/apply-bundle-entry.ts) into
// dist/src/cli/apply-bundle.cjs, which dist/src/cli.js loads for them instead of their ES
// modules (issue 13 item 5: Node 20 spends ~0.5 ms on each ES module it resolves, reads, compiles
// and links; it has no compile cache). Runs after tsc, from the compiled dist/src, so the bundle
// is the very code the other commands run.
//
// CommonJS, not ESM: in an ES module bundle, esbuild hoists every package a lazily loaded module
// imports (yaml, croner) to the top, where it would load at every start; as CommonJS they are
// required where they are first needed. Node >= 20.19 (package.json engines) can require ES-only
// packages.
//
// cli.js loads the bundle through src/cli/read-bundle-loader.ts (V8 code cache), itself bundled
// into dist/src/cli/read-bundle-loader.cjs. It also writes dist/src/cli.cjs, cli.js as CommonJS
// (package.json's bin; commonJsEntry below says why).
//
// Each module's import.meta.url becomes the URL of its own compiled file in dist/src, so paths it
// resolves from there (the schema, schema-validator.cjs, package.json, the config cache's build
// identity) are the same in the bundle as outside it.
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'dist', 'src');
const out = path.join(src, 'cli', 'read-bundle.cjs');
// cli.js loads the bundle through this (read-bundle-loader.ts: the code cache), bundled too (with
// lib/user-cache.ts, which holds no state) so that it costs one small CommonJS file, not two ES modules.
const loaderOut = path.join(src, 'cli', 'read-bundle-loader.cjs');
// createRequire rather than import: resolved like any CommonJS package (NODE_PATH included).
let esbuild;
try {
  esbuild = createRequire(import.meta.url)('esbuild');
} catch (err) {
  if (err.code !== 'MODULE_NOT_FOUND') throw err;
  throw new Error('esbuild is not installed (a devDependency since session 15, for the read bundle): run npm install');
}

/** import.meta.url of the module at `file`, as an expression valid inside a bundle in dist/src/cli. */
function moduleUrl(file) {
  return `__pgbkModuleUrl(${JSON.stringify(path.relative(path.dirname(out), file))})`;
}

const importMetaUrl = {
  name: 'import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!args.path.startsWith(src + path.sep) || !text.includes('import.meta')) return { contents: text, loader: 'js' };
      const rewritten = text.replaceAll('import.meta.url', moduleUrl(args.path));
      if (rewritten.includes('import.meta')) throw new Error(`${args.path}: import.meta other than import.meta.url cannot be bundled`);
      return { contents: rewritten, loader: 'js' };
    });
  },
};

/**
 * Modules of data only, no imports: the bundle require()s their compiled file where the module
 * that imports them is initialised, instead of carrying their text. catalog/zstd-wasm.gen.js is
 * the 110 kB base64 WebAssembly zstd decoder (a quarter of the bundle): catalog/zstd.js, and so
 * the decoder, is initialised only when something decompresses (catalog/compress.ts imports it
 * on first use), which `list` and `status` on a local catalog never do, yet every start read the
 * decoder's text with the rest. Only a module without imports may be left out this way: it
 * cannot hold a second copy of any other module (errors.ts's PgbkError class, say).
 */
const DATA_MODULES = [path.join(src, 'catalog', 'zstd-wasm.gen.js')];

/** The imports of the module at `file`, as esbuild reads them. */
async function importsOf(file) {
  const result = await esbuild.build({
    entryPoints: [file],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    external: ['*'],
    logLevel: 'silent',
  });
  return Object.values(result.metafile.inputs).flatMap((input) => input.imports);
}

const dataModulesOutside = {
  name: 'data-modules-outside',
  setup(build) {
    build.onResolve({ filter: /\.gen\.js$/ }, async (args) => {
      const file = path.resolve(args.resolveDir, args.path);
      if (!DATA_MODULES.includes(file)) return undefined;
      if ((await importsOf(file)).length > 0) throw new Error(`${file} imports other modules: it cannot be left out of the bundle`);
      // Relative to the bundle, which requires it through createRequire(the bundle's own file).
      return { path: path.relative(path.dirname(out), file), external: true };
    });
  },
};

/**
 * `text` with every non-ASCII character written as a \u escape. esbuild escapes them in strings
 * and identifiers (charset ascii) but keeps comments as they are; one such character makes V8
 * hold the whole source as a two-byte string, which costs ~1 ms of each start in reading it and
 * in taking the code cache. Left to comments only, an escape there changes nothing; elsewhere it
 * means what the character meant.
 */
function asciiOnly(text) {
  return text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Bundle `entry` into `outfile` (CommonJS, packages left to Node); esbuild's warnings fail the build. */
async function bundle(entry, outfile) {
  const result = await esbuild.build({
    entryPoints: [path.join(src, 'cli', entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    packages: 'external',
    // import() of a package becomes require() (Node >= 20.19 requires ES-only packages too): code
    // compiled by vm.Script from a code cache cannot import() in Node 20 ("A dynamic import
    // callback was not specified"), and the vm's own import() callback prints an experimental warning.
    supported: { 'dynamic-import': false },
    plugins: [dataModulesOutside, importMetaUrl],
    banner: {
      js: [
        '"use strict";',
        `// Generated by scripts/bundle-read.mjs from dist/src/cli/${entry}: do not edit.`,
        'const __pgbkModuleUrl = (rel) => require("node:url").pathToFileURL(require("node:path").join(__dirname, rel)).href;',
      ].join('\n'),
    },
    metafile: true,
    logLevel: 'silent',
  });
  if (result.warnings.length > 0) {
    const text = await esbuild.formatMessages(result.warnings, { kind: 'warning' });
    throw new Error(`esbuild warned while bundling ${entry}:\n${text.join('\n')}`);
  }
  const text = asciiOnly(await readFile(outfile, 'utf8'));
  await writeFile(outfile, text);
  if (/\bimport\(/.test(text)) throw new Error(`${outfile}: an import() is left in the bundle`);
  return Object.entries(result.metafile.outputs)[0][1].inputs;
}

/** Fail the build when a bundle holds a handler of a command it does not run: a second copy of it. */
function refuseStrays(inputs, own, name) {
  const strays = Object.keys(inputs).filter((f) => {
    const m = /dist\/src\/cli\/(apply|backup|plan|restore|daemon|wal-push|wal-fetch|list|status)\.js$/.exec(f);
    return inputs[f].bytesInOutput > 0 && m !== null && !own.includes(m[1]);
  });
  if (strays.length > 0) throw new Error(`the ${name} holds other commands' handlers: ${strays.join(', ')}`);
}

refuseStrays(await bundle('read-entry.js', out), ['list', 'status'], 'read bundle');
// restore (session 19): ~95 ES modules before the first byte is restored.
refuseStrays(await bundle('restore-bundle-entry.js', path.join(src, 'cli', 'restore-bundle.cjs')), ['restore'], 'restore bundle');
// cli/backup.ts renders its result with cli/list.ts's listEntry: list's module is backup's too.
refuseStrays(await bundle('apply-bundle-entry.js', path.join(src, 'cli', 'apply-bundle.cjs')), ['apply', 'backup', 'list'], 'apply bundle');
await bundle('read-bundle-loader.js', loaderOut);

/**
 * dist/src/cli.cjs, package.json's bin: dist/src/cli.js as one CommonJS file. Node runs an ES
 * module entry through its ES module loader (loader set-up, an asynchronous read through the
 * thread pool, module compile and link): ~5 ms of every start that a CommonJS entry does not pay
 * (bench/RESULTS-2026-12-03.md, session 17). Same code, transformed, not bundled: it requires
 * cli/read-bundle-loader.cjs for list and status and import()s cli/dispatch.js (ES modules, as
 * before) for every other command. dist/src/cli.js stays for those who call it by path.
 */
async function commonJsEntry() {
  const from = path.join(src, 'cli.js');
  const js = await readFile(from, 'utf8');
  // Any other import.meta left is an esbuild warning ("empty-import-meta"), which fails the build.
  const result = await esbuild.transform(js.replaceAll('import.meta.url', 'require("node:url").pathToFileURL(__filename).href'), {
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    sourcefile: from,
    // The other commands still load the dispatcher as an ES module.
    supported: { 'dynamic-import': true },
    logLevel: 'silent',
  });
  if (result.warnings.length > 0) {
    const text = await esbuild.formatMessages(result.warnings, { kind: 'warning' });
    throw new Error(`esbuild warned while transforming cli.js:\n${text.join('\n')}`);
  }
  if (!result.code.startsWith('#!/usr/bin/env node\n')) throw new Error('cli.cjs lost its #! line');
  // "use strict": an ES module always was.
  const header = '// Generated by scripts/bundle-read.mjs from dist/src/cli.js: do not edit.\n"use strict";\n';
  await writeFile(path.join(src, 'cli.cjs'), result.code.replace('\n', `\n${header}`), { mode: 0o755 });
}

await commonJsEntry();
