// The resource client against the real API server: paging, server-side apply, conflict retry,
// CRD helpers and typed errors.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  NamespaceResource,
  type CustomResourceDefinition,
} from '../../src/api/core.js';
import {
  AlreadyExistsError,
  ConflictError,
  KubeUnreachableError,
  NoKindError,
  NotFoundError,
  applyCrd,
  connectCluster,
  crdVersions,
  defineResource,
  setStoredVersions,
  StoredVersionsError,
  waitForCrdEstablished,
  type ClusterConnection,
  type KubeObject,
  type ResourceClient,
} from '../../src/kube/index.js';
import { forEachLimit } from '../../src/util/concurrency.js';
import { uniqueName } from '../helpers/env.js';
import { devClusterConnection } from '../helpers/kube.js';

describe('ResourceClient on the real API server', () => {
  let conn: ClusterConnection;
  let kube: ResourceClient;
  let ns: string;

  before(async () => {
    conn = await devClusterConnection();
    kube = conn.client;
    ns = uniqueName('kc');
    await kube.create(NamespaceResource, { metadata: { name: ns } });
  });
  after(() => {
    conn.close();
  });

  it('lists 5,000 objects in pages of 500, streaming them page by page', async () => {
    const N = 5_000;
    const names = Array.from({ length: N }, (_, i) => `cm-${String(i).padStart(5, '0')}`);
    await forEachLimit(names, 16, async (name) => {
      await kube.create(ConfigMapResource, {
        metadata: { name, namespace: ns, labels: { bulk: 'yes' } },
        data: { i: name },
      });
    });

    // Count the requests the list makes by watching the transport.
    const requests: string[] = [];
    const original = kube.transport.request.bind(kube.transport);
    kube.transport.request = (req) => {
      requests.push(String(req.query?.continue ?? ''));
      return original(req);
    };
    const seen: string[] = [];
    try {
      for await (const cm of kube.list(ConfigMapResource, {
        namespace: ns,
        labelSelector: 'bulk=yes',
        pageSize: 500,
      })) {
        assert.equal(cm.kind, 'ConfigMap', 'list items are stamped with their kind');
        seen.push(cm.metadata.name ?? '');
      }
    } finally {
      kube.transport.request = original;
    }
    assert.equal(seen.length, N);
    assert.deepEqual(seen, names, 'every object exactly once, in name order');
    assert.equal(requests.length, N / 500, 'one request per page of 500');
    assert.equal(requests[0], '', 'the first page carries no continue token');
    assert.ok(
      requests.slice(1).every((t) => t.length > 0),
      'later pages carry a continue token',
    );
  });

  it('server-side applies with field manager ks-upgrade and detects ownership conflicts', async () => {
    const name = 'ssa';
    await kube.apply(ConfigMapResource, { metadata: { name, namespace: ns }, data: { owner: 'ks-upgrade' } });
    const got = await kube.get(ConfigMapResource, name, ns);
    assert.deepEqual(got.data, { owner: 'ks-upgrade' });
    const managers = (got.metadata.managedFields as { manager: string; operation: string }[]).map((m) => [
      m.manager,
      m.operation,
    ]);
    assert.deepEqual(managers, [['ks-upgrade', 'Apply']]);

    // Another manager takes the field over with a plain update; a non-forced apply now conflicts.
    await kube.patch(ConfigMapResource, name, ns, { data: { owner: 'someone-else' } }, 'merge');
    await assert.rejects(
      kube.apply(ConfigMapResource, { metadata: { name, namespace: ns }, data: { owner: 'ks-upgrade' } }),
      ConflictError,
    );
    // A forced apply takes it back.
    await kube.apply(
      ConfigMapResource,
      { metadata: { name, namespace: ns }, data: { owner: 'ks-upgrade' } },
      { force: true },
    );
    assert.deepEqual((await kube.get(ConfigMapResource, name, ns)).data, { owner: 'ks-upgrade' });
  });

  it('mutate retries conflicts: concurrent read-modify-writes lose no update', async () => {
    const name = 'counter';
    await kube.create(ConfigMapResource, { metadata: { name, namespace: ns }, data: { n: '0', noise: '0' } });
    const writers = 12;
    // A concurrent writer that keeps changing another key, forcing stale resourceVersions.
    const control = { stop: false };
    const noise = (async (): Promise<number> => {
      let i = 0;
      while (!control.stop) {
        await kube.patch(ConfigMapResource, name, ns, { data: { noise: String(++i) } }, 'merge');
        // Fast enough to make the writers' reads stale, not so fast that one writer starves.
        await new Promise((r) => setTimeout(r, 25));
      }
      return i;
    })();
    try {
      await Promise.all(
        Array.from({ length: writers }, () =>
          kube.mutate(
            ConfigMapResource,
            name,
            ns,
            (cm) => {
              cm.data = { ...cm.data, n: String(Number(cm.data?.n ?? '0') + 1) };
            },
            { maxAttempts: 50 },
          ),
        ),
      );
    } finally {
      control.stop = true;
    }
    const noiseWrites = await noise;
    const final = await kube.get(ConfigMapResource, name, ns);
    assert.equal(final.data?.n, String(writers), 'every increment survived');
    assert.equal(final.data.noise, String(noiseWrites), "the concurrent writer's updates survived too");
    assert.ok(noiseWrites > 0, 'the concurrent writer did run');
  });

  it('mutate makes no write when the mutation changes nothing', async () => {
    const name = 'noop';
    const created = await kube.create(ConfigMapResource, {
      metadata: { name, namespace: ns },
      data: { a: '1' },
    });
    const result = await kube.mutate(ConfigMapResource, name, ns, (cm) => {
      cm.data = { a: '1' };
    });
    assert.equal(result.changed, false);
    const after = await kube.get(ConfigMapResource, name, ns);
    assert.equal(after.metadata.resourceVersion, created.metadata.resourceVersion);
  });

  it('raises typed errors: NotFound, NoKind, AlreadyExists, Conflict', async () => {
    await assert.rejects(kube.get(ConfigMapResource, 'absent', ns), NotFoundError);
    assert.equal(await kube.tryGet(ConfigMapResource, 'absent', ns), undefined);
    const Unserved = defineResource({
      group: 'nothing.ks-upgrade.test',
      version: 'v1',
      kind: 'Nothing',
      plural: 'nothings',
      namespaced: true,
    });
    await assert.rejects(kube.get(Unserved, 'x', ns), NoKindError);
    await assert.rejects(kube.listAll(Unserved, { namespace: ns }), NoKindError);
    assert.deepEqual(await kube.listIfServed(Unserved, { namespace: ns }), []);
    await kube.create(ConfigMapResource, { metadata: { name: 'dup', namespace: ns } });
    await assert.rejects(
      kube.create(ConfigMapResource, { metadata: { name: 'dup', namespace: ns } }),
      AlreadyExistsError,
    );
    const { created } = await kube.createIfAbsent(ConfigMapResource, {
      metadata: { name: 'dup', namespace: ns },
    });
    assert.equal(created, false);
    const stale = await kube.get(ConfigMapResource, 'dup', ns);
    await kube.patch(ConfigMapResource, 'dup', ns, { data: { x: '1' } });
    await assert.rejects(kube.update(ConfigMapResource, { ...stale, data: { y: '2' } }), ConflictError);
  });

  it('deletes idempotently, clearing finalizers when asked', async () => {
    await kube.create(ConfigMapResource, {
      metadata: { name: 'fin', namespace: ns, finalizers: ['example.com/hold'] },
    });
    assert.equal(await kube.delete(ConfigMapResource, 'fin', ns, { clearFinalizers: true }), true);
    assert.equal(await kube.tryGet(ConfigMapResource, 'fin', ns), undefined, 'gone, not stuck terminating');
    assert.equal(await kube.delete(ConfigMapResource, 'fin', ns), false, 'deleting again is not an error');
  });

  it('moves a CRD to a new storage version and updates status.storedVersions', async () => {
    const group = `${uniqueName('sv')}.ks-upgrade.test`;
    const schema = { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } };
    const crd: CustomResourceDefinition = {
      metadata: { name: `gadgets.${group}` },
      spec: {
        group,
        scope: 'Cluster',
        names: { plural: 'gadgets', singular: 'gadget', kind: 'Gadget', listKind: 'GadgetList' },
        versions: [
          { name: 'v1alpha2', served: true, storage: true, schema },
          { name: 'v1beta1', served: true, storage: false, schema },
        ],
      },
    };
    await applyCrd(kube, crd);
    const OldGadget = defineResource<KubeObject & { spec?: unknown }>({
      group,
      version: 'v1alpha2',
      kind: 'Gadget',
      plural: 'gadgets',
      namespaced: false,
    });
    const NewGadget = defineResource<KubeObject & { spec?: unknown }>({
      group,
      version: 'v1beta1',
      kind: 'Gadget',
      plural: 'gadgets',
      namespaced: false,
    });
    await kube.create(OldGadget, { metadata: { name: 'g1' }, spec: { size: 1 } });
    assert.deepEqual(
      (await kube.get(CustomResourceDefinitionResource, crd.metadata.name ?? '')).status?.storedVersions,
      ['v1alpha2'],
    );

    // v4 CRDs arrive: the old version deprecated, the new one the storage version.
    const v4: CustomResourceDefinition = structuredClone(crd);
    v4.spec.versions = [
      { name: 'v1alpha2', served: true, storage: false, deprecated: true, schema },
      { name: 'v1beta1', served: true, storage: true, schema },
    ];
    await applyCrd(kube, v4, { force: true });
    const live = await waitForCrdEstablished(kube, crd.metadata.name ?? '');
    assert.deepEqual(crdVersions(live), {
      served: ['v1alpha2', 'v1beta1'],
      deprecated: ['v1alpha2'],
      storage: 'v1beta1',
    });
    assert.deepEqual(live.status?.storedVersions, ['v1alpha2', 'v1beta1']);

    // Rewrite the object in the new version, then drop the old version from storedVersions.
    await kube.mutate(NewGadget, 'g1', undefined, (g) => {
      g.metadata.labels = { migrated: 'true' };
    });
    // The API server would accept any list; the helper refuses one without the storage version
    // (or with an unknown version) before writing anything.
    await assert.rejects(setStoredVersions(kube, crd.metadata.name ?? '', ['v1alpha2']), StoredVersionsError);
    await assert.rejects(
      setStoredVersions(kube, crd.metadata.name ?? '', ['v1beta1', 'v9']),
      StoredVersionsError,
    );
    assert.deepEqual(
      (await kube.get(CustomResourceDefinitionResource, crd.metadata.name ?? '')).status?.storedVersions,
      ['v1alpha2', 'v1beta1'],
      'a refused update changes nothing',
    );
    const updated = await setStoredVersions(kube, crd.metadata.name ?? '', ['v1beta1']);
    assert.deepEqual(updated.status?.storedVersions, ['v1beta1']);
    assert.deepEqual((await kube.get(NewGadget, 'g1')).spec, { size: 1 }, 'the object survived the move');
  });

  it('fails with KubeUnreachableError (naming the server) when nothing listens', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const dir = mkdtempSync(path.join(tmpdir(), 'kc-'));
    const file = path.join(dir, 'kubeconfig');
    writeFileSync(
      file,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\n' +
        'users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    const dead = await connectCluster({ kubeconfig: file });
    try {
      await assert.rejects(dead.client.get(NamespaceResource, 'default'), (err: unknown) => {
        assert.ok(err instanceof KubeUnreachableError);
        assert.match(err.message, /127\.0\.0\.1:1/);
        return true;
      });
    } finally {
      dead.close();
    }
  });
});
