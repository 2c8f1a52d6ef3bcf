// The `application` job (priority 100): the v3 OpenPitrix app store → KubeSphere v4 app store
// (`application.kubesphere.io/v2`, extension `openpitrix`) — reference §4.3, with §7.2 item 12
// fixed. Steps, store keys and decisions: docs/jobs/application.md.
import { NamespaceResource } from '../../api/core.js';
import {
  HelmApplicationResource,
  HelmApplicationVersionResource,
  HelmCategoryResource,
  HelmReleaseResource,
  HelmRepoResource,
} from '../../api/v3/index.js';
import {
  ApplicationReleaseResource,
  ApplicationResource,
  ApplicationVersionResource,
  CategoryResource,
  RepoResource,
} from '../../api/v4/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { ValidationError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import type { ResourceClient } from '../../kube/client.js';
import { InvalidError, ForbiddenError } from '../../kube/errors.js';
import {
  apiVersionOf,
  type KubeList,
  type KubeObject,
  type OwnerReference,
  type ResourceType,
} from '../../kube/types.js';
import { ccFlag, getClusterConfiguration, isHostCluster } from '../../kubesphere/index.js';
import { BackupKeyNotFound } from '../../store/index.js';
import { getPath } from '../../util/object.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { loadOptional } from '../helpers.js';
import { loadBackup, requireBackups } from '../patterns.js';
import { downloadCharts, restoreCharts } from './charts.js';
import {
  APPLICATION_JOB_NAME,
  APPLICATION_NAMESPACE,
  DEFAULT_MINIO_BUCKET,
  DEFAULT_MINIO_ENDPOINT,
  RELEASE_PROBLEMS_KEY,
  STORE_ENABLED_PATH,
  SYSTEM_WORKSPACE,
  V4,
  backupKey,
} from './constants.js';
import {
  findReleaseProblems,
  hasCredential,
  toApplication,
  toApplicationVersion,
  toCategory,
  toRelease,
  toRepo,
  type Converted,
  type HelmApplication,
  type HelmApplicationVersion,
  type HelmCategory,
  type HelmRelease,
  type HelmRepo,
  type ReleaseIdentity,
  type ReleaseProblem,
  type V4Object,
} from './convert.js';

export * from './constants.js';
export * from './convert.js';
export { ChartStorageError, minioKey, v4S3Target } from './charts.js';

/** `jobs.application.dynamicOptions`. */
export interface ApplicationOptions {
  /** The v3 MinIO (default `http://minio.kubesphere-system.svc:9000`, which the original hard-coded). */
  minioEndpoint: string;
  minioBucket: string;
  minioRegion: string;
  /**
   * What to do with releases that cannot keep their helm release name (shared names, invalid names,
   * taken names): `fail` (default) stops before any release is created and lists them; `skip`
   * migrates the others and records these under store key `application-release-problems`.
   */
  releaseNameConflicts: 'fail' | 'skip';
}

/** Releases cannot be migrated under their names; the operator decides (see the hint). */
export class ReleaseNameConflictError extends ValidationError {}

/** A backup post-upgrade needs is missing: pre-upgrade has not run here (retrying cannot help). */
export { MissingBackupError } from '../patterns.js';

/** The v3 kinds backed up in pre-upgrade, in the original's order, with their keys. */
const V3_KINDS = [
  { rt: HelmCategoryResource, key: backupKey('helmcategories') },
  { rt: HelmApplicationResource, key: backupKey('helmapplications') },
  { rt: HelmApplicationVersionResource, key: backupKey('helmapplicationversions') },
  { rt: HelmRepoResource, key: backupKey('helmrepos') },
  { rt: HelmReleaseResource, key: backupKey('helmreleases') },
] as const;

function asList<T extends KubeObject>(rt: ResourceType<T>, items: T[]): KubeList<T> {
  return { apiVersion: apiVersionOf(rt), kind: `${rt.kind}List`, metadata: {}, items };
}

