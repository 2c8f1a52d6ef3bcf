// whizard-alerting (reference §4.6): backs up the v3 alerting CRDs, webhooks and the users' rule
// groups, removes the v3 webhooks and installs WhizardTelemetry Alerting, which adapts the rule
// groups in place. See docs/jobs/whizard-alerting.md.
import {
  CustomResourceDefinitionResource,
  MutatingWebhookConfigurationResource,
  ValidatingWebhookConfigurationResource,
} from '../../api/core.js';
import {
  ClusterRuleGroupResource,
  GlobalRuleGroupResource,
  RuleGroupResource,
  type ClusterConfiguration,
} from '../../api/v3/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { applyExtensionCrds, syncExtensionChart } from '../../extensions/charts.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { NoKindError } from '../../kube/errors.js';
import type { KubeObject, ResourceType } from '../../kube/types.js';
import { listClusters } from '../../kubesphere/clusters.js';
import { getClusterConfiguration, isHostCluster } from '../../kubesphere/index.js';
import { getPath } from '../../util/object.js';
import {
  DoneMarker,
  backupOnce,
  loadBackup,
  ccEnabled,
  clustersWhere,
  extensionValues,
  hasConfiguredPlacement,
  setIfAbsent,
  valuesText,
} from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { boolOption, restorable } from '../helpers.js';

const JOB = 'whizard-alerting';
const WEBHOOK = 'rulegroups.alerting.kubesphere.io';
/** Rule groups generated from another data source are not the user's: not backed up. */
const NOT_GENERATED = '!alerting.kubesphere.io/data_source';

/** Single objects backed up before the upgrade, with the original's keys. */
const OBJECTS: readonly { rt: ResourceType; name: string; key: string }[] = [
  ...['globalrulegroups', 'clusterrulegroups', 'rulegroups'].map((r) => ({
    rt: CustomResourceDefinitionResource,
    name: `${r}.alerting.kubesphere.io`,
    key: `${JOB}-apiextensions.k8s.io.v1.customresourcedefinitions-.${r}.alerting.kubesphere.io`,
  })),
  {
    rt: ValidatingWebhookConfigurationResource,
    name: WEBHOOK,
    key: `${JOB}-admissionregistration.k8s.io.v1.validatingwebhookconfigurations-.${WEBHOOK}`,
  },
  {
    rt: MutatingWebhookConfigurationResource,
    name: WEBHOOK,
    key: `${JOB}-admissionregistration.k8s.io.v1.mutatingwebhookconfigurations-.${WEBHOOK}`,
  },
];
const WEBHOOKS = OBJECTS.filter((o) => o.rt !== CustomResourceDefinitionResource);

/** The users' rule groups, each kind saved as one `List` under the original's key. */
const RULE_GROUPS: readonly { rt: ResourceType; key: string }[] = [
  { rt: GlobalRuleGroupResource, key: `${JOB}-alerting.kubesphere.io.v2beta1.globalrulegroups` },
  { rt: ClusterRuleGroupResource, key: `${JOB}-alerting.kubesphere.io.v2beta1.clusterrulegroups` },
  { rt: RuleGroupResource, key: `${JOB}-alerting.kubesphere.io.v2beta1.rulegroups` },
];

/** Alerting is on for a cluster: the cc says so, or KSE 3.5 enabled it with whizard (status). */
function alertingOn(cc: ClusterConfiguration): boolean {
  return (
    ccEnabled(cc, ['spec', 'alerting', 'enabled']) ||
    getPath(cc, ['status', 'alerting', 'status']) === 'enabled'
  );
}

class WhizardAlertingJob implements UpgradeJob {
  constructor(
    private readonly updateCrds: boolean,
    private readonly ref: ExtensionRef | undefined,
  ) {}

  async preUpgrade(ctx: JobContext): Promise<void> {
    if (await new DoneMarker(ctx).check()) return;
    for (const o of OBJECTS) {
      const saved = await backupOnce(ctx, o.key, () => ctx.kube.tryGet(o.rt, o.name), {
        absent: `${o.rt.kind} ${o.name} not found`,
      });
      ctx.logger.info(`${o.rt.kind} ${o.name}: ${saved ? 'backed up' : 'not found'}`);
    }
    const cc = await getClusterConfiguration(ctx.kube);
    if (!ccEnabled(cc, ['spec', 'alerting', 'enabled'])) {
      ctx.logger.info('alerting is not enabled in the ClusterConfiguration: no rule groups to back up');
      return;
    }
    for (const g of RULE_GROUPS) {
      const list = await backupOnce(
        ctx,
        g.key,
        async () => {
          try {
            const items = await ctx.kube.listAll(g.rt, { labelSelector: NOT_GENERATED });
            return { apiVersion: 'v1', kind: 'List', metadata: {}, items };
          } catch (err) {
            if (err instanceof NoKindError) return undefined;
            throw err;
          }
        },
        { absent: `${g.rt.plural}.${g.rt.group} is not served` },
      );
      ctx.logger.info(
        list
          ? `${g.rt.kind}s backed up: ${list.items.length}`
          : `${g.rt.kind} is not served: nothing to back up`,
      );
    }
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    // The extension installs its own webhooks.
    for (const w of WEBHOOKS) {
      if (await ctx.kube.delete(w.rt, w.name)) ctx.logger.info(`${w.rt.kind} ${w.name} deleted`);
    }
    const cc = await getClusterConfiguration(ctx.kube);
    const host = await isHostCluster(ctx.kube);
    if (this.updateCrds && this.ref) {
      const applied = await applyExtensionCrds(ctx.kube, this.ref, { force: true, reporter: ctx });
      ctx.logger.info(`applied ${applied.length} CRDs of ${this.ref.name}-${this.ref.version}`);
    }
    if (host && this.ref) {
      const ref = await this.installPlanRef(ctx, cc, this.ref);
      if (ref) {
        const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
        ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
      } else {
        ctx.logger.info(`no cluster has alerting enabled: no InstallPlan ${this.ref.name}`);
      }
      const synced = await syncExtensionChart(ctx.kube, this.ref, await listClusters(ctx.kube));
      ctx.logger.info(`chart ${this.ref.name}-${this.ref.version} copied to the clusters`, synced);
    }
    await marker.mark();
  }

