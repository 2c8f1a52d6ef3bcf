// The original's "model helper" layer (reference §3.2): cluster role and v3 installer settings.
import * as yaml from 'js-yaml';
import { ConfigMapResource } from '../api/core.js';
import {
  CLUSTER_CONFIGURATION,
  ClusterConfigurationResource,
  type ClusterConfiguration,
} from '../api/v3/index.js';
import { KsUpgradeError } from '../errors.js';
import type { ResourceClient } from '../kube/client.js';
import { getPath, isRecord } from '../util/object.js';

export const KUBESPHERE_NAMESPACE = 'kubesphere-system';
export const KUBESPHERE_CONFIG = {
  namespace: KUBESPHERE_NAMESPACE,
  name: 'kubesphere-config',
  key: 'kubesphere.yaml',
};

/** Something KubeSphere itself should have put on the cluster is missing or unreadable. */
export class KubeSphereStateError extends KsUpgradeError {}

/** Parsed `kubesphere.yaml` of ConfigMap kubesphere-system/kubesphere-config. */
export async function readKubeSphereConfig(client: ResourceClient): Promise<Record<string, unknown>> {
  const cm = await client.tryGet(ConfigMapResource, KUBESPHERE_CONFIG.name, KUBESPHERE_CONFIG.namespace);
  if (!cm) {
    throw new KubeSphereStateError(
      `ConfigMap ${KUBESPHERE_CONFIG.namespace}/${KUBESPHERE_CONFIG.name} not found`,
      {
        hint: 'is this a KubeSphere cluster? check the kubeconfig context',
      },
    );
  }
  const text = cm.data?.[KUBESPHERE_CONFIG.key];
  if (text === undefined) {
    throw new KubeSphereStateError(`failed to get configmap ${KUBESPHERE_CONFIG.key} value`, {
      hint: `ConfigMap ${KUBESPHERE_CONFIG.namespace}/${KUBESPHERE_CONFIG.name} has no key ${KUBESPHERE_CONFIG.key}`,
    });
  }
  let parsed: unknown;
  try {
    parsed = yaml.load(text);
  } catch (err) {
    throw new KubeSphereStateError(
      `${KUBESPHERE_CONFIG.key} in ConfigMap kubesphere-config is not valid YAML`,
      {
        cause: err,
      },
    );
  }
  return isRecord(parsed) ? parsed : {};
}

export type ClusterRole = 'host' | 'member' | 'none';

/**
 * `multicluster.clusterRole` of kubesphere.yaml. As in the original, a config without a
 * `multicluster` section counts as a member; `none` is a single cluster.
 */
export async function clusterRole(client: ResourceClient): Promise<ClusterRole> {
  const role = getPath(await readKubeSphereConfig(client), ['multicluster', 'clusterRole']);
  return role === 'host' || role === 'none' ? role : 'member';
}

/** Host, or a single cluster (which is its own host) — where InstallPlans are created. */
export async function isHostCluster(client: ResourceClient): Promise<boolean> {
  const role = await clusterRole(client);
  return role === 'host' || role === 'none';
}

/** The v3 ClusterConfiguration `kubesphere-system/ks-installer`. */
export async function getClusterConfiguration(client: ResourceClient): Promise<ClusterConfiguration> {
  const cc = await client.tryGet(
    ClusterConfigurationResource,
    CLUSTER_CONFIGURATION.name,
    CLUSTER_CONFIGURATION.namespace,
  );
  if (!cc) {
    throw new KubeSphereStateError(
      `ClusterConfiguration ${CLUSTER_CONFIGURATION.namespace}/${CLUSTER_CONFIGURATION.name} not found`,
      { hint: 'the v3 installer configuration must survive until post-upgrade; do not delete it' },
    );
  }
  return cc;
}

/**
 * A boolean feature flag of the cc (`['spec','devops','enabled']`): missing → false, anything but a
 * boolean → error (the original's PluginEnabled).
 */
export function ccFlag(cc: ClusterConfiguration, path: readonly string[]): boolean {
  const value = getPath(cc, path);
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') {
    throw new KubeSphereStateError(
      `ClusterConfiguration ${path.join('.')} is ${JSON.stringify(value)}, not a boolean`,
      {
        hint: `set ${path.join('.')} to true or false in the ks-installer ClusterConfiguration`,
      },
    );
  }
  return value;
}
