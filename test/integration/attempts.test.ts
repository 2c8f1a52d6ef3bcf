// The backups of an aborted attempt move aside (src/store/attempts.ts) on both storage backends:
// byte for byte (still verified and decrypted where they now are), every touched job and _shared,
// nothing else, safe to run again after a crash half-way, and never over a different object.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { StorageConfig } from '../../src/config/types.js';
import { createStorage } from '../../src/storage/index.js';
import type { Storage } from '../../src/storage/storage.js';
import {
  IntegrityError,
  abortedAttemptName,
  createResourceStore,
  groupByAttempt,
  parseArchivedKey,
  type ResourceStore,
} from '../../src/store/index.js';
import { devS3Config, purgeS3Prefix, tempDir } from '../helpers/storage.js';

const KEY_HEX = randomBytes(32).toString('hex');
const ENV = { ATTEMPTS_TEST_KEY: KEY_HEX };
const ATTEMPT = abortedAttemptName('2026-12-02T17:55:00.123Z', '7f3a9c2e-1b4d-4e8f-9a6b-0c5d2e1f3a4b');

/** What a typical attempt leaves: two jobs touched, one not, another cluster, a shared key. */
async function seed(store: ResourceStore): Promise<void> {
  const core = store.scope('host', 'core');
  await core.saveOnce('core-replicas', { 'ks-apiserver': 2, 'ks-console': 1 });
  await core.saveOnce('core.cluster.kubeconfig', {
    kind: 'Secret',
    apiVersion: 'v1',
    data: { token: 'c2VjcmV0' },
  });
  await core.saveRaw('nested/part-1', 'raw bytes');
  await core.shared().saveRaw('kubesphere-config', 'monitoring: {}\n', { contentType: 'application/yaml' });
  await store.scope('host', 'iam').saveRaw('iam-done', '2026-12-02 17:50:00 +0000 UTC');
  await store.scope('host', 'devops').save('devops-backup', { untouched: true });
  await store.scope('member1', 'core').save('core-replicas', { 'ks-apiserver': 1 });
}

async function bytesOf(storage: Storage, keys: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const k of keys) out.set(k, Buffer.from(await storage.get(k)).toString('base64'));
  return out;
}

