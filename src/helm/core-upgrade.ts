// The KubeSphere v4 core upgrade that gate `helm` runs between pre- and post-upgrade, with the real
// helm binary: the v4 CRDs of the target chart (server-side apply), then `helm upgrade ks-core`
// with the values KubeSphere's own upgrade.sh derives from the cluster, plus the config's. And its
// undo: `helm rollback ks-core <revision>` plus the objects helm took over put back as they were.
//
// Idempotency rests on two kinds of record in the store, written before helm runs:
//   run-<runId>/start     the newest deployed revision and a snapshot of every object the upgrade
//                         touches, taken once per workflow run, before the first `helm upgrade`;
//   run-<runId>/attempt-N the release revision when attempt N (a gate attempt of the workflow)
//                         started helm. A retried activity (crash, lost worker) that finds its
//                         attempt's record and a newer revision knows helm already ran: it reads
//                         the outcome instead of running helm again.
import { createHash } from 'node:crypto';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as yaml from 'js-yaml';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  DeploymentResource,
  PersistentVolumeClaimResource,
  SecretResource,
  ServiceResource,
  type CustomResourceDefinition,
} from '../api/core.js';
import { CLUSTER_CONFIGURATION, ClusterConfigurationResource } from '../api/v3/index.js';
import type { HelmUpgradeConfig } from '../config/types.js';
import { KsUpgradeError, ValidationError } from '../errors.js';
import { forCreate } from '../jobs/helpers.js';
import { withoutAdoptionStubs } from '../jobs/iam/prepare.js';
import type { Logger } from '../jobs/types.js';
import type { ResourceClient } from '../kube/client.js';
import { waitForCrdEstablished } from '../kube/crd.js';
import { resolveResource } from '../kube/discovery.js';
import type { KubeObject, ResourceType } from '../kube/types.js';
import { KUBESPHERE_NAMESPACE, clusterRole } from '../kubesphere/index.js';
import type { ResourceStore } from '../store/index.js';
import { sleep } from '../util/concurrency.js';
import { getPath, isRecord } from '../util/object.js';
import { HelmCommandError, type HelmSession } from './cli.js';
import { decodeRelease, encodeRelease, releaseSecretName } from './release.js';

/** The KubeSphere core release. */
export const KS_CORE = { name: 'ks-core', namespace: KUBESPHERE_NAMESPACE } as const;

/** The store scope (`<cluster>/ks-core/…`) of the core upgrade's records. */
export const CORE_STORE_SCOPE = 'ks-core';

/** There is no ks-core release to upgrade. */
export class CoreReleaseMissingError extends KsUpgradeError {}

/** `helm upgrade` (or `helm rollback`) created a revision that did not end `deployed`. */
export class HelmReleaseFailedError extends KsUpgradeError {}

/** Another Helm operation on ks-core stays pending past the timeout. */
export class HelmReleaseBusyError extends KsUpgradeError {}

/** A v3 object stands where the v4 chart will create one of the same name. */
export class CoreUpgradeConflictError extends KsUpgradeError {}

/** One entry of `helm history -o json`. */
export interface HelmRevision {
  revision: number;
  updated?: string;
  status: string;
  /** `<name>-<version>`. */
  chart: string;
  app_version?: string;
  description?: string;
}

/** `Chart.yaml` of a chart, as `helm show chart` prints it. */
export interface ChartInfo {
  name: string;
  version: string;
  appVersion?: string;
}

/** Dependencies of every step: a helm session on the target, its API client, the scoped store. */
export interface CoreUpgradeDeps {
  helm: HelmSession;
  kube: ResourceClient;
  /** Scoped to `(cluster, CORE_STORE_SCOPE)`. */
  store: ResourceStore;
  config: HelmUpgradeConfig;
  logger?: Logger;
  /** Called while waiting and while helm runs (activities heartbeat here). */
  heartbeat?: (detail: string) => void;
  signal?: AbortSignal;
  /** How often to poll a pending release, ms (default 2 s). */
  pollMs?: number;
}

/** Which workflow run and which of its gate attempts a step belongs to. */
export interface CoreAttempt {
  runId: string;
  attempt: number;
}

const PENDING = /^pending-/;

// ---------------------------------------------------------------------------------------------
// Reading the release

