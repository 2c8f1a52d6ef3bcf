// whizard-notification (reference §4.9): backs up the notification-manager objects, copies the
// federated Secrets/ConfigMaps to kubesphere-monitoring-system, removes notification-manager and
// its CRDs, installs WhizardTelemetry Notification and re-creates the users' objects in it. See
// docs/jobs/whizard-notification.md.
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  DeploymentResource,
  SecretResource,
  type ConfigMap,
  type Deployment,
  type Secret,
} from '../../api/core.js';
import {
  NotificationConfigResource,
  NotificationManagerResource,
  NotificationReceiverResource,
  NotificationRouterResource,
  NotificationSilenceResource,
} from '../../api/v3/index.js';
import { InstallPlanResource } from '../../api/v4/index.js';
import type { DynamicOptions, ExtensionRef } from '../../config/types.js';
import { KsUpgradeError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { releaseHistory } from '../../helm/release.js';
import { uninstallRelease } from '../../helm/uninstall.js';
import { crdExists } from '../../kube/crd.js';
import { NoKindError } from '../../kube/errors.js';
import type { KubeObject, ResourceType } from '../../kube/types.js';
import { getClusterConfiguration, isHostCluster } from '../../kubesphere/index.js';
import { sleep } from '../../util/concurrency.js';
import { isRecord } from '../../util/object.js';
import { WaitTimeoutError, formatDuration, notYet, waitFor } from '../../util/wait.js';
import { DoneMarker, backupOnce, ccEnabled, loadBackup } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import {
  backupKinds,
  checkRerun,
  loadOptional,
  restorable,
  restoreKinds,
  waitForCrdsDeleted,
  type BackedUpKind,
} from '../helpers.js';

const JOB = 'whizard-notification';
const OLD_NS = 'kubesphere-monitoring-federated';
const NS = 'kubesphere-monitoring-system';
const RELEASE = 'notification-manager';
const ADAPTER = 'notification-adapter';
const OPERATOR = 'notification-manager-operator';
/** Names of the Secrets/ConfigMaps this job copied (never their content): rollback removes them. */
const COPIED_KEY = 'notification-copied-objects';

interface Kind {
  rt: ResourceType;
  crd: string;
  key: string;
  /** Re-created in the extension after the upgrade (NotificationManagers come with the extension). */
  recreate: boolean;
}
/**
 * The notification-manager kinds with the original's store keys — except NotificationManagers,
 * which the original saved under `notificationConfigResource` too, where the Config list then
 * overwrote them: they have their own key here.
 */
const KINDS: readonly Kind[] = [
  {
    rt: NotificationManagerResource,
    crd: 'notificationmanagers.notification.kubesphere.io',
    key: 'notificationManagerResource',
    recreate: false,
  },
  {
    rt: NotificationConfigResource,
    crd: 'configs.notification.kubesphere.io',
    key: 'notificationConfigResource',
    recreate: true,
  },
  {
    rt: NotificationReceiverResource,
    crd: 'receivers.notification.kubesphere.io',
    key: 'notificationReceiverResource',
    recreate: true,
  },
  {
    rt: NotificationRouterResource,
    crd: 'routers.notification.kubesphere.io',
    key: 'notificationRouterResource',
    recreate: true,
  },
  {
    rt: NotificationSilenceResource,
    crd: 'silences.notification.kubesphere.io',
    key: 'notificationSilenceResource',
    recreate: true,
  },
];
/** Re-creation order of the original: Configs, Routers, Silences, Receivers. */
const RECREATE_ORDER = ['Config', 'Router', 'Silence', 'Receiver'];
const FEDERATED_CRDS = ['silences', 'routers', 'configs', 'receivers', 'managers'].map(
  (k) => `federatednotification${k}.types.kubefed.io`,
);
/** The CRDs deleted in post-upgrade, in the original's order. */
const DELETED_CRDS = [
  'configs.notification.kubesphere.io',
  'notificationmanagers.notification.kubesphere.io',
  'receivers.notification.kubesphere.io',
  'routers.notification.kubesphere.io',
  'silences.notification.kubesphere.io',
  ...FEDERATED_CRDS,
];

/** Waits of the job; tests shorten them. */
export interface NotificationTimings {
  /** Poll interval of the CRD deletion wait (original: 5 s, unbounded). */
  crdPollMs: number;
  /** Bound of the CRD deletion wait (the original waited forever). */
  crdTimeoutMs: number;
  /** Interval between the `retryCount` checks of the operator (original: 10 s). */
  operatorPollMs: number;
  /** Pause after the operator is ready, for its webhook to come up (original: 10 s). */
  operatorGraceMs: number;
}
export const DEFAULT_TIMINGS: NotificationTimings = {
  crdPollMs: 5000,
  crdTimeoutMs: 10 * 60_000,
  operatorPollMs: 10_000,
  operatorGraceMs: 10_000,
};

interface NotificationOptions {
  /** Checks of the notification-manager operator before re-creating the objects (default 180). */
  retryCount: number;
}

interface CopiedRecord {
  secrets: string[];
  configmaps: string[];
}

interface ObjectList {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown>;
  items: KubeObject[];
}

/**
 * True when an object carries a credential inline: notification-manager's `Credential` is
 * `{value}` or `{valueFrom: {secretKeyRef}}`; a `value` makes the backup sensitive.
 */
export function hasInlineCredential(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasInlineCredential);
  if (!isRecord(value)) return false;
  const keys = Object.keys(value);
  if (typeof value.value === 'string' && keys.every((k) => k === 'value' || k === 'valueFrom')) return true;
  return Object.values(value).some(hasInlineCredential);
}

