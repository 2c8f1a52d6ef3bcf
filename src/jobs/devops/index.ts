// The `devops` job (priority 800): KubeSphere DevOps v3 (helm releases `devops` in
// kubesphere-devops-system and argocd) → the v4 DevOps extension — reference §4.4, with its bugs
// fixed (§7.2 item 16) and the Jenkins credentials kept out of the InstallPlan (§7.3 item 21).
// Steps, store keys and the credentials mechanism: docs/jobs/devops.md.
import * as yaml from 'js-yaml';
import type { Cluster } from '../../api/shared.js';
import type { ExtensionRef } from '../../config/types.js';
import { ValidationError } from '../../errors.js';
import { ensureInstallPlan, waitForInstallPlan } from '../../extensions/index.js';
import { releaseHistory } from '../../helm/release.js';
import type { ResourceClient } from '../../kube/client.js';
import { clientForCluster, isHostClusterObject, listClusters } from '../../kubesphere/clusters.js';
import { ccFlag, getClusterConfiguration, isHostCluster } from '../../kubesphere/index.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import {
  AGENT_CONFIGMAP,
  ARGO_NS,
  ARGO_RELEASE,
  CASC_CONFIGMAP,
  CREDENTIALS_SECRET,
  CURRENT,
  DEVOPS_ENABLED_PATH,
  DEVOPS_JOB_NAME,
  DONE_KEY,
  INSTALL_INTERVAL_MS,
  INSTALL_TIMEOUT_MS,
  SYSTEM_NS,
  SYSTEM_RELEASE,
  WORKER_NS,
} from './constants.js';
import { writeCredentialsSecret } from './credentials.js';
import {
  backupCluster,
  backupConfigMapToCluster,
  backupJenkinsVolume,
  loadClusterBackups,
} from './backup.js';
import { labelProjectNamespaces } from './projects.js';
import {
  clusterValues,
  extensionConfig,
  mergeOverrides,
  type JenkinsCredentials,
  type Workload,
} from './values.js';
import { rebindJenkinsPvc, retainJenkinsVolume, uninstallV3 } from './volumes.js';

export * from './constants.js';
export { writeCredentialsSecret } from './credentials.js';
export {
  argocdOverride,
  clusterValues,
  extensionConfig,
  jenkinsOverride,
  mergeOverrides,
  mergeValues,
  DevOpsBackupError,
  type ClusterBackups,
} from './values.js';
export { JenkinsVolumeError } from './volumes.js';

/** `jobs.devops.dynamicOptions`. */
export interface DevOpsOptions {
  /** Remove the done marker and run again (an addition: the original had no way back). */
  rerun: boolean;
}

/** A cluster as post-upgrade sees it: name, whether it is the host, how to reach it. */
interface ClusterRef {
  name: string;
  host: boolean;
  client: () => Promise<ResourceClient>;
}

/** The Cluster objects as targets; a single cluster without them is `host`. */
async function clusterRefs(ctx: JobContext): Promise<ClusterRef[]> {
  const clusters: Cluster[] = await listClusters(ctx.kube);
  if (clusters.length === 0) return [{ name: 'host', host: true, client: () => Promise.resolve(ctx.kube) }];
  return clusters.map((c) => ({
    name: c.metadata.name ?? '',
    host: isHostClusterObject(c),
    client: async () => {
      const client = await clientForCluster(ctx.kube, c);
      return client === ctx.kube ? client : client.withSignal(ctx.signal);
    },
  }));
}

async function devopsEnabled(client: ResourceClient): Promise<boolean> {
  return ccFlag(await getClusterConfiguration(client), DEVOPS_ENABLED_PATH);
}

class DevOpsJob implements UpgradeJob {
  constructor(
    private readonly ref: ExtensionRef,
    private readonly options: DevOpsOptions,
  ) {}

