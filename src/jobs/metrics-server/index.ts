// The `metrics-server` job (priority 80): the v3 metrics-server of kube-system to the v4
// metrics-server extension (reference §4.10). pre-upgrade backs the objects up (once — the
// original overwrote them on every run), post-upgrade deletes them and, on the host, creates the
// InstallPlan. Docs: docs/jobs/metrics-server.md.
import {
  APIServiceResource,
  DeploymentResource,
  RbacClusterRoleBindingResource,
  RbacClusterRoleResource,
  RbacRoleBindingResource,
  ServiceAccountResource,
  ServiceResource,
} from '../../api/core.js';
import type { ClusterConfiguration } from '../../api/v3/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { ValidationError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import type { KubeObject, ResourceType } from '../../kube/types.js';
import { getClusterConfiguration } from '../../kubesphere/index.js';
import { DoneMarker, backupOnce, ccEnabled, loadBackup, onHost, placementFromClusters } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { checkKnownOptions, checkRerun, forCreate, removePendingInstallPlan } from '../helpers.js';

const JOB = 'metrics-server';
const NS = 'kube-system';

interface Target {
  rt: ResourceType;
  namespace: string;
  name: string;
}

/** The objects of the v3 metrics-server, in the original's order (the APIService first). */
export const METRICS_SERVER_OBJECTS: readonly Target[] = [
  { rt: APIServiceResource, namespace: '', name: 'v1beta1.metrics.k8s.io' },
  { rt: ServiceAccountResource, namespace: NS, name: 'metrics-server' },
  { rt: RbacClusterRoleResource, namespace: '', name: 'system:aggregated-metrics-reader' },
  { rt: RbacClusterRoleResource, namespace: '', name: 'system:metrics-server' },
  { rt: RbacClusterRoleBindingResource, namespace: '', name: 'metrics-server:system:auth-delegator' },
  { rt: RbacClusterRoleBindingResource, namespace: '', name: 'metrics-server:system:metrics-server' },
  { rt: RbacClusterRoleBindingResource, namespace: '', name: 'system:metrics-server' },
  { rt: RbacRoleBindingResource, namespace: NS, name: 'metrics-server-auth-reader' },
  { rt: DeploymentResource, namespace: NS, name: 'metrics-server' },
  { rt: ServiceResource, namespace: NS, name: 'metrics-server' },
];

/** The original's key: `metrics-server-<Kind>-<namespace>-<name>.json` (empty namespace for cluster scope). */
export function metricsServerKey(t: Target): string {
  return `${JOB}-${t.rt.kind}-${t.namespace}-${t.name}.json`;
}

/** A Service gets a new cluster IP: the old one may not be released yet (or taken). */
function withoutClusterIP(obj: KubeObject): KubeObject {
  const spec = (obj as { spec?: Record<string, unknown> }).spec;
  if (obj.kind !== 'Service' || !spec) return obj;
  const { clusterIP: _ip, clusterIPs: _ips, ...rest } = spec;
  return { ...obj, spec: rest } as KubeObject;
}

const enabled = (cc: ClusterConfiguration) => ccEnabled(cc, ['spec', 'metrics_server', 'enabled']);
const ns = (t: Target) => (t.rt.namespaced ? t.namespace : undefined);

class MetricsServerJob implements UpgradeJob {
  constructor(private readonly ref: ExtensionRef) {}

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const actions: PlannedAction[] = [];
    if (enabled(await getClusterConfiguration(ctx.v3))) {
      for (const t of METRICS_SERVER_OBJECTS) {
        if (!(await ctx.v3.tryGet(t.rt, t.name, ns(t)))) continue;
        const target = `${t.rt.kind} ${t.namespace ? `${t.namespace}/` : ''}${t.name}`;
        actions.push(
          { phase: 'pre-upgrade', action: 'back up', target },
          { phase: 'post-upgrade', action: 'delete', target },
        );
      }
    }
    if (await onHost(ctx))
      actions.push({ phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` });
    return actions;
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    if (!enabled(await getClusterConfiguration(ctx.v3))) return;
    for (const t of METRICS_SERVER_OBJECTS) {
      await backupOnce(ctx, metricsServerKey(t), () => ctx.v3.tryGet(t.rt, t.name, ns(t)), {
        absent: `${t.rt.kind} ${t.namespace ? `${t.namespace}/` : ''}${t.name} not found`,
      });
    }
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const marker = new DoneMarker(ctx);
    if (await marker.check()) return;
    if (enabled(await getClusterConfiguration(ctx.v3))) {
      for (const t of METRICS_SERVER_OBJECTS) {
        if (await ctx.v4.delete(t.rt, t.name, ns(t))) ctx.logger.info(`${t.rt.kind} ${t.name} deleted`);
      }
    }
    if (await onHost(ctx)) {
      const ref = structuredClone(this.ref);
      const scheduling = await placementFromClusters(ctx, ref, enabled);
      if (scheduling) ref.clusterScheduling = scheduling;
      const { action } = await ensureInstallPlan(ctx.v4, ref, { logger: ctx.logger, assumeHost: true });
      ctx.logger.info(`InstallPlan ${ref.name}: ${action}`);
    }
    await marker.mark();
  }

  /**
   * Removes a pending InstallPlan and re-creates the backed-up objects that are missing (an
   * installed v4 extension owns objects of the same names: those are left alone).
   */
  async rollback(ctx: JobContext): Promise<void> {
    await removePendingInstallPlan(ctx, this.ref.name);
    // Dependencies first: the APIService last, once its Service exists again.
    for (const t of [...METRICS_SERVER_OBJECTS].reverse()) {
      const backup = await loadBackup<KubeObject>(ctx, metricsServerKey(t));
      if (!backup) continue;
      const { created } = await ctx.v4.createIfAbsent(t.rt, withoutClusterIP(forCreate(backup)));
      if (created) ctx.logger.info(`${t.rt.kind} ${t.name} restored`);
    }
  }
}

export const metricsServerJobFactory: JobFactory = {
  name: JOB,
  description: 'KubeSphere v3 metrics-server (kube-system) to the v4 metrics-server extension',
  create(options, extensionRef) {
    checkKnownOptions(JOB, options, ['rerun']);
    checkRerun(JOB, options);
    if (!extensionRef?.version) {
      throw new ValidationError('jobs.metrics-server.extensionRef.version is required', {
        hint: 'e.g. extensionRef: { name: metrics-server, version: 0.7.1 } (the sample config.yaml has it)',
      });
    }
    return new MetricsServerJob({ ...extensionRef, name: extensionRef.name || JOB });
  },
};
