// The `core` job (priority 10000): prepares a KubeSphere v3 cluster for the v4 core and finishes
// it afterwards — the original's §4.1, step for step, with its bugs fixed and a real rollback.
// Steps, store keys, rollback and limits: docs/jobs/core.md.
import { ValidationError } from '../../errors.js';
import { clusterRole, isHostCluster } from '../../kubesphere/index.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { CORE_JOB_NAME } from './constants.js';
import { planCore } from './plan.js';
import {
  deleteKubeSphereWebhooks,
  deleteMemberSystemWorkspace,
  detachNamespaces,
  prepareNetwork,
  protectSystemWorkspace,
  refreshHostKubeconfig,
  scaleDownControlPlane,
} from './prepare.js';
import {
  backupKubeSphereConfig,
  defaultWorkspacePlacement,
  deleteKsInstaller,
  labelWorkspaceNamespaces,
  markMemberClusters,
  retainUpgradeVolumes,
  setDefaultWorkspaceManagers,
  validateClusterRole,
} from './pre.js';
import { rollbackCore } from './rollback.js';
import { runStep } from './step.js';

export { CORE_KEYS, KUBESPHERE_CONFIG_KEY, type AddedMark } from './constants.js';
export { SCALE_DOWN_TIMEOUT_MS, ScaleDownTimeoutError, waitForScaledDown } from './deployments.js';
export { CoreStepError } from './step.js';

/** `jobs.core.dynamicOptions`. */
export interface CoreOptions {
  /** Cluster name single-cluster workspaces are placed on (pre-upgrade). Default `host`. */
  hostClusterName: string;
}

class CoreJob implements UpgradeJob {
  constructor(private readonly options: CoreOptions) {}

  /** Always enabled, as in the original. */
  isEnabled(): Promise<boolean> {
    return Promise.resolve(true);
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    return planCore(ctx, this.options.hostClusterName);
  }

  async prepareUpgrade(ctx: JobContext): Promise<void> {
    requireEncryption(ctx);
    // Read once, before anything changes: a cluster without kubesphere-config fails here, not halfway.
    const host = await isHostCluster(ctx.v3);
    await runStep(ctx, 'scale-down', 'failed to scale down deployments', () => scaleDownControlPlane(ctx));
    await runStep(ctx, 'detach-namespaces', 'failed to remove namespace owner reference', () =>
      detachNamespaces(ctx),
    );
    await runStep(ctx, 'delete-webhooks', 'failed to delete kubesphere webhook', () =>
      deleteKubeSphereWebhooks(ctx),
    );
    if (host) {
      await runStep(ctx, 'host-kubeconfig', 'failed to refresh host cluster kubeconfig', () =>
        refreshHostKubeconfig(ctx),
      );
    }
    await runStep(ctx, 'network', 'failed to prepare upgrade network', () => prepareNetwork(ctx));
    await runStep(ctx, 'protect-system-workspace', 'failed to patch system workspace template', () =>
      protectSystemWorkspace(ctx),
    );
    if (!host) {
      await runStep(
        ctx,
        'member-system-workspace',
        'failed to delete system workspace template in member cluster',
        () => deleteMemberSystemWorkspace(ctx),
      );
    }
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    requireEncryption(ctx);
    const role = await clusterRole(ctx.v3);
    const host = role !== 'member';
    await runStep(ctx, 'validate-cluster-role', 'failed to validate cluster role', () =>
      validateClusterRole(ctx, host),
    );
    await runStep(ctx, 'retain-volume', 'failed to retain the upgrade volume', () =>
      retainUpgradeVolumes(ctx),
    );
    await runStep(ctx, 'backup-kubesphere-config', 'failed to back up kubesphere config', () =>
      backupKubeSphereConfig(ctx),
    );
    await runStep(ctx, 'mark-member-clusters', 'failed to update member clusters', () =>
      markMemberClusters(ctx),
    );
    await runStep(ctx, 'delete-ks-installer', 'failed to delete ks-installer', () => deleteKsInstaller(ctx));
    await runStep(ctx, 'label-namespaces', 'failed to label workspace namespaces', () =>
      labelWorkspaceNamespaces(ctx),
    );
    if (role === 'none') {
      await runStep(ctx, 'default-placement', 'failed to set default workspace placement', () =>
        defaultWorkspacePlacement(ctx, this.options.hostClusterName),
      );
    }
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    await runStep(ctx, 'workspace-managers', 'failed to set workspace template managers', () =>
      setDefaultWorkspaceManagers(ctx),
    );
  }

  dynamicUpgrade(ctx: JobContext): Promise<void> {
    ctx.logger.info('Start dynamic-upgrade job');
    return Promise.resolve();
  }

  async rollback(ctx: JobContext): Promise<void> {
    await rollbackCore(ctx);
  }
}

/**
 * The plan refuses core without `storage.encryption`; this guards the phases run another way (a
 * single-phase command, a test): fail before the first change, not at the first secret backup.
 */
function requireEncryption(ctx: JobContext): void {
  if (ctx.store.encryptionKeyId !== undefined) return;
  throw new ValidationError(
    `the core job backs up kubeconfigs and the JWT secret, and the backup store (${ctx.store.location}) has no encryption key`,
    {
      hint:
        'configure storage.encryption.keyFile (or keyEnv) with a 32-byte key, e.g. `head -c 32 /dev/urandom > backup.key`, ' +
        'and run the phase again; nothing was changed',
    },
  );
}

/** Checks `jobs.core.dynamicOptions` when the job is built from the config. */
export function parseCoreOptions(options: Record<string, unknown>): CoreOptions {
  const { hostClusterName = 'host', ...unknown } = options;
  const extra = Object.keys(unknown);
  if (extra.length > 0) {
    throw new ValidationError(`jobs.core.dynamicOptions: unknown option ${extra.join(', ')}`, {
      hint: 'the core job reads only hostClusterName',
    });
  }
  if (typeof hostClusterName !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(hostClusterName)) {
    throw new ValidationError(
      `jobs.core.dynamicOptions.hostClusterName must be a cluster name, got ${JSON.stringify(hostClusterName)}`,
      { hint: 'use the name of the host Cluster object (lowercase letters, digits, "-" and "."), e.g. host' },
    );
  }
  return { hostClusterName };
}

/**
 * The core job: scales the v3 control plane down, detaches namespaces from workspaces, removes the
 * KubeSphere webhooks, points the host Cluster at the `kubesphere` ServiceAccount, marks members,
 * removes ks-installer and sets workspace defaults for v4; rollback undoes prepare and pre.
 * It backs up kubeconfigs and the JWT secret, so it needs `storage.encryption`.
 */
export const coreJobFactory: JobFactory = {
  name: CORE_JOB_NAME,
  description:
    'KubeSphere core: stop the v3 control plane, detach workspaces, prepare clusters and workspaces for v4',
  requiresEncryption: true,
  create(options) {
    return new CoreJob(parseCoreOptions(options));
  },
};