  /** The original's completion marker, checked by both phases; `rerun` removes it. */
  private async done(ctx: JobContext): Promise<boolean> {
    if (this.options.rerun) {
      await ctx.store.delete(DONE_KEY);
      return false;
    }
    if (!(await ctx.store.exists(DONE_KEY))) return false;
    ctx.logger.info(
      'the devops upgrade is done on this cluster (set dynamicOptions.rerun: true to run it again)',
    );
    return true;
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    if (await ctx.store.exists(DONE_KEY)) {
      return [{ phase: 'pre-upgrade', action: `nothing: already done (store key ${DONE_KEY})` }];
    }
    const actions: PlannedAction[] = [];
    const host = await isHostCluster(ctx.kube);
    const enabledClusters: string[] = [];
    if (host) {
      for (const c of await clusterRefs(ctx)) {
        if (!(await devopsEnabled(await c.client()))) continue;
        enabledClusters.push(c.name);
        actions.push({
          phase: 'pre-upgrade',
          action: 'back up DevOps v3 (encrypted)',
          target: `cluster ${c.name}`,
        });
      }
    }
    if (await devopsEnabled(ctx.kube)) {
      const releases = [
        [SYSTEM_NS, SYSTEM_RELEASE],
        [ARGO_NS, ARGO_RELEASE],
      ] as const;
      for (const [ns, name] of releases) {
        const latest = (await releaseHistory(ctx.kube, ns, name))[0]?.release;
        if (latest && !(ns === SYSTEM_NS && latest.chart.metadata.name.startsWith('devops')))
          actions.push({ phase: 'pre-upgrade', action: 'uninstall helm release', target: `${ns}/${name}` });
      }
      actions.push(
        {
          phase: 'pre-upgrade',
          action: 'keep the Jenkins PV (Retain) and re-bind its PVC',
          target: SYSTEM_NS,
        },
        {
          phase: 'pre-upgrade',
          action: 'copy ConfigMaps to <name>-backup',
          target: `${AGENT_CONFIGMAP}, ${CASC_CONFIGMAP}`,
        },
      );
    }
    if (
      host &&
      (enabledClusters.length > 0 || (this.ref.clusterScheduling?.placement?.clusters?.length ?? 0) > 0)
    ) {
      actions.push(
        {
          phase: 'post-upgrade',
          action: 'write the Jenkins credentials Secret',
          target: `Secret ${SYSTEM_NS}/${CREDENTIALS_SECRET} on ${enabledClusters.join(', ') || 'the placed clusters'}`,
        },
        {
          phase: 'post-upgrade',
          action: 'create InstallPlan and wait until Installed',
          target: `InstallPlan ${this.ref.name}`,
        },
      );
    }
    return actions;
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    if (await this.done(ctx)) return;
    // 1. On the host: back up DevOps of every cluster that has it (members through their kubeconfig).
    if (await isHostCluster(ctx.kube)) {
      for (const c of await clusterRefs(ctx)) {
        const client = await c.client();
        if (!(await devopsEnabled(client))) {
          ctx.logger.info(`cluster ${c.name}: DevOps not enabled, nothing to back up`);
          continue;
        }
        await backupCluster(ctx, { name: c.name, client });
        ctx.logger.info(`cluster ${c.name}: DevOps v3 backed up`);
      }
    }
    // 2. This cluster's own DevOps.
    if (!(await devopsEnabled(ctx.kube))) {
      ctx.logger.info('DevOps is not enabled on this cluster: nothing to uninstall');
      return;
    }
    ctx.heartbeat({ step: 'keep configmaps' });
    await backupConfigMapToCluster(ctx, WORKER_NS, AGENT_CONFIGMAP);
    await backupConfigMapToCluster(ctx, SYSTEM_NS, CASC_CONFIGMAP);
    ctx.heartbeat({ step: 'label project namespaces' });
    const { labelled } = await labelProjectNamespaces(ctx);
    if (labelled.length > 0) ctx.logger.info(`labelled DevOps project namespaces: ${labelled.join(', ')}`);
    ctx.heartbeat({ step: 'retain jenkins volume' });
    const { pvc, pv } = await backupJenkinsVolume(ctx, CURRENT, ctx.kube);
    await retainJenkinsVolume(ctx, pv);
    // 3. Uninstall v3 (the action is taken on every run until it is done, backups or not).
    await uninstallV3(ctx);
    // 4. A PVC for v4 on the same PV.
    ctx.heartbeat({ step: 'rebind jenkins pvc' });
    await rebindJenkinsPvc(ctx, pvc);
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    if (await this.done(ctx)) return;
    const ref = structuredClone(this.ref);
    if (await isHostCluster(ctx.kube)) await this.install(ctx, ref);
    if (!(await devopsEnabled(ctx.kube))) {
      ctx.logger.info('DevOps is not enabled on this cluster: the devops job leaves no done marker here');
      return;
    }
    await ctx.store.saveRaw(DONE_KEY, yaml.dump(ref, { lineWidth: -1 }), { contentType: 'application/yaml' });
  }

