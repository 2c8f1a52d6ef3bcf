// Core's growing backups (rollback records, object lists that gain entries between batches or
// attempts) never rewrite a stored object: what an earlier batch or attempt stored keeps its bytes,
// new entries go to write-once parts, and the restore reads them all back. The fault suite found
// the rewrite: `core.rollback.added-marks` changed sha256 after its first write.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ConfigMapResource } from '../../src/api/core.js';
import {
  backupObjects,
  loadGrowingList,
  loadGrowingRecord,
  recordEntries,
} from '../../src/jobs/core/backup.js';
import type { JobContext } from '../../src/jobs/types.js';
import type { KubeObject } from '../../src/kube/types.js';
import { createResourceStore } from '../../src/store/index.js';
import { localStorageConfig, tempDir } from '../helpers/storage.js';

const cm = (name: string, v: string): KubeObject =>
  ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns' }, data: { v } }) as KubeObject;

describe('core growing backups', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups) await c();
  });

  const setup = async () => {
    const { dir, cleanup } = await tempDir('core-growing');
    cleanups.push(cleanup);
    const store = await createResourceStore(localStorageConfig(dir));
    const lines: string[] = [];
    const ctx = {
      store,
      phase: 'rollback',
      job: 'core',
      logger: { info: (l: string) => lines.push(l), warn: () => undefined, error: () => undefined },
    } as unknown as JobContext;
    return { store, ctx };
  };

  it('a record that gains entries keeps its first object byte-identical and adds write-once parts', async () => {
    const { store, ctx } = await setup();
    await recordEntries(store, 'marks', { a: { previous: 'a0' } });
    const first = await store.stat('marks');
    // A retry: a known entry with a new value (post-change state) and a new entry.
    const merged = await recordEntries(store, 'marks', { a: { previous: 'CHANGED' }, b: { previous: 'b0' } });
    assert.deepEqual(merged, { a: { previous: 'a0' }, b: { previous: 'b0' } });
    assert.deepEqual(await store.stat('marks'), first, 'the first object was not rewritten');
    assert.deepEqual(await store.list('marks'), ['marks', 'marks.part-2']);
    // Nothing new: nothing written.
    await recordEntries(store, 'marks', { b: { previous: 'other' } });
    await recordEntries(store, 'marks', { c: { previous: 'c0' } });
    assert.deepEqual(await store.list('marks'), ['marks', 'marks.part-2', 'marks.part-3']);
    const part2 = await store.stat('marks.part-2');
    await recordEntries(store, 'marks', { a: { previous: 'x' }, b: { previous: 'y' }, c: { previous: 'z' } });
    assert.deepEqual(await store.stat('marks.part-2'), part2);
    assert.deepEqual(await loadGrowingRecord(ctx, 'marks'), {
      a: { previous: 'a0' },
      b: { previous: 'b0' },
      c: { previous: 'c0' },
    });
  });

  it('a list backup that gains objects keeps the first state of each and reads back every part', async () => {
    const { store, ctx } = await setup();
    await backupObjects(store, 'cms', ConfigMapResource, [cm('one', '1')]);
    const first = await store.stat('cms');
    const items = await backupObjects(store, 'cms', ConfigMapResource, [
      cm('one', 'changed'),
      cm('two', '2'),
    ]);
    assert.deepEqual(
      items.map((i) => [i.metadata.name, (i as { data?: { v?: string } }).data?.v]),
      [
        ['one', '1'],
        ['two', '2'],
      ],
    );
    assert.deepEqual(await store.stat('cms'), first);
    const list = await loadGrowingList(ctx, 'cms');
    assert.ok(list);
    assert.equal(list.kind, 'ConfigMapList');
    assert.deepEqual(
      list.items.map((i) => i.metadata.name),
      ['one', 'two'],
    );
  });

  it('restoring from a store without the backup finds nothing to restore in rollback', async () => {
    const { ctx } = await setup();
    assert.equal(await loadGrowingList(ctx, 'none'), undefined);
    assert.equal(await loadGrowingRecord(ctx, 'none'), undefined);
  });
});
