import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { connectCluster, type ClusterConnection } from '../../src/kube/connect.js';
import { devEnv, uniqueName } from './env.js';

/** A KubeConfig for one of the dev clusters (default: the first of `KS_DEV_CLUSTERS`). */
export function devKubeConfig(context?: string): KubeConfig {
  const env = devEnv();
  const kc = new KubeConfig();
  kc.loadFromFile(env.kubeconfig);
  kc.setCurrentContext(context ?? env.kubeContext);
  return kc;
}

/**
 * Creates a namespace unique to the calling test. There is no kube-controller-manager in the dev
 * cluster, so a deleted namespace would stay Terminating forever: tests leave theirs behind instead
 * (`down --purge` drops the whole etcd).
 */
export async function createTestNamespace(kc: KubeConfig, prefix = 'test'): Promise<string> {
  const name = uniqueName(prefix).slice(0, 63);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

/** A ks-upgrade resource client for a dev cluster (its own transport; close it in `after`). */
export async function devClusterConnection(context?: string): Promise<ClusterConnection> {
  const env = devEnv();
  return connectCluster({ kubeconfig: env.kubeconfig, context: context ?? env.kubeContext });
}