/** Revisions of a release, oldest first; empty when there is no such release. */
export async function releaseRevisions(
  helm: HelmSession,
  name: string = KS_CORE.name,
  namespace: string = KS_CORE.namespace,
): Promise<HelmRevision[]> {
  try {
    const { stdout } = await helm.run(['history', name, '-n', namespace, '-o', 'json']);
    const parsed = JSON.parse(stdout) as HelmRevision[];
    return parsed.sort((a, b) => a.revision - b.revision);
  } catch (err) {
    if (err instanceof HelmCommandError && /release: not found/.test(err.stderr)) return [];
    throw err;
  }
}

/** The values a revision was installed with (`helm get values`, user-supplied only). */
export async function releaseValues(
  helm: HelmSession,
  revision?: number,
  name: string = KS_CORE.name,
  namespace: string = KS_CORE.namespace,
): Promise<Record<string, unknown>> {
  const args = ['get', 'values', name, '-n', namespace, '-o', 'json'];
  if (revision !== undefined) args.push('--revision', String(revision));
  const parsed = JSON.parse((await helm.run(args)).stdout) as unknown;
  return isRecord(parsed) ? parsed : {};
}

/** The manifest of a revision, as objects (`helm get manifest`). */
async function releaseManifest(helm: HelmSession, revision: number): Promise<KubeObject[]> {
  const { stdout } = await helm.run([
    'get',
    'manifest',
    KS_CORE.name,
    '-n',
    KS_CORE.namespace,
    '--revision',
    String(revision),
  ]);
  return manifestObjects(stdout);
}

/** The objects of a multi-document manifest (empty documents dropped). */
export function manifestObjects(text: string): KubeObject[] {
  return yaml
    .loadAll(text)
    .filter((d): d is KubeObject => isRecord(d) && typeof d.kind === 'string' && isRecord(d.metadata));
}

function isTarget(rev: HelmRevision, chart: ChartInfo): boolean {
  return (
    rev.chart === `${chart.name}-${chart.version}` &&
    (chart.appVersion === undefined || rev.app_version === chart.appVersion)
  );
}

/**
 * The revisions once no Helm operation is pending: a helm left running by a worker that died
 * finishes (or fails) on its own, and its outcome must be read, not raced. Bounded by `timeoutMs`.
 */
async function revisionsWhenIdle(deps: CoreUpgradeDeps, timeoutMs: number): Promise<HelmRevision[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const revs = await releaseRevisions(deps.helm);
    const latest = revs.at(-1);
    if (!latest || !PENDING.test(latest.status)) return revs;
    if (Date.now() >= deadline) {
      const lastGood = [...revs].reverse().find((r) => r.status === 'deployed');
      throw new HelmReleaseBusyError(
        `ks-core revision ${latest.revision} is still ${latest.status} after ${Math.round(timeoutMs / 1000)}s: ` +
          'another helm operation is running, or one died half way',
        {
          hint:
            `if no helm runs on ks-core any more: \`helm rollback ks-core ${lastGood?.revision ?? '<last deployed revision>'} -n ${KS_CORE.namespace}\` ` +
            `(or delete Secret sh.helm.release.v1.ks-core.v${latest.revision} in ${KS_CORE.namespace}, as upgrade.sh advises), then retry`,
        },
      );
    }
    deps.heartbeat?.(`ks-core revision ${latest.revision} is ${latest.status}; waiting for it to finish`);
    await sleep(deps.pollMs ?? 2000, deps.signal);
  }
}

// ---------------------------------------------------------------------------------------------
// The target chart

/** A chart reference the helm CLI resolves itself (repository, OCI registry, URL). */
function isRemote(config: HelmUpgradeConfig): boolean {
  return config.repo !== undefined || /^[a-z][a-z0-9+.-]*:\/\//i.test(config.chart ?? '');
}

/** Where the chart comes from, for messages. */
export function describeChart(config: HelmUpgradeConfig): string {
  const version = config.version ? ` version ${config.version}` : '';
  return config.repo
    ? `${config.chart ?? ''} from ${config.repo}${version}`
    : `${config.chart ?? ''}${version}`;
}

/**
 * The target chart as a local file: remote charts are pulled (`helm pull`) into the session's work
 * dir once, so CRDs, dry run and upgrade all use the very same chart.
 */
