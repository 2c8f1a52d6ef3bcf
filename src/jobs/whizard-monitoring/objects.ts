// The v3 monitoring objects the whizard-monitoring job backs up (pre-upgrade) and deletes
// (post-upgrade), in the original's order, with the original's store keys.
import {
  ConfigMapResource,
  DaemonSetResource,
  DeploymentResource,
  PodDisruptionBudgetResource,
  RbacClusterRoleBindingResource,
  RbacClusterRoleResource,
  SecretResource,
  ServiceAccountResource,
  ServiceResource,
  StatefulSetResource,
} from '../../api/core.js';
import {
  AlertmanagerResource,
  PrometheusResource,
  PrometheusRuleResource,
  ServiceMonitorResource,
  ThanosRulerResource,
} from '../../api/v3/index.js';
import { defineResource, type ResourceType } from '../../kube/types.js';

export const JOB = 'whizard-monitoring';
export const MONITORING_NS = 'kubesphere-monitoring-system';
const KUBE_SYSTEM = 'kube-system';

/** Removed in Kubernetes 1.25; still listed (and skipped where not served), as in the original. */
export const PodDisruptionBudgetV1beta1Resource = defineResource({
  group: 'policy',
  version: 'v1beta1',
  kind: 'PodDisruptionBudget',
  plural: 'poddisruptionbudgets',
  namespaced: true,
});

export interface ObjectGroup {
  rt: ResourceType;
  /**
   * `<group>.<version>.<resource>` as the original wrote it into keys. Its apps kinds were looked
   * up as core-group resources, hence `.v1.daemonsets` / `.v1.deployments` (kept for the keys).
   */
  gvr: string;
  /** [namespace, name]; namespace '' for cluster-scoped objects. */
  objects: readonly (readonly [string, string])[];
  /** Holds credentials: stored encrypted. */
  sensitive?: boolean;
}

const inNs = (...names: string[]) => names.map((n) => [MONITORING_NS, n] as const);
const cluster = (...names: string[]) => names.map((n) => ['', n] as const);
const ksRbac = [
  'kubesphere-kube-state-metrics',
  'kubesphere-prometheus-operator',
  'kubesphere-node-exporter',
  'kubesphere-prometheus-k8s',
];
const pdbs = inNs('alertmanager-main', 'prometheus-k8s', 'thanos-ruler-kubesphere');

