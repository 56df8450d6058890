import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sameClusterConflicts } from '../../../src/apply/same-cluster.js';

test('two servers of this run with one system identifier: both refused, each message naming both', () => {
  const c = sameClusterConflicts(
    [
      { server: 'b', systemIdentifier: '7001' },
      { server: 'a', systemIdentifier: '7001' },
      { server: 'c', systemIdentifier: '7002' },
    ],
    [],
  );
  assert.equal([...c.keys()].sort(), ['a', 'b']);
  for (const name of ['a', 'b']) {
    const e = c.get(name)!;
    assert.is(e.code, 'IDENTITY');
    assert.is(e.server, name);
    assert.match(e.message, 'servers "a" and "b" are the same PostgreSQL cluster (system identifier 7001)');
  }
});

test('a server matching another configured (recorded) server is refused; the other is not part of this run', () => {
  const c = sameClusterConflicts(
    [{ server: 'new', systemIdentifier: '42' }],
    [
      { server: 'old', systemIdentifier: '42' },
      { server: 'x', systemIdentifier: '43' },
    ],
  );
  assert.equal([...c.keys()], ['new']);
  assert.match(c.get('new')!.message, 'servers "new" and "old" are the same PostgreSQL cluster');
});

test('three names for one cluster are all named', () => {
  const c = sameClusterConflicts(
    [{ server: 'a', systemIdentifier: '1' }],
    [
      { server: 'b', systemIdentifier: '1' },
      { server: 'c', systemIdentifier: '1' },
    ],
  );
  assert.match(c.get('a')!.message, 'servers "a", "b" and "c" are');
});

test('distinct clusters: no conflict', () => {
  assert.is(
    sameClusterConflicts(
      [
        { server: 'a', systemIdentifier: '1' },
        { server: 'b', systemIdentifier: '2' },
      ],
      [{ server: 'c', systemIdentifier: '3' }],
    ).size,
    0,
  );
});

test.run();
