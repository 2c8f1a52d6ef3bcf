// whizard-monitoring (reference §4.5): the v3 monitoring stack (kube-prometheus objects, the
// exporters' and whizard's helm releases) gives way to the WhizardTelemetry Monitoring extension,
// whose values are derived from each cluster's v3 ClusterConfiguration. See
// docs/jobs/whizard-monitoring.md.
import * as yaml from 'js-yaml';
import type { ClusterConfiguration } from '../../api/v3/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { KsUpgradeError } from '../../errors.js';
import { applyExtensionCrds, syncExtensionChart } from '../../extensions/charts.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import { releaseHistory } from '../../helm/release.js';
import { uninstallRelease } from '../../helm/uninstall.js';
import { NoKindError } from '../../kube/errors.js';
import type { KubeObject } from '../../kube/types.js';
import { clusterConfigurationOf, isHostClusterObject, listClusters } from '../../kubesphere/clusters.js';
import { getClusterConfiguration, isHostCluster } from '../../kubesphere/index.js';
import { isRecord } from '../../util/object.js';
import {
  DoneMarker,
  backupOnce,
  loadBackup,
  ccEnabled,
  extensionValues,
  hasConfiguredPlacement,
  valuesText,
} from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import {
  JOB,
  MONITORING_NS,
  OBJECT_GROUPS,
  RELEASES,
  objectKey,
  releaseKey,
  type ObjectGroup,
} from './objects.js';
import { monitoringValues, type MonitoringCluster } from './values.js';
import { boolOption, restorable as sharedRestorable } from '../helpers.js';

interface MonitoringOptions {
  /** Apply the extension chart's CRDs in post-upgrade (force; whizard CRDs on the host only). */
  updateCrds: boolean;
}

/** The releases of §4.5 this cluster has enabled (whizard only on the host). */
function enabledReleases(cc: ClusterConfiguration, host: boolean): string[] {
  return RELEASES.filter((r) => ccEnabled(cc, r.flag) && (!r.hostOnly || host)).map((r) => r.name);
}

/** Every (group, namespace, name) of the object table. */
function* allObjects(): Generator<{ group: ObjectGroup; ns: string; name: string }> {
  for (const group of OBJECT_GROUPS) {
    for (const [ns, name] of group.objects) yield { group, ns, name };
  }
}

/** An object from a backup, ready to be created again (server-set fields and status dropped). */
function restorable(obj: KubeObject): KubeObject {
  const copy = structuredClone(sharedRestorable(obj)) as KubeObject & { spec?: Record<string, unknown> };
  if (copy.kind === 'Service' && copy.spec && copy.spec.clusterIP !== 'None') {
    // The old cluster IP may have been taken since; let the server allocate one.
    delete copy.spec.clusterIP;
    delete copy.spec.clusterIPs;
  }
  return copy;
}

class WhizardMonitoringJob implements UpgradeJob {
  constructor(
    private readonly options: MonitoringOptions,
    private readonly ref: ExtensionRef | undefined,
  ) {}

