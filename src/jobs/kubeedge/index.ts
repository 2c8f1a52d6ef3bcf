// The `kubeedge` job (priority 100): KubeEdge cloudcore of the v3 edge runtime to the v4 kubeedge
// extension (reference §4.10). pre-upgrade backs up cloudcore's ConfigMaps and Secrets (the CA and
// tokens edge nodes trust — encrypted) and uninstalls the v3 release; post-upgrade (host) installs
// the extension and, once it is Installed, puts the old data back, so edge nodes keep working.
// Fixed: the done-marker write error is reported (the original ignored it), a missing object is
// re-created instead of failing the wait. Docs: docs/jobs/kubeedge.md.
import { ConfigMapResource, SecretResource, type ConfigMap, type Secret } from '../../api/core.js';
import type { ClusterConfiguration } from '../../api/v3/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { ValidationError } from '../../errors.js';
import { ensureInstallPlan, waitForInstallPlan } from '../../extensions/index.js';
import { uninstallRelease } from '../../helm/uninstall.js';
import type { ResourceType } from '../../kube/types.js';
import { getClusterConfiguration } from '../../kubesphere/index.js';
import { getPath, isRecord } from '../../util/object.js';
import {
  DoneMarker,
  backupOnce,
  ccEnabled,
  extensionValues,
  hasConfiguredPlacement,
  loadBackup,
  onHost,
  setIfAbsent,
  valuesText,
} from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import {
  asList,
  checkKnownOptions,
  checkRerun,
  forCreate,
  removePendingInstallPlan,
  type StoredList,
} from '../helpers.js';

const JOB = 'kubeedge';
export const KUBEEDGE_NAMESPACE = 'kubeedge';
const RELEASE = 'cloudcore';
export const KUBEEDGE_CONFIGMAPS = ['tunnelport', 'cloudcore'];
export const KUBEEDGE_SECRETS = ['tokensecret', 'cloudcoresecret', 'casecret', 'cloudcore'];
export const KUBEEDGE_KEYS = {
  configMaps: 'kubeedge-configmap-list',
  secrets: 'kubeedge-secret-list',
} as const;

/** `spec.edgeruntime.enabled` and `spec.edgeruntime.kubeedge.enabled`. */
export function kubeedgeEnabled(cc: ClusterConfiguration): boolean {
  return (
    ccEnabled(cc, ['spec', 'edgeruntime', 'enabled']) &&
    ccEnabled(cc, ['spec', 'edgeruntime', 'kubeedge', 'enabled'])
  );
}

export interface KubeedgeOptions {
  /** Bound of the wait for InstallPlan `Installed` (default 600 s, as the original). */
  installTimeoutMs: number;
}

export function parseKubeedgeOptions(options: Record<string, unknown>): KubeedgeOptions {
  checkKnownOptions(JOB, options, ['rerun', 'installTimeoutSeconds']);
  checkRerun(JOB, options);
  const raw = options.installTimeoutSeconds ?? 600;
  const seconds = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) {
    throw new ValidationError(
      `jobs.kubeedge.dynamicOptions.installTimeoutSeconds must be a positive number, got ${JSON.stringify(raw)}`,
      { hint: 'seconds post-upgrade waits for the kubeedge InstallPlan to be Installed, e.g. 600' },
    );
  }
  return { installTimeoutMs: seconds * 1000 };
}

const objectOrEmpty = (v: unknown): Record<string, unknown> => (isRecord(v) ? v : {});

/** The InstallPlan's ref: cloudHub/service settings of the v3 cc; no agents (`clusters: []`). */
export function kubeedgeInstallPlanRef(cc: ClusterConfiguration, base: ExtensionRef): ExtensionRef {
  const ref = structuredClone(base);
  const values = extensionValues(ref);
  const cloudCore = ['spec', 'edgeruntime', 'kubeedge', 'cloudCore'];
  setIfAbsent(values, 'kubeedge.enabled', true);
  setIfAbsent(
    values,
    'cloudcore.cloudCore.modules.cloudHub',
    objectOrEmpty(getPath(cc, [...cloudCore, 'cloudHub'])),
  );
  setIfAbsent(values, 'cloudcore.cloudCore.service', objectOrEmpty(getPath(cc, [...cloudCore, 'service'])));
  const text = valuesText(values);
  if (text !== undefined) ref.config = text;
  if (!hasConfiguredPlacement(ref))
    ref.clusterScheduling = { ...ref.clusterScheduling, placement: { clusters: [] } };
  return ref;
}

async function restore<T extends ConfigMap | Secret>(
  ctx: JobContext,
  rt: ResourceType<T>,
  backup: T[],
): Promise<void> {
  for (const old of backup) {
    const name = old.metadata.name ?? '';
    const ns = old.metadata.namespace ?? KUBEEDGE_NAMESPACE;
    const { created } = await ctx.v4.createIfAbsent(rt, forCreate(old));
    if (created) {
      ctx.logger.info(`${rt.kind} ${ns}/${name} re-created from the backup`);
      continue;
    }
    const { changed } = await ctx.v4.mutate(rt, name, ns, (cur) => {
      cur.data = old.data ?? {};
    });
    if (changed) ctx.logger.info(`${rt.kind} ${ns}/${name}: data restored from the backup`);
  }
}

