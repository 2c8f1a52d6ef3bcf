// The clusters of a KubeSphere multi-cluster setup, seen from the host: v4 Cluster objects, and a
// client for each through its `spec.connection.kubeconfig` (the original's only way to reach
// members — the host must be able to reach their API servers).
import { KubeConfig } from '@kubernetes/client-node';
import { ClusterResource, HOST_CLUSTER_LABEL, type Cluster } from '../api/shared.js';
import type { ClusterConfiguration } from '../api/v3/index.js';
import { KsUpgradeError } from '../errors.js';
import { ResourceClient } from '../kube/client.js';
import { KubeTransport } from '../kube/transport.js';
import { getClusterConfiguration } from './index.js';

/** A Cluster's kubeconfig is missing or unusable. */
export class ClusterAccessError extends KsUpgradeError {}

export function isHostClusterObject(cluster: Cluster): boolean {
  return cluster.metadata.labels?.[HOST_CLUSTER_LABEL] !== undefined;
}

/** The Cluster objects on this (host) cluster; empty on a single cluster without them. */
export async function listClusters(client: ResourceClient): Promise<Cluster[]> {
  return client.listIfServed(ClusterResource);
}

const transports = new Map<string, Promise<KubeTransport>>();

/**
 * A client for a cluster: the local client for the host-labelled one, otherwise one built from
 * its kubeconfig (cached per cluster and kubeconfig, one keep-alive pool each).
 */
export async function clientForCluster(local: ResourceClient, cluster: Cluster): Promise<ResourceClient> {
  if (isHostClusterObject(cluster)) return local;
  const name = cluster.metadata.name ?? '';
  const encoded = cluster.spec?.connection?.kubeconfig;
  if (!encoded) {
    throw new ClusterAccessError(`Cluster ${name} has no spec.connection.kubeconfig`, {
      hint: `the host reaches members through their kubeconfig; check 'kubectl get cluster ${name} -o yaml'`,
    });
  }
  const key = `${name}:${encoded.length}:${encoded.slice(-32)}`;
  let transport = transports.get(key);
  if (!transport) {
    transport = (async () => {
      const kc = new KubeConfig();
      try {
        kc.loadFromString(Buffer.from(encoded, 'base64').toString('utf8'));
      } catch (err) {
        throw new ClusterAccessError(
          `Cluster ${name}: spec.connection.kubeconfig is not a valid kubeconfig`,
          { cause: err },
        );
      }
      return KubeTransport.create(kc);
    })();
    transport.catch(() => transports.delete(key));
    transports.set(key, transport);
  }
  return new ResourceClient(await transport);
}

/** The v3 ClusterConfiguration of a cluster (local for the host, through its kubeconfig otherwise). */
export async function clusterConfigurationOf(
  local: ResourceClient,
  cluster: Cluster,
): Promise<ClusterConfiguration> {
  return getClusterConfiguration(await clientForCluster(local, cluster));
}

/** Closes the member-cluster connections. */
export async function closeClusterClients(): Promise<void> {
  const all = [...transports.values()];
  transports.clear();
  for (const t of all) {
    try {
      (await t).close();
    } catch {
      // never connected
    }
  }
}