  async preUpgrade(ctx: JobContext): Promise<void> {
    if (await new DoneMarker(ctx).check()) return;
    const cc = await getClusterConfiguration(ctx.kube);
    const host = await isHostCluster(ctx.kube);
    // The helm releases, as `helm status` shows them (values and manifest: stored encrypted).
    for (const name of enabledReleases(cc, host)) {
      const release = await backupOnce(
        ctx,
        releaseKey(name),
        async () => (await releaseHistory(ctx.kube, MONITORING_NS, name))[0]?.release,
        { sensitive: true, absent: `no helm release ${MONITORING_NS}/${name}` },
      );
      ctx.logger.info(
        release
          ? `helm release ${MONITORING_NS}/${name} backed up`
          : `no helm release ${MONITORING_NS}/${name}`,
      );
    }
    let saved = 0;
    for (const { group, ns, name } of allObjects()) {
      const obj = await backupOnce(
        ctx,
        objectKey(group, ns, name),
        () => ctx.kube.tryGet(group.rt, name, ns || undefined),
        {
          sensitive: group.sensitive === true,
          absent: `${group.rt.kind} ${ns ? `${ns}/` : ''}${name} not found (or not served)`,
        },
      );
      if (obj) saved++;
      ctx.heartbeat({ step: 'back up monitoring objects', message: `${group.rt.kind} ${name}` });
    }
    ctx.logger.info(`backed up ${saved} v3 monitoring objects`);
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    const cc = await getClusterConfiguration(ctx.kube);
    const host = await isHostCluster(ctx.kube);

    for (const name of enabledReleases(cc, host)) {
      const result = await uninstallRelease(ctx.kube, MONITORING_NS, name, {
        reporter: ctx,
      });
      ctx.logger.info(
        result.found
          ? `helm release ${MONITORING_NS}/${name} uninstalled (${result.deleted.length} objects deleted)`
          : `helm release ${MONITORING_NS}/${name} not found`,
      );
    }

    let deleted = 0;
    for (const { group, ns, name } of allObjects()) {
      if (await ctx.kube.delete(group.rt, name, ns || undefined)) deleted++;
      ctx.heartbeat({ step: 'delete v3 monitoring objects', message: `${group.rt.kind} ${name}` });
    }
    ctx.logger.info(`deleted ${deleted} v3 monitoring objects`);

    if (this.options.updateCrds && this.ref) {
      const applied = await applyExtensionCrds(ctx.kube, this.ref, {
        force: true,
        // The whizard (observability centre) CRDs belong on the host only.
        skip: (crd) => !host && crd.spec.group === 'monitoring.whizard.io',
        reporter: ctx,
      });
      ctx.logger.info(`applied ${applied.length} CRDs of ${this.ref.name}-${this.ref.version}`);
    }

    if (host && this.ref) {
      const ref = await this.installPlanRef(ctx, cc, this.ref);
      const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
      ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
      const synced = await syncExtensionChart(ctx.kube, this.ref, await listClusters(ctx.kube));
      ctx.logger.info(`chart ${this.ref.name}-${this.ref.version} copied to the clusters`, synced);
    }
    await marker.mark();
  }

  /** The extensionRef with the values and placement derived from the clusters' ccs. */
  async installPlanRef(
    ctx: JobContext,
    hostCc: ClusterConfiguration,
    ref: ExtensionRef,
  ): Promise<ExtensionRef> {
    const configured = hasConfiguredPlacement(ref);
    const clusters: MonitoringCluster[] = [];
    if (!configured) {
      // Every cluster gets the extension; each one's values come from its own cc.
      const list = await listClusters(ctx.kube);
      if (list.length === 0) clusters.push({ name: 'host', isHost: true, cc: hostCc });
      for (const c of list) {
        const isHost = isHostClusterObject(c);
        const name = c.metadata.name ?? '';
        clusters.push({ name, isHost, cc: isHost ? hostCc : await clusterConfigurationOf(ctx.kube, c) });
        ctx.heartbeat({ step: 'read cluster configurations', message: name });
      }
    }
    const userOverrides: Record<string, Record<string, unknown>> = {};
    for (const [name, text] of Object.entries(ref.clusterScheduling?.overrides ?? {})) {
      const parsed = yaml.load(text);
      if (parsed !== null && parsed !== undefined && !isRecord(parsed)) {
        throw new KsUpgradeError(
          `jobs.${JOB}.extensionRef.clusterScheduling.overrides.${name} is not a YAML mapping`,
        );
      }
      userOverrides[name] = parsed ?? {};
    }
    const { values, overrides } = monitoringValues(extensionValues(ref), hostCc, clusters, userOverrides);
    const config = valuesText(values);
    if (configured) return { ...ref, ...(config ? { config } : {}) };
    const overrideTexts: Record<string, string> = { ...ref.clusterScheduling?.overrides };
    for (const [name, o] of Object.entries(overrides)) overrideTexts[name] = yaml.dump(o, { lineWidth: -1 });
    return {
      ...ref,
      ...(config ? { config } : {}),
      clusterScheduling: {
        ...ref.clusterScheduling,
        placement: { clusters: clusters.map((c) => c.name) },
        ...(Object.keys(overrideTexts).length > 0 ? { overrides: overrideTexts } : {}),
      },
    };
  }

