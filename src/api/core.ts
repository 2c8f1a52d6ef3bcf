// Built-in Kubernetes kinds that upgrade jobs touch (reference §5.4). Types carry only the fields
// ks-upgrade reads or writes; everything else passes through untouched as plain JSON.
import { defineResource, type KubeObject } from '../kube/types.js';

export interface Namespace extends KubeObject {
  status?: { phase?: string };
}
export interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}
export interface Secret extends KubeObject {
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
export interface Service extends KubeObject {
  spec?: {
    type?: string;
    ports?: {
      name?: string;
      port: number;
      nodePort?: number;
      targetPort?: number | string;
      protocol?: string;
    }[];
    selector?: Record<string, string>;
  };
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { containers?: Container[]; [key: string]: unknown };
}
export interface Container {
  name: string;
  image?: string;
  env?: { name: string; value?: string }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
export interface Deployment extends KubeObject {
  spec?: { replicas?: number; selector?: unknown; template?: PodTemplate };
  status?: {
    replicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    updatedReplicas?: number;
    observedGeneration?: number;
  };
}
export interface DaemonSet extends KubeObject {
  spec?: { template?: PodTemplate };
  status?: { numberReady?: number; desiredNumberScheduled?: number };
}
export interface StatefulSet extends KubeObject {
  spec?: { replicas?: number; template?: PodTemplate };
}
export interface Job extends KubeObject {
  spec?: {
    template?: { spec?: { volumes?: { name: string; persistentVolumeClaim?: { claimName: string } }[] } };
  };
}
export interface PersistentVolumeClaim extends KubeObject {
  spec?: { volumeName?: string; [key: string]: unknown };
  status?: { phase?: string };
}
export interface PersistentVolume extends KubeObject {
  spec?: {
    persistentVolumeReclaimPolicy?: string;
    claimRef?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
    [key: string]: unknown;
  };
}
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}
export interface Subject {
  kind: string;
  name: string;
  apiGroup?: string;
  namespace?: string;
}
export interface RoleRef {
  apiGroup: string;
  kind: string;
  name: string;
}
export interface Role extends KubeObject {
  rules?: PolicyRule[];
}
export interface RoleBinding extends KubeObject {
  subjects?: Subject[];
  roleRef: RoleRef;
}
export interface WebhookClientConfig {
  service?: { namespace: string; name: string; path?: string; port?: number };
  url?: string;
  caBundle?: string;
}
export interface WebhookConfiguration extends KubeObject {
  webhooks?: {
    name: string;
    clientConfig: WebhookClientConfig;
    failurePolicy?: string;
    [key: string]: unknown;
  }[];
}
export interface Ingress extends KubeObject {
  spec?: { ingressClassName?: string; [key: string]: unknown };
}

export const NamespaceResource = defineResource<Namespace>({
  group: '',
  version: 'v1',
  kind: 'Namespace',
  plural: 'namespaces',
  namespaced: false,
});
export const ConfigMapResource = defineResource<ConfigMap>({
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
});
export const SecretResource = defineResource<Secret>({
  group: '',
  version: 'v1',
  kind: 'Secret',
  plural: 'secrets',
  namespaced: true,
});
export const ServiceResource = defineResource<Service>({
  group: '',
  version: 'v1',
  kind: 'Service',
  plural: 'services',
  namespaced: true,
});
export const ServiceAccountResource = defineResource({
  group: '',
  version: 'v1',
  kind: 'ServiceAccount',
  plural: 'serviceaccounts',
  namespaced: true,
});
export const PodResource = defineResource({
  group: '',
  version: 'v1',
  kind: 'Pod',
  plural: 'pods',
  namespaced: true,
});
export const PersistentVolumeClaimResource = defineResource<PersistentVolumeClaim>({
  group: '',
  version: 'v1',
  kind: 'PersistentVolumeClaim',
  plural: 'persistentvolumeclaims',
  namespaced: true,
});
export const PersistentVolumeResource = defineResource<PersistentVolume>({
  group: '',
  version: 'v1',
  kind: 'PersistentVolume',
  plural: 'persistentvolumes',
  namespaced: false,
});
export const DeploymentResource = defineResource<Deployment>({
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  plural: 'deployments',
  namespaced: true,
});
export const DaemonSetResource = defineResource<DaemonSet>({
  group: 'apps',
  version: 'v1',
  kind: 'DaemonSet',
  plural: 'daemonsets',
  namespaced: true,
});
export const StatefulSetResource = defineResource<StatefulSet>({
  group: 'apps',
  version: 'v1',
  kind: 'StatefulSet',
  plural: 'statefulsets',
  namespaced: true,
});
export const JobResource = defineResource<Job>({
  group: 'batch',
  version: 'v1',
  kind: 'Job',
  plural: 'jobs',
  namespaced: true,
});
export const IngressResource = defineResource<Ingress>({
  group: 'networking.k8s.io',
  version: 'v1',
  kind: 'Ingress',
  plural: 'ingresses',
  namespaced: true,
});
export const NetworkPolicyResource = defineResource({
  group: 'networking.k8s.io',
  version: 'v1',
  kind: 'NetworkPolicy',
  plural: 'networkpolicies',
  namespaced: true,
});
export const PodDisruptionBudgetResource = defineResource({
  group: 'policy',
  version: 'v1',
  kind: 'PodDisruptionBudget',
  plural: 'poddisruptionbudgets',
  namespaced: true,
});
export const RbacRoleResource = defineResource<Role>({
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'Role',
  plural: 'roles',
  namespaced: true,
});
export const RbacRoleBindingResource = defineResource<RoleBinding>({
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'RoleBinding',
  plural: 'rolebindings',
  namespaced: true,
});
export const RbacClusterRoleResource = defineResource<Role>({
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'ClusterRole',
  plural: 'clusterroles',
  namespaced: false,
});
export const RbacClusterRoleBindingResource = defineResource<RoleBinding>({
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'ClusterRoleBinding',
  plural: 'clusterrolebindings',
  namespaced: false,
});
export const ValidatingWebhookConfigurationResource = defineResource<WebhookConfiguration>({
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  kind: 'ValidatingWebhookConfiguration',
  plural: 'validatingwebhookconfigurations',
  namespaced: false,
});
export const MutatingWebhookConfigurationResource = defineResource<WebhookConfiguration>({
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  kind: 'MutatingWebhookConfiguration',
  plural: 'mutatingwebhookconfigurations',
  namespaced: false,
});
export const APIServiceResource = defineResource({
  group: 'apiregistration.k8s.io',
  version: 'v1',
  kind: 'APIService',
  plural: 'apiservices',
  namespaced: false,
});

export interface CustomResourceDefinitionVersion {
  name: string;
  served: boolean;
  storage: boolean;
  deprecated?: boolean;
  deprecationWarning?: string;
  schema?: unknown;
  subresources?: { status?: Record<string, never> };
  [key: string]: unknown;
}
export interface CustomResourceDefinition extends KubeObject {
  spec: {
    group: string;
    scope: 'Namespaced' | 'Cluster';
    names: { plural: string; singular?: string; kind: string; listKind?: string; shortNames?: string[] };
    versions: CustomResourceDefinitionVersion[];
    [key: string]: unknown;
  };
  status?: {
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    storedVersions?: string[];
    acceptedNames?: { kind?: string; plural?: string };
  };
}
export const CustomResourceDefinitionResource = defineResource<CustomResourceDefinition>({
  group: 'apiextensions.k8s.io',
  version: 'v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  namespaced: false,
});
