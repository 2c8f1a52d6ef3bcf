// whizard-logging (reference §4.10): removes the v3 log sidecar injector and installs
// WhizardTelemetry Logging on the clusters that had logging enabled (with the sidecar injector
// where it was on). See docs/jobs/whizard-logging.md.
import type { ExtensionRef } from '../../config/types.js';
import { KsUpgradeError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { releaseHistory } from '../../helm/release.js';
import { uninstallRelease } from '../../helm/uninstall.js';
import { getClusterConfiguration, isHostCluster } from '../../kubesphere/index.js';
import { DoneMarker, ccEnabled, placementFromClusters } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { checkRerun } from '../helpers.js';

const JOB = 'whizard-logging';
const LOGGING_NS = 'kubesphere-logging-system';
const RELEASE = 'logsidecar-injector';
const LOGGING_ENABLED = ['spec', 'logging', 'enabled'];
const LOGSIDECAR_ENABLED = ['spec', 'logging', 'logsidecar', 'enabled'];
/** Written before the sidecar injector is removed: "this cluster had it" (the original's key). */
const LOGSIDECAR_KEY = 'logging_logsidecar_enabled';

class WhizardLoggingJob implements UpgradeJob {
  constructor(private readonly ref: ExtensionRef) {}

  /** Nothing to back up: only the done-marker check, as the original. */
  async preUpgrade(ctx: JobContext): Promise<void> {
    await new DoneMarker(ctx).check();
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    const cc = await getClusterConfiguration(ctx.kube);
    if (ccEnabled(cc, LOGSIDECAR_ENABLED)) {
      await ctx.store.saveRaw(LOGSIDECAR_KEY, 'true');
      const result = await uninstallRelease(ctx.kube, LOGGING_NS, RELEASE, {
        reporter: ctx,
      });
      ctx.logger.info(
        result.found
          ? `helm release ${LOGGING_NS}/${RELEASE} uninstalled`
          : `no helm release ${LOGGING_NS}/${RELEASE}`,
      );
    }
    if (await isHostCluster(ctx.kube)) {
      const clusterScheduling = await placementFromClusters(
        ctx,
        this.ref,
        (c) => ccEnabled(c, LOGGING_ENABLED),
        (c) => (ccEnabled(c, LOGSIDECAR_ENABLED) ? { 'logsidecar-injector': { enabled: true } } : undefined),
      );
      const ref = { ...this.ref, ...(clusterScheduling ? { clusterScheduling } : {}) };
      if (
        clusterScheduling?.placement?.clusters?.length === 0 &&
        !clusterScheduling.placement.clusterSelector
      ) {
        ctx.logger.warn(`no cluster has logging enabled: InstallPlan ${ref.name} gets an empty placement`);
      }
      const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
      ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
    }
    await marker.mark();
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const actions: PlannedAction[] = [];
    const cc = await getClusterConfiguration(ctx.kube);
    if (ccEnabled(cc, LOGSIDECAR_ENABLED)) {
      actions.push({ phase: 'post-upgrade', action: `record ${LOGSIDECAR_KEY}` });
      if ((await releaseHistory(ctx.kube, LOGGING_NS, RELEASE)).length > 0) {
        actions.push({
          phase: 'post-upgrade',
          action: 'uninstall (cannot be undone by rollback)',
          target: `helm release ${LOGGING_NS}/${RELEASE}`,
        });
      }
    }
    if (await isHostCluster(ctx.kube)) {
      actions.push({ phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` });
    }
    return actions;
  }
}

export const whizardLoggingJobFactory: JobFactory = {
  name: JOB,
  description: 'Removes the v3 log sidecar injector and installs WhizardTelemetry Logging',
  create(options, extensionRef) {
    checkRerun(JOB, options);
    if (!extensionRef?.name || !extensionRef.version) {
      throw new KsUpgradeError(`jobs.${JOB}.extensionRef needs a name and a version`);
    }
    return new WhizardLoggingJob(extensionRef);
  },
};
