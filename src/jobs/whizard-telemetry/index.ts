// The `whizard-telemetry` job (priority 100): installs the v4 WhizardTelemetry platform service
// extension on the host (reference §4.10): nothing is backed up or removed. P1 done marker
// `whizard-telemetry-done`, written at the end of post-upgrade on every cluster.
// Docs: docs/jobs/whizard-telemetry.md.
import type { ExtensionRef } from '../../config/types.js';
import { ValidationError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { DoneMarker, onHost } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { checkKnownOptions, checkRerun, removePendingInstallPlan } from '../helpers.js';

const JOB = 'whizard-telemetry';

class WhizardTelemetryJob implements UpgradeJob {
  constructor(private readonly ref: ExtensionRef) {}

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    return (await onHost(ctx))
      ? [{ phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` }]
      : [];
  }

  /** The original only checks the done marker here. */
  async preUpgrade(ctx: JobContext): Promise<void> {
    await new DoneMarker(ctx).check();
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    if (await onHost(ctx)) {
      const { action } = await ensureInstallPlan(ctx.v4, this.ref, { logger: ctx.logger, assumeHost: true });
      ctx.logger.info(`InstallPlan ${this.ref.name}: ${action}`);
    }
    await marker.mark();
  }

  async rollback(ctx: JobContext): Promise<void> {
    await removePendingInstallPlan(ctx, this.ref.name);
  }
}

export const whizardTelemetryJobFactory: JobFactory = {
  name: JOB,
  description: 'Installs the v4 WhizardTelemetry platform service extension (host)',
  create(options, extensionRef) {
    checkKnownOptions(JOB, options, ['rerun']);
    checkRerun(JOB, options);
    if (!extensionRef?.version) {
      throw new ValidationError('jobs.whizard-telemetry.extensionRef.version is required', {
        hint: 'e.g. extensionRef: { name: whizard-telemetry, version: 1.2.2 } (the sample config.yaml has it)',
      });
    }
    return new WhizardTelemetryJob({ ...extensionRef, name: extensionRef.name || JOB });
  },
};
