// Building blocks of the access table: one function per access pattern the jobs share (reading
// the v3 ClusterConfiguration, creating an InstallPlan, uninstalling a Helm release from its
// record…), so each job's table reads like the list of things it does.
import type { Leftover } from '../verify/types.js';
import type { AccessRule } from './types.js';

/** Where KubeSphere keeps its configuration, release records and control plane. */
export const KUBESPHERE_SYSTEM = 'kubesphere-system';

/** Optional narrowing of a rule. */
export interface RuleScope {
  namespaces?: readonly string[];
  resourceNames?: readonly string[];
  on?: 'members';
}

/** One rule. `resources` may be one plural or several; verbs are written as `get,list`. */
export function rule(
  group: string,
  resources: string | readonly string[],
  verbs: string,
  why: string,
  scope: RuleScope = {},
): AccessRule {
  return {
    group,
    resources: typeof resources === 'string' ? [resources] : [...resources],
    verbs: verbs.split(',').map((v) => v.trim()),
    // An empty list is no narrowing: cluster-wide.
    ...(scope.namespaces?.length ? { namespaces: [...scope.namespaces] } : {}),
    ...(scope.resourceNames ? { resourceNames: [...scope.resourceNames] } : {}),
    why,
    ...(scope.on ? { on: scope.on } : {}),
  };
}

/** The same rules, needed on every member cluster too (reached through the Cluster kubeconfig). */
export function onMembers(rules: readonly AccessRule[]): AccessRule[] {
  return rules.map((r) => ({ ...r, on: 'members' as const }));
}

/** `ksVersion`-style reads of the v3 installer configuration (`kubesphere-system/ks-installer`). */
export function readClusterConfiguration(why = 'read which v3 components are enabled'): AccessRule {
  return rule('installer.kubesphere.io', 'clusterconfigurations', 'get', why, {
    namespaces: [KUBESPHERE_SYSTEM],
    resourceNames: ['ks-installer'],
  });
}

/** `kubesphere.yaml` of ConfigMap kubesphere-config: the cluster role (host, member, none). */
export function readKubeSphereConfig(why = 'read the cluster role from kubesphere-config'): AccessRule {
  return rule('', 'configmaps', 'get', why, {
    namespaces: [KUBESPHERE_SYSTEM],
    resourceNames: ['kubesphere-config'],
  });
}

/** The host's Cluster objects (and, through their kubeconfigs, the members). */
export function listClusters(why = 'list the member clusters of the host'): AccessRule {
  return rule('cluster.kubesphere.io', 'clusters', 'list', why);
}

/** Reads the v3 ClusterConfiguration of every member, through its kubeconfig. */
export function memberClusterConfigurations(): AccessRule[] {
  return [
    listClusters('find the member clusters and their kubeconfigs'),
    { ...readClusterConfiguration('read which components each member has enabled'), on: 'members' },
  ];
}

/** `ensureInstallPlan`: the ExtensionVersion must exist; the plan is created or updated. */
export function createInstallPlan(extension: string): AccessRule[] {
  return [
    rule('kubesphere.io', 'extensionversions', 'get', `check that ${extension}'s ExtensionVersion is served`),
    rule('kubesphere.io', 'installplans', 'get,create,update', `create the ${extension} InstallPlan`),
  ];
}

/** Rollback deletes the InstallPlan ks-upgrade created, while it is not installed yet. */
export function removeInstallPlan(extension: string): AccessRule {
  return rule(
    'kubesphere.io',
    'installplans',
    'get,delete',
    `rollback removes a pending ${extension} InstallPlan`,
  );
}

/** Reading a Helm release's records (Secrets `sh.helm.release.v1.<name>.v<N>`). */
export function readHelmReleases(namespaces: readonly string[], what: string): AccessRule {
  return rule('', 'secrets', 'list', `read the Helm release records of ${what}`, { namespaces });
}

/**
 * What the objects of the v3 Helm charts ks-upgrade uninstalls are: uninstall deletes every object
 * of the release's manifest, so the kinds are those the KubeSphere v3 charts contain. A kind not
 * listed here stops the uninstall with 403 — the preflight names it first (see docs/rbac.md).
 */
export const RELEASE_NAMESPACED_KINDS: readonly (readonly [string, readonly string[]])[] = [
  ['', ['configmaps', 'secrets', 'services', 'serviceaccounts', 'persistentvolumeclaims']],
  ['apps', ['deployments', 'statefulsets', 'daemonsets']],
  ['batch', ['jobs', 'cronjobs']],
  ['rbac.authorization.k8s.io', ['roles', 'rolebindings']],
  ['networking.k8s.io', ['ingresses', 'networkpolicies']],
  ['policy', ['poddisruptionbudgets']],
  ['monitoring.coreos.com', ['servicemonitors', 'prometheusrules']],
];
export const RELEASE_CLUSTER_KINDS: readonly (readonly [string, readonly string[]])[] = [
  ['rbac.authorization.k8s.io', ['clusterroles', 'clusterrolebindings']],
  ['admissionregistration.k8s.io', ['validatingwebhookconfigurations', 'mutatingwebhookconfigurations']],
  ['apiregistration.k8s.io', ['apiservices']],
];