class KubeedgeJob implements UpgradeJob {
  constructor(
    private readonly options: KubeedgeOptions,
    private readonly ref: ExtensionRef,
  ) {}

  /** Only where the v3 edge runtime ran KubeEdge. */
  async isEnabled(ctx: JobContext): Promise<boolean> {
    return kubeedgeEnabled(await getClusterConfiguration(ctx.v3));
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const actions: PlannedAction[] = [
      {
        phase: 'pre-upgrade',
        action: `back up ConfigMaps ${KUBEEDGE_CONFIGMAPS.join(', ')}`,
        target: KUBEEDGE_KEYS.configMaps,
      },
      {
        phase: 'pre-upgrade',
        action: `back up Secrets ${KUBEEDGE_SECRETS.join(', ')} (encrypted)`,
        target: KUBEEDGE_KEYS.secrets,
      },
      { phase: 'pre-upgrade', action: 'uninstall helm release', target: `${KUBEEDGE_NAMESPACE}/${RELEASE}` },
    ];
    if (await onHost(ctx)) {
      actions.push(
        {
          phase: 'post-upgrade',
          action: 'create and wait for Installed',
          target: `InstallPlan ${this.ref.name}`,
        },
        { phase: 'post-upgrade', action: 'restore the data of the backed-up ConfigMaps and Secrets' },
      );
    }
    return actions;
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    if (await new DoneMarker(ctx).check()) return;
    await backupOnce(ctx, KUBEEDGE_KEYS.configMaps, async () =>
      asList(
        'v1',
        'ConfigMap',
        (await ctx.v3.listAll(ConfigMapResource, { namespace: KUBEEDGE_NAMESPACE })).filter((c) =>
          KUBEEDGE_CONFIGMAPS.includes(c.metadata.name ?? ''),
        ),
      ),
    );
    await backupOnce(
      ctx,
      KUBEEDGE_KEYS.secrets,
      async () =>
        asList(
          'v1',
          'Secret',
          (await ctx.v3.listAll(SecretResource, { namespace: KUBEEDGE_NAMESPACE })).filter((s) =>
            KUBEEDGE_SECRETS.includes(s.metadata.name ?? ''),
          ),
        ),
      { sensitive: true },
    );
    // Every run until the job is done: an absent release is not an error.
    const { found } = await uninstallRelease(ctx.kube, KUBEEDGE_NAMESPACE, RELEASE, { reporter: ctx });
    if (found) ctx.logger.info(`helm release ${KUBEEDGE_NAMESPACE}/${RELEASE} uninstalled`);
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    if (await onHost(ctx)) {
      // Loaded first: a missing backup is an error before anything changes, not "nothing to
      // restore" after the install — edge nodes trust the old CA and tokens.
      const configMaps =
        (await loadBackup<StoredList<ConfigMap>>(ctx, KUBEEDGE_KEYS.configMaps))?.items ?? [];
      const secrets = (await loadBackup<StoredList<Secret>>(ctx, KUBEEDGE_KEYS.secrets))?.items ?? [];
      const ref = kubeedgeInstallPlanRef(await getClusterConfiguration(ctx.v3), this.ref);
      const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
      ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
      await waitForInstallPlan(ctx.v4, ref.name, { timeoutMs: this.options.installTimeoutMs, reporter: ctx });
      await restore(ctx, ConfigMapResource, configMaps);
      await restore(ctx, SecretResource, secrets);
    }
    await marker.mark();
  }

  /**
   * Removes a pending InstallPlan and re-creates backed-up ConfigMaps/Secrets that are missing.
   * The uninstalled v3 cloudcore release cannot come back.
   */
  async rollback(ctx: JobContext): Promise<void> {
    await removePendingInstallPlan(ctx, this.ref.name);
    for (const cm of (await loadBackup<StoredList<ConfigMap>>(ctx, KUBEEDGE_KEYS.configMaps))?.items ?? []) {
      await ctx.v3.createIfAbsent(ConfigMapResource, forCreate(cm));
    }
    for (const s of (await loadBackup<StoredList<Secret>>(ctx, KUBEEDGE_KEYS.secrets))?.items ?? []) {
      await ctx.v3.createIfAbsent(SecretResource, forCreate(s));
    }
  }
}

export const kubeedgeJobFactory: JobFactory = {
  name: JOB,
  description: 'KubeSphere v3 KubeEdge cloudcore to the v4 kubeedge extension (keeps the CA and tokens)',
  requiresEncryption: true,
  create(options, extensionRef) {
    const parsed = parseKubeedgeOptions(options);
    if (!extensionRef?.version) {
      throw new ValidationError('jobs.kubeedge.extensionRef.version is required', {
        hint: 'e.g. extensionRef: { name: kubeedge, version: 1.13.1 } (the sample config.yaml has it)',
      });
    }
    return new KubeedgeJob(parsed, { ...extensionRef, name: extensionRef.name || JOB });
  },
};
