// The fault suite's comparisons catch what they are for: a changed leaf, a missing or extra object,
// a create done twice — and leave out only what two clean runs differ on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compareCounts,
  compareStates,
  countNoise,
  normaliseText,
  stateDifferences,
  type ClusterState,
} from '../faults/state.js';

const state = (entries: [string, [string, string][]][]): ClusterState =>
  new Map(entries.map(([k, leaves]) => [k, new Map(leaves)]));

describe('fault suite checks', () => {
  const clean = state([
    [
      '/configmaps ns/a',
      [
        ['.data.x', '"1"'],
        ['.data.secret', '"random-1"'],
      ],
    ],
    ['/configmaps ns/b', [['.data.y', '"2"']]],
  ]);
  const cleanB = state([
    [
      '/configmaps ns/a',
      [
        ['.data.x', '"1"'],
        ['.data.secret', '"random-2"'],
      ],
    ],
    ['/configmaps ns/b', [['.data.y', '"2"']]],
  ]);
  const noise = stateDifferences(clean, cleanB);

  it('learns the noise from two clean runs', () => {
    assert.deepEqual([...noise], ['/configmaps ns/a .data.secret']);
  });

  it('finds a changed leaf, a missing and an extra object, but not the noise', () => {
    const faulted = state([
      [
        '/configmaps ns/a',
        [
          ['.data.x', '"CHANGED"'],
          ['.data.secret', '"random-3"'],
        ],
      ],
      ['/configmaps ns/c', [['.data.z', '"3"']]],
    ]);
    assert.deepEqual(compareStates(clean, faulted, noise), [
      'changed /configmaps ns/a .data.x: "1" → "CHANGED"',
      'missing /configmaps ns/b',
      'extra /configmaps ns/c',
    ]);
    assert.deepEqual(compareStates(clean, cleanB, noise), []);
  });

  it('finds a create done twice', () => {
    const a = new Map([['<host> create /configmaps ns/a', 1]]);
    const twice = new Map([['<host> create /configmaps ns/a', 2]]);
    assert.deepEqual(compareCounts(a, twice, countNoise(a, a)), {
      more: ['<host> create /configmaps ns/a: 1 in the clean run, 2 here'],
      fewer: [],
    });
    assert.deepEqual(compareCounts(twice, a, countNoise(a, a)).fewer, [
      '<host> create /configmaps ns/a: 2 in the clean run, 1 here',
    ]);
  });

  it('normalises times, the run names and loopback ports', () => {
    assert.equal(
      normaliseText('x-host-1 at 2026-12-03T07:01:02Z on 127.0.0.1:34567', [['x-host-1', '<host>']]),
      '<host> at <time> on 127.0.0.1:<port>',
    );
  });
});