  /**
   * The ref for the InstallPlan: `global.rules.distributionMode` filled (None with whizard, Member
   * without) and, unless configured, placed on the clusters with alerting on. Undefined when no
   * cluster qualifies (the original then creates no InstallPlan).
   */
  async installPlanRef(
    ctx: JobContext,
    hostCc: ClusterConfiguration,
    ref: ExtensionRef,
  ): Promise<ExtensionRef | undefined> {
    const values = extensionValues(ref);
    const whizard = ccEnabled(hostCc, ['spec', 'monitoring', 'whizard', 'enabled']);
    setIfAbsent(values, 'global.rules.distributionMode', whizard ? 'None' : 'Member');
    const config = valuesText(values);
    const withConfig = { ...ref, ...(config ? { config } : {}) };
    if (hasConfiguredPlacement(ref)) return withConfig;
    const { clusters } = await clustersWhere(ctx, alertingOn);
    if (clusters.length === 0) return undefined;
    return { ...withConfig, clusterScheduling: { ...ref.clusterScheduling, placement: { clusters } } };
  }

  /**
   * Re-creates the rule-group webhook configurations deleted in post-upgrade (when missing). The
   * CRDs stay as the extension left them; the rule groups were never changed by this job.
   */
  async rollback(ctx: JobContext): Promise<void> {
    for (const w of WEBHOOKS) {
      const backup = await loadBackup<KubeObject>(ctx, w.key);
      if (!backup) continue;
      const { created } = await ctx.kube.createIfAbsent(w.rt, restorable(backup));
      if (created) ctx.logger.info(`${w.rt.kind} ${w.name} restored`);
    }
    await ctx.store.delete(new DoneMarker(ctx).key);
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const actions: PlannedAction[] = [];
    for (const o of OBJECTS) {
      if (await ctx.kube.tryGet(o.rt, o.name)) {
        actions.push({ phase: 'pre-upgrade', action: 'back up', target: `${o.rt.kind} ${o.name}` });
      }
    }
    const cc = await getClusterConfiguration(ctx.kube);
    if (ccEnabled(cc, ['spec', 'alerting', 'enabled'])) {
      for (const g of RULE_GROUPS) {
        const n = (await ctx.kube.listIfServed(g.rt, { labelSelector: NOT_GENERATED })).length;
        actions.push({ phase: 'pre-upgrade', action: `back up ${n} ${g.rt.kind}s` });
      }
    }
    for (const w of WEBHOOKS) {
      if (await ctx.kube.tryGet(w.rt, w.name)) {
        actions.push({ phase: 'post-upgrade', action: 'delete', target: `${w.rt.kind} ${w.name}` });
      }
    }
    if (this.updateCrds && this.ref) {
      actions.push({
        phase: 'post-upgrade',
        action: 'apply the extension chart CRDs',
        target: `${this.ref.name}-${this.ref.version}`,
      });
    }
    if (this.ref && (await isHostCluster(ctx.kube))) {
      actions.push({
        phase: 'post-upgrade',
        action: 'create (if a cluster has alerting enabled)',
        target: `InstallPlan ${this.ref.name}`,
      });
      actions.push({
        phase: 'post-upgrade',
        action: 'copy the chart to every cluster',
        target: `ConfigMap kubesphere-system/extension-${this.ref.name}-${this.ref.version}-chart`,
      });
    }
    return actions;
  }
}

export const whizardAlertingJobFactory: JobFactory = {
  name: JOB,
  description:
    'Backs up the v3 alerting CRDs, webhooks and rule groups, removes the webhooks and installs WhizardTelemetry Alerting',
  create(options, extensionRef) {
    boolOption(JOB, options, 'rerun', false);
    return new WhizardAlertingJob(boolOption(JOB, options, 'updateCrds', false), extensionRef);
  },
};
