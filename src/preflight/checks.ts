// The preflight checks (docs/preflight.md). Each reads, never writes the cluster, and returns one
// named result with what it saw and how to fix what is wrong. The backup store is the exception the
// check exists for: a probe key is written, read back and deleted.
import { randomBytes } from 'node:crypto';
import { readFile, statfs } from 'node:fs/promises';
import path from 'node:path';
import { ServiceAccountResource, SecretResource, type Secret } from '../api/core.js';
import { CLUSTER_CONFIGURATION, ClusterConfigurationResource } from '../api/v3/index.js';
import type { ChecksConfig, UpgradeConfig } from '../config/types.js';
import { describeError } from '../errors.js';
import { lastDeployedRelease } from '../helm/release.js';
import type { JobRegistry } from '../jobs/registry.js';
import type { ResourceClient } from '../kube/client.js';
import { accessTable } from '../rbac/table.js';
import type { AccessRule } from '../rbac/types.js';
import { createStorage } from '../storage/index.js';
import { loadEncryptionKey } from '../store/index.js';
import { forEachLimit } from '../util/concurrency.js';
import { isRecord } from '../util/object.js';
import type { PreflightCheckResult } from './types.js';
import {
  chartImages,
  describeChartSource,
  extensionChartSource,
  fetchChart,
  parseChartSource,
  type ChartImages,
  type ChartSource,
} from './charts.js';
import { DockerConfigAuth, RegistryClient, formatImageRef, parseImageRef } from './registry.js';

const KS_NAMESPACE = 'kubesphere-system';

/** What the checks run against. */
export interface PreflightEnv {
  cluster: string;
  client: ResourceClient;
  config: UpgradeConfig;
  registry: JobRegistry;
  /** Other upgrades of this cluster the caller knows of (Temporal): see {@link ConcurrentUpgrades}. */
  concurrent?: ConcurrentUpgrades;
  signal?: AbortSignal;
  heartbeat?: (step: string) => void;
}

/** Upgrades of the same cluster, as the caller found them in Temporal. */
export interface ConcurrentUpgrades {
  /** The upgrade this preflight is the first step of, when there is one. */
  self?: { workflowId: string; runId?: string };
  /** Upgrade workflows of this cluster that are running (self may be among them). */
  running: { workflowId: string; runId?: string; startTime?: string }[];
  /** Where they were looked up, e.g. `Temporal 127.0.0.1:7233, namespace default`. */
  source: string;
  /** The lookup failed (the check then says it could not tell). */
  error?: string;
}

const ok = (name: string, evidence: string): PreflightCheckResult => ({ name, ok: true, evidence });
const fail = (name: string, evidence: string, fix: string): PreflightCheckResult => ({
  name,
  ok: false,
  evidence,
  fix,
});

// ---- api-server ---------------------------------------------------------------------------------

/**
 * The oldest Kubernetes KubeSphere v4.1 is documented for: its README (tag v4.1.3) lists v1.21.x to
 * v1.26.x, the last three with "some features may be unavailable". Newer releases are not refused —
 * the list predates them — unless the target chart's own `kubeVersion` says so.
 */
export const MIN_KUBERNETES = '1.21.0';

type Version = [number, number, number];

function parseVersion(text: string): Version | undefined {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text.trim());
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** Helm/semver constraint (`>=1.19.0-0 <1.31`, `^1.21`, `~1.25`, `a || b`) against a version. */
export function satisfies(version: string, constraint: string): boolean {
  const v = parseVersion(version);
  if (!v) return false;
  return constraint.split('||').some((alt) =>
    alt
      .trim()
      .split(/[\s,]+/)
      .filter(Boolean)
      .every((c) => {
        const m = /^(>=|<=|>|<|=|!=|\^|~)?\s*v?([\dx*.]+)/.exec(c);
        if (!m?.[2]) return true;
        const want = parseVersion(m[2].replace(/[x*]/g, '0')) ?? [0, 0, 0];
        const d = compare(v, want);
        switch (m[1]) {
          case '>=':
            return d >= 0;
          case '>':
            return d > 0;
          case '<=':
            return d <= 0;
          case '<':
            return d < 0;
          case '!=':
            return d !== 0;
          case '^':
            return d >= 0 && v[0] === want[0];
          case '~':
            return d >= 0 && v[0] === want[0] && v[1] === want[1];
          default: {
            const parts = m[2].split('.');
            return parts.every((p, i) => p === 'x' || p === '*' || Number(p) === v[i]);
          }
        }
      }),
  );
}

