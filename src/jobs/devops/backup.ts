// Backups of the devops job (reference §4.4, store keys in ./constants.ts). Every key is written
// once (the first copy is the pre-change state) and read back by post-upgrade. Secrets, release
// records and values are stored encrypted (the job requires storage.encryption).
import {
  ConfigMapResource,
  DeploymentResource,
  PersistentVolumeClaimResource,
  PersistentVolumeResource,
  SecretResource,
  type ConfigMap,
  type Deployment,
  type PersistentVolume,
  type PersistentVolumeClaim,
  type Secret,
} from '../../api/core.js';
import {
  DevOpsProjectResource,
  GitRepositoryResource,
  PipelineResource,
  PipelineRunResource,
} from '../../api/v3/index.js';
import { KsUpgradeError } from '../../errors.js';
import { releaseHistory, type HelmRelease } from '../../helm/release.js';
import type { ResourceClient } from '../../kube/client.js';
import { apiVersionOf, type KubeList, type KubeObject, type ResourceType } from '../../kube/types.js';
import { backupOnce, backupStatus, loadBackup, recordAbsent } from '../patterns.js';
import type { JobContext } from '../types.js';
import {
  ARGO_NS,
  ARGO_RELEASE,
  JENKINS_WORKLOAD,
  SYSTEM_NS,
  SYSTEM_RELEASE,
  WORKER_NS,
  keys,
} from './constants.js';
import { DevOpsBackupError, jenkinsPvcOf, type ClusterBackups } from './values.js';

/** A cluster to back up: its name (store key prefix) and a client for it. */
export interface ClusterTarget {
  name: string;
  client: ResourceClient;
}

/** The List object the original stored (`{apiVersion, kind: <Kind>List, items}`). */
function asList<T extends KubeObject>(rt: ResourceType<T>, items: T[]): KubeList<T> {
  return { apiVersion: apiVersionOf(rt), kind: `${rt.kind}List`, metadata: {}, items };
}

async function backupList<T extends KubeObject>(
  ctx: JobContext,
  key: string,
  rt: ResourceType<T>,
  read: () => Promise<T[]>,
): Promise<T[]> {
  const list = await backupOnce(ctx, key, async () => asList(rt, await read()));
  return list?.items ?? [];
}

/**
 * Backs up a helm release record and its user values (`<C>-<ns>-<name>-release` / `-values`), both
 * encrypted: manifests and values may hold credentials. Already backed up (values key present) →
 * nothing read. Returns false when there is no such release; with `optional` that is recorded
 * (absent records under both keys), otherwise it is the caller's error and nothing is recorded.
 */
export async function backupRelease(
  ctx: JobContext,
  cluster: string,
  client: ResourceClient,
  namespace: string,
  name: string,
  options: { optional?: boolean } = {},
): Promise<boolean> {
  const valuesKey = keys.values(cluster, namespace, name);
  const status = await backupStatus(ctx, valuesKey);
  if (status !== 'missing') return status === 'taken';
  const history = await releaseHistory(client, namespace, name);
  const record: HelmRelease | undefined =
    history.find((r) => r.release.info.status === 'deployed')?.release ?? history[0]?.release;
  if (!record) {
    if (options.optional) {
      const reason = `no helm release ${namespace}/${name} on cluster ${cluster}`;
      await recordAbsent(ctx, keys.release(cluster, namespace, name), reason);
      await recordAbsent(ctx, valuesKey, reason);
    }
    return false;
  }
  await ctx.store.saveOnce(keys.release(cluster, namespace, name), record, { sensitive: true });
  await ctx.store.saveOnce(valuesKey, record.config ?? {}, { sensitive: true });
  return true;
}

/**
 * Backs up the Jenkins PVCs of kubesphere-devops-system and the PV bound to `devops-jenkins` (or the
 * legacy `ks-jenkins`). Returns both, from the backup (the pre-change state).
 */
