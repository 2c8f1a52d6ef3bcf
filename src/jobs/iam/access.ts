// What the iam job reads and changes (docs/rbac.md), and the v3 objects it leaves gone.
import { crds, leftover, rule } from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';
import type { Leftover } from '../../verify/types.js';
import {
  FEDERATED_TYPE_CONFIG_CRD,
  KUBEFED_CONTROLLER,
  KUBEFED_CRDS,
  KUBEFED_NAMESPACE,
  RESOURCE,
} from './constants.js';
import { IAM_RESOURCES } from './resources.js';

const SYS = { namespaces: ['kubesphere-system'] };
/** The CRDs whose objects the job migrates (storage version) or deletes. */
const IAM_CRDS = [...new Set(IAM_RESOURCES.flatMap((r) => (r.crd ? [r.crd] : [])))].sort();

export const IAM_ACCESS: readonly AccessRule[] = [
  rule(
    'iam.kubesphere.io',
    [
      'users',
      'globalroles',
      'globalrolebindings',
      'workspaceroles',
      'workspacerolebindings',
      'loginrecords',
      'groups',
      'groupbindings',
      'rolebases',
      'roles',
      'rolebindings',
      'clusterroles',
      'clusterrolebindings',
    ],
    'get,list,create,update,patch,delete',
    'migrate every IAM object to its v4 form and storage version, remove role templates and RoleBases; rollback restores them',
  ),
  rule(
    'tenant.kubesphere.io',
    ['workspaces', 'workspacetemplates'],
    'get,list,create,update',
    'migrate Workspaces and WorkspaceTemplates to v4; hand system-workspace to the ks-core release',
  ),
  rule(
    'rbac.authorization.k8s.io',
    ['rolebindings', 'clusterrolebindings'],
    'list',
    'read the v3 rbac bindings KubeSphere created, to create their iam.kubesphere.io v4 form',
  ),
  rule(
    'rbac.authorization.k8s.io',
    ['roles', 'clusterroles'],
    'get,list,patch,delete',
    'read the v3 rbac roles, delete role templates and legacy roles (finalizers cleared first)',
  ),
  rule(
    'rbac.authorization.k8s.io',
    ['roles', 'clusterroles'],
    'create,escalate',
    'rollback re-creates the deleted role templates and legacy roles; creating a role that grants more than ' +
      'the creator holds needs escalate (the roles carry arbitrary KubeSphere rules)',
  ),
  rule(
    'apiextensions.k8s.io',
    'customresourcedefinitions',
    'create',
    'rollback re-creates the RoleBase and federated IAM CRDs it deleted (create cannot be narrowed by name)',
  ),
  crds(
    [...IAM_CRDS, ...KUBEFED_CRDS, FEDERATED_TYPE_CONFIG_CRD],
    'get,delete',
    'read the IAM CRDs (versions, storedVersions); delete the RoleBase and federated IAM CRDs',
  ),
  rule(
    'apiextensions.k8s.io',
    'customresourcedefinitions/status',
    'patch',
    'drop the v3 version from status.storedVersions once every object is stored as v4',
    { resourceNames: IAM_CRDS },
  ),
  rule(
    '',
    'configmaps',
    'get,update',
    'hand kubesphere-config to the ks-core Helm release (labels, annotations)',
    {
      ...SYS,
      resourceNames: ['kubesphere-config'],
    },
  ),
  rule(
    '',
    'secrets',
    'get,list,create,update,delete',
    "rewrite the ks-core release record; move identity-provider settings into v4's Secrets (rollback undoes both)",
    SYS,
  ),
  rule('', 'namespaces', 'get', 'is KubeFed installed', { resourceNames: [KUBEFED_NAMESPACE] }),
  rule('apps', 'deployments', 'get,update', 'scale the kubefed controller down while its IAM types go', {
    namespaces: [KUBEFED_NAMESPACE],
    resourceNames: [KUBEFED_CONTROLLER],
  }),
  rule('', 'pods', 'list', 'wait for the kubefed controller pods to stop', {
    namespaces: [KUBEFED_NAMESPACE],
  }),
  rule(
    'core.kubefed.io',
    'federatedtypeconfigs',
    'get,list,create,patch,delete',
    'remove the FederatedTypeConfigs of IAM types; rollback re-creates them',
    { namespaces: [KUBEFED_NAMESPACE] },
  ),
  rule(
    'types.kubefed.io',
    [
      'federatedusers',
      'federatedclusterroles',
      'federatedgroupbindings',
      'federatedglobalroles',
      'federatedworkspaces',
      'federatedglobalrolebindings',
      'federatedworkspacerolebindings',
      'federatedclusterrolebindings',
      'federatedworkspaceroles',
      'federatedgroups',
    ],
    'get,list,create,patch,delete',
    'back up and remove the federated IAM objects (and their CRDs); rollback re-creates them',
  ),
  rule(
    'iam.kubesphere.io',
    ['federatedusers', 'federatedrolebindings', 'federatedroles'],
    'get,list,create,patch,delete',
    'back up and remove the federated IAM objects (and their CRDs); rollback re-creates them',
  ),
];

/** The KubeSphere v3 CRDs the job deletes that v4 has no successor for. */
export const IAM_LEFTOVERS: readonly Leftover[] = [
  leftover.crd(
    RESOURCE.roleBase,
    'v3 RoleBases; v4 uses RoleTemplates, and a stale CRD keeps unmigrated data',
  ),
  ...KUBEFED_CRDS.filter((c) => c.endsWith('.iam.kubesphere.io')).map((c) =>
    leftover.crd(c, 'a v3 federated IAM type; v4 federates IAM itself, a stale copy is never reconciled'),
  ),
];

/** The CRDs whose objects the job re-stores in the v4 version: `status.storedVersions` is then only it. */
export const IAM_MIGRATED_CRDS: readonly string[] = [
  ...new Set(
    IAM_RESOURCES.flatMap((r) => (r.crd && r.mode !== 'none' && r.mode !== 'create' ? [r.crd] : [])),
  ),
].sort();
