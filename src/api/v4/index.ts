// KubeSphere v4 kinds that upgrade jobs write (reference §5.2).
import type { PolicyRule, RoleRef, Subject } from '../core.js';
import type { ClusterScheduling } from '../../config/types.js';
import { defineResource, type KubeObject } from '../../kube/types.js';

export { ClusterResource, HOST_CLUSTER_LABEL, type Cluster, type ClusterCondition } from '../shared.js';

/** InstallPlan `status.state` values of the v4 extension controller. */
export type InstallPlanState =
  | ''
  | 'Preparing'
  | 'Installing'
  | 'InstallFailed'
  | 'Upgrading'
  | 'UpgradeFailed'
  | 'Installed'
  | 'Upgraded'
  | 'Uninstalling'
  | 'Uninstalled'
  | 'UninstallFailed';

export interface InstallPlan extends KubeObject {
  spec: {
    extension: { name: string; version: string };
    enabled: boolean;
    upgradeStrategy?: 'Manual' | 'Automatic';
    config?: string;
    clusterScheduling?: ClusterScheduling;
  };
  status?: { state?: InstallPlanState; conditions?: unknown[]; [key: string]: unknown };
}
export interface ExtensionVersion extends KubeObject {
  spec?: Record<string, unknown>;
}
/** `kubesphere.io/v1alpha1` Repository (v4.1.3: no `spec.image`, which v4.1.2 had; no status sub-resource). */
export interface Repository extends KubeObject {
  spec?: { url?: string; description?: string; updateStrategy?: unknown };
  status?: { lastSyncTime?: string };
}
const ks = (kind: string, plural: string) =>
  ({ group: 'kubesphere.io', version: 'v1alpha1', kind, plural, namespaced: false }) as const;
export const InstallPlanResource = defineResource<InstallPlan>(ks('InstallPlan', 'installplans'));
export const ExtensionVersionResource = defineResource<ExtensionVersion>(
  ks('ExtensionVersion', 'extensionversions'),
);
export const ExtensionResource = defineResource(ks('Extension', 'extensions'));
export const RepositoryResource = defineResource<Repository>(ks('Repository', 'repositories'));

export interface User extends KubeObject {
  spec?: {
    email?: string;
    lang?: string;
    description?: string;
    displayName?: string;
    groups?: string[];
    password?: string;
  };
  status?: { state?: string; reason?: string; lastTransitionTime?: string; lastLoginTime?: string };
}
export interface Role extends KubeObject {
  rules?: PolicyRule[];
  aggregationRoleTemplates?: unknown;
}
export interface RoleBinding extends KubeObject {
  subjects?: Subject[];
  roleRef: RoleRef;
}
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
const iam = (kind: string, plural: string, namespaced = false) =>
  ({ group: 'iam.kubesphere.io', version: 'v1beta1', kind, plural, namespaced }) as const;
export const UserResource = defineResource<User>(iam('User', 'users'));
export const GlobalRoleResource = defineResource<Role>(iam('GlobalRole', 'globalroles'));
export const GlobalRoleBindingResource = defineResource<RoleBinding>(
  iam('GlobalRoleBinding', 'globalrolebindings'),
);
export const WorkspaceRoleResource = defineResource<Role>(iam('WorkspaceRole', 'workspaceroles'));
export const WorkspaceRoleBindingResource = defineResource<RoleBinding>(
  iam('WorkspaceRoleBinding', 'workspacerolebindings'),
);
export const LoginRecordResource = defineResource<LoginRecord>(iam('LoginRecord', 'loginrecords'));
export const GroupResource = defineResource(iam('Group', 'groups'));
export const GroupBindingResource = defineResource(iam('GroupBinding', 'groupbindings'));
export const ClusterRoleResource = defineResource<Role>(iam('ClusterRole', 'clusterroles'));
export const ClusterRoleBindingResource = defineResource<RoleBinding>(
  iam('ClusterRoleBinding', 'clusterrolebindings'),
);
export const RoleResource = defineResource<Role>(iam('Role', 'roles', true));
export const RoleBindingResource = defineResource<RoleBinding>(iam('RoleBinding', 'rolebindings', true));

export interface Workspace extends KubeObject {
  spec?: { manager?: string };
  status?: Record<string, unknown>;
}
export interface WorkspaceTemplate extends KubeObject {
  spec?: {
    template?: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec?: { manager?: string };
    };
    placement?: {
      clusters?: { name: string }[];
      clusterSelector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
    };
  };
}
export const WorkspaceResource = defineResource<Workspace>({
  group: 'tenant.kubesphere.io',
  version: 'v1beta1',
  kind: 'Workspace',
  plural: 'workspaces',
  namespaced: false,
});
export const WorkspaceTemplateResource = defineResource<WorkspaceTemplate>({
  group: 'tenant.kubesphere.io',
  version: 'v1beta1',
  kind: 'WorkspaceTemplate',
  plural: 'workspacetemplates',
  namespaced: false,
});

const app = (kind: string, plural: string) =>
  defineResource({ group: 'application.kubesphere.io', version: 'v2', kind, plural, namespaced: false });
export const CategoryResource = app('Category', 'categories');
export const ApplicationResource = app('Application', 'applications');
export const ApplicationVersionResource = app('ApplicationVersion', 'applicationversions');
export const RepoResource = app('Repo', 'repos');
export const ApplicationReleaseResource = app('ApplicationRelease', 'applicationreleases');
export const GatewayResource = defineResource({
  group: 'gateway.kubesphere.io',
  version: 'v2alpha1',
  kind: 'Gateway',
  plural: 'gateways',
  namespaced: true,
});
