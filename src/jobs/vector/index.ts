// vector (reference §4.10): the v3 logging pipeline (fluentbit-operator and its objects) gives way to
// the WhizardTelemetry Data Pipeline extension (vector). See docs/jobs/vector.md.
import {
  CustomResourceDefinitionResource,
  DaemonSetResource,
  DeploymentResource,
  SecretResource,
} from '../../api/core.js';
import {
  FluentBitConfigResource,
  FluentBitResource,
  LoggingFilterResource,
  LoggingInputResource,
  LoggingOutputResource,
  LoggingParserResource,
} from '../../api/v3/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { KsUpgradeError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { crdExists } from '../../kube/crd.js';
import type { KubeObject, ResourceType } from '../../kube/types.js';
import { isHostCluster } from '../../kubesphere/index.js';
import { WaitTimeoutError, notYet, waitFor, type NotYet } from '../../util/wait.js';
import { DoneMarker, backupOnce, ccEnabled, loadBackup, placementFromClusters } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { backupKinds, checkRerun, restorable, restoreKinds, waitForCrdsDeleted } from '../helpers.js';

const JOB = 'vector';
const LOGGING_NS = 'kubesphere-logging-system';
const OPERATOR = 'fluentbit-operator';
const FLUENT_BIT = 'fluent-bit';
const SINKS_SECRET = 'vector-sinks';
const LOGGING_ENABLED = ['spec', 'logging', 'enabled'];

/** The fluentbit-operator kinds, in the original's CRD deletion order, with its store keys. */
const KINDS: readonly { rt: ResourceType; crd: string; key: string }[] = [
  { rt: LoggingParserResource, crd: 'parsers.logging.kubesphere.io', key: 'logging-parser' },
  { rt: LoggingFilterResource, crd: 'filters.logging.kubesphere.io', key: 'logging-filter' },
  { rt: LoggingInputResource, crd: 'inputs.logging.kubesphere.io', key: 'logging-input' },
  { rt: LoggingOutputResource, crd: 'outputs.logging.kubesphere.io', key: 'logging-output' },
  { rt: FluentBitResource, crd: 'fluentbits.logging.kubesphere.io', key: 'logging-fluentbit' },
  {
    rt: FluentBitConfigResource,
    crd: 'fluentbitconfigs.logging.kubesphere.io',
    key: 'logging-fluentbitconfig',
  },
];
/** The original's backup order: filters, parsers, inputs, outputs, fluentbits, fluentbitconfigs. */
const BACKUP_ORDER = [1, 0, 2, 3, 4, 5].map((i) => KINDS[i]).filter((k) => k !== undefined);
const OPERATOR_KEY = `${JOB}-apps.v1.deployments-${LOGGING_NS}.${OPERATOR}`;

/** Waits of the job (the original's bounds); tests shorten them. */
export interface VectorTimings {
  /** The operator removing the fluent-bit DaemonSet: 20 × 10 s. */
  fluentBitPollMs: number;
  fluentBitChecks: number;
  /** The extension creating Secret vector-sinks: 10 × 5 s. */
  sinksPollMs: number;
  sinksChecks: number;
}
export const DEFAULT_TIMINGS: VectorTimings = {
  fluentBitPollMs: 10_000,
  fluentBitChecks: 20,
  sinksPollMs: 5000,
  sinksChecks: 10,
};

/** Polls `check` up to `checks` times, `pollMs` apart (a logged wait); false when it never held. */
async function pollUntil(
  ctx: JobContext,
  what: string,
  checks: number,
  pollMs: number,
  check: () => Promise<true | NotYet>,
): Promise<boolean> {
  if (checks < 1) return false;
  try {
    await waitFor({ what, timeoutMs: (checks - 1) * pollMs, intervalMs: pollMs, check }, ctx);
    return true;
  } catch (err) {
    if (err instanceof WaitTimeoutError) return false;
    throw err;
  }
}

class VectorJob implements UpgradeJob {
  constructor(
    private readonly ref: ExtensionRef,
    private readonly timings: VectorTimings,
  ) {}