function suite(
  name: string,
  makeConfig: () => Promise<{ config: StorageConfig; cleanup: () => Promise<void> }>,
): void {
  describe(`aborted attempts on ${name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    after(async () => {
      for (const c of cleanups) await c();
    });

    async function open(): Promise<{ store: ResourceStore; storage: Storage }> {
      const { config, cleanup } = await makeConfig();
      cleanups.push(cleanup);
      const withKey = { ...config, encryption: { keyEnv: 'ATTEMPTS_TEST_KEY' } };
      return { store: await createResourceStore(withKey, ENV), storage: await createStorage(withKey) };
    }

    it('moves the touched jobs and _shared byte for byte; they still verify and decrypt', async () => {
      const { store, storage } = await open();
      await seed(store);
      // The cluster's identity binding (which API server this name means) is not an attempt's.
      const identity = new TextEncoder().encode('{"server":"https://127.0.0.1:6443"}');
      await storage.put('host/_cluster/identity.json', identity);
      const before = await bytesOf(storage, await storage.list('host/'));
      const moved = await store.moveAttemptAside('host', ['core', 'iam'], ATTEMPT);
      assert.equal(moved.folder, `host/_attempts/${ATTEMPT}/`);
      assert.deepEqual(moved.moved, [
        'host/_shared/kubesphere-config',
        'host/core/core-replicas',
        'host/core/core.cluster.kubeconfig',
        'host/core/nested/part-1',
        'host/iam/iam-done',
      ]);
      assert.deepEqual(await storage.list('host/core/'), [], 'a fresh attempt finds no backup');
      assert.deepEqual(await storage.list('host/_shared/'), []);
      assert.deepEqual(await storage.list('host/iam/'), [], 'markers go with the attempt');
      assert.deepEqual(
        await storage.list('host/devops/'),
        ['host/devops/devops-backup'],
        'untouched job kept',
      );
      assert.deepEqual(await storage.list('member1/'), ['member1/core/core-replicas'], 'other cluster kept');
      assert.deepEqual(
        await storage.list('host/_cluster/'),
        ['host/_cluster/identity.json'],
        'the identity binding stays',
      );
      for (const original of moved.moved) {
        const archived = `host/_attempts/${ATTEMPT}/${original.slice('host/'.length)}`;
        assert.equal(
          Buffer.from(await storage.get(archived)).toString('base64'),
          before.get(original),
          `${archived} is a byte-identical copy`,
        );
        const { info } = await store.verify(archived);
        assert.equal(info.key, archived);
      }
      assert.deepEqual(await store.load(`host/_attempts/${ATTEMPT}/core/core-replicas`), {
        'ks-apiserver': 2,
        'ks-console': 1,
      });
      const secret = await store.loadEntry(`host/_attempts/${ATTEMPT}/core/core.cluster.kubeconfig`);
      assert.equal(secret.info.encrypted, true);
      assert.match(Buffer.from(secret.payload).toString(), /c2VjcmV0/);

      // A fresh attempt backs up the cluster as it is now.
      const { created } = await store.scope('host', 'core').saveOnce('core-replicas', { 'ks-apiserver': 0 });
      assert.equal(created, true);

      const grouped = groupByAttempt(await store.list(''));
      assert.deepEqual(
        grouped.attempts.map((a) => [a.cluster, a.attempt, a.keys.length]),
        [['host', ATTEMPT, 5]],
      );
      assert.ok(grouped.current.includes('host/core/core-replicas'));
    });

    it('an archived object copied anywhere else still fails verification', async () => {
      const { store, storage } = await open();
      await seed(store);
      await store.moveAttemptAside('host', ['core'], ATTEMPT);
      const bytes = await storage.get(`host/_attempts/${ATTEMPT}/core/core-replicas`);
      for (const elsewhere of [
        `host/_attempts/${ATTEMPT}/iam/core-replicas`,
        `member1/_attempts/${ATTEMPT}/core/core-replicas`,
        'host/devops/core-replicas',
      ]) {
        await storage.put(elsewhere, bytes);
        await assert.rejects(store.verify(elsewhere), (err: unknown) => err instanceof IntegrityError);
      }
    });

    it('is safe to run again after a crash half-way, and again when done', async () => {
      const { store, storage } = await open();
      await seed(store);
      const sources = (await storage.list('host/core/')).concat(await storage.list('host/_shared/'));
      const before = await bytesOf(storage, sources);
      // The crash: the first object copied and deleted, the second copied only.
      const [first, second] = sources;
      assert.ok(first && second);
      for (const k of [first, second]) {
        await storage.putIfAbsent(`host/_attempts/${ATTEMPT}/${k.slice(5)}`, await storage.get(k));
      }
      await storage.delete(first);
      const moved = await store.moveAttemptAside('host', ['core'], ATTEMPT);
      assert.deepEqual(moved.moved, [...sources].sort());
      const after = await bytesOf(
        storage,
        sources.map((k) => `host/_attempts/${ATTEMPT}/${k.slice(5)}`),
      );
      assert.deepEqual(
        [...after.values()],
        sources.map((k) => before.get(k)),
      );
      const again = await store.moveAttemptAside('host', ['core'], ATTEMPT);
      assert.deepEqual(again.moved, moved.moved, 'a third run changes nothing and reports the same');
    });

    it('never overwrites a different object where the copy goes', async () => {
      const { store, storage } = await open();
      await seed(store);
      const target = `host/_attempts/${ATTEMPT}/core/core-replicas`;
      await storage.put(target, Buffer.from('something else'));
      await assert.rejects(
        store.moveAttemptAside('host', ['core'], ATTEMPT),
        /already holds a different object/,
      );
      assert.equal(Buffer.from(await storage.get(target)).toString(), 'something else');
      assert.deepEqual(
        await storage.list('host/core/core-replicas'),
        ['host/core/core-replicas'],
        'source kept',
      );
    });
  });
}

suite('local storage', async () => {
  const { dir, cleanup } = await tempDir('attempts');
  return { config: { local: { path: dir } }, cleanup };
});
suite('S3 (versitygw)', () => {
  const s3 = devS3Config();
  return Promise.resolve({
    config: { local: { path: '/nonexistent' }, s3 },
    cleanup: () => purgeS3Prefix(s3),
  });
});

describe('attempt folder names', () => {
  it('are the UTC time of the abort and the start of the run ID', () => {
    assert.equal(ATTEMPT, 'aborted-20261202T175500Z-7f3a9c2e');
    assert.deepEqual(parseArchivedKey(`host/_attempts/${ATTEMPT}/core/a/b`), {
      cluster: 'host',
      attempt: ATTEMPT,
      originalKey: 'host/core/a/b',
    });
    assert.equal(parseArchivedKey('host/_attempts/whatever/core/a'), undefined);
    assert.equal(parseArchivedKey(`host/_attempts/${ATTEMPT}/core`), undefined);
    assert.throws(() => abortedAttemptName('not a time', 'run'), /invalid attempt time/);
  });
});