/** The API server answers, and runs a Kubernetes KubeSphere v4 supports. */
export async function checkApiServer(
  env: PreflightEnv,
  coreChart?: ChartImages,
): Promise<PreflightCheckResult> {
  const name = 'api-server';
  const server = env.client.transport.server;
  let gitVersion: string;
  try {
    const res = await env.client.transport.request({
      method: 'GET',
      path: '/version',
      ...(env.signal ? { signal: env.signal } : {}),
    });
    if (res.status !== 200) throw new Error(`GET /version: HTTP ${res.status}`);
    gitVersion = (JSON.parse(res.text) as { gitVersion?: string }).gitVersion ?? '';
  } catch (err) {
    return fail(
      name,
      `${server} does not answer: ${describeError(err)}`,
      'check the kubeconfig (server address, credentials, CA) and that the API server is reachable from the worker',
    );
  }
  const v = parseVersion(gitVersion);
  if (!v)
    return fail(name, `${server} reports version '${gitVersion}'`, 'cannot tell the Kubernetes version');
  const min = parseVersion(MIN_KUBERNETES) as Version;
  if (compare(v, min) < 0) {
    return fail(
      name,
      `${server} runs Kubernetes ${gitVersion}; KubeSphere v4.1 needs v${MIN_KUBERNETES} or later`,
      'upgrade Kubernetes first (KubeSphere v4.1.3 README: v1.21.x–v1.26.x tested)',
    );
  }
  if (coreChart?.kubeVersion && !satisfies(gitVersion, coreChart.kubeVersion)) {
    return fail(
      name,
      `${server} runs Kubernetes ${gitVersion}; chart ${coreChart.name}-${coreChart.version} requires kubeVersion ${coreChart.kubeVersion}`,
      'upgrade Kubernetes to a version the chart supports, or use a ks-core chart made for this Kubernetes',
    );
  }
  return ok(
    name,
    `${server} answers, Kubernetes ${gitVersion} (≥ v${MIN_KUBERNETES}${coreChart?.kubeVersion ? `, chart kubeVersion ${coreChart.kubeVersion}` : ''})`,
  );
}

// ---- kubesphere-version -------------------------------------------------------------------------

/** The KubeSphere v3 versions the upgrade is made for: the official v3.4 → v4.1 upgrade path. */
export const SUPPORTED_V3 = /^v3\.4\.\d+/;

