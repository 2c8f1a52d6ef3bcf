// KubeSphere v3 kinds that upgrade jobs read (reference §5.1). Only the fields the jobs use are
// typed; every other field passes through as plain JSON.
import type { PolicyRule, RoleRef, Subject } from '../core.js';
import { defineResource, type KubeObject } from '../../kube/types.js';

export { ClusterResource, HOST_CLUSTER_LABEL, type Cluster, type ClusterCondition } from '../shared.js';

const iam = (kind: string, plural: string) =>
  ({ group: 'iam.kubesphere.io', version: 'v1alpha2', kind, plural, namespaced: false }) as const;

export interface User extends KubeObject {
  spec?: {
    email?: string;
    lang?: string;
    description?: string;
    displayName?: string;
    groups?: string[];
    /** The bcrypt hash; JSON key `password` in both v3 and v4. */
    password?: string;
  };
  status?: { state?: string; reason?: string; lastTransitionTime?: string; lastLoginTime?: string };
}
export interface GlobalRole extends KubeObject {
  rules?: PolicyRule[];
}
export interface GlobalRoleBinding extends KubeObject {
  subjects?: Subject[];
  roleRef: RoleRef;
}
export type WorkspaceRole = GlobalRole;
export type WorkspaceRoleBinding = GlobalRoleBinding;
export interface LoginRecord extends KubeObject {
  spec?: {
    type?: string;
    provider?: string;
    sourceIP?: string;
    userAgent?: string;
    success?: boolean;
    reason?: string;
  };
}
export interface RoleBase extends KubeObject {
  role?: unknown;
}
export interface Group extends KubeObject {
  spec?: Record<string, unknown>;
}
export interface GroupBinding extends KubeObject {
  groupRef?: { apiGroup?: string; kind?: string; name?: string };
  users?: string[];
}

export const UserResource = defineResource<User>(iam('User', 'users'));
export const GlobalRoleResource = defineResource<GlobalRole>(iam('GlobalRole', 'globalroles'));
export const GlobalRoleBindingResource = defineResource<GlobalRoleBinding>(
  iam('GlobalRoleBinding', 'globalrolebindings'),
);
export const WorkspaceRoleResource = defineResource<WorkspaceRole>(iam('WorkspaceRole', 'workspaceroles'));
export const WorkspaceRoleBindingResource = defineResource<WorkspaceRoleBinding>(
  iam('WorkspaceRoleBinding', 'workspacerolebindings'),
);
export const LoginRecordResource = defineResource<LoginRecord>(iam('LoginRecord', 'loginrecords'));
export const RoleBaseResource = defineResource<RoleBase>(iam('RoleBase', 'rolebases'));
export const GroupResource = defineResource<Group>(iam('Group', 'groups'));
export const GroupBindingResource = defineResource<GroupBinding>(iam('GroupBinding', 'groupbindings'));

export interface Workspace extends KubeObject {
  spec?: { manager?: string; networkIsolation?: boolean };
}
export interface WorkspaceTemplate extends KubeObject {
  spec?: {
    template?: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec?: { manager?: string; networkIsolation?: boolean };
    };
    placement?: {
      clusters?: { name: string }[];
      clusterSelector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
    };
    overrides?: unknown[];
  };
}
export const WorkspaceResource = defineResource<Workspace>({
  group: 'tenant.kubesphere.io',
  version: 'v1alpha1',
  kind: 'Workspace',
  plural: 'workspaces',
  namespaced: false,
});
export const WorkspaceTemplateResource = defineResource<WorkspaceTemplate>({
  group: 'tenant.kubesphere.io',
  version: 'v1alpha2',
  kind: 'WorkspaceTemplate',
  plural: 'workspacetemplates',
  namespaced: false,
});

/** The v3 installer's `ClusterConfiguration` ("cc"): jobs read feature flags from its spec. */
export interface ClusterConfiguration extends KubeObject {
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}
export const ClusterConfigurationResource = defineResource<ClusterConfiguration>({
  group: 'installer.kubesphere.io',
  version: 'v1alpha1',
  kind: 'ClusterConfiguration',
  plural: 'clusterconfigurations',
  namespaced: true,
});
/** Where the v3 cc lives. */
export const CLUSTER_CONFIGURATION = { namespace: 'kubesphere-system', name: 'ks-installer' } as const;

// Extension-job kinds: resource types only (the jobs treat their objects as opaque JSON).
const r = (group: string, version: string, kind: string, plural: string, namespaced: boolean) =>
  defineResource({ group, version, kind, plural, namespaced });