export async function backupJenkinsVolume(
  ctx: JobContext,
  cluster: string,
  client: ResourceClient,
): Promise<{ pvc: PersistentVolumeClaim; pv: PersistentVolume }> {
  const pvcs = await backupList(ctx, keys.pvcs(cluster), PersistentVolumeClaimResource, () =>
    client.listAll(PersistentVolumeClaimResource, { namespace: SYSTEM_NS }),
  );
  const pvc = jenkinsPvcOf(pvcs);
  if (!pvc) {
    throw new DevOpsBackupError(`not found pvc of devops-jenkins on cluster ${cluster}`, {
      hint: `DevOps is enabled in the ClusterConfiguration of ${cluster} but Jenkins has no PVC ${SYSTEM_NS}/devops-jenkins (or ks-jenkins); restore it, or disable spec.devops.enabled there`,
    });
  }
  const volumeName = pvc.spec?.volumeName ?? '';
  // A missing PV fails the step; it is not recorded as absent, so the retry after the fix reads it.
  const pv = await backupOnce(
    ctx,
    keys.pv(cluster),
    () => client.tryGet(PersistentVolumeResource, volumeName),
    {
      absent: false,
    },
  );
  if (!pv) {
    throw new DevOpsBackupError(
      `PV ${volumeName || '(none)'} of PVC ${SYSTEM_NS}/${pvc.metadata.name ?? ''} not found on cluster ${cluster}`,
      { hint: 'the Jenkins PVC must be bound to a PV so that Jenkins data survives the upgrade' },
    );
  }
  return { pvc, pv };
}

/** The namespace of a DevOps project (v3: `status.adminNamespace`, which is the project's name). */
export function projectNamespace(project: KubeObject & { status?: { adminNamespace?: string } }): string {
  return project.status?.adminNamespace || project.metadata.name || '';
}

/**
 * Everything the original backs up for one cluster (reference §4.4 step 2): the devops release and
 * values, Deployments and ConfigMaps, the Jenkins PVC/PV and Secret, the DevOps CRs with the Secrets
 * of the projects' namespaces (only those — the original copied every Secret of the cluster once
 * per project), and the ArgoCD release and ConfigMaps when ArgoCD is installed.
 */
export async function backupCluster(ctx: JobContext, target: ClusterTarget): Promise<void> {
  const { name: c, client } = target;
  const step = (message: string): void => {
    ctx.heartbeat({ step: `back up cluster ${c}`, message });
  };

  step('devops release');
  if (!(await backupRelease(ctx, c, client, SYSTEM_NS, SYSTEM_RELEASE))) {
    throw new KsUpgradeError(`helm release ${SYSTEM_NS}/${SYSTEM_RELEASE} not found on cluster ${c}`, {
      hint: `DevOps is enabled in the ClusterConfiguration of ${c} but its helm release is missing; fix spec.devops.enabled there or reinstall DevOps v3 before upgrading`,
    });
  }
  step('deployments and configmaps');
  await backupList(ctx, keys.deployments(c), DeploymentResource, () =>
    client.listAll(DeploymentResource, { namespace: SYSTEM_NS }),
  );
  for (const ns of [SYSTEM_NS, WORKER_NS]) {
    await backupList(ctx, keys.configMaps(c, ns), ConfigMapResource, () =>
      client.listAll(ConfigMapResource, { namespace: ns }),
    );
  }
  step('jenkins volume');
  await backupJenkinsVolume(ctx, c, client);
  await backupOnce(
    ctx,
    keys.jenkinsSecret(c),
    () => client.tryGet(SecretResource, JENKINS_WORKLOAD, SYSTEM_NS),
    {
      absent: `Secret ${SYSTEM_NS}/${JENKINS_WORKLOAD} not found on cluster ${c}`,
    },
  );

  step('devops projects');
  const projects = await backupList(ctx, keys.projects(c), DevOpsProjectResource, () =>
    client.listIfServed(DevOpsProjectResource),
  );
  await backupList(ctx, keys.pipelines(c), PipelineResource, () => client.listIfServed(PipelineResource));
  await backupList(ctx, keys.pipelineRuns(c), PipelineRunResource, () =>
    client.listIfServed(PipelineRunResource),
  );
  await backupList(ctx, keys.gitRepos(c), GitRepositoryResource, () =>
    client.listIfServed(GitRepositoryResource),
  );
  await backupList(ctx, keys.projectSecrets(c), SecretResource, async () => {
    const secrets: Secret[] = [];
    const namespaces = [...new Set(projects.map(projectNamespace).filter(Boolean))].sort();
    for (const ns of namespaces) secrets.push(...(await client.listAll(SecretResource, { namespace: ns })));
    return secrets;
  });

  step('argocd release');
  if (!(await backupRelease(ctx, c, client, ARGO_NS, ARGO_RELEASE, { optional: true }))) {
    ctx.logger.info(`cluster ${c}: no ArgoCD release ${ARGO_NS}/${ARGO_RELEASE}, nothing to back up for it`);
    return;
  }
  await backupList(ctx, keys.configMaps(c, ARGO_NS), ConfigMapResource, () =>
    client.listAll(ConfigMapResource, { namespace: ARGO_NS }),
  );
}