/** The cluster runs a KubeSphere v3 release this upgrade supports (or already the v4 target). */
export async function checkKubeSphereVersion(env: PreflightEnv): Promise<PreflightCheckResult> {
  const name = 'kubesphere-version';
  let release: string | undefined;
  let installer: string | undefined;
  try {
    release = (await lastDeployedRelease(env.client, KS_NAMESPACE, 'ks-core'))?.chart.metadata.appVersion;
    const cc = await env.client.tryGet(
      ClusterConfigurationResource,
      CLUSTER_CONFIGURATION.name,
      CLUSTER_CONFIGURATION.namespace,
    );
    const status = cc?.status?.core;
    installer =
      cc?.metadata.labels?.version ??
      (isRecord(status) && typeof status.version === 'string' ? status.version : undefined);
  } catch (err) {
    return fail(name, `cannot read the KubeSphere version: ${describeError(err)}`, 'see the access check');
  }
  // ks-installer v3.4.1 installs ks-core from a chart whose appVersion was never bumped (it says
  // v3.3.2), so on v3 the installer's version is the truth; only a v4 chart's appVersion is exact.
  const version = release?.startsWith('v4.') ? release : (installer ?? release);
  const seen = [
    release ? `ks-core Helm release ${release}` : '',
    installer ? `ks-installer ${installer}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  if (!version) {
    return fail(
      name,
      `no KubeSphere found on ${env.client.transport.server}: no deployed ks-core Helm release and no ClusterConfiguration ${CLUSTER_CONFIGURATION.namespace}/${CLUSTER_CONFIGURATION.name}`,
      'point the kubeconfig/--context at the KubeSphere v3 cluster to upgrade',
    );
  }
  if (SUPPORTED_V3.test(version)) return ok(name, `KubeSphere ${version} (${seen}): a supported v3 release`);
  if (version.startsWith('v4.')) {
    const target = env.config.checks?.targetVersion;
    if (target && version !== target) {
      return fail(
        name,
        `KubeSphere ${version} is already v4, not the target ${target} (${seen})`,
        'upgrade from v4 with the KubeSphere v4 tools, or set checks.targetVersion',
      );
    }
    return ok(
      name,
      `KubeSphere ${version} already runs (${seen}): the steps before the core upgrade are skipped (ksVersion validator); the rest resumes`,
    );
  }
  return fail(
    name,
    `KubeSphere ${version} (${seen}) is not supported: the upgrade to v4 starts from v3.4.x`,
    'upgrade KubeSphere to v3.4.x first (ks-installer), then run ks-upgrade',
  );
}

// ---- access -------------------------------------------------------------------------------------

/** One permission the preflight asks the API server about. */
export interface Permission {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  job: string;
  why: string;
}

/** `get apps/deployments "ks-installer" in kubesphere-system`. */
export function describePermission(p: Permission): string {
  const res = `${p.group || 'core'}/${p.resource}${p.subresource ? `/${p.subresource}` : ''}`;
  return `${p.verb} ${res}${p.name ? ` "${p.name}"` : ''} ${p.namespace ? `in ${p.namespace}` : 'cluster-wide'}`;
}

/** Every single permission the rules grant (deduplicated: one per verb × resource × namespace × name). */
export function permissionsOf(rules: readonly { job: string; rule: AccessRule }[]): Permission[] {
  const seen = new Map<string, Permission>();
  for (const { job, rule } of rules) {
    if (rule.on === 'members') continue;
    for (const ns of rule.namespaces?.length ? rule.namespaces : [undefined]) {
      for (const res of rule.resources) {
        const [resource = '', subresource] = res.split('/');
        for (const name of rule.resourceNames?.length ? rule.resourceNames : [undefined]) {
          for (const verb of rule.verbs) {
            const p: Permission = {
              verb,
              group: rule.group,
              resource,
              ...(subresource ? { subresource } : {}),
              ...(ns ? { namespace: ns } : {}),
              ...(name ? { name } : {}),
              job,
              why: rule.why,
            };
            const key = describePermission(p);
            if (!seen.has(key)) seen.set(key, p);
          }
        }
      }
    }
  }
  return [...seen.values()];
}

/** Asks the API server whether this identity may do `p` (SelfSubjectAccessReview). */
async function allowed(client: ResourceClient, p: Permission, signal?: AbortSignal): Promise<boolean> {
  const res = await client.transport.request({
    method: 'POST',
    // A question, not a write: safe to ask again after a reset or a 5xx.
    idempotent: true,
    path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: {
        resourceAttributes: {
          verb: p.verb,
          group: p.group,
          resource: p.resource,
          ...(p.subresource ? { subresource: p.subresource } : {}),
          ...(p.namespace ? { namespace: p.namespace } : {}),
          ...(p.name ? { name: p.name } : {}),
        },
      },
    },
    ...(signal ? { signal } : {}),
  });
  if (res.status !== 201 && res.status !== 200) {
    throw new Error(`SelfSubjectAccessReview: HTTP ${res.status} ${res.text.slice(0, 200)}`);
  }
  return (JSON.parse(res.text) as { status?: { allowed?: boolean } }).status?.allowed === true;
}

/**
 * The identity may do everything the enabled jobs (and ks-upgrade itself) will do: one
 * SelfSubjectAccessReview per verb × resource × namespace × name of their access table. Rules
 * narrowed to a namespace that does not exist are not asked about (there is nothing there).
 */
export async function checkAccess(env: PreflightEnv): Promise<PreflightCheckResult> {
  const name = 'access';
  const table = accessTable(env.config, env.registry);
  const rules = table.jobs.flatMap((j) => j.rules.map((rule) => ({ job: j.job, rule })));
  const all = permissionsOf(rules);
  const namespaces = [...new Set(all.flatMap((p) => (p.namespace ? [p.namespace] : [])))].sort();
  const absent: string[] = [];
  try {
    for (const ns of namespaces) {
      const res = await env.client.transport.request({
        method: 'GET',
        path: `/api/v1/namespaces/${encodeURIComponent(ns)}`,
      });
      if (res.status === 404) absent.push(ns);
    }
    const asked = all.filter((p) => !p.namespace || !absent.includes(p.namespace));
    const missing: Permission[] = [];
    await forEachLimit(asked, 8, async (p) => {
      if (!(await allowed(env.client, p, env.signal))) missing.push(p);
    });
    missing.sort((a, b) => describePermission(a).localeCompare(describePermission(b)));
    const counted = `${asked.length} permissions of ${table.jobs.map((j) => j.job).join(', ')}${
      absent.length > 0 ? ` (not asked in absent namespaces ${absent.join(', ')})` : ''
    }`;
    const problems: string[] = [];
    if (table.undeclared.length > 0)
      problems.push(`jobs without an access table: ${table.undeclared.join(', ')}`);
    if (missing.length > 0) {
      problems.push(
        `${missing.length} missing: ${missing
          .slice(0, 25)
          .map((p) => `${describePermission(p)} (${p.job}: ${p.why})`)
          .join('; ')}${missing.length > 25 ? `; … ${missing.length - 25} more` : ''}`,
      );
    }
    if (problems.length > 0) {
      return fail(
        name,
        `${counted}; ${problems.join('; ')}`,
        'apply the roles `ks-upgrade rbac --config <your config>` prints (docs/rbac.md) to the identity the worker uses' +
          (table.undeclared.length > 0 ? '; declare `access` on the factories of plugin jobs' : ''),
      );
    }
    return ok(name, `all ${counted} are allowed`);
  } catch (err) {
    return fail(
      name,
      `cannot check the permissions: ${describeError(err)}`,
      'the identity must be allowed to create selfsubjectaccessreviews (every authenticated user is, by default)',
    );
  }
}

// ---- charts and images --------------------------------------------------------------------------

/** A chart the upgrade will need, and what fetching it gave. */
export interface ChartResult {
  what: string;
  source: ChartSource;
  chart?: ChartImages;
  error?: string;
}

/** The charts to check: the ks-core chart and each enabled job's extension chart, when configured. */
export function plannedCharts(env: PreflightEnv): { what: string; source: ChartSource }[] {
  const checks = env.config.checks;
  const out: { what: string; source: ChartSource }[] = [];
  if (checks?.coreChart)
    out.push({ what: 'ks-core', source: parseChartSource(checks.coreChart, 'checks.coreChart') });
  if (checks?.extensionCharts) {
    const seen = new Set<string>();
    for (const [job, jc] of Object.entries(env.config.jobs).sort(([a], [b]) => a.localeCompare(b))) {
      const ref = jc.extensionRef;
      if (!jc.enabled || !ref?.version || !env.registry.get(job)) continue;
      const key = `${ref.name}-${ref.version}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({
        what: `extension ${key}`,
        source: extensionChartSource(checks.extensionCharts, ref.name, ref.version),
      });
    }
  }
  return out;
}

