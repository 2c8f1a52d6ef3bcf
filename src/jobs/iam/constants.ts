// Names the iam job shares with the original Go tool (reference §4.2 and Appendix A): resource
// keys, store keys, labels and the built-in object lists. Changing any of them breaks finishing an
// upgrade the Go tool started, so they live in one place.

/** The original's resource keys: CRD names, plus pseudo-names for Kubernetes RBAC kinds. */
export const RESOURCE = {
  user: 'users.iam.kubesphere.io',
  roleBase: 'rolebases.iam.kubesphere.io',
  globalRole: 'globalroles.iam.kubesphere.io',
  globalRoleBinding: 'globalrolebindings.iam.kubesphere.io',
  workspaceRole: 'workspaceroles.iam.kubesphere.io',
  workspaceRoleBinding: 'workspacerolebindings.iam.kubesphere.io',
  role: 'roles.rbac.authorization.kubernetes.io',
  roleBinding: 'rolebindings.rbac.authorization.kubernetes.io',
  clusterRole: 'clusterroles.rbac.authorization.kubernetes.io',
  clusterRoleBinding: 'clusterrolebindings.rbac.authorization.kubernetes.io',
  loginRecord: 'loginrecords.iam.kubesphere.io',
  group: 'groups.iam.kubesphere.io',
  groupBinding: 'groupbindings.iam.kubesphere.io',
  workspace: 'workspaces.tenant.kubesphere.io',
  workspaceTemplate: 'workspacetemplates.tenant.kubesphere.io',
} as const;
export type ResourceKey = (typeof RESOURCE)[keyof typeof RESOURCE];

/** The phases with a status key, as the original names them. */
export type StatusPhase = 'prepare-upgrade' | 'pre-upgrade' | 'post-upgrade';
export const STATUS_PHASES: readonly StatusPhase[] = ['prepare-upgrade', 'pre-upgrade', 'post-upgrade'];

/** Store keys. The first two families are the original's formats; `iam-backup-*` are ours. */
export const KEYS = {
  /** `{"status":"success","time":"<RFC3339>"}` — the original's phase marker. */
  status: (phase: StatusPhase) => `iam-upgrade-status-${phase}`,
  /** JSON array of `{"list": base64(JSON list), "timestamp": unix seconds}`, appended per run. */
  snapshot: (resource: ResourceKey) => `iam-${resource}`,
  // ---- ours: taken before each destructive step, read by rollback only ----
  /** `{startedAt}` (unix s) of this attempt's pre-upgrade: which snapshots are this attempt's. */
  snapshotAttempt: 'iam-backup-snapshot-attempt',
  /** Labels/annotations prepare-upgrade set on the helm-adopted objects, with their old values. */
  helmAdoption: 'iam-backup-helm-adoption',
  /** GlobalRoleBinding `admin` before prepare-upgrade labelled (or created) it. */
  adminBinding: 'iam-backup-admin-globalrolebinding',
  /** The ks-core release record Secret before its manifest was rewritten. */
  releaseSecret: (secretName: string) => `iam-backup-release-${secretName}`,
  /** CRD name → status.storedVersions before pre-upgrade changed it. */
  storedVersions: 'iam-backup-storedversions',
  /** Role templates (rbac Role/ClusterRole, WorkspaceRole, GlobalRole) before deletion. */
  roleTemplates: 'iam-backup-role-templates',
  /** Every rbac Role with `kubesphere.io/creator` (built-ins included) before deletion. */
  legacyRoles: 'iam-backup-legacy-rbac-roles',
  /** `{replicas}` of kubefed-controller-manager before the scale-down. */
  kubefedController: 'iam-backup-kubefed-controller-manager',
  /** FederatedTypeConfigs of IAM types before deletion. */
  kubefedTypeConfigs: 'iam-backup-kubefed-typeconfigs',
  /** One federated CRD and its objects before deletion. */
  kubefedCrd: (crdName: string) => `iam-backup-kubefed-crd-${crdName}`,
  /** Identity-provider Secrets: whether each existed, and its content if it did. */
  identityProviders: 'iam-backup-identityprovider-secrets',
  /** Custom roles (v4 objects) before post-upgrade emptied their rules. */
  customRoles: 'iam-backup-custom-roles',
  /** Users that post-upgrade gave the `iam.kubesphere.io/globalrole` annotation. */
  userAnnotations: 'iam-backup-user-globalrole-annotations',
  /** The rolebases CRD and its objects before post-upgrade deleted them. */
  roleBases: 'iam-backup-rolebases',
} as const;

