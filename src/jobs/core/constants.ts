// Names the core job shares with the original tool and with KubeSphere: store keys, labels,
// annotations, object names. Kept in one place so docs/jobs/core.md and the code cannot drift.
import type { OwnerReference } from '../../kube/types.js';

/** The job's name in the config (`jobs.core`). */
export const CORE_JOB_NAME = 'core';

/**
 * Store keys (relative to `<cluster>/core/`). The first six are the original tool's keys and
 * formats (JSON List objects), so an upgrade started by the Go tool can be continued; the
 * `core.rollback.*` keys are ours and exist only so that rollback can undo prepare and pre.
 */
export const CORE_KEYS = {
  /** ValidatingWebhookConfigurationList of the KubeSphere webhooks, before they are deleted. */
  validatingWebhooks: 'core.validatingwebhookconfigurations.admissionregistration.k8s.io',
  /** MutatingWebhookConfigurationList of the KubeSphere webhooks, before they are deleted. */
  mutatingWebhooks: 'core.mutatingwebhookconfigurations.admissionregistration.k8s.io',
  /** v3 ClusterList (every member's kubeconfig: encrypted) before the host kubeconfig is replaced. */
  clusters: 'core.cluster.kubeconfig',
  /** DeploymentList of kubesphere-system before ks-installer is deleted (encrypted: pod specs). */
  kubesphereSystemDeployments: 'core.resource.kubesphere.system',
  /** v3 WorkspaceTemplateList (tenant.kubesphere.io/v1alpha2). */
  workspaceTemplates: 'core-workspacetemplates.tenant.kubesphere.io.v1alpha2',
  /** v3 WorkspaceList (tenant.kubesphere.io/v1alpha1). */
  workspaces: 'core-workspace.tenant.kubesphere.io.v1alpha1',
  /** `{ <deployment>: <spec.replicas before scale-down> }`. */
  replicas: 'core.rollback.deployment-replicas',
  /** `{ <namespace>: <metadata.ownerReferences before the Workspace refs were removed> }`. */
  ownerReferences: 'core.rollback.namespace-owner-references',
  /** `{ <id>: AddedMark }`: labels, annotations and finalizers core set, with what was there before. */
  marks: 'core.rollback.added-marks',
  /** `{ <workspacetemplate>: PlacementRecord }`: placement before the default one, and the one set. */
  placements: 'core.rollback.workspacetemplate-placements',
} as const;

/** The shared key (other jobs read it: gateway) holding the raw v3 kubesphere.yaml. */
export const KUBESPHERE_CONFIG_KEY = 'kubesphere-config';

/** Where the v3 control plane, its config and its ServiceAccount live. */
export const KUBESPHERE_SYSTEM = 'kubesphere-system';

/** The v3 control plane, scaled to 0 in prepare-upgrade (the original's list and order). */
export const CONTROL_PLANE_DEPLOYMENTS = [
  'ks-apiserver',
  'ks-controller-manager',
  'ks-console',
  'ks-installer',
] as const;
export const KS_INSTALLER = 'ks-installer';

/** KubeSphere's webhooks are those whose first webhook calls this service. */
export const KS_WEBHOOK_SERVICE = { namespace: KUBESPHERE_SYSTEM, name: 'ks-controller-manager' } as const;

/** The ServiceAccount whose token the refreshed host kubeconfig carries. */
export const KUBESPHERE_SERVICE_ACCOUNT = 'kubesphere';
export const SERVICE_ACCOUNT_NAME_ANNOTATION = 'kubernetes.io/service-account.name';

/** Names of the kubeconfig core writes into the host Cluster (the original's, from kubeadm). */
export const HOST_KUBECONFIG_NAMES = {
  cluster: 'kubernetes',
  user: 'kubernetes-admin',
  context: 'kubernetes-admin@kubernetes',
} as const;

export const SYSTEM_WORKSPACE = 'system-workspace';
export const PROTECTION_FINALIZER = 'kubesphere.io/protection';
export const NAMESPACE_NETWORK_POLICY_CRD = 'namespacenetworkpolicies.network.kubesphere.io';
export const RESOURCE_SERVED_LABEL = 'kubesphere.io/resource-served';
export const NETWORK_ISOLATE_ANNOTATION = 'kubesphere.io/network-isolate';

/** The Job the ks-core chart runs pre-upgrade in; its volume holds the original tool's backups. */
export const PRE_UPGRADE_JOB = 'ks-core-pre-upgrade';

export const MANAGED_LABEL = 'kubesphere.io/managed';
export const WORKSPACE_LABEL = 'kubesphere.io/workspace';
export const DEVOPS_PROJECT_LABEL = 'kubesphere.io/devopsproject';
export const CONFIG_HASH_ANNOTATION = 'kubesphere.io/config-hash';
/** FNV-64a of the empty string: the hash of an empty config, so v4 does not reconcile the member yet. */
export const EMPTY_CONFIG_HASH = 'cbf29ce484222325';

/** The conditions pre-upgrade sets on member Clusters (type, status, reason, message). */
export const MEMBER_CONDITIONS = [
  { type: 'KSCoreReady', status: 'True', reason: 'KSCoreReady', message: 'KS Core is available now' },
  { type: 'Schedulable', status: 'False', reason: 'Upgrading', message: 'Not schedulable now' },
] as const;

/** The workspace manager post-upgrade sets where none is set. */
export const DEFAULT_WORKSPACE_MANAGER = 'admin';

/** Kinds core puts labels, annotations or finalizers on (see {@link AddedMark}). */
export type MarkedKind = 'Namespace' | 'Workspace' | 'WorkspaceTemplate' | 'CustomResourceDefinition';

/**
 * A label, annotation or finalizer core set on an object, and what was there before (`previous`:
 * the old value, null when there was none). Recorded before the change, so rollback can put the
 * object back exactly — and leave alone marks that were there before the upgrade.
 */
export interface AddedMark {
  kind: MarkedKind;
  name: string;
  field: 'label' | 'annotation' | 'finalizer';
  key: string;
  previous: string | null;
}

/** `spec.placement` of a WorkspaceTemplate. */
export interface Placement {
  clusters?: { name: string }[];
  clusterSelector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
}

/** An entry of {@link CORE_KEYS.placements}: the placement before (null: none) and the one core set. */
export interface PlacementRecord {
  previous: Placement | null;
  value: Placement;
}

/** Record of {@link CORE_KEYS.ownerReferences}. */
export type OwnerReferenceRecord = Record<string, OwnerReference[]>;