/** A ServiceAccount token belongs to its namespace: copying it would only spread a credential. */
const copiedSecret = (s: Secret): boolean => s.type !== 'kubernetes.io/service-account-token';
/** Kubernetes itself publishes kube-root-ca.crt into every namespace. */
const copiedConfigMap = (cm: ConfigMap): boolean => cm.metadata.name !== 'kube-root-ca.crt';

class WhizardNotificationJob implements UpgradeJob {
  constructor(
    private readonly options: NotificationOptions,
    private readonly ref: ExtensionRef,
    private readonly timings: NotificationTimings,
  ) {}

  async preUpgrade(ctx: JobContext): Promise<void> {
    if (await new DoneMarker(ctx).check()) return;
    const host = await isHostCluster(ctx.kube);
    await backupKinds(ctx, KINDS, hasInlineCredential);
    if (!host) return;
    await this.copyFederatedObjects(ctx);
    const adapter = await backupOnce(ctx, ADAPTER, () => ctx.kube.tryGet(DeploymentResource, ADAPTER, NS));
    ctx.logger.info(adapter ? `Deployment ${NS}/${ADAPTER} backed up` : `no Deployment ${NS}/${ADAPTER}`);
  }

  /**
   * Copies every Secret and ConfigMap of kubesphere-monitoring-federated to
   * kubesphere-monitoring-system (existing ones are kept). The names of the copies this job made are
   * recorded as it goes, so a rollback removes exactly those.
   */
  private async copyFederatedObjects(ctx: JobContext): Promise<void> {
    const record = (await loadOptional<CopiedRecord>(ctx, COPIED_KEY)) ?? { secrets: [], configmaps: [] };
    const copy = async <T extends KubeObject>(rt: ResourceType<T>, obj: T, names: string[]) => {
      const { created } = await ctx.kube.createIfAbsent(rt, restorable(obj, NS));
      const name = obj.metadata.name ?? '';
      if (created && !names.includes(name)) {
        names.push(name);
        await ctx.store.save(COPIED_KEY, record);
      }
    };
    for (const secret of (await ctx.kube.listAll(SecretResource, { namespace: OLD_NS })).filter(
      copiedSecret,
    )) {
      await copy(SecretResource, secret, record.secrets);
    }
    for (const cm of (await ctx.kube.listAll(ConfigMapResource, { namespace: OLD_NS })).filter(
      copiedConfigMap,
    )) {
      await copy(ConfigMapResource, cm, record.configmaps);
    }
    ctx.logger.info(
      `copied ${record.secrets.length} Secrets and ${record.configmaps.length} ConfigMaps from ${OLD_NS} to ${NS}`,
    );
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    const host = await isHostCluster(ctx.kube);
    const backups = host ? await this.loadRecreated(ctx) : [];
    const result = await uninstallRelease(ctx.kube, NS, RELEASE, {
      reporter: ctx,
    });
    ctx.logger.info(
      result.found ? `helm release ${NS}/${RELEASE} uninstalled` : `no helm release ${NS}/${RELEASE}`,
    );
    await ctx.kube.delete(DeploymentResource, ADAPTER, NS);

    if (host) {
      // Only before the extension is installed: its CRDs have the same names.
      if (!(await ctx.kube.tryGet(InstallPlanResource, this.ref.name))) {
        for (const crd of DELETED_CRDS) await ctx.kube.delete(CustomResourceDefinitionResource, crd);
        await this.waitForCrdsDeleted(ctx);
      }
      const ref = await this.installPlanRef(ctx);
      const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
      ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
      await this.waitForOperator(ctx);
      await this.recreateObjects(ctx, backups);
    }
    await marker.mark();
  }

