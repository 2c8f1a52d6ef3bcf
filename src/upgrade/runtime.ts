// Process-wide resources of the worker (and of the CLI's in-process runs): one keep-alive
// connection per cluster and one store per storage config, reused by every step.
import type { StorageConfig } from '../config/types.js';
import { sharedConnection, type ClusterConnection } from '../kube/connect.js';
import { createResourceStore, type ResourceStore } from '../store/index.js';
import { canonicalJson } from '../util/object.js';
import type { KubeTargetInput } from './input.js';

const stores = new Map<string, Promise<ResourceStore>>();

/** The store for a storage config, created once per process. */
export function sharedStore(config: StorageConfig): Promise<ResourceStore> {
  const key = canonicalJson(config);
  let store = stores.get(key);
  if (!store) {
    store = createResourceStore(config);
    store.catch(() => stores.delete(key));
    stores.set(key, store);
  }
  return store;
}

/** The connection to a cluster, shared by all steps of the process. */
export function clusterConnection(kube: KubeTargetInput | undefined): Promise<ClusterConnection> {
  return sharedConnection({
    ...(kube?.kubeconfig ? { kubeconfig: kube.kubeconfig } : {}),
    ...(kube?.context ? { context: kube.context } : {}),
    ...(kube?.inCluster ? { inCluster: true } : {}),
  });
}