export async function fetchChart(helm: HelmSession, config: HelmUpgradeConfig): Promise<string> {
  const chart = config.chart;
  if (!chart) {
    throw new ValidationError('gate helm needs the target ks-core chart, but upgrade.helm.chart is not set', {
      hint: 'set upgrade.helm.chart (a .tgz, an oci:// reference, a chart URL, or a chart name with upgrade.helm.repo)',
    });
  }
  if (!isRemote(config)) {
    const local = path.resolve(chart);
    try {
      await stat(local);
    } catch {
      throw new ValidationError(`upgrade.helm.chart is ${chart}, which does not exist on the worker`, {
        hint: 'give the path of the ks-core chart (.tgz or directory) as the worker sees it, or an oci:// reference',
      });
    }
    return local;
  }
  const dest = path.join(helm.dir, `chart-${Date.now().toString(36)}`);
  await mkdir(dest, { recursive: true });
  const args = ['pull', chart, '--destination', dest];
  if (config.repo) args.push('--repo', config.repo);
  if (config.version) args.push('--version', config.version);
  if (config.plainHttp) args.push('--plain-http');
  try {
    await helm.run(args);
  } catch (err) {
    if (err instanceof HelmCommandError) {
      throw new HelmCommandError(`helm pull ${describeChart(config)}`, err.exitCode, err.stderr, {
        hint:
          'check upgrade.helm.chart/repo/version and that the worker reaches the registry; for a private ' +
          'registry run `helm registry login` (or `helm repo add` with credentials) as the worker user',
      });
    }
    throw err;
  }
  const files = (await readdir(dest)).filter((f) => f.endsWith('.tgz'));
  if (files.length !== 1 || !files[0]) {
    throw new KsUpgradeError(
      `helm pull ${describeChart(config)} left ${files.length} chart files in ${dest}`,
    );
  }
  return path.join(dest, files[0]);
}

/** `helm show chart`. */
export async function showChart(helm: HelmSession, chartPath: string): Promise<ChartInfo> {
  const doc = yaml.load((await helm.run(['show', 'chart', chartPath])).stdout);
  const name = getPath(doc, ['name']);
  const version = getPath(doc, ['version']);
  const appVersion = getPath(doc, ['appVersion']);
  if (typeof name !== 'string' || typeof version !== 'string') {
    throw new ValidationError(`${chartPath} has no chart name and version in its Chart.yaml`, {
      hint: 'upgrade.helm.chart must be the ks-core chart',
    });
  }
  if (name !== KS_CORE.name) {
    throw new ValidationError(`upgrade.helm.chart is the chart "${name}", not ks-core`, {
      hint: 'point upgrade.helm.chart at the KubeSphere v4 ks-core chart',
    });
  }
  return { name, version, ...(typeof appVersion === 'string' ? { appVersion } : {}) };
}

/** The CRDs of the chart and its sub-charts (`helm show crds`), each checked to be a v1 CRD. */
export async function chartCrds(helm: HelmSession, chartPath: string): Promise<CustomResourceDefinition[]> {
  const docs = manifestObjects((await helm.run(['show', 'crds', chartPath])).stdout);
  return docs.map((d, i) => {
    if (d.kind !== 'CustomResourceDefinition' || d.apiVersion !== 'apiextensions.k8s.io/v1') {
      throw new ValidationError(
        `document ${i + 1} of the chart's crds/ is ${d.apiVersion ?? '?'} ${d.kind ?? '?'} ${d.metadata.name ?? ''}, not an apiextensions.k8s.io/v1 CRD`,
        { hint: 'upgrade.helm.chart must be the ks-core chart' },
      );
    }
    return d as CustomResourceDefinition;
  });
}

/**
 * Server-side applies the CRDs (field manager ks-upgrade, forced: the v3 CRDs were applied by
 * kubectl or Helm, whose fields must be taken over) and waits until each is Established. SSA has
 * no size limit of its own, unlike kubectl's client-side `last-applied-configuration`.
 */
