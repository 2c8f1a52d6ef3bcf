// The `opensearch` job (priority 100): the v3 OpenSearch helm releases of kubesphere-logging-system
// to the v4 opensearch extension, on the host only (reference §4.10). Fixed: the flags are written
// even when the namespace has no helm release at all (the original then failed post-upgrade on the
// missing `opensearch_enabled` key), and they are taken once — a re-run after the releases were
// uninstalled keeps "installed" instead of recording "not installed". Docs: docs/jobs/opensearch.md.
import type { ExtensionRef } from '../../config/types.js';
import { ValidationError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { releaseNames } from '../../helm/release.js';
import { uninstallRelease } from '../../helm/uninstall.js';
import { BackupKeyNotFound } from '../../store/index.js';
import {
  DoneMarker,
  extensionValues,
  hasConfiguredPlacement,
  hostClusterNames,
  loadBackupRaw,
  onHost,
  valuesText,
} from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { checkKnownOptions, checkRerun, removePendingInstallPlan } from '../helpers.js';

const JOB = 'opensearch';
export const LOGGING_NAMESPACE = 'kubesphere-logging-system';
const MASTER = 'opensearch-master';
const DATA = 'opensearch-data';
const CURATOR = 'opensearch-logging-curator';
const DASHBOARD = 'opensearch-dashboard';

/** Store keys (the original's): `true` / `false` as text. */
export const OPENSEARCH_KEYS = {
  enabled: 'opensearch_enabled',
  curator: 'opensearch_curator_enabled',
  dashboards: 'opensearch_dashboards_enabled',
} as const;

async function readFlag(ctx: JobContext, key: string): Promise<boolean | undefined> {
  try {
    return (
      Buffer.from(await ctx.store.loadRaw(key))
        .toString('utf8')
        .trim() === 'true'
    );
  } catch (err) {
    if (err instanceof BackupKeyNotFound) return undefined;
    throw err;
  }
}

async function writeFlagOnce(ctx: JobContext, key: string, value: boolean): Promise<boolean> {
  const { value: stored } = await ctx.store.saveRawOnce(key, String(value));
  return Buffer.from(stored).toString('utf8').trim() === 'true';
}

/**
 * Records what v3 had — once: `opensearch_enabled` is written last, so a crash in between leaves
 * it absent and the next run records everything again from the (not yet uninstalled) releases.
 */
async function recordFlags(ctx: JobContext): Promise<boolean> {
  const known = await readFlag(ctx, OPENSEARCH_KEYS.enabled);
  if (known !== undefined) return known;
  const names = await releaseNames(ctx.kube, LOGGING_NAMESPACE);
  if (!names.includes(MASTER) || !names.includes(DATA)) {
    ctx.logger.info(
      `OpenSearch is not installed (no ${MASTER}/${DATA} helm release in ${LOGGING_NAMESPACE})`,
    );
    return writeFlagOnce(ctx, OPENSEARCH_KEYS.enabled, false);
  }
  await writeFlagOnce(ctx, OPENSEARCH_KEYS.curator, names.includes(CURATOR));
  await writeFlagOnce(ctx, OPENSEARCH_KEYS.dashboards, names.includes(DASHBOARD));
  return writeFlagOnce(ctx, OPENSEARCH_KEYS.enabled, true);
}

/** A flag pre-upgrade recorded; missing, a MissingBackupError names the key and the fix. */
async function requireFlag(ctx: JobContext, key: string): Promise<boolean> {
  const raw = await loadBackupRaw(ctx, key);
  return raw !== undefined && Buffer.from(raw).toString('utf8').trim() === 'true';
}

/** The InstallPlan's ref: placement on the host; curator/dashboards as v3 had them unless configured. */
export async function opensearchInstallPlanRef(ctx: JobContext, base: ExtensionRef): Promise<ExtensionRef> {
  const ref = structuredClone(base);
  const values = extensionValues(ref);
  // As the original: a top-level `opensearch-dashboards` / `opensearch-curator` in the config wins.
  values['opensearch-dashboards'] ??= { enabled: await requireFlag(ctx, OPENSEARCH_KEYS.dashboards) };
  values['opensearch-curator'] ??= { enabled: await requireFlag(ctx, OPENSEARCH_KEYS.curator) };
  ref.config = valuesText(values) ?? '';
  if (!hasConfiguredPlacement(ref)) {
    const hosts = await hostClusterNames(ctx);
    ref.clusterScheduling = {
      ...ref.clusterScheduling,
      placement: { clusters: hosts.length > 0 ? hosts : ['host'] },
    };
  }
  return ref;
}

class OpensearchJob implements UpgradeJob {
  constructor(private readonly ref: ExtensionRef) {}

  /** OpenSearch is upgraded on the host only, as in the original. */
  async isEnabled(ctx: JobContext): Promise<boolean> {
    return onHost(ctx);
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const names = await releaseNames(ctx.kube, LOGGING_NAMESPACE);
    const present = [MASTER, DATA, CURATOR, DASHBOARD].filter((n) => names.includes(n));
    if (!present.includes(MASTER) || !present.includes(DATA)) {
      return [{ phase: 'pre-upgrade', action: 'record opensearch_enabled=false (OpenSearch not installed)' }];
    }
    return [
      {
        phase: 'pre-upgrade',
        action: 'record which OpenSearch parts are installed',
        target: OPENSEARCH_KEYS.enabled,
      },
      ...present.map((n) => ({
        phase: 'pre-upgrade' as const,
        action: 'uninstall helm release',
        target: `${LOGGING_NAMESPACE}/${n}`,
      })),
      { phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` },
    ];
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    if (await new DoneMarker(ctx).check()) return;
    if (!(await recordFlags(ctx))) return;
    // Every run until post-upgrade is done: an absent release is not an error.
    const releases = [MASTER, DATA];
    if (await readFlag(ctx, OPENSEARCH_KEYS.curator)) releases.push(CURATOR);
    if (await readFlag(ctx, OPENSEARCH_KEYS.dashboards)) releases.push(DASHBOARD);
    for (const name of releases) {
      ctx.heartbeat({ step: 'uninstall', message: name });
      const { found } = await uninstallRelease(ctx.kube, LOGGING_NAMESPACE, name, { reporter: ctx });
      if (found) ctx.logger.info(`helm release ${LOGGING_NAMESPACE}/${name} uninstalled`);
    }
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    if (!(await requireFlag(ctx, OPENSEARCH_KEYS.enabled))) {
      ctx.logger.info('OpenSearch was not installed in v3: no InstallPlan');
      return; // as the original: no marker either
    }
    const ref = await opensearchInstallPlanRef(ctx, this.ref);
    const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
    ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
    await marker.mark();
  }

  /** Removes the InstallPlan if not installed yet. The uninstalled v3 releases cannot come back. */
  async rollback(ctx: JobContext): Promise<void> {
    await removePendingInstallPlan(ctx, this.ref.name);
  }
}

export const opensearchJobFactory: JobFactory = {
  name: JOB,
  description:
    'KubeSphere v3 OpenSearch (helm releases in kubesphere-logging-system) to the v4 opensearch extension',
  create(options, extensionRef) {
    checkKnownOptions(JOB, options, ['rerun']);
    checkRerun(JOB, options);
    if (!extensionRef?.version) {
      throw new ValidationError('jobs.opensearch.extensionRef.version is required', {
        hint: 'e.g. extensionRef: { name: opensearch, version: 2.11.1 } (the sample config.yaml has it)',
      });
    }
    return new OpensearchJob({ ...extensionRef, name: extensionRef.name || JOB });
  },
};