/**
 * Backs up a ConfigMap of this cluster under its bare name and keeps a copy in the cluster as
 * `kubesphere-devops-system/<name>-backup` (created once), because uninstalling DevOps removes
 * the worker namespace. Returns false when neither the ConfigMap nor a backup exists.
 */
export async function backupConfigMapToCluster(
  ctx: JobContext,
  namespace: string,
  name: string,
): Promise<boolean> {
  const cm = await backupOnce(ctx, name, () => ctx.kube.tryGet(ConfigMapResource, name, namespace), {
    absent: `ConfigMap ${namespace}/${name} not found`,
  });
  if (!cm) {
    ctx.logger.warn(`ConfigMap ${namespace}/${name} not found: nothing to keep for the v4 DevOps extension`);
    return false;
  }
  const copy: ConfigMap = { metadata: { name: `${name}-backup`, namespace: SYSTEM_NS } };
  if (cm.data) copy.data = cm.data;
  if (cm.binaryData) copy.binaryData = cm.binaryData;
  await ctx.kube.createIfAbsent(ConfigMapResource, copy);
  return true;
}

/**
 * A cluster's backups, as post-upgrade needs them. A backup that pre-upgrade never took is an
 * error (MissingBackupError, naming the key and the fix); one recorded as absent (no ArgoCD, no
 * Jenkins Secret) is undefined. The Deployments and the devops values always exist after a
 * pre-upgrade of a cluster with DevOps enabled.
 */
export async function loadClusterBackups(ctx: JobContext, cluster: string): Promise<ClusterBackups> {
  const deployments = await loadBackup<KubeList<Deployment>>(ctx, keys.deployments(cluster));
  const systemValues = await loadBackup<Record<string, unknown>>(
    ctx,
    keys.values(cluster, SYSTEM_NS, SYSTEM_RELEASE),
  );
  if (!deployments || !systemValues) {
    throw new DevOpsBackupError(`the DevOps backups of cluster ${cluster} are incomplete`, {
      hint: `an absent record stands where the Deployments or the values of ${SYSTEM_NS}/${SYSTEM_RELEASE} should be; move the devops backups of ${cluster} away and run the devops pre-upgrade on the host again`,
    });
  }
  const argocdValues = await loadBackup<Record<string, unknown>>(
    ctx,
    keys.values(cluster, ARGO_NS, ARGO_RELEASE),
  );
  if (!argocdValues)
    ctx.logger.info(`cluster ${cluster}: no ArgoCD values backed up, no agent.argocd override`);
  return {
    deployments: deployments.items,
    systemValues,
    argocdValues,
    jenkinsPv: await loadBackup<PersistentVolume>(ctx, keys.pv(cluster)),
    pvcs: (await loadBackup<KubeList<PersistentVolumeClaim>>(ctx, keys.pvcs(cluster)))?.items ?? [],
    jenkinsSecret: await loadBackup<Secret>(ctx, keys.jenkinsSecret(cluster)),
  };
}
