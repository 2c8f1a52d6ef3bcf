// Kinds whose group/version is identical in KubeSphere v3 and v4: both sides address the same
// server objects (reference §5: cluster.kubesphere.io/v1alpha1).
import { defineResource, type KubeObject } from '../kube/types.js';

export interface ClusterCondition {
  type: string;
  status: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

/** `cluster.kubesphere.io/v1alpha1 Cluster`: a member or host cluster known to the host. */
export interface Cluster extends KubeObject {
  spec?: {
    joinFederation?: boolean;
    enable?: boolean;
    provider?: string;
    connection?: {
      type?: string;
      kubernetesAPIEndpoint?: string;
      kubesphereAPIEndpoint?: string;
      /** Base64 of a kubeconfig: a credential. Never logged; stored only encrypted. */
      kubeconfig?: string;
      token?: string;
      [key: string]: unknown;
    };
    [key: string]: unknown;
  };
  status?: { conditions?: ClusterCondition[]; kubernetesVersion?: string; [key: string]: unknown };
}

export const ClusterResource = defineResource<Cluster>({
  group: 'cluster.kubesphere.io',
  version: 'v1alpha1',
  kind: 'Cluster',
  plural: 'clusters',
  namespaced: false,
});

/** Label that marks the host cluster among Cluster objects (key presence). */
export const HOST_CLUSTER_LABEL = 'cluster-role.kubesphere.io/host';