/** Pull credentials: the pull secrets the cluster would use, and the worker's own auth file. */
export async function pullCredentials(
  env: PreflightEnv,
  chartSecrets: readonly string[] = [],
): Promise<{ auth: DockerConfigAuth; notes: string[] }> {
  const auth = new DockerConfigAuth();
  const notes: string[] = [];
  const checks: ChecksConfig | undefined = env.config.checks;
  const names: string[] = [];
  try {
    const sa = (await env.client.tryGet(ServiceAccountResource, 'default', KS_NAMESPACE)) as
      { imagePullSecrets?: { name?: string }[]; metadata: unknown } | undefined;
    for (const s of sa?.imagePullSecrets ?? []) if (s.name) names.push(`${KS_NAMESPACE}/${s.name}`);
  } catch (err) {
    notes.push(`cannot read ServiceAccount ${KS_NAMESPACE}/default: ${describeError(err)}`);
  }
  for (const n of chartSecrets) names.push(`${KS_NAMESPACE}/${n}`);
  names.push(...(checks?.pullSecrets ?? []));
  for (const ref of [...new Set(names)]) {
    const [ns = '', secretName = ''] = ref.split('/');
    try {
      const secret: Secret | undefined = await env.client.tryGet(SecretResource, secretName, ns);
      const data = secret?.data?.['.dockerconfigjson'] ?? secret?.data?.['.dockercfg'];
      if (!secret) notes.push(`pull secret ${ref} not found`);
      else if (!data) notes.push(`pull secret ${ref} has no .dockerconfigjson`);
      else auth.add(Buffer.from(data, 'base64').toString('utf8'), `Secret ${ref}`);
    } catch (err) {
      notes.push(`pull secret ${ref}: ${describeError(err)}`);
    }
  }
  if (checks?.registryAuthFile) {
    try {
      auth.add(
        await readFile(checks.registryAuthFile, 'utf8'),
        `checks.registryAuthFile ${checks.registryAuthFile}`,
      );
    } catch (err) {
      notes.push(`checks.registryAuthFile: ${describeError(err)}`);
    }
  }
  return { auth, notes };
}