export async function applyCrds(
  kube: ResourceClient,
  crds: CustomResourceDefinition[],
  options: { signal?: AbortSignal; onProgress?: (detail: string) => void } = {},
): Promise<string[]> {
  const names: string[] = [];
  for (const crd of crds) {
    await kube.apply(CustomResourceDefinitionResource, crd, { force: true });
    names.push(crd.metadata.name ?? '');
    options.onProgress?.(`applied CRD ${crd.metadata.name ?? ''} (${names.length}/${crds.length})`);
  }
  for (const name of names) {
    await waitForCrdEstablished(kube, name, {
      reporter: {
        ...(options.signal ? { signal: options.signal } : {}),
        heartbeat: (p) => options.onProgress?.(p?.message ?? `waiting for CRD ${name} to be Established`),
      },
    });
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Values

/** Sets `a.b.c` in a nested object (creating mappings on the way, replacing non-mappings). */
export function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (!isRecord(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = keys.at(-1);
  if (last !== undefined) node[last] = value;
}

/**
 * What KubeSphere v4.1.3's upgrade.sh passes to `helm upgrade ks-core`, derived from the cluster
 * instead of asked: `multicluster.role` (a member stays member; a host or a single cluster becomes
 * host), `ha.enabled` when the v3 installer ran redis (cc status.redis.status enabled) and
 * `redisHA.enabled` when it ran redis HA (cc spec.common.redis.enableHA). See docs/operations.md.
 */
export async function mappedCoreValues(kube: ResourceClient): Promise<Record<string, unknown>> {
  const role = (await clusterRole(kube)) === 'member' ? 'member' : 'host';
  const values: Record<string, unknown> = { multicluster: { role } };
  const cc = await kube.tryGet(
    ClusterConfigurationResource,
    CLUSTER_CONFIGURATION.name,
    CLUSTER_CONFIGURATION.namespace,
  );
  if (getPath(cc, ['status', 'redis', 'status']) === 'enabled') values.ha = { enabled: true };
  if (getPath(cc, ['spec', 'common', 'redis', 'enableHA']) === true) values.redisHA = { enabled: true };
  return values;
}

/**
 * The generated values file: the mapped values, then `upgrade.helm.set`, then `upgrade.enabled:
 * false` — the chart's own ks-upgrade hook jobs would run the upgrade jobs a second time; the
 * workflow runs them.
 */
export function coreValues(
  mapped: Record<string, unknown>,
  set: Record<string, unknown>,
): Record<string, unknown> {
  const values = structuredClone(mapped);
  for (const [key, value] of Object.entries(set)) setPath(values, key, structuredClone(value));
  setPath(values, 'upgrade.enabled', false);
  return values;
}

// upgrade.sh deletes these (not Helm-managed) before the upgrade when redis is on: the v4 chart
// creates objects of the same names and helm refuses to adopt them.
const V3_REDIS: { rt: ResourceType; name: string }[] = [
  { rt: DeploymentResource, name: 'redis' },
  { rt: ServiceResource, name: 'redis' },
  { rt: SecretResource, name: 'redis-secret' },
  { rt: ConfigMapResource, name: 'redis-configmap' },
  { rt: PersistentVolumeClaimResource, name: 'redis-pvc' },
];

/**
 * With `ha.enabled` the v4 chart creates a redis of its own: v3 redis objects of the same names
 * that Helm does not manage make `helm upgrade` fail half way. Refuse before anything changes.
 */
export async function checkRedisConflicts(
  kube: ResourceClient,
  values: Record<string, unknown>,
): Promise<void> {
  if (getPath(values, ['ha', 'enabled']) !== true) return;
  const found: string[] = [];
  for (const { rt, name } of V3_REDIS) {
    const obj = await kube.tryGet(rt, name, KS_CORE.namespace);
    if (obj && obj.metadata.labels?.['app.kubernetes.io/managed-by'] !== 'Helm')
      found.push(`${rt.kind} ${name}`);
  }
  if (found.length === 0) return;
  throw new CoreUpgradeConflictError(
    `ks-core v4 deploys its own redis (ha.enabled from the v3 ClusterConfiguration), but the v3 redis is still there: ${found.join(', ')} in ${KS_CORE.namespace}`,
    {
      hint:
        `delete the v3 redis as KubeSphere's upgrade.sh does (\`helm del -n ${KS_CORE.namespace} ks-redis\`; ` +
        `\`kubectl -n ${KS_CORE.namespace} delete deploy,svc,secret,cm,pvc -l app.kubernetes.io/managed-by!=Helm --field-selector metadata.name=<name>\` ` +
        'for redis, redis-secret, redis-configmap, redis-pvc), or set upgrade.helm.set ha.enabled: false; then retry',
    },
  );
}

/** The `helm upgrade` arguments (shared by the dry run and the real run). */
async function upgradeArgs(deps: CoreUpgradeDeps, chartPath: string, valuesFile: string): Promise<string[]> {
  for (const file of deps.config.values) {
    try {
      await stat(file);
    } catch {
      throw new ValidationError(`upgrade.helm.values names ${file}, which does not exist on the worker`, {
        hint: 'fix the path (as the worker sees it) or remove the entry',
      });
    }
  }
  return [
    'upgrade',
    KS_CORE.name,
    chartPath,
    '-n',
    KS_CORE.namespace,
    // v3 values (image tags, `config.create: false`, …) mean nothing or harm in the v4 chart.
    '--reset-values',
    ...deps.config.values.flatMap((f) => ['-f', path.resolve(f)]),
    '-f',
    valuesFile,
    '--timeout',
    `${Math.ceil(deps.config.timeout / 1000)}s`,
  ];
}

/** Values go in a 0600 file in the private work dir: they may hold credentials, argv is public. */
async function writeValuesFile(helm: HelmSession, values: Record<string, unknown>): Promise<string> {
  const file = path.join(helm.dir, `values-${Date.now().toString(36)}.yaml`);
  await writeFile(file, yaml.dump(values), { mode: 0o600 });
  return file;
}

// ---------------------------------------------------------------------------------------------
// The snapshot of what the upgrade touches

/** One object the upgrade may create, change or delete, and whether it existed before. */
interface SnapshotEntry {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  existed: boolean;
  /** Store key of its pre-upgrade copy (when it existed). */
  key?: string;
}

interface RunStart {
  /** The newest deployed revision before the first helm upgrade of the run: the rollback target. */
  revision: number;
  chart: string;
  appVersion?: string;
  objects: SnapshotEntry[];
}

const keys = {
  start: (runId: string) => `run-${runId}/start`,
  attempt: (a: CoreAttempt) => `run-${a.runId}/attempt-${a.attempt}`,
  object: (runId: string, id: string) =>
    `run-${runId}/objects/${createHash('sha256').update(id).digest('hex').slice(0, 32)}`,
  rollback: (runId: string) => `run-${runId}/rollback`,
};

function identity(o: {
  apiVersion?: string;
  kind?: string;
  metadata: { name?: string; namespace?: string };
}) {
  return `${o.apiVersion ?? ''}/${o.kind ?? ''}/${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
}

/**
 * Saves every object of the current release and of the upgrade's dry-run manifest as it is now
 * (ConfigMaps and Secrets encrypted: values and credentials live there), and records which did
 * not exist. The rollback puts these back after `helm rollback`, because Helm's three-way merge
 * alone cannot restore objects whose record in the old release is not their content (objects
 * adopted into the release by prepare-upgrade) nor remove objects the old release lists but
 * never created.
 */
async function snapshotTouchedObjects(
  deps: CoreUpgradeDeps,
  runId: string,
  objects: KubeObject[],
): Promise<SnapshotEntry[]> {
  const seen = new Set<string>();
  const entries: SnapshotEntry[] = [];
  for (const o of objects) {
    const id = identity(o);
    if (seen.has(id)) continue;
    seen.add(id);
    const rt = await resolveResource(deps.kube, o.apiVersion ?? '', o.kind ?? '');
    const namespace = rt?.namespaced ? (o.metadata.namespace ?? KS_CORE.namespace) : undefined;
    const base = {
      apiVersion: o.apiVersion ?? '',
      kind: o.kind ?? '',
      name: o.metadata.name ?? '',
      ...(namespace ? { namespace } : {}),
    };
    const live = rt ? await deps.kube.tryGet(rt, base.name, namespace) : undefined;
    if (!live) {
      entries.push({ ...base, existed: false });
      continue;
    }
    const key = keys.object(runId, id);
    await deps.store.saveOnce(key, forCreate({ ...live, apiVersion: base.apiVersion, kind: base.kind }), {
      sensitive: base.kind === 'Secret' || base.kind === 'ConfigMap',
    });
    entries.push({ ...base, existed: true, key });
    deps.heartbeat?.(`saved ${base.kind} ${base.name} before the upgrade (${entries.length})`);
  }
  return entries;
}

/** The manifest `helm upgrade` would apply, from a server-side dry run (also catches adoption errors). */
async function dryRunManifest(deps: CoreUpgradeDeps, args: string[]): Promise<KubeObject[]> {
  const { stdout } = await deps.helm.run([...args, '--dry-run=server', '-o', 'json'], {
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  const release = JSON.parse(stdout) as { manifest?: string };
  return manifestObjects(release.manifest ?? '');
}

// ---------------------------------------------------------------------------------------------
// The upgrade

/** What the upgrade step reports (small: it goes into workflow history). */
export interface CoreUpgradeResult {
  /** The deployed ks-core revision after the step. */
  revision: number;
  chart: string;
  appVersion?: string;
  /** True when this call ran `helm upgrade`; false when it found the upgrade done. */
  ranHelm: boolean;
  reason: string;
}

function concludeUpgrade(revs: HelmRevision[], since: number, chart: ChartInfo): HelmRevision {
  const latest = revs.at(-1);
  if (!latest || latest.revision <= since) {
    throw new KsUpgradeError(`helm upgrade of ks-core created no revision after ${since}`);
  }
  if (latest.status === 'deployed' && isTarget(latest, chart)) return latest;
  throw new HelmReleaseFailedError(
    `helm upgrade of ks-core: revision ${latest.revision} (${latest.chart}) is ${latest.status}` +
      (latest.description ? `: ${latest.description}` : ''),
    {
      hint:
        'read the reason above (`helm history ks-core -n kubesphere-system`); after fixing it, retry (a new ' +
        'attempt runs helm again) or abort (rolls ks-core back to the revision before the upgrade)',
    },
  );
}

/**
 * `helm upgrade ks-core` to the target chart, at most once per attempt. Before acting it reads
 * the release: a revision newer than this attempt's recorded start means helm already ran for the
 * attempt (its outcome is returned or raised, helm is not run again); a release already deployed
 * at the target chart means there is nothing to do.
 */
export async function upgradeCore(deps: CoreUpgradeDeps, attempt: CoreAttempt): Promise<CoreUpgradeResult> {
  const chartPath = await fetchChart(deps.helm, deps.config);
  const chart = await showChart(deps.helm, chartPath);
  const revs = await revisionsWhenIdle(deps, deps.config.timeout);
  const latest = revs.at(-1);
  if (!latest) {
    throw new CoreReleaseMissingError(`there is no ${KS_CORE.name} release in ${KS_CORE.namespace}`, {
      hint: 'gate helm upgrades an existing KubeSphere v3 ks-core release; check the kubeconfig context',
    });
  }
  const result = (rev: HelmRevision, ranHelm: boolean, reason: string): CoreUpgradeResult => ({
    revision: rev.revision,
    chart: rev.chart,
    ...(rev.app_version ? { appVersion: rev.app_version } : {}),
    ranHelm,
    reason,
  });

  let record = await tryLoad<{ startRevision: number }>(deps.store, keys.attempt(attempt));
  if (record && latest.revision > record.startRevision) {
    const done = concludeUpgrade(revs, record.startRevision, chart);
    return result(done, false, `helm upgrade of attempt ${attempt.attempt} had already run`);
  }
  if (!record && latest.status === 'deployed' && isTarget(latest, chart)) {
    return result(latest, false, `ks-core is already deployed at ${latest.chart}`);
  }

  const values = coreValues(await mappedCoreValues(deps.kube), deps.config.set);
  await checkRedisConflicts(deps.kube, values);
  const valuesFile = await writeValuesFile(deps.helm, values);
  const args = await upgradeArgs(deps, chartPath, valuesFile);

  if (!(await deps.store.exists(keys.start(attempt.runId)))) {
    const deployed = [...revs].reverse().find((r) => r.status === 'deployed') ?? latest;
    const objects = [
      ...(await releaseManifest(deps.helm, deployed.revision)),
      ...(await dryRunManifest(deps, args)),
    ];
    const start: RunStart = {
      revision: deployed.revision,
      chart: deployed.chart,
      ...(deployed.app_version ? { appVersion: deployed.app_version } : {}),
      objects: await snapshotTouchedObjects(deps, attempt.runId, objects),
    };
    await deps.store.saveOnce(keys.start(attempt.runId), start);
  }
  record ??= (await deps.store.saveOnce(keys.attempt(attempt), { startRevision: latest.revision })).value;

  deps.logger?.info(
    `helm upgrade ks-core from revision ${latest.revision} (${latest.chart}) to ${chart.name}-${chart.version}`,
  );
  try {
    await deps.helm.run(args, {
      ...(deps.signal ? { signal: deps.signal } : {}),
      onTick: () => deps.heartbeat?.(`helm upgrade ks-core to ${chart.name}-${chart.version} running`),
    });
  } catch (err) {
    const after = await releaseRevisions(deps.helm);
    if ((after.at(-1)?.revision ?? 0) > record.startRevision)
      concludeUpgrade(after, record.startRevision, chart);
    throw err;
  }
  const done = concludeUpgrade(await releaseRevisions(deps.helm), record.startRevision, chart);
  return result(done, true, `helm upgrade deployed revision ${done.revision}`);
}

async function tryLoad<T>(store: ResourceStore, key: string): Promise<T | undefined> {
  return (await store.exists(key)) ? store.load<T>(key) : undefined;
}

// ---------------------------------------------------------------------------------------------
// The rollback

/** What the core rollback reports. */
export interface CoreRollbackResult {
  rolledBack: boolean;
  /** The deployed revision after the rollback (a new revision, at the old chart). */
  revision?: number;
  /** The revision whose content was restored. */
  target?: number;
  restored: number;
  deleted: number;
  reason: string;
}

/**
 * Undoes the core upgrade of a workflow run: `helm rollback ks-core <revision before the upgrade>`
 * (once: a retry that finds the rollback's revision reads its outcome), then every object the
 * upgrade touched back as it was before it — re-created or reverted from the snapshot, deleted when
 * it did not exist. Nothing recorded for the run (helm never ran) → nothing to do. The v4 CRDs are
 * kept: they still serve the v3 versions, and deleting a CRD deletes its objects.
 */
export async function rollbackCore(deps: CoreUpgradeDeps, runId: string): Promise<CoreRollbackResult> {
  const start = await tryLoad<RunStart>(deps.store, keys.start(runId));
  if (!start) {
    return {
      rolledBack: false,
      restored: 0,
      deleted: 0,
      reason: 'the core upgrade did not start in this run',
    };
  }
  const revs = await revisionsWhenIdle(deps, deps.config.timeout);
  const latest = revs.at(-1);
  let revision = latest?.revision;
  if (latest && latest.revision > start.revision) {
    const record = (await deps.store.saveOnce(keys.rollback(runId), { startRevision: latest.revision }))
      .value;
    if (latest.revision === record.startRevision) {
      await prepareRollbackTarget(deps, start);
      deps.logger?.info(`helm rollback ks-core ${start.revision} (from revision ${latest.revision})`);
      try {
        await deps.helm.run(
          [
            'rollback',
            KS_CORE.name,
            String(start.revision),
            '-n',
            KS_CORE.namespace,
            '--timeout',
            `${Math.ceil(deps.config.timeout / 1000)}s`,
          ],
          {
            ...(deps.signal ? { signal: deps.signal } : {}),
            onTick: () => deps.heartbeat?.(`helm rollback ks-core ${start.revision} running`),
          },
        );
      } catch (err) {
        if (!(err instanceof HelmCommandError)) throw err;
        // helm may have recorded the rollback's revision before failing: checked below.
      }
    }
    const after = await releaseRevisions(deps.helm);
    const last = after.at(-1);
    if (!last || last.revision <= record.startRevision || last.status !== 'deployed') {
      throw new HelmReleaseFailedError(
        `helm rollback of ks-core to revision ${start.revision}: latest revision ${last?.revision ?? '?'} is ${last?.status ?? 'missing'}` +
          (last?.description ? `: ${last.description}` : ''),
        {
          hint: `run \`helm rollback ks-core ${start.revision} -n ${KS_CORE.namespace}\` by hand, then abort again`,
        },
      );
    }
    revision = last.revision;
  }
  const { restored, deleted } = await restoreSnapshot(deps, start.objects);
  return {
    rolledBack: true,
    ...(revision !== undefined ? { revision } : {}),
    target: start.revision,
    restored,
    deleted,
    reason: `ks-core back at revision ${start.revision}'s ${start.chart}`,
  };
}

