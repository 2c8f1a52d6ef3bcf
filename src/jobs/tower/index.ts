// The `tower` job (priority 100): tower, the v3 multi-cluster proxy of the host, to the v4 tower
// extension (reference §4.10). Runs where the cc says `spec.multicluster.clusterRole: host`.
// pre-upgrade hands Service and Deployment kubesphere-system/tower to the extension's helm release
// and makes the Service reachable (NodePort) unless a load balancer already serves it; post-upgrade
// creates the InstallPlan. Added: both objects are backed up first (new keys) so rollback can undo
// the change. Docs: docs/jobs/tower.md.
import { DeploymentResource, ServiceResource, type Deployment, type Service } from '../../api/core.js';
import { InstallPlanResource } from '../../api/v4/index.js';
import type { ExtensionRef } from '../../config/types.js';
import { ValidationError } from '../../errors.js';
import { ensureInstallPlan } from '../../extensions/index.js';
import type { KubeObject, ResourceType } from '../../kube/types.js';
import { getClusterConfiguration } from '../../kubesphere/index.js';
import { getPath } from '../../util/object.js';
import { backupOnce, loadBackup } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { checkKnownOptions, removePendingInstallPlan } from '../helpers.js';

const JOB = 'tower';
const NS = 'kubesphere-system';
const NAME = 'tower';
const HELM_LABELS = { 'app.kubernetes.io/managed-by': 'Helm' };
const HELM_ANNOTATIONS = {
  'meta.helm.sh/release-name': 'tower',
  'meta.helm.sh/release-namespace': 'extension-tower',
};

/** Store keys — the original backed up nothing; these are ks-upgrade's. */
export const TOWER_KEYS = { service: 'tower-service', deployment: 'tower-deployment' } as const;

async function adopt(ctx: JobContext, rt: ResourceType): Promise<void> {
  if (!(await ctx.v3.tryGet(rt, NAME, NS))) return;
  const { changed } = await ctx.v3.mutate(rt, NAME, NS, (obj) => {
    obj.metadata.labels = { ...obj.metadata.labels, ...HELM_LABELS };
    obj.metadata.annotations = { ...obj.metadata.annotations, ...HELM_ANNOTATIONS };
  });
  if (changed) ctx.logger.info(`${rt.kind} ${NS}/${NAME} handed to helm release extension-tower/tower`);
}

/** NodePort unless it is one already or a load balancer with an address serves it. */
async function exposeService(ctx: JobContext): Promise<void> {
  if (!(await ctx.v3.tryGet(ServiceResource, NAME, NS))) return;
  const { changed } = await ctx.v3.mutate(ServiceResource, NAME, NS, (svc) => {
    const type = svc.spec?.type;
    if (type === 'NodePort') return;
    if (type === 'LoadBalancer' && (svc.status?.loadBalancer?.ingress?.length ?? 0) > 0) return;
    svc.spec = { ...svc.spec, type: 'NodePort' };
  });
  if (changed) ctx.logger.info(`Service ${NS}/${NAME} is now a NodePort service`);
}

/** Labels and annotations back as backed up; ks-upgrade's helm metadata removed. */
function restoreMetadata(obj: KubeObject, backup: KubeObject): void {
  if (backup.metadata.labels) obj.metadata.labels = { ...backup.metadata.labels };
  else delete obj.metadata.labels;
  if (backup.metadata.annotations) obj.metadata.annotations = { ...backup.metadata.annotations };
  else delete obj.metadata.annotations;
}

class TowerJob implements UpgradeJob {
  constructor(private readonly ref: ExtensionRef) {}

  /** The original's condition: the cc's `spec.multicluster.clusterRole` is `host`. */
  async isEnabled(ctx: JobContext): Promise<boolean> {
    return getPath(await getClusterConfiguration(ctx.v3), ['spec', 'multicluster', 'clusterRole']) === 'host';
  }

  plan(): Promise<PlannedAction[]> {
    return Promise.resolve([
      {
        phase: 'pre-upgrade',
        action: 'back up, hand to helm release extension-tower/tower',
        target: `Service ${NS}/${NAME}`,
      },
      {
        phase: 'pre-upgrade',
        action: 'back up, hand to helm release extension-tower/tower',
        target: `Deployment ${NS}/${NAME}`,
      },
      {
        phase: 'pre-upgrade',
        action: 'make NodePort unless a load balancer serves it',
        target: `Service ${NS}/${NAME}`,
      },
      { phase: 'post-upgrade', action: 'create', target: `InstallPlan ${this.ref.name}` },
    ]);
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    await backupOnce(ctx, TOWER_KEYS.service, () => ctx.v3.tryGet(ServiceResource, NAME, NS), {
      absent: `Service ${NS}/${NAME} not found`,
    });
    await backupOnce(ctx, TOWER_KEYS.deployment, () => ctx.v3.tryGet(DeploymentResource, NAME, NS), {
      absent: `Deployment ${NS}/${NAME} not found`,
    });
    await adopt(ctx, ServiceResource);
    await adopt(ctx, DeploymentResource);
    await exposeService(ctx);
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    const { action } = await ensureInstallPlan(ctx.v4, this.ref, { logger: ctx.logger });
    ctx.logger.info(`InstallPlan ${this.ref.name}: ${action}`);
  }

  /**
   * Removes a pending InstallPlan and gives Service and Deployment their v3 labels, annotations and
   * Service type back — unless the extension is installed (its helm release owns them now).
   */
  async rollback(ctx: JobContext): Promise<void> {
    const plan = await ctx.v4.tryGet(InstallPlanResource, this.ref.name);
    const state = plan?.status?.state;
    if (state === 'Installed' || state === 'Upgraded') {
      ctx.logger.warn(
        `InstallPlan ${this.ref.name} is ${state}: tower objects stay with the extension's release`,
      );
      return;
    }
    await removePendingInstallPlan(ctx, this.ref.name);
    const svc = await loadBackup<Service>(ctx, TOWER_KEYS.service);
    if (svc && (await ctx.v3.tryGet(ServiceResource, NAME, NS))) {
      await ctx.v3.mutate(ServiceResource, NAME, NS, (cur) => {
        restoreMetadata(cur, svc);
        const type = svc.spec?.type ?? 'ClusterIP';
        if (cur.spec?.type === type) return;
        cur.spec = { ...cur.spec, type };
        // Node ports exist for NodePort and LoadBalancer services only.
        if (type === 'ClusterIP' && cur.spec.ports)
          cur.spec.ports = cur.spec.ports.map(({ nodePort: _n, ...p }) => p);
      });
    }
    const deploy = await loadBackup<Deployment>(ctx, TOWER_KEYS.deployment);
    if (deploy && (await ctx.v3.tryGet(DeploymentResource, NAME, NS))) {
      await ctx.v3.mutate(DeploymentResource, NAME, NS, (cur) => {
        restoreMetadata(cur, deploy);
      });
    }
  }
}

export const towerJobFactory: JobFactory = {
  name: JOB,
  description: 'tower, the KubeSphere v3 multi-cluster proxy, to the v4 tower extension',
  create(options, extensionRef) {
    checkKnownOptions(JOB, options, []);
    if (!extensionRef?.version) {
      throw new ValidationError('jobs.tower.extensionRef.version is required', {
        hint: 'e.g. extensionRef: { name: tower, version: 1.0.0 } (the sample config.yaml has it)',
      });
    }
    return new TowerJob({ ...extensionRef, name: extensionRef.name || JOB });
  },
};