/**
 * Creates the object unless it exists, then sets its status through the status sub-resource when
 * it has none yet (just created, or created by a run that crashed before the status write). A
 * status the v4 controllers have since written is left alone.
 */
async function createWithStatus(
  client: ResourceClient,
  rt: ResourceType<V4Object>,
  c: Converted,
): Promise<{ created: boolean; object: V4Object }> {
  const { object, created } = await client.createIfAbsent(rt, c.object);
  const status = c.status;
  if (status && Object.keys(status).length > 0 && (created || !object.status?.state)) {
    const name = object.metadata.name ?? '';
    return { created, object: await client.patch(rt, name, undefined, { status }, 'merge', 'status') };
  }
  return { created, object };
}

class ApplicationJob implements UpgradeJob {
  constructor(
    private readonly ref: ExtensionRef,
    private readonly options: ApplicationOptions,
  ) {}

  /** Only on the host, and only where the v3 app store is enabled (as the original). */
  async isEnabled(ctx: JobContext): Promise<boolean> {
    if (!(await isHostCluster(ctx.kube))) return false;
    return ccFlag(await getClusterConfiguration(ctx.kube), STORE_ENABLED_PATH);
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const actions: PlannedAction[] = [];
    for (const { rt, key } of V3_KINDS) {
      const n = (await ctx.kube.listIfServed(rt)).length;
      actions.push({ phase: 'pre-upgrade', action: `back up ${n} ${rt.kind}s`, target: key });
    }
    actions.push(
      {
        phase: 'pre-upgrade',
        action: 'copy uploaded charts from MinIO into the backup',
        target: this.options.minioEndpoint,
      },
      {
        phase: 'post-upgrade',
        action: 'create the v4 app store objects',
        target: 'application.kubesphere.io/v2',
      },
      { phase: 'post-upgrade', action: 'create InstallPlan', target: `InstallPlan ${this.ref.name}` },
    );
    return actions;
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    let versions: HelmApplicationVersion[] = [];
    for (const { rt, key } of V3_KINDS) {
      ctx.heartbeat({ step: 'back up', message: rt.kind });
      let list: KubeList;
      try {
        list = await ctx.store.load<KubeList>(key);
      } catch (err) {
        if (!(err instanceof BackupKeyNotFound)) throw err;
        const items: KubeObject[] = await ctx.kube.listIfServed(rt);
        // Repo credentials and release values (chart values often hold passwords) are encrypted.
        list = (await ctx.store.saveOnce(key, asList(rt, items), { sensitive: this.sensitive(key, items) }))
          .value;
      }
      if (rt === HelmApplicationVersionResource) versions = list.items;
    }
    const { stored, missing } = await downloadCharts(ctx, versions, {
      endpoint: this.options.minioEndpoint,
      bucket: this.options.minioBucket,
      region: this.options.minioRegion,
    });
    ctx.logger.info(`charts kept: ${stored} of ${versions.length}`, { missing: missing.length });
  }

  private sensitive(key: string, items: KubeObject[]): boolean {
    if (key === backupKey('helmrepos')) return (items as HelmRepo[]).some(hasCredential);
    if (key === backupKey('helmreleases')) return (items as HelmRelease[]).some((r) => !!r.spec?.values);
    return false;
  }