/** Helm leaves an object alone instead of deleting it when its live copy carries this. */
const KEEP = { 'helm.sh/resource-policy': 'keep' } as const;

/**
 * Makes `helm rollback` restore the v3 release as it was, not as prepare-upgrade left it.
 * prepare-upgrade (iam job) appended content-less documents for the objects the v4 chart takes
 * over (built-in GlobalRoles/GlobalRoleBindings, kubesphere-config, …) to the record of the
 * revision we roll back to. Rolled back to, those documents are applied as the objects' desired
 * state: the client-side merge patch from the v4 documents to them nulls every other field
 * (`rules`, `roleRef`, ConfigMap data), which the v4 CRDs reject as required; `--server-side`
 * does not help (helm 4 first converts its client-side field ownership to apply ownership, so the
 * apply of an empty document drops the same fields). Left in, they would also make the v3 release
 * own these objects, and ks-installer's next `helm upgrade` of the v3 chart delete them. So the
 * record loses those documents again (the iam rollback would restore the same manifest, but only
 * after this), and every object that existed before the upgrade but that the target revision does
 * not list gets Helm's keep policy on its live copy, so helm neither patches nor deletes it; the
 * snapshot restore then puts back its pre-upgrade content and metadata (without the keep
 * annotation). Idempotent: a retry finds the stubs gone and the annotation set.
 */
