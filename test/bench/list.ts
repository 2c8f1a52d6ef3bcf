// Listing many objects: @kubernetes/client-node 1.x's generated client, paging with limit/continue
// (it builds a new HTTPS agent, so a new TLS connection, for every request), against ks-upgrade's
// streamed list over one keep-alive agent. Same server, same page size, same objects.
import { CoreV1Api } from '@kubernetes/client-node';
import { ConfigMapResource, NamespaceResource } from '../../src/api/core.js';
import { loadKubeConfig } from '../../src/kube/connect.js';
import { forEachLimit } from '../../src/util/concurrency.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { compare, type Comparison } from './harness.js';

export async function benchList(
  cluster: EphemeralCluster,
  objects: number,
  pageSize: number,
): Promise<Comparison> {
  const kube = cluster.connection.client;
  const ns = 'bench-list';
  await kube.createIfAbsent(NamespaceResource, { metadata: { name: ns } });
  const payload = 'x'.repeat(512);
  await forEachLimit(
    Array.from({ length: objects }, (_, i) => `cm-${String(i).padStart(6, '0')}`),
    16,
    async (name) => {
      await kube.createIfAbsent(ConfigMapResource, {
        metadata: { name, namespace: ns, labels: { bench: 'list' } },
        data: { payload },
      });
    },
  );
  const core = loadKubeConfig({ kubeconfig: cluster.kubeconfig }).makeApiClient(CoreV1Api);
  return compare(
    `list ${objects} ConfigMaps, pages of ${pageSize}`,
    'objects',
    5,
    {
      label: '@kubernetes/client-node CoreV1Api, limit/continue',
      run: async () => {
        let n = 0;
        let token: string | undefined;
        do {
          const page = await core.listNamespacedConfigMap({
            namespace: ns,
            limit: pageSize,
            _continue: token,
            labelSelector: 'bench=list',
          });
          n += page.items.length;
          token = page.metadata?._continue || undefined;
        } while (token);
        return n;
      },
    },
    {
      label: 'ks-upgrade ResourceClient.list (streamed)',
      run: async () => {
        let n = 0;
        for await (const _ of kube.list(ConfigMapResource, {
          namespace: ns,
          pageSize,
          labelSelector: 'bench=list',
        }))
          n++;
        return n;
      },
    },
  );
}