  /** A backed-up list; missing, a MissingBackupError names the key and the fix. */
  private async load<T>(ctx: JobContext, key: string): Promise<T[]> {
    return (await loadBackup<KubeList<T & KubeObject>>(ctx, key))?.items ?? [];
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    // Every backup first: a missing one is an error before anything is created.
    const categories = await this.load<HelmCategory>(ctx, backupKey('helmcategories'));
    const applications = await this.load<HelmApplication>(ctx, backupKey('helmapplications'));
    const versions = await this.load<HelmApplicationVersion>(ctx, backupKey('helmapplicationversions'));
    const repos = await this.load<HelmRepo>(ctx, backupKey('helmrepos'));
    const releases = await this.load<HelmRelease>(ctx, backupKey('helmreleases'));
    // The charts (or the record that MinIO had none), checked now and read one by one at the end.
    await requireBackups(
      ctx,
      versions.map((v) => v.metadata.name ?? ''),
    );
    const cc = await getClusterConfiguration(ctx.kube);
    const hostName = getPath(cc, ['spec', 'multicluster', 'hostClusterName']);
    const hostClusterName = typeof hostName === 'string' ? hostName : '';
    await ctx.kube.createIfAbsent(NamespaceResource, {
      metadata: { name: APPLICATION_NAMESPACE, labels: { [V4.workspace]: SYSTEM_WORKSPACE } },
    });
    const count = (what: string, n: number) => {
      ctx.logger.info(`${what}: ${n}`);
    };

    ctx.heartbeat({ step: 'categories' });
    let n = 0;
    for (const old of categories) {
      const c = toCategory(old);
      if (c && (await ctx.kube.createIfAbsent(CategoryResource, c.object)).created) n++;
    }
    count('categories created', n);

    ctx.heartbeat({ step: 'applications' });
    n = 0;
    for (const old of applications) {
      const c = toApplication(old);
      if (c && (await createWithStatus(ctx.kube, ApplicationResource, c)).created) n++;
    }
    count('applications created', n);

    ctx.heartbeat({ step: 'application versions' });
    const owners = new Map<string, OwnerReference>();
    for (const app of await ctx.kube.listAll(ApplicationResource)) {
      const name = app.metadata.name ?? '';
      owners.set(name, {
        apiVersion: apiVersionOf(ApplicationResource),
        kind: 'Application',
        name,
        uid: app.metadata.uid ?? '',
      });
    }
    n = 0;
    for (const old of versions) {
      if (
        (await createWithStatus(ctx.kube, ApplicationVersionResource, toApplicationVersion(old, owners)))
          .created
      )
        n++;
    }
    count('application versions created', n);

    ctx.heartbeat({ step: 'repos' });
    n = 0;
    for (const old of repos) {
      if ((await ctx.kube.createIfAbsent(RepoResource, toRepo(old).object)).created) n++;
    }
    count('repos created', n);

    ctx.heartbeat({ step: 'releases' });
    await this.migrateReleases(ctx, releases, hostClusterName);

    ctx.heartbeat({ step: 'charts' });
    const charts = await restoreCharts(ctx, new Set(versions.map((v) => v.metadata.name ?? '')));
    ctx.logger.info(`charts written to ${charts.target}: ${charts.written}`, {
      missing: charts.missing.length,
    });

    const { action } = await ensureInstallPlan(ctx.kube, this.ref, { logger: ctx.logger, assumeHost: true });
    ctx.logger.info(`InstallPlan ${this.ref.name}: ${action}`);
  }

  private async migrateReleases(
    ctx: JobContext,
    olds: HelmRelease[],
    hostClusterName: string,
  ): Promise<void> {
    const candidates = olds.map((old) => {
      const converted = toRelease(old, hostClusterName);
      return { old, converted, identity: converted.identity, name: converted.object.metadata.name ?? '' };
    });
    const existing = new Map<string, ReleaseIdentity>();
    for (const r of await ctx.kube.listIfServed(ApplicationReleaseResource)) {
      existing.set(r.metadata.name ?? '', {
        cluster: r.metadata.labels?.[V4.cluster] ?? '',
        namespace: r.metadata.labels?.[V4.namespace] ?? '',
      });
    }
    const problems: ReleaseProblem[] = findReleaseProblems(candidates, existing);
    if (problems.length > 0) {
      // Saved only when it changed, so a re-run leaves the store as it was.
      const stored = await loadOptional<ReleaseProblem[]>(ctx, RELEASE_PROBLEMS_KEY);
      if (JSON.stringify(stored) !== JSON.stringify(problems))
        await ctx.store.save(RELEASE_PROBLEMS_KEY, problems);
      const summary = problems.map((p) => `${p.name}: ${p.reason} [${p.releases.join(', ')}]`).join('; ');
      if (this.options.releaseNameConflicts === 'fail') {
        throw new ReleaseNameConflictError(
          `${problems.length} app releases cannot keep their names in v4: ${summary}`,
          {
            hint:
              'set jobs.application.dynamicOptions.releaseNameConflicts: skip to migrate every other release ' +
              `(these are listed in the backup key ${RELEASE_PROBLEMS_KEY}; re-create them in v4 under new names), then retry`,
          },
        );
      }
      ctx.logger.warn(`releases not migrated (releaseNameConflicts: skip): ${summary}`);
    }
    const skip = new Set(problems.map((p) => p.name));
    let created = 0;
    for (const c of candidates) {
      if (skip.has(c.name)) continue;
      try {
        // The status (state, specHash) is set through the status sub-resource right after the
        // create; in the create request the API server drops it (the original's bug).
        if ((await createWithStatus(ctx.kube, ApplicationReleaseResource, c.converted)).created) created++;
      } catch (err) {
        // KubeSphere refuses releases of draft app versions; as the original, these are reported.
        if (
          (err instanceof InvalidError || err instanceof ForbiddenError) &&
          err.message.includes('state: draft')
        ) {
          ctx.logger.warn(`release ${c.name} not migrated: ${err.message}`);
          continue;
        }
        throw err;
      }
    }
    ctx.logger.info(`application releases created: ${created}`, { skipped: skip.size });
  }
}