  /** The original's config tweak: history off when the cc has it off and nothing is configured. */
  private async installPlanRef(ctx: JobContext): Promise<ExtensionRef> {
    if (this.ref.clusterScheduling || this.ref.config) return this.ref;
    const cc = await getClusterConfiguration(ctx.kube);
    if (ccEnabled(cc, ['spec', 'notification', 'history', 'enabled'])) return this.ref;
    return { ...this.ref, config: 'notification-history:\n  enabled: false\n' };
  }

  /** The notification CRDs are gone (their objects deleted) — bounded, unlike the original. */
  private async waitForCrdsDeleted(ctx: JobContext): Promise<void> {
    await waitForCrdsDeleted(
      ctx,
      DELETED_CRDS.slice(0, 5),
      this.timings.crdTimeoutMs,
      this.timings.crdPollMs,
    );
  }

  /**
   * Waits for the extension's notification-manager operator to be ready: `retryCount` checks.
   * As in the original, a timeout is not an error — the re-creation that follows reports a
   * missing kind clearly.
   */
  private async waitForOperator(ctx: JobContext): Promise<void> {
    const checks = this.options.retryCount;
    let ready = false;
    if (checks > 0) {
      try {
        await waitFor(
          {
            what: `Deployment ${NS}/${OPERATOR} to be ready`,
            timeoutMs: (checks - 1) * this.timings.operatorPollMs,
            intervalMs: this.timings.operatorPollMs,
            check: async () => {
              const d = await ctx.kube.tryGet<Deployment>(DeploymentResource, OPERATOR, NS);
              const want = d?.spec?.replicas ?? 1;
              const have = d?.status?.readyReplicas ?? 0;
              if (d && have === want) return true;
              return notYet(d ? `${have} of ${want} replicas ready` : 'the Deployment does not exist yet');
            },
          },
          ctx,
        );
        ready = true;
      } catch (err) {
        if (!(err instanceof WaitTimeoutError)) throw err;
      }
    }
    if (!ready) {
      ctx.logger.warn(
        `Deployment ${NS}/${OPERATOR} is not ready after ${checks} checks; re-creating the objects anyway`,
      );
      return;
    }
    ctx.logger.info(`Deployment ${NS}/${OPERATOR} is ready`);
    if (this.timings.operatorGraceMs > 0) {
      // Ready pods may not serve the operator's webhooks yet.
      ctx.logger.info(
        `giving ${OPERATOR} ${formatDuration(this.timings.operatorGraceMs)} to start its webhooks`,
      );
      await sleep(this.timings.operatorGraceMs, ctx.signal);
    }
  }

  /**
   * The backups of the kinds post-upgrade re-creates, in {@link RECREATE_ORDER}; undefined for a kind
   * pre-upgrade recorded as absent. Read before anything changes: a missing one is an error.
   */
  private async loadRecreated(ctx: JobContext): Promise<[BackedUpKind, ObjectList | undefined][]> {
    const out: [BackedUpKind, ObjectList | undefined][] = [];
    for (const kindName of RECREATE_ORDER) {
      const k = KINDS.find((x) => x.rt.kind === kindName);
      if (k) out.push([k, await loadBackup<ObjectList>(ctx, k.key)]);
    }
    return out;
  }

  /** Re-creates the backed-up Configs, Routers, Silences and Receivers (existing ones are kept). */
  private async recreateObjects(
    ctx: JobContext,
    backups: readonly [BackedUpKind, ObjectList | undefined][],
  ): Promise<void> {
    for (const [k, list] of backups) {
      let created = 0;
      for (const item of list?.items ?? []) {
        try {
          if ((await ctx.kube.createIfAbsent(k.rt, restorable(item))).created) created++;
        } catch (err) {
          if (!(err instanceof NoKindError)) throw err;
          throw new KsUpgradeError(
            `cannot re-create ${k.rt.kind} ${item.metadata.name ?? ''}: ${k.crd} is not served`,
            {
              cause: err,
              hint: `the ${this.ref.name} extension has not installed its CRDs yet; check InstallPlan ${this.ref.name}, then retry the step`,
            },
          );
        }
      }
      if (list) ctx.logger.info(`re-created ${created} of ${list.items.length} ${k.rt.kind}s`);
    }
  }