  async preUpgrade(ctx: JobContext): Promise<void> {
    if (await new DoneMarker(ctx).check()) return;
    await backupKinds(ctx, BACKUP_ORDER);
    // The operator Deployment, deleted in post-upgrade (for rollback).
    await backupOnce(ctx, OPERATOR_KEY, () => ctx.kube.tryGet(DeploymentResource, OPERATOR, LOGGING_NS));
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    for (const k of KINDS) {
      if (await ctx.kube.delete(CustomResourceDefinitionResource, k.crd))
        ctx.logger.info(`CRD ${k.crd} deleted`);
    }
    await waitForCrdsDeleted(
      ctx,
      KINDS.map((k) => k.crd),
    );
    // With the FluentBit object gone, the operator (or the garbage collector) removes fluent-bit.
    const gone = await pollUntil(
      ctx,
      `DaemonSet ${LOGGING_NS}/${FLUENT_BIT} to be removed by its operator`,
      this.timings.fluentBitChecks,
      this.timings.fluentBitPollMs,
      async () =>
        (await ctx.kube.tryGet(DaemonSetResource, FLUENT_BIT, LOGGING_NS)) ? notYet('it still exists') : true,
    );
    if (!gone) {
      // The original went on and left it running next to vector; remove the orphan instead.
      ctx.logger.warn(`DaemonSet ${LOGGING_NS}/${FLUENT_BIT} was not removed by its operator; deleting it`);
      await ctx.kube.delete(DaemonSetResource, FLUENT_BIT, LOGGING_NS, { propagationPolicy: 'Background' });
    }
    await ctx.kube.delete(DeploymentResource, OPERATOR, LOGGING_NS);

    if (await isHostCluster(ctx.kube)) {
      const clusterScheduling = await placementFromClusters(ctx, this.ref, (c) =>
        ccEnabled(c, LOGGING_ENABLED),
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
      const ready = await pollUntil(
        ctx,
        `Secret ${LOGGING_NS}/${SINKS_SECRET} from the vector extension`,
        this.timings.sinksChecks,
        this.timings.sinksPollMs,
        async () =>
          (await ctx.kube.tryGet(SecretResource, SINKS_SECRET, LOGGING_NS))
            ? true
            : notYet('it does not exist yet'),
      );
      // As in the original, not an error: the sinks Secret is what the logging/events/notification
      // extensions read by default; the extension creates it once installed.
      if (!ready) ctx.logger.warn(`Secret ${LOGGING_NS}/${SINKS_SECRET} does not exist yet; continuing`);
    }
    await marker.mark();
  }

  /**
   * Re-creates the fluentbit-operator CRDs, objects and Deployment deleted in post-upgrade (missing
   * ones only); the operator then re-creates fluent-bit from the FluentBit object.
   */
  async rollback(ctx: JobContext): Promise<void> {
    await restoreKinds(ctx, KINDS);
    const operator = await loadBackup<KubeObject>(ctx, OPERATOR_KEY);
    if (operator) await ctx.kube.createIfAbsent(DeploymentResource, restorable(operator));
    await ctx.store.delete(new DoneMarker(ctx).key);
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const actions: PlannedAction[] = [];
    for (const k of KINDS) {
      const n = (await ctx.kube.listIfServed(k.rt)).length;
      if (n > 0) actions.push({ phase: 'pre-upgrade', action: `back up ${n} ${k.rt.kind}s`, target: k.key });
    }
    for (const k of KINDS) {
      if (await crdExists(ctx.kube, k.crd))
        actions.push({ phase: 'post-upgrade', action: 'delete', target: `CRD ${k.crd}` });
    }
    if (await ctx.kube.tryGet(DeploymentResource, OPERATOR, LOGGING_NS)) {
      actions.push({
        phase: 'pre-upgrade',
        action: 'back up',
        target: `Deployment ${LOGGING_NS}/${OPERATOR}`,
      });
      actions.push({
        phase: 'post-upgrade',
        action: 'delete',
        target: `Deployment ${LOGGING_NS}/${OPERATOR}`,
      });
    }
    if (await ctx.kube.tryGet(DaemonSetResource, FLUENT_BIT, LOGGING_NS)) {
      actions.push({
        phase: 'post-upgrade',
        action: 'wait for removal (delete if it stays)',
        target: `DaemonSet ${LOGGING_NS}/${FLUENT_BIT}`,
      });
    }
    if (await isHostCluster(ctx.kube)) {
      actions.push({ phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` });
    }
    return actions;
  }
}

/** The factory with other waits (tests). */
export function createVectorJobFactory(timings: Partial<VectorTimings> = {}): JobFactory {
  return {
    name: JOB,
    description: 'Backs up and removes the v3 fluentbit-operator pipeline and installs the vector extension',
    create(options, extensionRef) {
      checkRerun(JOB, options);
      if (!extensionRef?.name || !extensionRef.version) {
        throw new KsUpgradeError(`jobs.${JOB}.extensionRef needs a name and a version`);
      }
      return new VectorJob(extensionRef, { ...DEFAULT_TIMINGS, ...timings });
    },
  };
}

export const vectorJobFactory: JobFactory = createVectorJobFactory();