/** Checks `jobs.application.dynamicOptions` when the job is built from the config. */
export function parseApplicationOptions(options: Record<string, unknown>): ApplicationOptions {
  const {
    minioEndpoint = DEFAULT_MINIO_ENDPOINT,
    minioBucket = DEFAULT_MINIO_BUCKET,
    minioRegion = 'us-east-1',
    releaseNameConflicts = 'fail',
    ...unknown
  } = options;
  const extra = Object.keys(unknown);
  if (extra.length > 0) {
    throw new ValidationError(`jobs.application.dynamicOptions: unknown option ${extra.join(', ')}`, {
      hint: 'the application job reads minioEndpoint, minioBucket, minioRegion and releaseNameConflicts',
    });
  }
  for (const [name, v] of Object.entries({ minioEndpoint, minioBucket, minioRegion })) {
    if (typeof v !== 'string' || v === '')
      throw new ValidationError(`jobs.application.dynamicOptions.${name} must be a non-empty string`);
  }
  if (!/^https?:\/\/[^/]+/.test(minioEndpoint as string)) {
    throw new ValidationError(
      `jobs.application.dynamicOptions.minioEndpoint must be an http(s) URL, got ${JSON.stringify(minioEndpoint)}`,
      { hint: `e.g. ${DEFAULT_MINIO_ENDPOINT}` },
    );
  }
  if (releaseNameConflicts !== 'fail' && releaseNameConflicts !== 'skip') {
    throw new ValidationError(
      `jobs.application.dynamicOptions.releaseNameConflicts must be fail or skip, got ${JSON.stringify(releaseNameConflicts)}`,
    );
  }
  return {
    minioEndpoint: minioEndpoint as string,
    minioBucket: minioBucket as string,
    minioRegion: minioRegion as string,
    releaseNameConflicts,
  };
}

/**
 * The application job: backs up the v3 app store (repo credentials and release values encrypted)
 * with its uploaded charts, and re-creates it as v4 objects with their status, charts in v4's S3
 * or ConfigMaps, and the openpitrix InstallPlan. Host only, where the v3 app store is enabled.
 */
export const applicationJobFactory: JobFactory = {
  name: APPLICATION_JOB_NAME,
  description: 'App store: move the v3 OpenPitrix app store (apps, versions, charts, repos, releases) to v4',
  create(options, extensionRef) {
    const parsed = parseApplicationOptions(options);
    if (!extensionRef?.name || !extensionRef.version) {
      throw new ValidationError('jobs.application.extensionRef needs name and version', {
        hint: "the v4 app store extension, e.g. extensionRef: {name: openpitrix, version: '2.0.1'}",
      });
    }
    return new ApplicationJob(extensionRef, parsed);
  },
};
