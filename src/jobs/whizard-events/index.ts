// whizard-events (reference §4.10): backs up the kube-events objects, removes the v3 events release
// and CRDs, and installs WhizardTelemetry Events on the clusters that had events enabled. See
// docs/jobs/whizard-events.md.
import { CustomResourceDefinitionResource } from '../../api/core.js';
import { EventsExporterResource, EventsRuleResource, EventsRulerResource } from '../../api/v3/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { KsUpgradeError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { releaseHistory } from '../../helm/release.js';
import { uninstallRelease } from '../../helm/uninstall.js';
import { crdExists } from '../../kube/crd.js';
import type { ResourceType } from '../../kube/types.js';
import { getClusterConfiguration, isHostCluster } from '../../kubesphere/index.js';
import { DoneMarker, ccEnabled, placementFromClusters } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { backupKinds, checkRerun, restoreKinds, waitForCrdsDeleted } from '../helpers.js';

const JOB = 'whizard-events';
const LOGGING_NS = 'kubesphere-logging-system';
const RELEASE = 'ks-events';
const EVENTS_ENABLED = ['spec', 'events', 'enabled'];

/** The kube-events kinds, with the original's store keys, in its deletion order of their CRDs. */
const KINDS: readonly { rt: ResourceType; crd: string; key: string }[] = [
  { rt: EventsExporterResource, crd: 'exporters.events.kubesphere.io', key: 'events-Exporters' },
  { rt: EventsRulerResource, crd: 'rulers.events.kubesphere.io', key: 'events-Rulers' },
  { rt: EventsRuleResource, crd: 'rules.events.kubesphere.io', key: 'events-Rules' },
];
/** Backup order of the original: Rules, Rulers, Exporters. */
const BACKUP_ORDER = [...KINDS].reverse();

class WhizardEventsJob implements UpgradeJob {
  constructor(private readonly ref: ExtensionRef) {}

  async preUpgrade(ctx: JobContext): Promise<void> {
    if (await new DoneMarker(ctx).check()) return;
    await backupKinds(ctx, BACKUP_ORDER);
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    const cc = await getClusterConfiguration(ctx.kube);
    if (ccEnabled(cc, EVENTS_ENABLED)) {
      const result = await uninstallRelease(ctx.kube, LOGGING_NS, RELEASE, {
        reporter: ctx,
      });
      ctx.logger.info(
        result.found
          ? `helm release ${LOGGING_NS}/${RELEASE} uninstalled`
          : `no helm release ${LOGGING_NS}/${RELEASE}`,
      );
    }
    for (const k of KINDS) {
      if (await ctx.kube.delete(CustomResourceDefinitionResource, k.crd))
        ctx.logger.info(`CRD ${k.crd} deleted`);
    }
    await waitForCrdsDeleted(
      ctx,
      KINDS.map((k) => k.crd),
    );
    if (await isHostCluster(ctx.kube)) {
      const clusterScheduling = await placementFromClusters(ctx, this.ref, (c) =>
        ccEnabled(c, EVENTS_ENABLED),
      );
      const ref = { ...this.ref, ...(clusterScheduling ? { clusterScheduling } : {}) };
      if (
        clusterScheduling?.placement?.clusters?.length === 0 &&
        !clusterScheduling.placement.clusterSelector
      ) {
        ctx.logger.warn(`no cluster has events enabled: InstallPlan ${ref.name} gets an empty placement`);
      }
      const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
      ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
    }
    await marker.mark();
  }

  /**
   * Re-creates the kube-events CRDs and objects deleted in post-upgrade (missing ones only). The
   * uninstalled ks-events release (its operator and workloads) is not re-installed.
   */
  async rollback(ctx: JobContext): Promise<void> {
    await restoreKinds(ctx, BACKUP_ORDER);
    await ctx.store.delete(new DoneMarker(ctx).key);
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const actions: PlannedAction[] = [];
    for (const k of BACKUP_ORDER) {
      const n = (await ctx.kube.listIfServed(k.rt)).length;
      if (n > 0) actions.push({ phase: 'pre-upgrade', action: `back up ${n} ${k.rt.kind}s`, target: k.key });
    }
    const cc = await getClusterConfiguration(ctx.kube);
    if (ccEnabled(cc, EVENTS_ENABLED) && (await releaseHistory(ctx.kube, LOGGING_NS, RELEASE)).length > 0) {
      actions.push({
        phase: 'post-upgrade',
        action: 'uninstall',
        target: `helm release ${LOGGING_NS}/${RELEASE}`,
      });
    }
    for (const k of KINDS) {
      if (await crdExists(ctx.kube, k.crd))
        actions.push({ phase: 'post-upgrade', action: 'delete', target: `CRD ${k.crd}` });
    }
    if (await isHostCluster(ctx.kube)) {
      actions.push({ phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` });
    }
    return actions;
  }
}

export const whizardEventsJobFactory: JobFactory = {
  name: JOB,
  description: 'Backs up the kube-events objects, removes v3 events and installs WhizardTelemetry Events',
  create(options, extensionRef) {
    checkRerun(JOB, options);
    if (!extensionRef?.name || !extensionRef.version) {
      throw new KsUpgradeError(`jobs.${JOB}.extensionRef needs a name and a version`);
    }
    return new WhizardEventsJob(extensionRef);
  },
};
