import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatTablespaceMap, parseTablespaceDirs, parseTablespaceMap, resolveTablespaceLocations } from '../../../../src/restore/tablespace-map.js';

test('tablespace_map: parse and format round-trip, with PostgreSQL 15 escapes', () => {
  const entries = [
    { oid: '16385', location: '/srv/ts one' },
    { oid: '16390', location: '/srv/odd\\name\nline' },
  ];
  const text = formatTablespaceMap(entries);
  assert.is(text, '16385 /srv/ts one\n16390 /srv/odd\\\\name\\\nline\n');
  assert.equal(parseTablespaceMap(text), entries);
  assert.equal(parseTablespaceMap(''), []);
});

test('--tablespace-dir: one root or OID=DIR entries, absolute only', () => {
  const d = parseTablespaceDirs(['/ts', '16385=/x/a']);
  assert.is(d.root, '/ts');
  assert.equal([...d.byOid], [['16385', '/x/a']]);
  assert.throws(() => parseTablespaceDirs(['rel']), /absolute path/);
  assert.throws(() => parseTablespaceDirs(['/a', '/b']), /at most one/);
  assert.throws(() => parseTablespaceDirs(['1=/a', '1=/b']), /twice/);
});

test('locations: mapping, then root, then the recorded location; clashes refused', () => {
  const recorded = [
    { oid: '1', location: '/orig/1' },
    { oid: '2', location: '/orig/2' },
  ];
  assert.equal(resolveTablespaceLocations(['1', '2'], recorded, parseTablespaceDirs(['2=/new/2']), '/data', 'B'), [
    { oid: '1', location: '/orig/1' },
    { oid: '2', location: '/new/2' },
  ]);
  assert.equal(resolveTablespaceLocations(['1'], [], parseTablespaceDirs(['/root']), '/data', 'B'), [{ oid: '1', location: '/root/1' }]);
  assert.throws(() => resolveTablespaceLocations(['1'], [], parseTablespaceDirs(['9=/x']), '/data', 'B'), /has no tablespace 9/);
  assert.throws(() => resolveTablespaceLocations(['1'], [], parseTablespaceDirs([]), '/data', 'B'), /no location/);
  assert.throws(() => resolveTablespaceLocations(['1'], [], parseTablespaceDirs(['1=/data/ts']), '/data', 'B'), /overlaps the target/);
  assert.throws(() => resolveTablespaceLocations(['1', '2'], [], parseTablespaceDirs(['1=/t', '2=/t']), '/data', 'B'), /both go to/);
});

test.run();