/** Backup and deletion order of the original (the prometheus-operator CRs first). */
export const OBJECT_GROUPS: readonly ObjectGroup[] = [
  { rt: ThanosRulerResource, gvr: 'monitoring.coreos.com.v1.thanosrulers', objects: inNs('kubesphere') },
  { rt: AlertmanagerResource, gvr: 'monitoring.coreos.com.v1.alertmanagers', objects: inNs('main') },
  { rt: PrometheusResource, gvr: 'monitoring.coreos.com.v1.prometheuses', objects: inNs('k8s') },
  { rt: DaemonSetResource, gvr: '.v1.daemonsets', objects: inNs('node-exporter') },
  { rt: StatefulSetResource, gvr: '.v1.statefulsets', objects: [] },
  {
    rt: DeploymentResource,
    gvr: '.v1.deployments',
    objects: inNs('kube-state-metrics', 'prometheus-operator', 'grafana', 'whizard-agent-proxy'),
  },
  {
    rt: ServiceResource,
    gvr: '.v1.services',
    objects: [
      ...inNs(
        'alertmanager-main',
        'grafana',
        'kube-state-metrics',
        'node-exporter',
        'prometheus-k8s',
        'prometheus-operator',
        'whizard-agent-proxy',
      ),
      [KUBE_SYSTEM, 'kube-controller-manager-svc'],
      [KUBE_SYSTEM, 'kube-scheduler-svc'],
    ],
  },
  {
    rt: ConfigMapResource,
    gvr: '.v1.configmaps',
    objects: inNs(
      ...[
        'alertmanager-overview',
        'apiserver',
        'cluster-total',
        'controller-manager',
        'k8s-resources-cluster',
        'k8s-resources-namespace',
        'k8s-resources-node',
        'k8s-resources-pod',
        'k8s-resources-workload',
        'k8s-resources-workloads-namespace',
        'kubelet',
        'namespace-by-pod',
        'namespace-by-workload',
        'node-cluster-rsrc-use',
        'node-rsrc-use',
        'nodes',
        'persistentvolumesusage',
        'pod-total',
        'prometheus-remote-write',
        'prometheus',
        'proxy',
        'scheduler',
        'workload-total',
      ].map((d) => `grafana-dashboard-${d}`),
    ),
  },
  {
    rt: SecretResource,
    gvr: '.v1.secrets',
    sensitive: true,
    objects: inNs(
      'alertmanager-main',
      'grafana-config',
      'grafana-datasources',
      'prometheus-k8s-tls',
      'prometheus-operator',
      'thanos-ruler-kubesphere',
    ),
  },
  {
    rt: PrometheusRuleResource,
    gvr: 'monitoring.coreos.com.v1.prometheusrules',
    objects: inNs(
      'alertmanager-main-rules',
      'kube-prometheus-rules',
      'kube-state-metrics-rules',
      'node-exporter-rules',
      'prometheus-k8s-etcd-rules',
      'prometheus-k8s-prometheus-rules',
      'prometheus-k8s-rules',
      'prometheus-operator-rules',
      'thanos-ruler-kubesphere-rules',
    ),
  },
  {
    rt: ServiceMonitorResource,
    gvr: 'monitoring.coreos.com.v1.servicemonitors',
    objects: inNs(
      'alertmanager-main',
      'coredns',
      'etcd',
      'ks-apiserver',
      'ks-controller-manager',
      'kube-apiserver',
      'kube-controller-manager',
      'kube-scheduler',
      'kube-state-metrics',
      'kubelet',
      'node-exporter',
      'prometheus-k8s',
      'prometheus-operator',
      'thanos-ruler-service',
    ),
  },
  {
    rt: RbacClusterRoleBindingResource,
    gvr: 'rbac.authorization.k8s.io.v1.clusterrolebindings',
    objects: cluster(...ksRbac),
  },
  {
    rt: RbacClusterRoleResource,
    gvr: 'rbac.authorization.k8s.io.v1.clusterroles',
    objects: cluster(...ksRbac),
  },
  {
    rt: ServiceAccountResource,
    gvr: '.v1.serviceaccounts',
    objects: inNs(
      'alertmanager-main',
      'kube-state-metrics',
      'node-exporter',
      'prometheus-k8s',
      'prometheus-operator',
    ),
  },
  { rt: PodDisruptionBudgetResource, gvr: 'policy.v1.poddisruptionbudgets', objects: pdbs },
  { rt: PodDisruptionBudgetV1beta1Resource, gvr: 'policy.v1beta1.poddisruptionbudgets', objects: pdbs },
];

/** `whizard-monitoring-<g>.<v>.<r>-<ns>.<name>` (cluster-scoped: `-.<name>`), as the original. */
export function objectKey(group: ObjectGroup, namespace: string, name: string): string {
  return `${JOB}-${group.gvr}-${namespace}.${name}`;
}

/** The v3 helm releases of the exporters and whizard, and when the job handles them. */
export const RELEASES = [
  { name: 'ks-process', flag: ['spec', 'monitoring', 'process_exporter', 'enabled'], hostOnly: false },
  { name: 'ks-calico', flag: ['spec', 'monitoring', 'calico_exporter', 'enabled'], hostOnly: false },
  { name: 'whizard', flag: ['spec', 'monitoring', 'whizard', 'enabled'], hostOnly: true },
] as const;

/** `whizard-monitoring.helm.release-<ns>.<name>`, as the original. */
export function releaseKey(name: string): string {
  return `${JOB}.helm.release-${MONITORING_NS}.${name}`;
}
