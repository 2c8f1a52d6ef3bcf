// Renders the access table as Kubernetes RBAC: one ClusterRole for the cluster-wide rules, one Role
// per namespace for the rules narrowed to namespaces, and their bindings to the worker's service
// account. Rules are merged (one rule per resource set and verb set), sorted, and each carries the
// reasons it exists as comments, so the output is stable (the deploy/ manifests are diffed
// against it) and reviewable.
import * as yaml from 'js-yaml';
import type { AccessRule, JobAccess } from './types.js';

/** Where the generated roles are bound. */
export interface RbacTarget {
  serviceAccount: { namespace: string; name: string };
  /** Name of the roles and bindings. Default `ks-upgrade`. */
  name?: string;
}

/** One merged RBAC rule and the reasons behind it. */
export interface MergedRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
  why: string[];
}

/** Where rules go: cluster-wide (`''`) or one namespace. */
export type RuleScopes = Map<string, MergedRule[]>;

interface Atom {
  scope: string;
  group: string;
  resource: string;
  /** One resourceName, or '' for every object. */
  name: string;
  verb: string;
  why: string;
}

const VERB_ORDER = [
  'get',
  'list',
  'watch',
  'create',
  'update',
  'patch',
  'delete',
  'deletecollection',
  'escalate',
  'bind',
  'impersonate',
];
const verbRank = (v: string): number => (VERB_ORDER.includes(v) ? VERB_ORDER.indexOf(v) : VERB_ORDER.length);
const byVerb = (a: string, b: string): number => verbRank(a) - verbRank(b) || a.localeCompare(b);

function atoms(jobs: readonly JobAccess[], on: 'cluster' | 'members'): Atom[] {
  const out: Atom[] = [];
  for (const j of jobs) {
    for (const r of j.rules) {
      if ((r.on === 'members') !== (on === 'members')) continue;
      for (const scope of r.namespaces?.length ? r.namespaces : ['']) {
        for (const resource of r.resources) {
          for (const name of r.resourceNames?.length ? r.resourceNames : ['']) {
            for (const verb of r.verbs) {
              out.push({ scope, group: r.group, resource, name, verb, why: `${j.job}: ${r.why}` });
            }
          }
        }
      }
    }
  }
  return out;
}

const atomKey = (scope: string, group: string, resource: string, name: string, verb: string): string =>
  [scope, group, resource, name, verb].join('|');

/** A grant already implied by a broader one (every object, or cluster-wide) is dropped. */
function covered(a: Atom, all: Set<string>): boolean {
  if (
    a.scope !== '' &&
    (all.has(atomKey('', a.group, a.resource, a.name, a.verb)) ||
      all.has(atomKey('', a.group, a.resource, '', a.verb)))
  ) {
    return true;
  }
  return a.name !== '' && all.has(atomKey(a.scope, a.group, a.resource, '', a.verb));
}

/** Merges the rules of `jobs` into RBAC rules per scope (`''` = the ClusterRole). */
export function mergeRules(jobs: readonly JobAccess[], on: 'cluster' | 'members' = 'cluster'): RuleScopes {
  const list = atoms(jobs, on);
  const keys = new Set(list.map((a) => atomKey(a.scope, a.group, a.resource, a.name, a.verb)));
  type Entry = { verbs: Set<string>; why: Set<string> };
  // scope → group|resource|name → verbs and reasons
  const byObject = new Map<string, Map<string, Entry>>();
  for (const a of list) {
    if (covered(a, keys)) continue;
    const scope = byObject.get(a.scope) ?? new Map<string, Entry>();
    byObject.set(a.scope, scope);
    const k = [a.group, a.resource, a.name].join('|');
    const entry = scope.get(k) ?? { verbs: new Set<string>(), why: new Set<string>() };
    scope.set(k, entry);
    entry.verbs.add(a.verb);
    entry.why.add(a.why);
  }
  const result: RuleScopes = new Map();
  for (const scope of [...byObject.keys()].sort()) {
    // Names with the same verbs share a rule; then resources with the same names and verbs do.
    const byNames = new Map<
      string,
      { group: string; resource: string; names: string[]; verbs: string[]; why: Set<string> }
    >();
    for (const [k, entry] of byObject.get(scope) ?? []) {
      const [group = '', resource = '', name = ''] = k.split('|');
      const verbs = [...entry.verbs].sort(byVerb);
      const nk = [group, resource, name === '' ? '*' : 'named', verbs.join(',')].join('|');
      const rule = byNames.get(nk) ?? { group, resource, names: [], verbs, why: new Set<string>() };
      byNames.set(nk, rule);
      if (name) rule.names.push(name);
      for (const w of entry.why) rule.why.add(w);
    }
    const merged = new Map<string, MergedRule>();
    for (const r of byNames.values()) {
      const names = r.names.sort();
      const mk = [r.group, names.join(','), r.verbs.join(',')].join('|');
      const rule = merged.get(mk) ?? {
        apiGroups: [r.group],
        resources: [],
        ...(names.length > 0 ? { resourceNames: names } : {}),
        verbs: r.verbs,
        why: [],
      };
      merged.set(mk, rule);
      rule.resources.push(r.resource);
      for (const w of r.why) if (!rule.why.includes(w)) rule.why.push(w);
    }
    const rules = [...merged.values()].map((r) => ({
      ...r,
      resources: r.resources.sort(),
      why: r.why.sort(),
    }));
    rules.sort(
      (a, b) =>
        (a.apiGroups[0] ?? '').localeCompare(b.apiGroups[0] ?? '') ||
        a.resources.join(',').localeCompare(b.resources.join(',')) ||
        (a.resourceNames ?? []).join(',').localeCompare((b.resourceNames ?? []).join(',')) ||
        a.verbs.join(',').localeCompare(b.verbs.join(',')),
    );
    result.set(scope, rules);
  }
  return result;
}

