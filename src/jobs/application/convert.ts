// v3 OpenPitrix app store objects → v4 `application.kubesphere.io/v2` objects (reference §4.3
// post-upgrade), as pure functions. Field mappings are the original's; where it was wrong the
// decision is noted here and in docs/jobs/application.md.
import { createHash } from 'node:crypto';
import type { KubeObject, OwnerReference } from '../../kube/types.js';
import { SYSTEM_WORKSPACE, UNCATEGORIZED_ID, V3, V4 } from './constants.js';

// --- v3 shapes (only what the job reads) -------------------------------------------------------

export interface HelmCategory extends KubeObject {
  spec?: { name?: string; description?: string; locale?: string };
}
export interface HelmApplication extends KubeObject {
  spec?: { name?: string; description?: string; appHome?: string; icon?: string };
  status?: { state?: string; updateTime?: string; latestVersion?: string };
}
export interface Maintainer {
  name?: string;
  email?: string;
  url?: string;
}
export interface HelmApplicationVersion extends KubeObject {
  spec?: {
    name?: string;
    version?: string;
    description?: string;
    home?: string;
    icon?: string;
    maintainers?: Maintainer[];
    created?: string;
  };
  status?: { state?: string; audit?: { operator?: string }[] };
}
/** v3 `HelmRepoCredential`: the v4 `RepoCredential` fields plus an inlined S3 config. */
export interface HelmRepoCredential {
  username?: string;
  password?: string;
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  insecureSkipTLSVerify?: boolean;
  accessKeyID?: string;
  secretAccessKey?: string;
}

/** The fields of v4's `RepoCredential` (application/v2 repo_types.go, v4.1.3): all a Repo keeps. */
const V4_CREDENTIAL_FIELDS = [
  'username',
  'password',
  'certFile',
  'keyFile',
  'caFile',
  'insecureSkipTLSVerify',
] as const;
export interface HelmRepo extends KubeObject {
  spec?: {
    name?: string;
    url?: string;
    description?: string;
    syncPeriod?: number;
    credential?: HelmRepoCredential;
  };
}
export interface HelmRelease extends KubeObject {
  spec?: {
    name?: string;
    description?: string;
    /** base64 of the values YAML (JSON of Go []byte). */
    values?: string;
    chartName?: string;
    chartVersion?: string;
    repoId?: string;
    /** JSON names of Go's ApplicationId / ApplicationVersionId (helmrelease_types.go, v3.4.1). */
    appId?: string;
    appVerId?: string;
  };
  status?: { state?: string; message?: string; lastUpdate?: string };
}

// --- v4 shapes ------------------------------------------------------------------------------

