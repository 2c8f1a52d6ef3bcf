// Proves the dev Kubernetes API server is a real one: CRD lifecycle with a deprecated version,
// paginated lists, patch, delete, optimistic-concurrency conflicts, and isolated clusters.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1CustomResourceDefinition,
  type V1CustomResourceValidation,
} from '@kubernetes/client-node';
import { devEnv, uniqueName } from '../helpers/env.js';
import { createTestNamespace, devKubeConfig } from '../helpers/kube.js';

interface Widget {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}
interface WidgetList {
  items: Widget[];
  metadata: { continue?: string; resourceVersion?: string };
}

const OBJECTS = 1_600;
const PAGE = 250;

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

describe('kube-apiserver smoke', () => {
  let kc: KubeConfig;
  let ns: string;
  let custom: CustomObjectsApi;
  const group = `${uniqueName('s')}.smoke.ks-upgrade.test`;
  const plural = 'widgets';

  before(async () => {
    kc = devKubeConfig();
    ns = await createTestNamespace(kc, 'smoke');
    custom = kc.makeApiClient(CustomObjectsApi);
  });

  it('creates a two-version CRD (old one deprecated) and waits until it is Established', async () => {
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    // Typed so a wrong key fails to compile: client-node serialises by its model's property names and
    // silently drops any other key (e.g. the wire name 'x-kubernetes-preserve-unknown-fields').
    const schema: V1CustomResourceValidation = {
      openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true },
    };
    const crd: V1CustomResourceDefinition = {
      metadata: { name: `${plural}.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural, singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [
          {
            name: 'v1alpha1',
            served: true,
            storage: false,
            deprecated: true,
            deprecationWarning: `${group}/v1alpha1 Widget is deprecated; use v1beta1`,
            schema,
          },
          { name: 'v1beta1', served: true, storage: true, schema },
        ],
      },
    };
    await ext.createCustomResourceDefinition({ body: crd });
    const deadline = Date.now() + 60_000;
    let established = false;
    while (!established && Date.now() < deadline) {
      const got = await ext.readCustomResourceDefinition({ name: `${plural}.${group}` });
      established = (got.status?.conditions ?? []).some(
        (c) => c.type === 'Established' && c.status === 'True',
      );
      if (!established) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(established, 'CRD did not become Established within 60s');
    const got = await ext.readCustomResourceDefinition({ name: `${plural}.${group}` });
    assert.deepEqual(
      got.spec.versions.map((v) => [v.name, v.deprecated ?? false, v.storage]),
      [
        ['v1alpha1', true, false],
        ['v1beta1', false, true],
      ],
    );
  });

  it(`creates ${OBJECTS} custom objects and lists them in pages of ${PAGE} with limit/continue`, async () => {
    const names = Array.from({ length: OBJECTS }, (_, i) => `w-${String(i).padStart(5, '0')}`);
    await inParallel(names, 16, (name) =>
      custom.createNamespacedCustomObject({
        group,
        version: 'v1beta1',
        namespace: ns,
        plural,
        body: { apiVersion: `${group}/v1beta1`, kind: 'Widget', metadata: { name }, spec: { size: 1 } },
      }),
    );

    const seen: string[] = [];
    let pages = 0;
    let token: string | undefined;
    do {
      const page = (await custom.listNamespacedCustomObject({
        group,
        version: 'v1beta1',
        namespace: ns,
        plural,
        limit: PAGE,
        _continue: token,
      })) as WidgetList;
      pages++;
      assert.ok(page.items.length <= PAGE, `page ${pages} has ${page.items.length} items, more than limit`);
      seen.push(...page.items.map((w) => w.metadata.name));
      token = page.metadata.continue || undefined;
    } while (token);

    assert.equal(pages, Math.ceil(OBJECTS / PAGE));
    assert.equal(seen.length, OBJECTS);
    assert.equal(new Set(seen).size, OBJECTS, 'a paginated list returned duplicates');
    assert.deepEqual(seen, [...names].sort(), 'paginated list is not the complete, ordered set');
  });

  it('merge-patches a custom object and reads it back through both versions', async () => {
    await custom.patchNamespacedCustomObject(
      {
        group,
        version: 'v1beta1',
        namespace: ns,
        plural,
        name: 'w-00007',
        body: { spec: { size: 7, color: 'red' } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const viaNew = (await custom.getNamespacedCustomObject({
      group,
      version: 'v1beta1',
      namespace: ns,
      plural,
      name: 'w-00007',
    })) as Widget;
    assert.deepEqual(viaNew.spec, { size: 7, color: 'red' });

    // The deprecated version is still served, and the server says so in a Warning header.
    const viaOld = await custom.getNamespacedCustomObjectWithHttpInfo({
      group,
      version: 'v1alpha1',
      namespace: ns,
      plural,
      name: 'w-00007',
    });
    assert.equal((viaOld.data as Widget).apiVersion, `${group}/v1alpha1`);
    assert.match(viaOld.headers.warning ?? '', /deprecated/);
  });

  it('rejects an update carrying a stale resourceVersion with 409 Conflict', async () => {
    const params = { group, version: 'v1beta1', namespace: ns, plural, name: 'w-00008' };
    const stale = (await custom.getNamespacedCustomObject(params)) as Widget;
    await custom.patchNamespacedCustomObject(
      { ...params, body: { metadata: { labels: { touched: 'yes' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const code = await statusOf(
      custom.replaceNamespacedCustomObject({ ...params, body: { ...stale, spec: { size: 99 } } }),
    );
    assert.equal(code, 409);
    const current = (await custom.getNamespacedCustomObject(params)) as Widget;
    assert.deepEqual(current.spec, { size: 1 }, 'the conflicting write must not have been applied');
  });

  it('deletes a custom object', async () => {
    const params = { group, version: 'v1beta1', namespace: ns, plural, name: 'w-00009' };
    await custom.deleteNamespacedCustomObject(params);
    assert.equal(await statusOf(custom.getNamespacedCustomObject(params)), 404);
  });

  it('creates, lists, patches and deletes a ConfigMap', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: { name: 'kubesphere-config', labels: { app: 'smoke' } },
        data: { 'kubesphere.yaml': 'a: 1\n' },
      },
    });
    assert.equal(
      await statusOf(
        core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'kubesphere-config' } } }),
      ),
      409,
    );
    const listed = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'app=smoke' });
    assert.deepEqual(
      listed.items.map((c) => c.metadata?.name),
      ['kubesphere-config'],
    );
    await core.patchNamespacedConfigMap(
      { namespace: ns, name: 'kubesphere-config', body: { data: { extra: 'x' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const got = await core.readNamespacedConfigMap({ namespace: ns, name: 'kubesphere-config' });
    assert.deepEqual(got.data, { 'kubesphere.yaml': 'a: 1\n', extra: 'x' });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'kubesphere-config' });
    assert.equal(
      await statusOf(core.readNamespacedConfigMap({ namespace: ns, name: 'kubesphere-config' })),
      404,
    );
  });

  it('runs each dev cluster as a separate API server with its own data', async (t) => {
    const clusters = devEnv().clusters;
    if (clusters.length < 2) {
      t.skip('only one dev cluster is up (KS_DEV_CLUSTERS)');
      return;
    }
    const [first, second] = clusters as [string, string];
    const a = devKubeConfig(first);
    const b = devKubeConfig(second);
    assert.notEqual(a.getCurrentCluster()?.server, b.getCurrentCluster()?.server);
    const onlyInA = await createTestNamespace(a, 'iso');
    const code = await statusOf(b.makeApiClient(CoreV1Api).readNamespace({ name: onlyInA }));
    assert.equal(code, 404, `namespace created in '${first}' is visible in '${second}'`);
  });
});