  /** Values per cluster from the backups, credentials into Secrets, then the InstallPlan (host only). */
  private async install(ctx: JobContext, ref: ExtensionRef): Promise<void> {
    const configured = ref.clusterScheduling?.placement?.clusters ?? [];
    const enabled: string[] = [];
    const computed = new Map<string, Record<string, unknown>>();
    const credentials: { cluster: string; client: ResourceClient; values: JenkinsCredentials }[] = [];
    let hostApiserver: Workload | undefined;
    for (const c of await clusterRefs(ctx)) {
      ctx.heartbeat({ step: 'compute values', message: c.name });
      if (configured.length > 0 && !configured.includes(c.name)) {
        ctx.logger.info(`cluster ${c.name} is not in the configured placement, no values computed`);
        continue;
      }
      const client = await c.client();
      if (!(await devopsEnabled(client))) {
        ctx.logger.info(`cluster ${c.name}: DevOps not enabled, not placed`);
        continue;
      }
      enabled.push(c.name);
      const values = clusterValues(c.name, await loadClusterBackups(ctx, c.name));
      computed.set(c.name, values.override);
      if (c.host && values.apiserver) hostApiserver = values.apiserver;
      if (Object.keys(values.credentials).length > 0)
        credentials.push({ cluster: c.name, client, values: values.credentials });
    }
    if (enabled.length === 0 && configured.length === 0) {
      ctx.logger.warn('no cluster has DevOps enabled and no placement is configured: no InstallPlan created');
      return;
    }
    const config = extensionConfig(ref.config, hostApiserver);
    if (config !== undefined) ref.config = config;
    const overrides = mergeOverrides(ref.clusterScheduling?.overrides, computed);
    ref.clusterScheduling = {
      ...ref.clusterScheduling,
      placement: {
        ...ref.clusterScheduling?.placement,
        clusters: configured.length > 0 ? configured : enabled,
      },
      ...(Object.keys(overrides).length > 0 ? { overrides } : {}),
    };
    // The Secrets first: the extension may start installing as soon as the InstallPlan exists.
    for (const c of credentials) {
      const action = await writeCredentialsSecret(c.client, c.values);
      ctx.logger.info(`cluster ${c.cluster}: Secret ${SYSTEM_NS}/${CREDENTIALS_SECRET} ${action}`, {
        keys: Object.keys(c.values),
      });
    }
    const { action } = await ensureInstallPlan(ctx.kube, ref, { logger: ctx.logger, assumeHost: true });
    ctx.logger.info(`InstallPlan ${ref.name}: ${action}`, {
      clusters: ref.clusterScheduling.placement?.clusters,
    });
    await waitForInstallPlan(ctx.kube, ref.name, {
      timeoutMs: INSTALL_TIMEOUT_MS,
      intervalMs: INSTALL_INTERVAL_MS,
      reporter: ctx,
    });
  }
}

/** Checks `jobs.devops.dynamicOptions` when the job is built from the config. */
export function parseDevOpsOptions(options: Record<string, unknown>): DevOpsOptions {
  const { rerun = false, ...unknown } = options;
  const extra = Object.keys(unknown);
  if (extra.length > 0) {
    throw new ValidationError(`jobs.devops.dynamicOptions: unknown option ${extra.join(', ')}`, {
      hint: 'the devops job reads only rerun',
    });
  }
  if (rerun !== true && rerun !== false && rerun !== 'true' && rerun !== 'false') {
    throw new ValidationError(
      `jobs.devops.dynamicOptions.rerun must be true or false, got ${JSON.stringify(rerun)}`,
    );
  }
  return { rerun: String(rerun) === 'true' };
}

/**
 * The devops job: backs up DevOps v3 of every cluster (encrypted), uninstalls the v3 releases while
 * keeping Jenkins' volume, and installs the v4 extension with per-cluster values computed from the
 * backups; Jenkins credentials go into a Secret on each cluster, never into the InstallPlan.
 */
export const devopsJobFactory: JobFactory = {
  name: DEVOPS_JOB_NAME,
  description:
    'DevOps: back up v3 DevOps, uninstall it keeping Jenkins data, install the v4 DevOps extension',
  requiresEncryption: true,
  create(options, extensionRef) {
    const parsed = parseDevOpsOptions(options);
    if (!extensionRef?.version) {
      throw new ValidationError('jobs.devops.extensionRef.version is required', {
        hint: "set the DevOps extension version, e.g. jobs.devops.extensionRef.version: '1.1.2'",
      });
    }
    return new DevOpsJob({ ...extensionRef, name: extensionRef.name || DEVOPS_JOB_NAME }, parsed);
  },
};