/** The registry client of the checks. */
export async function registryClient(env: PreflightEnv, auth: DockerConfigAuth): Promise<RegistryClient> {
  const checks = env.config.checks;
  return new RegistryClient({
    auth,
    insecureRegistries: checks?.insecureRegistries ?? [],
    ...(checks?.caFile ? { ca: await readFile(checks.caFile) } : {}),
    ...(env.signal ? { signal: env.signal } : {}),
  });
}

/** Fetches every planned chart and reads its images. */
export async function fetchCharts(
  env: PreflightEnv,
  client: RegistryClient,
  ca?: Buffer,
): Promise<ChartResult[]> {
  const overrides = env.config.checks?.imageRegistry
    ? { global: { imageRegistry: env.config.checks.imageRegistry } }
    : {};
  const results: ChartResult[] = [];
  for (const { what, source } of plannedCharts(env)) {
    env.heartbeat?.(`fetch chart ${what}`);
    try {
      const archive = await fetchChart(source, {
        registry: client,
        http: { ...(ca ? { ca } : {}), ...(env.signal ? { signal: env.signal } : {}) },
      });
      results.push({ what, source, chart: chartImages(archive, overrides) });
    } catch (err) {
      results.push({ what, source, error: describeError(err) });
    }
  }
  return results;
}

/** Every chart the upgrade needs is where the config says. */
export function checkCharts(charts: readonly ChartResult[]): PreflightCheckResult {
  const name = 'charts';
  if (charts.length === 0) {
    return ok(name, 'not checked: no chart source configured (checks.coreChart, checks.extensionCharts)');
  }
  const bad = charts.filter((c) => c.error);
  const good = charts.filter((c) => c.chart).map((c) => `${c.what} (${c.chart?.name}-${c.chart?.version})`);
  if (bad.length > 0) {
    return fail(
      name,
      `${bad.length} of ${charts.length} charts unavailable: ${bad.map((c) => `${c.what} from ${describeChartSource(c.source)}: ${c.error ?? ''}`).join('; ')}${good.length > 0 ? `; found ${good.join(', ')}` : ''}`,
      'publish the missing charts to the configured source (helm push / the museum), or correct checks.coreChart / checks.extensionCharts and the jobs’ extensionRef versions',
    );
  }
  return ok(name, `found ${good.join(', ')}`);
}

/** Every image of those charts (and `checks.images`) is in its registry, pullable with the cluster's pull secrets. */
export async function checkImages(
  env: PreflightEnv,
  charts: readonly ChartResult[],
  client: RegistryClient,
  auth: DockerConfigAuth,
  notes: readonly string[],
): Promise<PreflightCheckResult> {
  const name = 'images';
  const refs = new Set<string>(charts.flatMap((c) => c.chart?.images ?? []));
  for (const i of env.config.checks?.images ?? []) {
    try {
      refs.add(formatImageRef(parseImageRef(i)));
    } catch (err) {
      return fail(name, `checks.images: ${describeError(err)}`, 'fix the image reference in checks.images');
    }
  }
  if (refs.size === 0)
    return ok(name, 'not checked: no chart and no image configured (checks.coreChart, checks.images)');
  const missing: string[] = [];
  const denied: string[] = [];
  const errors: string[] = [];
  const registries = new Set<string>();
  await forEachLimit([...refs].sort(), 6, async (ref) => {
    const parsed = parseImageRef(ref);
    registries.add(parsed.registry);
    env.heartbeat?.(`image ${ref}`);
    const status = await client.manifest(parsed);
    if (status.state === 'missing') missing.push(ref);
    else if (status.state === 'denied') denied.push(`${ref} (${status.detail})`);
    else if (status.state === 'error') errors.push(`${ref} (${status.detail})`);
  });
  const creds = auth.hosts();
  const how = `pull credentials for ${creds.length > 0 ? creds.join(', ') : 'no registry'}${notes.length > 0 ? `; ${notes.join('; ')}` : ''}`;
  const where = [...registries].sort().join(', ');
  if (missing.length + denied.length + errors.length === 0) {
    return ok(name, `all ${refs.size} images are present in ${where} (${how})`);
  }
  const context = `${refs.size} images in ${where} (${how})`;
  const parts = [
    missing.length > 0 ? `missing: ${missing.sort().join(', ')}` : '',
    denied.length > 0 ? `not pullable with the pull secrets: ${denied.sort().join(', ')}` : '',
    errors.length > 0 ? `registry errors: ${errors.sort().join(', ')}` : '',
  ].filter(Boolean);
  return fail(
    name,
    `${context}; ${parts.join('; ')}`,
    'copy the missing images into the registry (e.g. `crane copy` / `skopeo copy` from docker.io), or fix the image pull secret of ' +
      `ServiceAccount ${KS_NAMESPACE}/default / checks.pullSecrets; checks.imageRegistry names the mirror the charts are installed with`,
  );
}