async function prepareRollbackTarget(deps: CoreUpgradeDeps, start: RunStart): Promise<void> {
  const secretName = releaseSecretName(KS_CORE.name, start.revision);
  let manifest = '';
  await deps.kube.mutate(SecretResource, secretName, KS_CORE.namespace, (secret) => {
    const release = decodeRelease(secret);
    manifest = withoutAdoptionStubs(release.manifest);
    if (manifest === release.manifest) return secret;
    secret.data = { ...secret.data, release: encodeRelease({ ...release, manifest }) };
    return secret;
  });
  const listed = new Set(manifestObjects(manifest).map((o) => `${o.kind ?? ''}/${o.metadata.name ?? ''}`));
  for (const entry of start.objects) {
    if (!entry.existed || listed.has(`${entry.kind}/${entry.name}`)) continue;
    const rt = await resolveResource(deps.kube, entry.apiVersion, entry.kind);
    if (!rt || !(await deps.kube.tryGet(rt, entry.name, entry.namespace))) continue;
    await deps.kube.mutate(rt, entry.name, entry.namespace, (obj) => {
      obj.metadata.annotations = { ...obj.metadata.annotations, ...KEEP };
    });
  }
}

// Fields the API server assigns and then refuses to change. An object that helm deleted and a
// rollback created again has new values there; the restore keeps them.
const SERVER_ASSIGNED: Record<string, string[]> = {
  Service: [
    'spec.clusterIP',
    'spec.clusterIPs',
    'spec.ipFamilies',
    'spec.ipFamilyPolicy',
    'spec.healthCheckNodePort',
  ],
  PersistentVolumeClaim: ['spec.volumeName'],
  Job: ['spec.selector', 'spec.template.metadata.labels'],
};

