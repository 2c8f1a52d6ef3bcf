// The `storage-utils` job (priority 100): the v3 snapshot controller and storageclass-accessor
// webhook to the v4 storage-utils extension (reference §4.10). Added: the webhook is backed up
// before it is deleted (key below), so rollback can put it back; the StatefulSet backup is taken
// once (the original overwrote it on every pre-upgrade). Docs: docs/jobs/storage-utils.md.
import {
  CustomResourceDefinitionResource,
  StatefulSetResource,
  ValidatingWebhookConfigurationResource,
  type StatefulSet,
  type WebhookConfiguration,
} from '../../api/core.js';
import type { ExtensionRef } from '../../config/types.js';
import { ValidationError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { uninstallRelease } from '../../helm/uninstall.js';
import { listClusters } from '../../kubesphere/clusters.js';
import { DoneMarker, backupOnce, hasConfiguredPlacement, loadBackup, onHost } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { checkKnownOptions, checkRerun, forCreate, removePendingInstallPlan } from '../helpers.js';

const JOB = 'storage-utils';
const NS = 'kube-system';
const SNAPSHOT_CONTROLLER = 'snapshot-controller';
const WEBHOOK = 'storageclass-accessor.storage.kubesphere.io';
const SERVED_LABEL = 'kubesphere.io/resource-served';

export const STORAGE_UTILS_CRDS = [
  'volumesnapshots.snapshot.storage.k8s.io',
  'volumesnapshotcontents.snapshot.storage.k8s.io',
  'volumesnapshotclasses.snapshot.storage.k8s.io',
  'accessors.storage.kubesphere.io',
];

export const STORAGE_UTILS_KEYS = {
  /** The original's: the v3 StatefulSet kube-system/snapshot-controller. */
  snapshotController: 'old-snapshot-controller',
  /** Added by ks-upgrade: the webhook post-upgrade deletes. */
  webhook: 'old-storageclass-accessor-webhook',
} as const;

class StorageUtilsJob implements UpgradeJob {
  constructor(private readonly ref: ExtensionRef) {}

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const actions: PlannedAction[] = [];
    if (await ctx.v3.tryGet(StatefulSetResource, SNAPSHOT_CONTROLLER, NS)) {
      actions.push(
        { phase: 'pre-upgrade', action: 'back up', target: `StatefulSet ${NS}/${SNAPSHOT_CONTROLLER}` },
        { phase: 'post-upgrade', action: 'uninstall helm release', target: `${NS}/${SNAPSHOT_CONTROLLER}` },
      );
    }
    actions.push(
      ...STORAGE_UTILS_CRDS.map((c) => ({
        phase: 'post-upgrade' as const,
        action: `label ${SERVED_LABEL}=true`,
        target: `CRD ${c}`,
      })),
      {
        phase: 'post-upgrade',
        action: 'back up and delete',
        target: `ValidatingWebhookConfiguration ${WEBHOOK}`,
      },
    );
    if (await onHost(ctx))
      actions.push({ phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` });
    return actions;
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    await backupOnce(
      ctx,
      STORAGE_UTILS_KEYS.snapshotController,
      () => ctx.v3.tryGet(StatefulSetResource, SNAPSHOT_CONTROLLER, NS),
      { absent: `StatefulSet ${NS}/${SNAPSHOT_CONTROLLER} not found` },
    );
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    for (const name of STORAGE_UTILS_CRDS) {
      if (!(await ctx.v4.tryGet(CustomResourceDefinitionResource, name))) continue;
      const { changed } = await ctx.v4.mutate(CustomResourceDefinitionResource, name, undefined, (crd) => {
        crd.metadata.labels = { ...crd.metadata.labels, [SERVED_LABEL]: 'true' };
      });
      if (changed) ctx.logger.info(`CRD ${name} labelled ${SERVED_LABEL}=true`);
    }
    const { found } = await uninstallRelease(ctx.kube, NS, SNAPSHOT_CONTROLLER, { reporter: ctx });
    if (found) ctx.logger.info(`helm release ${NS}/${SNAPSHOT_CONTROLLER} uninstalled`);
    await backupOnce(
      ctx,
      STORAGE_UTILS_KEYS.webhook,
      () => ctx.v4.tryGet(ValidatingWebhookConfigurationResource, WEBHOOK),
      { absent: `ValidatingWebhookConfiguration ${WEBHOOK} not found` },
    );
    await ctx.v4.delete(ValidatingWebhookConfigurationResource, WEBHOOK);
    if (await onHost(ctx)) {
      const ref = structuredClone(this.ref);
      if (!hasConfiguredPlacement(ref)) {
        // Every cluster, as the original (a single cluster without Cluster objects counts as `host`).
        const names = (await listClusters(ctx.kube)).map((c) => c.metadata.name ?? '');
        ref.clusterScheduling = {
          ...ref.clusterScheduling,
          placement: { clusters: names.length > 0 ? names : ['host'] },
        };
      }
      const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
      ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
    }
    await marker.mark();
  }

  /**
   * Removes a pending InstallPlan, re-creates the webhook and the snapshot-controller StatefulSet
   * (without its helm release record: helm no longer knows the release). The CRD labels stay.
   */
  async rollback(ctx: JobContext): Promise<void> {
    await removePendingInstallPlan(ctx, this.ref.name);
    const webhook = await loadBackup<WebhookConfiguration>(ctx, STORAGE_UTILS_KEYS.webhook, {
      takenIn: 'post-upgrade',
    });
    if (webhook) await ctx.v4.createIfAbsent(ValidatingWebhookConfigurationResource, forCreate(webhook));
    const sts = await loadBackup<StatefulSet>(ctx, STORAGE_UTILS_KEYS.snapshotController);
    if (sts && (await ctx.v3.createIfAbsent(StatefulSetResource, forCreate(sts))).created) {
      ctx.logger.info(`StatefulSet ${NS}/${SNAPSHOT_CONTROLLER} restored`);
    }
  }
}

export const storageUtilsJobFactory: JobFactory = {
  name: JOB,
  description:
    'KubeSphere v3 snapshot controller and storageclass accessor to the v4 storage-utils extension',
  create(options, extensionRef) {
    checkKnownOptions(JOB, options, ['rerun']);
    checkRerun(JOB, options);
    if (!extensionRef?.version) {
      throw new ValidationError('jobs.storage-utils.extensionRef.version is required', {
        hint: 'e.g. extensionRef: { name: storage-utils, version: 1.0.0 } (the sample config.yaml has it)',
      });
    }
    return new StorageUtilsJob({ ...extensionRef, name: extensionRef.name || JOB });
  },
};