// ---- store --------------------------------------------------------------------------------------

/** Objects the enabled jobs list (and back up), counted to estimate the backups' size. */
async function estimateBackups(
  env: PreflightEnv,
): Promise<{ objects: number; bytes: number; notes: string[] }> {
  const table = accessTable(env.config, env.registry);
  const targets = new Map<string, { group: string; resource: string; namespace?: string }>();
  for (const j of table.jobs) {
    if (j.job === '_framework') continue;
    for (const r of j.rules) {
      if (r.on === 'members' || !r.verbs.includes('list')) continue;
      for (const res of r.resources) {
        if (res.includes('/') || res === 'pods') continue;
        for (const ns of r.namespaces?.length ? r.namespaces : [undefined]) {
          targets.set(`${r.group}/${res}/${ns ?? ''}`, {
            group: r.group,
            resource: res,
            ...(ns ? { namespace: ns } : {}),
          });
        }
      }
    }
  }
  const versions = new Map<string, string | undefined>();
  const preferred = async (group: string): Promise<string | undefined> => {
    if (group === '') return 'v1';
    if (!versions.has(group)) {
      const res = await env.client.transport.request({ method: 'GET', path: `/apis/${group}` });
      versions.set(
        group,
        res.status === 200
          ? (JSON.parse(res.text) as { preferredVersion?: { groupVersion?: string } }).preferredVersion
              ?.groupVersion
          : undefined,
      );
    }
    return versions.get(group);
  };
  let objects = 0;
  let bytes = 0;
  const notes: string[] = [];
  for (const t of targets.values()) {
    const gv = await preferred(t.group);
    if (!gv) continue; // not served on this cluster: nothing to back up
    const base = t.group === '' ? `/api/${gv}` : `/apis/${gv}`;
    const res = await env.client.transport.request({
      method: 'GET',
      path: `${base}${t.namespace ? `/namespaces/${t.namespace}` : ''}/${t.resource}`,
      query: { limit: 100 },
    });
    if (res.status !== 200) {
      if (res.status !== 404) notes.push(`${t.resource}: HTTP ${res.status}`);
      continue;
    }
    const list = JSON.parse(res.text) as { items?: unknown[]; metadata?: { remainingItemCount?: number } };
    const n = list.items?.length ?? 0;
    const total = n + (list.metadata?.remainingItemCount ?? 0);
    objects += total;
    if (n > 0) bytes += Math.ceil((res.text.length / n) * total);
  }
  return { objects, bytes, notes };
}

const mib = (b: number): string => `${(b / (1 << 20)).toFixed(b < 10 << 20 ? 1 : 0)} MiB`;

/** Free bytes of the file system a (possibly not yet created) directory would be on. */
async function freeBytes(dir: string): Promise<number> {
  let d = path.resolve(dir);
  for (;;) {
    try {
      const s = await statfs(d);
      return s.bavail * s.bsize;
    } catch (err) {
      const parent = path.dirname(d);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === d) throw err;
      d = parent;
    }
  }
}

/**
 * The backup store: writable (a probe key written, read back and deleted), large enough for the
 * planned backups (local: free space against twice the estimate), and encrypted where a job
 * backs up credentials.
 */