function serverAssigned(kind: string, live: Record<string, unknown>): [string, unknown][] {
  return (SERVER_ASSIGNED[kind] ?? []).flatMap((field) => {
    const value = getPath(live, field.split('.'));
    return value === undefined ? [] : [[field, value] as [string, unknown]];
  });
}

/** Puts every snapshot object back (reverse manifest order); removes those that did not exist. */
async function restoreSnapshot(
  deps: CoreUpgradeDeps,
  objects: SnapshotEntry[],
): Promise<{ restored: number; deleted: number }> {
  let restored = 0;
  let deleted = 0;
  for (const entry of [...objects].reverse()) {
    const rt = await resolveResource(deps.kube, entry.apiVersion, entry.kind);
    if (!rt) continue;
    if (!entry.existed) {
      if (await deps.kube.delete(rt, entry.name, entry.namespace, { propagationPolicy: 'Background' }))
        deleted++;
      continue;
    }
    const saved = await deps.store.load<KubeObject>(entry.key ?? '');
    const live = await deps.kube.tryGet(rt, entry.name, entry.namespace);
    if (!live) {
      await deps.kube.create(rt, saved);
    } else {
      await deps.kube.mutate(rt, entry.name, entry.namespace, (current) => {
        const keep = current as unknown as Record<string, unknown>;
        const assigned = serverAssigned(entry.kind, keep);
        for (const key of Object.keys(keep)) {
          if (!['apiVersion', 'kind', 'metadata', 'status'].includes(key)) Reflect.deleteProperty(keep, key);
        }
        const { metadata, ...content } = structuredClone(saved) as KubeObject & Record<string, unknown>;
        Object.assign(keep, content);
        for (const [field, value] of assigned) setPath(keep, field, value);
        current.metadata.labels = metadata.labels;
        current.metadata.annotations = metadata.annotations;
      });
    }
    restored++;
    deps.heartbeat?.(`restored ${entry.kind} ${entry.name}`);
  }
  return { restored, deleted };
}