export const HelmCategoryResource = r(
  'application.kubesphere.io',
  'v1alpha1',
  'HelmCategory',
  'helmcategories',
  false,
);
export const HelmApplicationResource = r(
  'application.kubesphere.io',
  'v1alpha1',
  'HelmApplication',
  'helmapplications',
  false,
);
export const HelmApplicationVersionResource = r(
  'application.kubesphere.io',
  'v1alpha1',
  'HelmApplicationVersion',
  'helmapplicationversions',
  false,
);
export const HelmRepoResource = r('application.kubesphere.io', 'v1alpha1', 'HelmRepo', 'helmrepos', false);
export const HelmReleaseResource = r(
  'application.kubesphere.io',
  'v1alpha1',
  'HelmRelease',
  'helmreleases',
  false,
);
export const DevOpsProjectResource = r(
  'devops.kubesphere.io',
  'v1alpha3',
  'DevOpsProject',
  'devopsprojects',
  false,
);
export const PipelineResource = r('devops.kubesphere.io', 'v1alpha3', 'Pipeline', 'pipelines', true);
export const PipelineRunResource = r('devops.kubesphere.io', 'v1alpha3', 'PipelineRun', 'pipelineruns', true);
export const GitRepositoryResource = r(
  'devops.kubesphere.io',
  'v1alpha3',
  'GitRepository',
  'gitrepositories',
  true,
);
export const GlobalRuleGroupResource = r(
  'alerting.kubesphere.io',
  'v2beta1',
  'GlobalRuleGroup',
  'globalrulegroups',
  false,
);
export const ClusterRuleGroupResource = r(
  'alerting.kubesphere.io',
  'v2beta1',
  'ClusterRuleGroup',
  'clusterrulegroups',
  false,
);
export const RuleGroupResource = r('alerting.kubesphere.io', 'v2beta1', 'RuleGroup', 'rulegroups', true);
export const EventsRuleResource = r('events.kubesphere.io', 'v1alpha1', 'Rule', 'rules', true);
export const EventsRulerResource = r('events.kubesphere.io', 'v1alpha1', 'Ruler', 'rulers', true);
export const EventsExporterResource = r('events.kubesphere.io', 'v1alpha1', 'Exporter', 'exporters', true);
export const GatewayV1Resource = r('gateway.kubesphere.io', 'v1alpha1', 'Gateway', 'gateways', true);
export const NginxResource = r('gateway.kubesphere.io', 'v1alpha1', 'Nginx', 'nginxes', true);
export const KsIPPoolResource = r('network.kubesphere.io', 'v1alpha1', 'IPPool', 'ippools', false);
export const NamespaceNetworkPolicyResource = r(
  'network.kubesphere.io',
  'v1alpha1',
  'NamespaceNetworkPolicy',
  'namespacenetworkpolicies',
  true,
);
export const CalicoIPPoolResource = r('crd.projectcalico.org', 'v1', 'IPPool', 'ippools', false);
export const NotificationManagerResource = r(
  'notification.kubesphere.io',
  'v2beta2',
  'NotificationManager',
  'notificationmanagers',
  false,
);
export const NotificationConfigResource = r(
  'notification.kubesphere.io',
  'v2beta2',
  'Config',
  'configs',
  false,
);
export const NotificationReceiverResource = r(
  'notification.kubesphere.io',
  'v2beta2',
  'Receiver',
  'receivers',
  false,
);
export const NotificationRouterResource = r(
  'notification.kubesphere.io',
  'v2beta2',
  'Router',
  'routers',
  false,
);
export const NotificationSilenceResource = r(
  'notification.kubesphere.io',
  'v2beta2',
  'Silence',
  'silences',
  false,
);
export const LoggingFilterResource = r('logging.kubesphere.io', 'v1alpha2', 'Filter', 'filters', true);
export const LoggingParserResource = r('logging.kubesphere.io', 'v1alpha2', 'Parser', 'parsers', true);
export const LoggingInputResource = r('logging.kubesphere.io', 'v1alpha2', 'Input', 'inputs', true);
export const LoggingOutputResource = r('logging.kubesphere.io', 'v1alpha2', 'Output', 'outputs', true);
export const FluentBitResource = r('logging.kubesphere.io', 'v1alpha2', 'FluentBit', 'fluentbits', true);
export const FluentBitConfigResource = r(
  'logging.kubesphere.io',
  'v1alpha2',
  'FluentBitConfig',
  'fluentbitconfigs',
  true,
);
export const PrometheusResource = r('monitoring.coreos.com', 'v1', 'Prometheus', 'prometheuses', true);
export const AlertmanagerResource = r('monitoring.coreos.com', 'v1', 'Alertmanager', 'alertmanagers', true);
export const ThanosRulerResource = r('monitoring.coreos.com', 'v1', 'ThanosRuler', 'thanosrulers', true);
export const ServiceMonitorResource = r(
  'monitoring.coreos.com',
  'v1',
  'ServiceMonitor',
  'servicemonitors',
  true,
);
export const PrometheusRuleResource = r(
  'monitoring.coreos.com',
  'v1',
  'PrometheusRule',
  'prometheusrules',
  true,
);
export const FederatedTypeConfigResource = r(
  'core.kubefed.io',
  'v1beta1',
  'FederatedTypeConfig',
  'federatedtypeconfigs',
  true,
);
/** A KubeFed federated IAM type (reference §4.2 step 5); the iam job deletes these. */
export const FederatedUserResource = r(
  'types.kubefed.io',
  'v1beta1',
  'FederatedUser',
  'federatedusers',
  false,
);
export const JaegerResource = r('jaegertracing.io', 'v1', 'Jaeger', 'jaegers', true);
export const KialiResource = r('kiali.io', 'v1alpha1', 'Kiali', 'kialis', true);