export interface V4Object extends KubeObject {
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** A v4 object and the status to set through the status sub-resource after creating it. */
export interface Converted {
  object: V4Object;
  status?: Record<string, unknown>;
}

const str = (v: string | undefined): string => v ?? '';
const compact = <T extends Record<string, unknown>>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as T;

/**
 * The v3 console stores a category's icon name (`database`, `documentation`…) in
 * `spec.description`, and v4 has a real `spec.icon`: a description that is an icon name becomes
 * the icon. Anything else (free text set through the API) is no icon; it is kept as the category's
 * `kubesphere.io/description` instead of being shown as a broken icon.
 */
export function isIconName(description: string | undefined): description is string {
  return description !== undefined && /^[a-zA-Z][a-zA-Z0-9_-]{0,63}$/.test(description);
}

/** HelmCategory → Category (`ctg-uncategorized` is v3's own and is skipped). */
export function toCategory(old: HelmCategory): Converted | undefined {
  const name = old.metadata.name ?? '';
  if (name === UNCATEGORIZED_ID) return undefined;
  const description = old.spec?.description;
  const icon = isIconName(description) ? description : undefined;
  const annotations: Record<string, string> = { [V4.aliasName]: str(old.spec?.name) };
  if (!icon && description) annotations[V4.description] = description;
  return { object: { metadata: { name, annotations }, spec: compact({ icon }) } };
}

/** The first `N.N.N` in v3's `status.latestVersion` (`"1.2.3 [1.21.6]"`), else `0.0.0`. */
export function latestAppVersion(latest: string | undefined): string {
  return /\d+\.\d+\.\d+/.exec(latest ?? '')?.[0] ?? '0.0.0';
}

/** HelmApplication → Application; the app store's `-store` copies are skipped. */
export function toApplication(old: HelmApplication): Converted | undefined {
  const name = old.metadata.name ?? '';
  if (name.endsWith('-store')) return undefined;
  const labels = old.metadata.labels ?? {};
  const ws = str(labels[V3.workspace]);
  return {
    object: {
      metadata: {
        name,
        labels: {
          [V4.workspace]: ws === SYSTEM_WORKSPACE ? '' : ws,
          [V4.categoryName]: str(labels[V3.categoryId]),
          [V4.appType]: V4.helm,
          [V4.repoName]: V4.upload,
        },
        annotations: {
          [V4.maintainers]: str(old.metadata.annotations?.[V3.creator]),
          [V4.latestVersion]: latestAppVersion(old.status?.latestVersion),
          [V4.aliasName]: str(old.spec?.name),
          [V4.description]: str(old.spec?.description),
          [V4.originalName]: str(old.spec?.name),
        },
      },
      spec: compact({ appHome: old.spec?.appHome, appType: V4.helm, icon: old.spec?.icon }),
    },
    status: compact({ state: old.status?.state, updateTime: old.status?.updateTime }),
  };
}

/** HelmApplicationVersion → ApplicationVersion, owned by its Application when that exists. */
export function toApplicationVersion(
  old: HelmApplicationVersion,
  owners: ReadonlyMap<string, OwnerReference>,
): Converted {
  const labels = old.metadata.labels ?? {};
  const appId = str(labels[V3.appId]);
  const owner = owners.get(appId);
  const maintainer = (old.spec?.maintainers ?? []).map((m) =>
    compact({ name: m.name, email: m.email, url: m.url }),
  );
  return {
    object: {
      metadata: {
        name: old.metadata.name ?? '',
        labels: {
          [V4.appId]: appId,
          [V4.appType]: V4.helm,
          [V4.repoName]: V4.upload,
          [V4.workspace]: str(labels[V3.workspace]),
        },
        annotations: {
          [V4.maintainers]: str(old.metadata.annotations?.[V3.creator]),
          [V4.aliasName]: str(old.spec?.name),
          [V4.description]: str(old.spec?.description),
        },
        finalizers: [V4.storeCleanFinalizer],
        ...(owner ? { ownerReferences: [owner] } : {}),
      },
      spec: {
        versionName: str(old.spec?.version),
        ...compact({ appHome: old.spec?.home, icon: old.spec?.icon, created: old.spec?.created }),
        appType: V4.helm,
        ...(maintainer.length > 0 ? { maintainer } : {}),
      },
    },
    status: compact({
      state: old.status?.state || 'draft',
      userName: old.status?.audit?.[0]?.operator,
      updated: old.spec?.created ?? old.metadata.creationTimestamp,
    }),
  };
}

/** True when a repo has credentials (its backup is then stored encrypted). */
export function hasCredential(repo: HelmRepo): boolean {
  const c = repo.spec?.credential;
  return !!c && Object.values(c).some((v) => v !== undefined && v !== '' && v !== false);
}

/**
 * HelmRepo → Repo. The credentials are copied into the Repo spec: that is where v4 keeps them
 * (reference §7.3 item 20 — a v4 property this job cannot change); only the fields v4 has (its
 * RepoCredential has no S3 keys, which a v4 API server would drop anyway). `syncPeriod` is required
 * in v4.1.3 while v3 omits a 0 (no periodic sync): it is written as 0 then — the original omitted it,
 * and v4 refused the Repo.
 */
export function toRepo(old: HelmRepo): Converted {
  const ws = old.metadata.labels?.[V3.workspace];
  const credential = old.spec?.credential;
  const kept = credential
    ? Object.fromEntries(
        V4_CREDENTIAL_FIELDS.flatMap((k) => (credential[k] === undefined ? [] : [[k, credential[k]]])),
      )
    : undefined;
  return {
    object: {
      metadata: {
        name: old.metadata.name ?? '',
        ...(ws ? { labels: { [V4.workspace]: ws } } : {}),
        annotations: { [V4.aliasName]: str(old.spec?.name) },
      },
      spec: {
        url: str(old.spec?.url),
        ...(kept ? { credential: kept } : {}),
        ...compact({ description: old.spec?.description }),
        syncPeriod: old.spec?.syncPeriod ?? 0,
      },
    },
  };
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export function isDns1123Subdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

/** The v4 short name of an external chart: the lower-cased name if short and valid, else an MD5 prefix. */
export function chartShortName(chartName: string): string {
  const lower = chartName.toLowerCase();
  if (lower.length <= 14 && isDns1123Subdomain(lower)) return lower;
  return createHash('md5').update(lower).digest('hex').slice(0, 10);
}

/** A chart version usable in a name: as is when valid, else a SHA-1 prefix. */
export function chartVersionName(version: string): string {
  if (isDns1123Subdomain(version)) return version;
  return createHash('sha1').update(version).digest('hex').slice(0, 12);
}

/**
 * `status.specHash` as the v4 controller computes it: hex MD5 of the spec's JSON in Go field order
 * (appID, appVersionID, values omitted when empty, appType omitted when empty). A matching hash
 * tells the controller the release is installed as specified, so it does not install it again.
 */
export function releaseSpecHash(spec: {
  appID: string;
  appVersionID: string;
  values?: string;
  appType?: string;
}): string {
  const json = JSON.stringify({
    appID: spec.appID,
    appVersionID: spec.appVersionID,
    ...(spec.values ? { values: spec.values } : {}),
    ...(spec.appType ? { appType: spec.appType } : {}),
  });
  return createHash('md5').update(json).digest('hex');
}

/** Where a release runs: the v4 identity that must not change between runs. */
export interface ReleaseIdentity {
  cluster: string;
  namespace: string;
}

/** HelmRelease → ApplicationRelease, named by the helm release name (v3 `spec.name`). */
export function toRelease(
  old: HelmRelease,
  hostClusterName: string,
): Converted & { identity: ReleaseIdentity } {
  const labels = old.metadata.labels ?? {};
  const spec = old.spec ?? {};
  const cluster = labels[V3.cluster] || hostClusterName || 'host';
  let appID = str(spec.appId);
  let appVersionID = str(spec.appVerId);
  const newLabels: Record<string, string> = {
    [V4.appId]: str(labels[V3.appId]),
    [V4.appVersionId]: str(labels[V3.appVersionId]),
    [V4.cluster]: cluster,
    [V4.workspace]: str(labels[V3.workspace]),
    [V4.namespace]: str(labels[V3.namespace]),
  };
  const repoId = str(spec.repoId);
  if (repoId.startsWith('repo-') && repoId !== 'repo-helm') {
    // A release from an external repository: v4 names apps and versions after the repo and chart.
    const shortName = chartShortName(str(spec.chartName));
    appID = `${repoId}-${shortName}`;
    appVersionID = `${repoId}-${shortName}-${chartVersionName(str(spec.chartVersion))}`;
    newLabels[V4.appId] = appID;
    newLabels[V4.appVersionId] = appVersionID;
  }
  const newSpec = { appID, appVersionID, ...(spec.values ? { values: spec.values } : {}), appType: V4.helm };
  return {
    identity: { cluster, namespace: str(labels[V3.namespace]) },
    object: {
      metadata: {
        name: str(spec.name),
        labels: newLabels,
        annotations: {
          [V4.originalName]: str(spec.chartName),
          [V4.aliasName]: str(spec.name),
          [V4.description]: str(spec.description),
          [V4.creator]: str(old.metadata.annotations?.[V3.creator]),
        },
        finalizers: [V4.releaseFinalizer],
      },
      spec: newSpec,
    },
    status: compact({
      state: old.status?.state,
      message: old.status?.message,
      lastUpdate: old.status?.lastUpdate,
      specHash: releaseSpecHash(newSpec),
    }),
  };
}

/** A v3 release the job leaves out, and why. Names only: no values, no credentials. */
export interface ReleaseProblem {
  /** The ApplicationRelease name it would get (the helm release name). */
  name: string;
  /** The v3 HelmRelease(s) concerned, as `<v3 name> (<cluster>/<namespace>)`. */
  releases: string[];
  reason: string;
}

/** A v4 release name must be a helm release name: a DNS-1123 label of at most 53 characters. */
export function isReleaseName(name: string): boolean {
  return name.length > 0 && name.length <= 53 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name);
}

/**
 * Releases that cannot be migrated under their helm release name: names v3 allowed several times
 * (one per cluster and namespace) while v4 ApplicationReleases are cluster-scoped, names that are
 * no helm release name, and names an existing ApplicationRelease for another cluster/namespace
 * already has. The original renamed silently and let the second create fail or hit the first.
 */
export function findReleaseProblems(
  candidates: readonly { old: HelmRelease; identity: ReleaseIdentity; name: string }[],
  existing: ReadonlyMap<string, ReleaseIdentity>,
): ReleaseProblem[] {
  const byName = new Map<string, typeof candidates>();
  for (const c of candidates) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
  const problems: ReleaseProblem[] = [];
  const describe = (c: (typeof candidates)[number]) =>
    `${c.old.metadata.name ?? ''} (${c.identity.cluster}/${c.identity.namespace})`;
  for (const [name, group] of [...byName].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const releases = group.map(describe).sort();
    if (!isReleaseName(name)) {
      problems.push({
        name,
        releases,
        reason: 'not a valid helm release name (DNS-1123 label, at most 53 characters)',
      });
    } else if (group.length > 1) {
      problems.push({
        name,
        releases,
        reason: `${group.length} v3 releases share this name (in different clusters or namespaces); v4 release names are cluster-wide`,
      });
    } else {
      const have = existing.get(name);
      const want = group[0]?.identity;
      if (have && want && (have.cluster !== want.cluster || have.namespace !== want.namespace)) {
        problems.push({
          name,
          releases,
          reason: `an ApplicationRelease ${name} for ${have.cluster}/${have.namespace} already exists`,
        });
      }
    }
  }
  return problems;
}