/**
 * Uninstalling v3 Helm releases from their records (helm's own uninstall: delete the manifest's
 * objects, then the release Secrets). `objectNamespaces`: where the manifests put namespaced
 * objects (the release namespace and any other the chart writes to).
 */
export function uninstallHelmReleases(
  releaseNamespaces: readonly string[],
  what: string,
  objectNamespaces: readonly string[] = releaseNamespaces,
): AccessRule[] {
  const why = `uninstall the v3 Helm release(s) ${what}: delete the objects of the release manifest`;
  return [
    rule('', 'secrets', 'list,delete', `read and remove the Helm release records of ${what}`, {
      namespaces: releaseNamespaces,
    }),
    ...RELEASE_NAMESPACED_KINDS.map(([group, resources]) =>
      rule(group, resources, 'get,delete', why, { namespaces: objectNamespaces }),
    ),
    ...RELEASE_CLUSTER_KINDS.map(([group, resources]) => rule(group, resources, 'get,delete', why)),
  ];
}

/** `syncExtensionChart`: the chart ConfigMap is read on the host and written on every cluster. */
export function syncExtensionChart(extension: string): AccessRule[] {
  const cm = (on?: 'members') =>
    rule('', 'configmaps', 'get,create,update', `copy the ${extension} chart into its chart ConfigMap`, {
      namespaces: [KUBESPHERE_SYSTEM],
      ...(on ? { on } : {}),
    });
  return [listClusters(`copy the ${extension} chart to every cluster`), cm(), cm('members')];
}

/** `applyExtensionCrds`: server-side apply of the CRDs in an extension chart, then wait. */
export function applyExtensionCrds(extension: string): AccessRule {
  return rule(
    'apiextensions.k8s.io',
    'customresourcedefinitions',
    'get,create,patch',
    `apply the CRDs of the ${extension} extension chart (server-side apply)`,
  );
}

/** A CRD deleted by a job (and re-created by its rollback). */
export function crds(names: readonly string[], verbs: string, why: string): AccessRule {
  return rule('apiextensions.k8s.io', 'customresourcedefinitions', verbs, why, { resourceNames: names });
}

/** Leftover builders for the verification list. */
export const leftover = {
  validatingWebhook: (name: string, why: string): Leftover => ({
    group: 'admissionregistration.k8s.io',
    version: 'v1',
    resource: 'validatingwebhookconfigurations',
    kind: 'webhook',
    name,
    why,
  }),
  mutatingWebhook: (name: string, why: string): Leftover => ({
    group: 'admissionregistration.k8s.io',
    version: 'v1',
    resource: 'mutatingwebhookconfigurations',
    kind: 'mutating-webhook',
    name,
    why,
  }),
  crd: (name: string, why: string): Leftover => ({
    group: 'apiextensions.k8s.io',
    version: 'v1',
    resource: 'customresourcedefinitions',
    kind: 'crd',
    name,
    why,
  }),
  deployment: (namespace: string, name: string, why: string): Leftover => ({
    group: 'apps',
    version: 'v1',
    resource: 'deployments',
    kind: 'deployment',
    namespace,
    name,
    why,
  }),
  daemonSet: (namespace: string, name: string, why: string): Leftover => ({
    group: 'apps',
    version: 'v1',
    resource: 'daemonsets',
    kind: 'daemonset',
    namespace,
    name,
    why,
  }),
};

/** A named object a job reads, deletes or re-creates. */
export interface NamedObject {
  rt: { group: string; plural: string; namespaced: boolean };
  name: string;
  /** Namespace of a namespaced object. */
  namespace?: string;
}

function groupObjects(objects: readonly NamedObject[]): Map<string, NamedObject[]> {
  const groups = new Map<string, NamedObject[]>();
  for (const o of objects) {
    const key = `${o.rt.group}\u0000${o.rt.plural}\u0000${o.rt.namespaced ? (o.namespace ?? '') : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  return groups;
}

/** Rules narrowed to exactly these objects (one rule per resource and namespace). */
export function namedObjects(objects: readonly NamedObject[], verbs: string, why: string): AccessRule[] {
  return [...groupObjects(objects).values()].map((list) => {
    const first = list[0] as NamedObject;
    return rule(first.rt.group, first.rt.plural, verbs, why, {
      resourceNames: [...new Set(list.map((o) => o.name))].sort(),
      ...(first.rt.namespaced && first.namespace ? { namespaces: [first.namespace] } : {}),
    });
  });
}

/**
 * Rules for creating objects of these kinds (rollback re-creating them): `create` cannot be
 * narrowed by name — the name is not known to the authorizer before the object exists.
 */
export function createKinds(objects: readonly NamedObject[], why: string): AccessRule[] {
  return [...groupObjects(objects).values()].map((list) => {
    const first = list[0] as NamedObject;
    return rule(first.rt.group, first.rt.plural, 'create', why, {
      ...(first.rt.namespaced && first.namespace ? { namespaces: [first.namespace] } : {}),
    });
  });
}