export const LABEL = {
  userRef: 'iam.kubesphere.io/user-ref',
  roleRef: 'iam.kubesphere.io/role-ref',
  groupRef: 'iam.kubesphere.io/group-ref',
  roleTemplate: 'iam.kubesphere.io/role-template',
  workspace: 'kubesphere.io/workspace',
  managedBy: 'app.kubernetes.io/managed-by',
  idpType: 'config.kubesphere.io/type',
} as const;

export const ANNOTATION = {
  creator: 'kubesphere.io/creator',
  aggregationRoles: 'iam.kubesphere.io/aggregation-roles',
  globalRole: 'iam.kubesphere.io/globalrole',
  helmReleaseName: 'meta.helm.sh/release-name',
  helmReleaseNamespace: 'meta.helm.sh/release-namespace',
} as const;

export const IAM_GROUP = 'iam.kubesphere.io';
export const KUBESPHERE_NAMESPACE = 'kubesphere-system';
export const KS_CORE_RELEASE = 'ks-core';

/** GlobalRoles / GlobalRoleBindings that the v4 ks-core chart owns (prepare-upgrade adopts them). */
export const HELM_GLOBAL_ROLES = [
  'anonymous',
  'authenticated',
  'platform-admin',
  'platform-regular',
  'platform-self-provisioner',
  'pre-registration',
] as const;
export const HELM_GLOBAL_ROLE_BINDINGS = ['admin', 'anonymous', 'authenticated', 'pre-registration'] as const;

/** Namespace roles KubeSphere creates in every project (never "custom"). */
export const BUILTIN_NAMESPACE_ROLES: readonly string[] = ['admin', 'viewer', 'operator'];
/** GlobalRoles that post-upgrade leaves alone; every other one is "custom". */
export const BUILTIN_GLOBAL_ROLES: readonly string[] = [...HELM_GLOBAL_ROLES, 'ks-console'];
/** The suffixes of a workspace's built-in WorkspaceRoles (`<ws>-admin` …). */
export const BUILTIN_WORKSPACE_ROLE_SUFFIXES = ['admin', 'regular', 'self-provisioner', 'viewer'] as const;

export const KUBEFED_NAMESPACE = 'kube-federation-system';
export const KUBEFED_CONTROLLER = 'kubefed-controller-manager';
export const FEDERATED_TYPE_CONFIG_CRD = 'federatedtypeconfigs.core.kubefed.io';
/** FederatedTypeConfigs of IAM types, in the original's order. */
export const KUBEFED_TYPE_CONFIGS: readonly string[] = [
  RESOURCE.clusterRole,
  RESOURCE.user,
  RESOURCE.group,
  RESOURCE.groupBinding,
  RESOURCE.globalRole,
  RESOURCE.workspace,
  RESOURCE.workspaceRole,
  RESOURCE.globalRoleBinding,
  RESOURCE.workspaceRoleBinding,
  RESOURCE.clusterRoleBinding,
];
/** Federated IAM CRDs, in the original's order. */
export const KUBEFED_CRDS: readonly string[] = [
  'federatedusers.iam.kubesphere.io',
  'federatedrolebindings.iam.kubesphere.io',
  'federatedroles.iam.kubesphere.io',
  'federatedusers.types.kubefed.io',
  'federatedclusterroles.types.kubefed.io',
  'federatedgroupbindings.types.kubefed.io',
  'federatedglobalroles.types.kubefed.io',
  'federatedworkspaces.types.kubefed.io',
  'federatedglobalrolebindings.types.kubefed.io',
  'federatedworkspacerolebindings.types.kubefed.io',
  'federatedclusterrolebindings.types.kubefed.io',
  'federatedworkspaceroles.types.kubefed.io',
  'federatedgroups.types.kubefed.io',
];
/** Bounded wait for the kubefed controller's pods to go (the original: 30 s, 1 s poll). */
export const KUBEFED_SCALE_DOWN_TIMEOUT_MS = 30_000;

export const IDENTITY_PROVIDER_SECRET_TYPE = 'config.kubesphere.io/identityprovider';
export const IDENTITY_PROVIDER_PREFIX = 'kubesphere-identityprovider.';
