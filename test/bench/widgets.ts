// The custom objects the backup benchmarks back up: a namespaced CRD of the bench's own, with
// objects about the size of a typical KubeSphere custom resource (~1 KiB of JSON each).
import { CustomResourceDefinitionResource, NamespaceResource } from '../../src/api/core.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { waitForCrdEstablished } from '../../src/kube/crd.js';
import { defineResource, type KubeObject, type ResourceType } from '../../src/kube/types.js';
import { forEachLimit } from '../../src/util/concurrency.js';

export const WIDGET_GROUP = 'bench.ks-upgrade.io';

/** The resource type of `<plural>.bench.ks-upgrade.io` (plural is `<kind lowercased>s`). */
export function widgetResource(kind: string): ResourceType {
  return defineResource({
    group: WIDGET_GROUP,
    version: 'v1',
    kind,
    plural: `${kind.toLowerCase()}s`,
    namespaced: true,
  });
}

/** Creates the CRD of `kind` and `count` objects of it, spread over 10 namespaces. */
export async function createWidgets(
  kube: ResourceClient,
  kind: string,
  count: number,
): Promise<ResourceType> {
  const rt = widgetResource(kind);
  const crd = `${rt.plural}.${WIDGET_GROUP}`;
  await kube.createIfAbsent(CustomResourceDefinitionResource, {
    metadata: { name: crd },
    spec: {
      group: WIDGET_GROUP,
      scope: 'Namespaced',
      names: { kind, plural: rt.plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  } as never);
  await waitForCrdEstablished(kube, crd, {});
  const namespaces = Array.from({ length: 10 }, (_, i) => `bench-${kind.toLowerCase()}-${i}`);
  for (const name of namespaces) await kube.createIfAbsent(NamespaceResource, { metadata: { name } });
  const filler = 'a'.repeat(64);
  await forEachLimit(
    Array.from({ length: count }, (_, i) => i),
    48,
    async (i) => {
      const obj: KubeObject & { spec: unknown } = {
        apiVersion: `${WIDGET_GROUP}/v1`,
        kind,
        metadata: {
          name: `w-${String(i).padStart(6, '0')}`,
          namespace: namespaces[i % namespaces.length] ?? '',
          labels: { app: 'bench', shard: String(i % 16), 'kubesphere.io/workspace': 'bench-ws' },
          annotations: { 'kubesphere.io/creator': 'admin', 'kubesphere.io/description': filler },
        },
        spec: {
          replicas: i % 5,
          selector: { matchLabels: { app: 'bench', index: String(i) } },
          template: { image: `registry.example.com/bench/widget:v${i % 7}`, args: ['--a', '--b', filler] },
          rules: [
            { apiGroups: ['', 'apps'], resources: ['pods', 'deployments'], verbs: ['get', 'list'] },
            { apiGroups: ['iam.kubesphere.io'], resources: ['users'], verbs: ['get'] },
          ],
        },
      };
      await kube.createIfAbsent(rt, obj);
    },
  );
  return rt;
}