export async function checkStore(env: PreflightEnv): Promise<PreflightCheckResult> {
  const name = 'store';
  const storage = env.config.storage;
  const needKey = Object.entries(env.config.jobs)
    .filter(([job, jc]) => jc.enabled && env.registry.get(job)?.requiresEncryption)
    .map(([job]) => job)
    .sort();
  let location = storage.s3
    ? `s3://${storage.s3.bucket}/${storage.s3.prefix}`
    : `local:${storage.local.path}`;
  const facts: string[] = [];
  try {
    const key = await loadEncryptionKey(storage.encryption);
    if (needKey.length > 0 && !key) {
      return fail(
        name,
        `jobs ${needKey.join(', ')} back up credentials and storage.encryption is not set`,
        'configure storage.encryption.keyFile (or keyEnv) with a 32-byte key, e.g. `head -c 32 /dev/urandom > backup.key`; keep the key',
      );
    }
    facts.push(key ? `encrypted (key ${key.id})` : 'not encrypted (no job needs it)');
  } catch (err) {
    return fail(
      name,
      `storage.encryption: ${describeError(err)}`,
      'fix storage.encryption (the key file must hold 32 bytes)',
    );
  }
  try {
    const s = await createStorage(storage);
    location = s.location;
    const probe = `ks-upgrade-preflight/${env.cluster}/probe-${randomBytes(6).toString('hex')}`;
    const data = randomBytes(32);
    await s.put(probe, data);
    try {
      const back = await s.get(probe);
      if (!Buffer.from(back).equals(data))
        throw new Error('the probe read back differs from what was written');
    } finally {
      await s.delete(probe);
    }
    facts.unshift(`wrote, read back and deleted a probe at ${location}`);
  } catch (err) {
    return fail(
      name,
      `the backup store ${location} is not writable: ${describeError(err)}`,
      storage.s3
        ? 'check the bucket, the endpoint and that the credentials may PutObject/GetObject/DeleteObject'
        : `make ${storage.local.path} a writable directory for the user running the worker`,
    );
  }
  try {
    const estimate = await estimateBackups(env);
    const need = estimate.bytes * 2;
    facts.push(
      `the enabled jobs back up ≈ ${estimate.objects} objects ≈ ${mib(estimate.bytes)}${estimate.notes.length > 0 ? ` (${estimate.notes.join(', ')})` : ''}`,
    );
    if (storage.s3) {
      facts.push('S3 reports no free space: the bucket’s quota, if any, is not known');
    } else {
      const free = await freeBytes(storage.local.path);
      facts.push(`${mib(free)} free`);
      if (free < need) {
        return fail(
          name,
          facts.join('; '),
          `free at least ${mib(need - free)} on the file system of ${storage.local.path} (twice the estimate: backups are kept per attempt), or use storage.s3`,
        );
      }
    }
  } catch (err) {
    facts.push(`size not estimated: ${describeError(err)}`);
  }
  return ok(name, facts.join('; '));
}

// ---- concurrent-upgrade -------------------------------------------------------------------------

/** No other upgrade of this cluster is running. */
export function checkConcurrentUpgrade(env: PreflightEnv): PreflightCheckResult {
  const name = 'concurrent-upgrade';
  const c = env.concurrent;
  if (!c)
    return ok(
      name,
      'not checked: no Temporal service to ask (only upgrades started through Temporal are seen)',
    );
  if (c.error) return ok(name, `not checked: ${c.source}: ${c.error}`);
  const others = c.running.filter(
    (r) => !(c.self && r.workflowId === c.self.workflowId && (!c.self.runId || r.runId === c.self.runId)),
  );
  if (others.length > 0) {
    return fail(
      name,
      `another upgrade of cluster ${env.cluster} is running (${c.source}): ${others
        .map(
          (o) =>
            `${o.workflowId}${o.runId ? ` run ${o.runId}` : ''}${o.startTime ? ` since ${o.startTime}` : ''}`,
        )
        .join(', ')}`,
      `let it finish (\`ks-upgrade status ${env.cluster}\`), or abort it (\`ks-upgrade resolve ${env.cluster} abort --reason …\` when it waits for an operator); two upgrades of one cluster would undo each other`,
    );
  }
  return ok(
    name,
    `no other upgrade of cluster ${env.cluster} is running (${c.source})${c.self ? `; this one is ${c.self.workflowId}` : ''}`,
  );
}