  /**
   * Re-creates the v3 monitoring objects deleted in post-upgrade from their backups (those that
   * are missing; nothing is overwritten). Uninstalled helm releases are not re-installed.
   */
  async rollback(ctx: JobContext): Promise<void> {
    let restored = 0;
    // Reverse deletion order: accounts and RBAC before workloads, the operator's CRs last.
    for (const { group, ns, name } of [...allObjects()].reverse()) {
      const backup = await loadBackup<KubeObject>(ctx, objectKey(group, ns, name));
      if (!backup) continue;
      try {
        const obj = restorable(backup);
        const { created } = await ctx.kube.createIfAbsent(group.rt, obj);
        if (created) restored++;
      } catch (err) {
        if (!(err instanceof NoKindError)) throw err;
        ctx.logger.warn(`cannot restore ${group.rt.kind} ${ns}/${name}: the kind is no longer served`);
      }
      ctx.heartbeat({ step: 'restore v3 monitoring objects', message: `${group.rt.kind} ${name}` });
    }
    await ctx.store.delete(new DoneMarker(ctx).key);
    ctx.logger.info(
      `restored ${restored} v3 monitoring objects; uninstalled helm releases are not re-installed`,
    );
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const cc = await getClusterConfiguration(ctx.kube);
    const host = await isHostCluster(ctx.kube);
    const actions: PlannedAction[] = [];
    for (const name of enabledReleases(cc, host)) {
      if ((await releaseHistory(ctx.kube, MONITORING_NS, name)).length === 0) continue;
      const target = `helm release ${MONITORING_NS}/${name}`;
      actions.push({ phase: 'pre-upgrade', action: 'back up (encrypted)', target });
      actions.push({ phase: 'post-upgrade', action: 'uninstall', target });
    }
    for (const { group, ns, name } of allObjects()) {
      if (!(await ctx.kube.tryGet(group.rt, name, ns || undefined))) continue;
      const target = `${group.rt.kind} ${ns ? `${ns}/` : ''}${name}`;
      actions.push({
        phase: 'pre-upgrade',
        action: group.sensitive ? 'back up (encrypted)' : 'back up',
        target,
      });
      actions.push({ phase: 'post-upgrade', action: 'delete', target });
    }
    if (this.options.updateCrds && this.ref) {
      actions.push({
        phase: 'post-upgrade',
        action: 'apply the extension chart CRDs',
        target: `${this.ref.name}-${this.ref.version}`,
      });
    }
    if (host && this.ref) {
      actions.push({ phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` });
      actions.push({
        phase: 'post-upgrade',
        action: 'copy the chart to every cluster',
        target: `ConfigMap kubesphere-system/extension-${this.ref.name}-${this.ref.version}-chart`,
      });
    }
    return actions;
  }
}

export const whizardMonitoringJobFactory: JobFactory = {
  name: JOB,
  description:
    'Removes the v3 monitoring stack (backed up, Secrets encrypted) and installs WhizardTelemetry Monitoring with values from each cluster',
  // The backups hold the Alertmanager/Grafana Secrets and helm release values.
  requiresEncryption: true,
  create(options, extensionRef) {
    boolOption(JOB, options, 'rerun', false);
    return new WhizardMonitoringJob(
      { updateCrds: boolOption(JOB, options, 'updateCrds', false) },
      extensionRef,
    );
  },
};
