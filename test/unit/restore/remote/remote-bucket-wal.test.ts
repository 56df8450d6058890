import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bucketFetchCommands, deriveBucketFetch } from '../../../../src/restore/remote-bucket-wal.js';
import { fastPathArchiveCommand } from '../../../../src/wal-push/fast-path.js';

test('deriveBucketFetch: a wal-push straight into the bucket gives the database host pgbk and its --config', () => {
  assert.equal(deriveBucketFetch(`'/usr/bin/node' '/opt/pgbk/cli.js' --config /etc/pgbk/pgbk.yaml wal-push main %p`), {
    dbPgbk: ['/usr/bin/node', '/opt/pgbk/cli.js'],
    configPath: '/etc/pgbk/pgbk.yaml',
    server: 'main',
  });
  assert.equal(deriveBucketFetch('pgbk wal-push --config=/etc/p.yaml --compression zstd main %p'), {
    dbPgbk: ['pgbk'],
    configPath: '/etc/p.yaml',
    server: 'main',
  });
  // The fast path --print-archive-command prints: the words after its exec.
  const fast = fastPathArchiveCommand({
    socket: '/tmp/pgbk-0/walpush-abc.sock',
    markers: '/tmp/pgbk-0/walpush-abc.acked',
    fallback: ['/usr/bin/node', '/opt/pgbk/cli.js', 'wal-push', '--config', '/etc/p.yaml', '--worker', 'main'],
    waitSeconds: 5,
  });
  assert.equal(deriveBucketFetch(fast), { dbPgbk: ['/usr/bin/node', '/opt/pgbk/cli.js'], configPath: '/etc/p.yaml', server: 'main' });
});

test('deriveBucketFetch: not derived (a reason) over SSH, without --config, with a relative one, or not pgbk', () => {
  assert.match(String(deriveBucketFetch('pgbk wal-push --to ssh://b@h/cat main %p')), /over SSH/);
  assert.match(String(deriveBucketFetch('pgbk wal-push main %p')), /no --config/);
  assert.match(String(deriveBucketFetch('pgbk --config p.yaml wal-push main %p')), /not an absolute path/);
  assert.match(String(deriveBucketFetch('cp %p /x/%f')), /not a pgbk wal-push/);
  assert.match(String(deriveBucketFetch('test ! -f /x/%f && cp %p /x/%f')), /not one simple command/);
  assert.match(String(deriveBucketFetch('pgbk wal-push --bogus --config /p main %p')), /unknown wal-push option --bogus/);
});

test('bucketFetchCommands: fast path around pgbk --config F wal-fetch SERVER, spool cleaned at the end', () => {
  const c = bucketFetchCommands({ dbPgbk: ['/usr/bin/node', '/opt/pgbk/cli.js'], configPath: '/etc/p.yaml', server: 'main' });
  assert.ok(c.restoreCommand.startsWith('n=0; h=; while :; do if [ pg_wal/%f -ef .pgbk-spool/%f.link ]; '), c.restoreCommand);
  assert.ok(c.restoreCommand.endsWith('exec /usr/bin/node /opt/pgbk/cli.js --config /etc/p.yaml wal-fetch main %f %p'), c.restoreCommand);
  assert.is(c.recoveryEndCommand, '/usr/bin/node /opt/pgbk/cli.js --config /etc/p.yaml wal-fetch --clean-spool');
});

test.run();
