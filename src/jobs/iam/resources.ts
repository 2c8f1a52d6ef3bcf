// The original's 14 "store options" (reference §4.2, pre-upgrade step 1), in its order: what is
// snapshotted, with which filter, and how each kind is migrated.
import { RbacClusterRoleBindingResource, RbacRoleBindingResource, RbacRoleResource } from '../../api/core.js';
import * as v3 from '../../api/v3/index.js';
import * as v4 from '../../api/v4/index.js';
import type { KubeObject, ResourceType } from '../../kube/types.js';
import { ANNOTATION, BUILTIN_NAMESPACE_ROLES, LABEL, RESOURCE, type ResourceKey } from './constants.js';
import {
  convertBinding,
  convertLoginRecord,
  convertRbacBinding,
  convertRbacRole,
  convertRole,
  convertUser,
  convertWorkspace,
  convertWorkspaceTemplate,
  type ConvertOptions,
  type Obj,
} from './convert.js';

/**
 * How a kind is migrated:
 * - `in-place`: a CRD served in the old and the new version; the object is rewritten through the
 *   new version (same object, new storage encoding) and the CRD's storedVersions updated;
 * - `storage-only`: a CRD with a new version but no conversion (Group, GroupBinding): objects are
 *   only re-stored so that storedVersions tells the truth;
 * - `create`: the target is another object (rbac Role → iam Role): created when absent;
 * - `none`: snapshot only (RoleBase: no v4 version).
 */
export type MigrationMode = 'in-place' | 'storage-only' | 'create' | 'none';

export interface IamResource {
  key: ResourceKey;
  /** The CRD behind the key (undefined for Kubernetes RBAC). */
  crd: string | undefined;
  /** The v3 type listed for the snapshot. */
  source: ResourceType;
  /** `kind` of the snapshot list, as the Go tool wrote it. */
  listKind: string;
  /** Snapshot filter; absent = everything. */
  filter?: (obj: KubeObject, options: ConvertOptions) => boolean;
  mode: MigrationMode;
  /** The v4 type written. */
  target?: ResourceType;
  convert?: (obj: Obj, options: ConvertOptions) => Obj;
}

const hasLabel = (key: string) => (o: KubeObject) => o.metadata.labels?.[key] !== undefined;

/**
 * User bindings (user-ref label), and with `groupSubjects: migrate` also department bindings
 * (group-ref label), which the original never migrated.
 */
const userOrGroupBinding = (o: KubeObject, options: ConvertOptions): boolean =>
  hasLabel(LABEL.userRef)(o) || (options.groupSubjects === 'migrate' && hasLabel(LABEL.groupRef)(o));

/** A custom namespace role: has the creator annotation and is not admin/viewer/operator. */
export function isCustomNamespaceRole(o: KubeObject): boolean {
  return (
    o.metadata.annotations?.[ANNOTATION.creator] !== undefined &&
    !BUILTIN_NAMESPACE_ROLES.includes(o.metadata.name ?? '')
  );
}

export const IAM_RESOURCES: readonly IamResource[] = [
  {
    key: RESOURCE.user,
    crd: RESOURCE.user,
    source: v3.UserResource,
    listKind: 'UserList',
    mode: 'in-place',
    target: v4.UserResource,
    convert: convertUser,
  },
  {
    key: RESOURCE.roleBase,
    crd: RESOURCE.roleBase,
    source: v3.RoleBaseResource,
    listKind: 'RoleBaseList',
    mode: 'none',
  },
  {
    key: RESOURCE.globalRole,
    crd: RESOURCE.globalRole,
    source: v3.GlobalRoleResource,
    listKind: 'GlobalRoleList',
    mode: 'in-place',
    target: v4.GlobalRoleResource,
    convert: convertRole,
  },
  {
    key: RESOURCE.globalRoleBinding,
    crd: RESOURCE.globalRoleBinding,
    source: v3.GlobalRoleBindingResource,
    listKind: 'GlobalRoleBindingList',
    filter: hasLabel(LABEL.userRef),
    mode: 'in-place',
    target: v4.GlobalRoleBindingResource,
    convert: convertBinding,
  },
  {
    key: RESOURCE.workspaceRole,
    crd: RESOURCE.workspaceRole,
    source: v3.WorkspaceRoleResource,
    listKind: 'WorkspaceRoleList',
    mode: 'in-place',
    target: v4.WorkspaceRoleResource,
    convert: convertRole,
  },
  {
    key: RESOURCE.workspaceRoleBinding,
    crd: RESOURCE.workspaceRoleBinding,
    source: v3.WorkspaceRoleBindingResource,
    listKind: 'WorkspaceRoleBindingList',
    mode: 'in-place',
    target: v4.WorkspaceRoleBindingResource,
    convert: convertBinding,
  },
  {
    key: RESOURCE.role,
    crd: undefined,
    source: RbacRoleResource,
    listKind: 'RoleList',
    filter: (o) => isCustomNamespaceRole(o),
    mode: 'create',
    target: v4.RoleResource,
    convert: convertRbacRole,
  },
  {
    key: RESOURCE.roleBinding,
    crd: undefined,
    source: RbacRoleBindingResource,
    listKind: 'RoleBindingList',
    filter: userOrGroupBinding,
    mode: 'create',
    target: v4.RoleBindingResource,
    convert: convertRbacBinding,
  },
  {
    key: RESOURCE.clusterRoleBinding,
    crd: undefined,
    source: RbacClusterRoleBindingResource,
    listKind: 'ClusterRoleBindingList',
    filter: userOrGroupBinding,
    mode: 'create',
    target: v4.ClusterRoleBindingResource,
    convert: convertRbacBinding,
  },
  {
    key: RESOURCE.loginRecord,
    crd: RESOURCE.loginRecord,
    source: v3.LoginRecordResource,
    listKind: 'LoginRecordList',
    mode: 'in-place',
    target: v4.LoginRecordResource,
    convert: convertLoginRecord,
  },
  {
    key: RESOURCE.group,
    crd: RESOURCE.group,
    source: v3.GroupResource,
    listKind: 'GroupList',
    mode: 'storage-only',
    target: v4.GroupResource,
  },
  {
    key: RESOURCE.groupBinding,
    crd: RESOURCE.groupBinding,
    source: v3.GroupBindingResource,
    listKind: 'GroupBindingList',
    mode: 'storage-only',
    target: v4.GroupBindingResource,
  },
  {
    key: RESOURCE.workspace,
    crd: RESOURCE.workspace,
    source: v3.WorkspaceResource,
    listKind: 'WorkspaceList',
    mode: 'in-place',
    target: v4.WorkspaceResource,
    convert: convertWorkspace,
  },
  {
    key: RESOURCE.workspaceTemplate,
    crd: RESOURCE.workspaceTemplate,
    source: v3.WorkspaceTemplateResource,
    listKind: 'WorkspaceTemplateList',
    mode: 'in-place',
    target: v4.WorkspaceTemplateResource,
    convert: convertWorkspaceTemplate,
  },
];

/** The descriptor of a resource key. */
export function iamResource(key: ResourceKey): IamResource {
  const r = IAM_RESOURCES.find((x) => x.key === key);
  if (!r) throw new Error(`unknown iam resource ${key}`);
  return r;
}