const flow = (items: readonly string[]): string =>
  yaml.dump([...items], { flowLevel: 0, lineWidth: -1 }).trim();

function renderRules(rules: readonly MergedRule[]): string {
  return rules
    .map((r) => {
      const lines = [
        ...r.why.map((w) => `  # ${w}`),
        `  - apiGroups: ${flow(r.apiGroups)}`,
        `    resources: ${flow(r.resources)}`,
        ...(r.resourceNames ? [`    resourceNames: ${flow(r.resourceNames)}`] : []),
        `    verbs: ${flow(r.verbs)}`,
      ];
      return lines.join('\n');
    })
    .join('\n');
}

function metadata(name: string, namespace?: string): string {
  return [
    'metadata:',
    `  name: ${name}`,
    ...(namespace ? [`  namespace: ${namespace}`] : []),
    '  labels:',
    '    app.kubernetes.io/name: ks-upgrade',
  ].join('\n');
}

function binding(
  kind: 'ClusterRoleBinding' | 'RoleBinding',
  name: string,
  t: RbacTarget,
  namespace?: string,
): string {
  return [
    'apiVersion: rbac.authorization.k8s.io/v1',
    `kind: ${kind}`,
    metadata(name, namespace),
    'roleRef:',
    '  apiGroup: rbac.authorization.k8s.io',
    `  kind: ${kind === 'ClusterRoleBinding' ? 'ClusterRole' : 'Role'}`,
    `  name: ${name}`,
    'subjects:',
    '  - kind: ServiceAccount',
    `    name: ${t.serviceAccount.name}`,
    `    namespace: ${t.serviceAccount.namespace}`,
  ].join('\n');
}

/**
 * The RBAC manifests (YAML, several documents) for `jobs`: a ClusterRole and ClusterRoleBinding,
 * and a Role and RoleBinding in every namespace a rule is narrowed to.
 */
export function renderRbac(jobs: readonly JobAccess[], target: RbacTarget): string {
  return render(jobs, target.name ?? 'ks-upgrade', 'cluster', target);
}

/**
 * What the jobs need on each member cluster, where they act through the kubeconfig of the member's
 * Cluster object on the host (KubeSphere's credentials there, not ks-upgrade's): the same roles,
 * without bindings — to compare with that identity, or to bind to it when it is restricted.
 */
export function renderMemberRbac(
  jobs: readonly JobAccess[],
  name = 'ks-upgrade-member',
  bindTo?: RbacTarget['serviceAccount'],
): string {
  return render(jobs, name, 'members', bindTo ? { serviceAccount: bindTo } : undefined);
}

function render(
  jobs: readonly JobAccess[],
  name: string,
  on: 'cluster' | 'members',
  target?: RbacTarget,
): string {
  const scopes = mergeRules(jobs, on);
  const involved = jobs.filter((j) => j.rules.some((r) => (r.on === 'members') === (on === 'members')));
  const header =
    on === 'cluster'
      ? '# Generated by `ks-upgrade rbac` from the access table of the jobs below (docs/rbac.md); do not edit.'
      : "# What the jobs do on each member cluster, through the kubeconfig of its Cluster object on the host\n# (KubeSphere's credentials there). Generated by `ks-upgrade rbac --members` (docs/rbac.md).";
  const role = (kind: 'ClusterRole' | 'Role', rules: readonly MergedRule[], ns?: string): string =>
    [
      'apiVersion: rbac.authorization.k8s.io/v1',
      `kind: ${kind}`,
      metadata(name, ns),
      `rules:${rules.length === 0 ? ' []' : ''}`,
      ...(rules.length === 0 ? [] : [renderRules(rules)]),
    ].join('\n');
  const docs: string[] = [
    [
      header,
      `# Jobs: ${involved.map((j) => j.job).join(', ') || '(none)'}`,
      role('ClusterRole', scopes.get('') ?? []),
    ].join('\n'),
  ];
  if (target) docs.push(binding('ClusterRoleBinding', name, target));
  for (const [ns, rules] of scopes) {
    if (ns === '') continue;
    docs.push(role('Role', rules, ns));
    if (target) docs.push(binding('RoleBinding', name, target, ns));
  }
  return `${docs.join('\n---\n')}\n`;
}

/** Every rule of `jobs` as `AccessRule`s of the cluster side (for the preflight's checks). */
export function clusterRules(jobs: readonly JobAccess[]): { job: string; rule: AccessRule }[] {
  return jobs.flatMap((j) => j.rules.filter((r) => r.on !== 'members').map((rule) => ({ job: j.job, rule })));
}