  /**
   * Brings back what post-upgrade removed, as far as the backups allow: the notification CRDs and
   * objects (missing ones only), the notification-adapter Deployment; removes the copies made in
   * kubesphere-monitoring-system. The uninstalled notification-manager release and the federated
   * CRDs are not restored.
   */
  async rollback(ctx: JobContext): Promise<void> {
    await restoreKinds(ctx, KINDS);
    const adapter = await loadBackup<Deployment>(ctx, ADAPTER);
    if (adapter?.metadata.name) await ctx.kube.createIfAbsent(DeploymentResource, restorable(adapter));
    const copied = await loadOptional<CopiedRecord>(ctx, COPIED_KEY);
    for (const name of copied?.secrets ?? []) await ctx.kube.delete(SecretResource, name, NS);
    for (const name of copied?.configmaps ?? []) await ctx.kube.delete(ConfigMapResource, name, NS);
    await ctx.store.delete(COPIED_KEY);
    await ctx.store.delete(new DoneMarker(ctx).key);
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const actions: PlannedAction[] = [];
    for (const k of KINDS) {
      const n = (await ctx.kube.listIfServed(k.rt)).length;
      if (n > 0) actions.push({ phase: 'pre-upgrade', action: `back up ${n} ${k.rt.kind}s`, target: k.key });
    }
    const host = await isHostCluster(ctx.kube);
    if (host) {
      const secrets = (await ctx.kube.listAll(SecretResource, { namespace: OLD_NS })).filter(
        copiedSecret,
      ).length;
      const cms = (await ctx.kube.listAll(ConfigMapResource, { namespace: OLD_NS })).filter(
        copiedConfigMap,
      ).length;
      actions.push({
        phase: 'pre-upgrade',
        action: `copy ${secrets} Secrets and ${cms} ConfigMaps to ${NS}`,
        target: `Namespace ${OLD_NS}`,
      });
    }
    if ((await releaseHistory(ctx.kube, NS, RELEASE)).length > 0) {
      actions.push({ phase: 'post-upgrade', action: 'uninstall', target: `helm release ${NS}/${RELEASE}` });
    }
    if (await ctx.kube.tryGet(DeploymentResource, ADAPTER, NS)) {
      actions.push({ phase: 'pre-upgrade', action: 'back up', target: `Deployment ${NS}/${ADAPTER}` });
      actions.push({ phase: 'post-upgrade', action: 'delete', target: `Deployment ${NS}/${ADAPTER}` });
    }
    if (host) {
      for (const crd of DELETED_CRDS) {
        if (await crdExists(ctx.kube, crd))
          actions.push({ phase: 'post-upgrade', action: 'delete', target: `CRD ${crd}` });
      }
      actions.push({ phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` });
      actions.push({
        phase: 'post-upgrade',
        action: 're-create the backed-up Configs, Routers, Silences, Receivers',
      });
    }
    return actions;
  }
}

/**
 * `retryCount`: a whole number ≥ 0, as a YAML number or a string. (The original accepted only a Go
 * `int`, which YAML numbers never are, so its override never took effect.)
 */
function retryCountOption(options: DynamicOptions): number {
  const v = options.retryCount;
  if (v === undefined || v === null) return 180;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0) {
    throw new KsUpgradeError(
      `jobs.${JOB}.dynamicOptions.retryCount must be a whole number of checks (10 s apart), not ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/** The factory with other waits (tests). */
export function createWhizardNotificationJobFactory(timings: Partial<NotificationTimings> = {}): JobFactory {
  return {
    name: JOB,
    description:
      'Backs up notification-manager objects, replaces notification-manager with WhizardTelemetry Notification and re-creates the objects',
    create(options, extensionRef) {
      checkRerun(JOB, options);
      if (!extensionRef?.name || !extensionRef.version) {
        throw new KsUpgradeError(`jobs.${JOB}.extensionRef needs a name and a version`);
      }
      return new WhizardNotificationJob({ retryCount: retryCountOption(options) }, extensionRef, {
        ...DEFAULT_TIMINGS,
        ...timings,
      });
    },
  };
}

export const whizardNotificationJobFactory: JobFactory = createWhizardNotificationJobFactory();
