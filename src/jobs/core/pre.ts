// pre-upgrade and post-upgrade of the core job (reference §4.1), in the original's order.
import * as yaml from 'js-yaml';
import {
  ConfigMapResource,
  DeploymentResource,
  JobResource,
  NamespaceResource,
  PersistentVolumeClaimResource,
  PersistentVolumeResource,
  type PersistentVolume,
} from '../../api/core.js';
import * as v3 from '../../api/v3/index.js';
import * as v4 from '../../api/v4/index.js';
import type { ResourceClient } from '../../kube/client.js';
import { KUBESPHERE_CONFIG, KubeSphereStateError } from '../../kubesphere/index.js';
import type { JobContext } from '../types.js';
import { backupObjects, recordEntries } from './backup.js';
import { hasMemberMarks, isHost, markMember, mutateCluster } from './clusters.js';
import {
  CORE_KEYS,
  DEFAULT_WORKSPACE_MANAGER,
  DEVOPS_PROJECT_LABEL,
  KS_INSTALLER,
  KUBESPHERE_CONFIG_KEY,
  KUBESPHERE_SYSTEM,
  MANAGED_LABEL,
  PRE_UPGRADE_JOB,
  SYSTEM_WORKSPACE,
  WORKSPACE_LABEL,
  type Placement,
  type PlacementRecord,
} from './constants.js';
import { applyMark, markChange, recordMarks, type MarkRecord } from './marks.js';
import { forEachCollectingErrors } from './step.js';

// ---- 1. validateClusterRole ------------------------------------------------------------------

/**
 * On a member, WorkspaceTemplate system-workspace must be gone (prepare-upgrade deletes it): v4
 * would otherwise treat the member's copy as its own.
 */
export async function validateClusterRole(ctx: JobContext, host: boolean): Promise<void> {
  if (host) return;
  for (const rt of [v3.WorkspaceTemplateResource, v4.WorkspaceTemplateResource]) {
    const wst = await ctx.v3.tryGet(rt, SYSTEM_WORKSPACE);
    if (!wst) continue;
    throw new KubeSphereStateError('system workspace template exists in managed cluster', {
      hint: wst.metadata.deletionTimestamp
        ? `WorkspaceTemplate ${SYSTEM_WORKSPACE} is being deleted (finalizers: ${(wst.metadata.finalizers ?? []).join(', ')}); ` +
          'wait for the garbage collector (kube-controller-manager) to finish, then run pre-upgrade again'
        : 'run prepare-upgrade on this member first (it deletes the template with propagation Orphan), then pre-upgrade',
    });
  }
}

// ---- 2. retain the upgrade volume ------------------------------------------------------------

/** PersistentVolumes of the ks-core pre-upgrade Job whose reclaim policy is not Retain yet. */
export async function volumesToRetain(kube: ResourceClient): Promise<PersistentVolume[]> {
  const job = await kube.tryGet(JobResource, PRE_UPGRADE_JOB, KUBESPHERE_SYSTEM);
  const result: PersistentVolume[] = [];
  for (const vol of job?.spec?.template?.spec?.volumes ?? []) {
    const claim = vol.persistentVolumeClaim?.claimName;
    if (!claim) continue;
    const pvc = await kube.tryGet(PersistentVolumeClaimResource, claim, KUBESPHERE_SYSTEM);
    const pvName = pvc?.spec?.volumeName;
    if (!pvName) continue;
    const pv = await kube.tryGet(PersistentVolumeResource, pvName);
    if (pv && pv.spec?.persistentVolumeReclaimPolicy !== 'Retain') result.push(pv);
  }
  return result;
}

/**
 * Sets reclaim policy Retain on the volume the original tool keeps its backups on, so deleting the
 * hook Job's claim cannot delete them. A failed patch fails the step (the original only logged it).
 */
export async function retainUpgradeVolumes(ctx: JobContext): Promise<void> {
  const volumes = await volumesToRetain(ctx.v3);
  for (const pv of volumes) {
    const name = pv.metadata.name ?? '';
    await ctx.v3.patch(PersistentVolumeResource, name, undefined, {
      spec: { persistentVolumeReclaimPolicy: 'Retain' },
    });
    ctx.logger.info(`[core] PersistentVolume ${name} now has reclaim policy Retain`);
  }
}

// ---- 3. back up kubesphere.yaml --------------------------------------------------------------

/**
 * Stores the v3 `kubesphere.yaml` under the shared key `kubesphere-config` (gateway reads it),
 * encrypted (it holds the JWT secret and identity-provider credentials). Verbatim: the text is
 * checked to be YAML but not re-serialised, so nothing (comments, quoting) is lost. Written once; an
 * existing backup is verified, never replaced — the ConfigMap may hold v4 settings by now.
 */
export async function backupKubeSphereConfig(ctx: JobContext): Promise<void> {
  const shared = ctx.store.shared();
  if (await shared.exists(KUBESPHERE_CONFIG_KEY)) {
    await shared.verify(KUBESPHERE_CONFIG_KEY);
    return;
  }
  const where = `ConfigMap ${KUBESPHERE_CONFIG.namespace}/${KUBESPHERE_CONFIG.name}`;
  const cm = await ctx.v3.tryGet(ConfigMapResource, KUBESPHERE_CONFIG.name, KUBESPHERE_CONFIG.namespace);
  const text = cm?.data?.[KUBESPHERE_CONFIG.key];
  if (text === undefined) {
    throw new KubeSphereStateError(
      `cannot back up kubesphere-config: ${cm ? `${where} has no key ${KUBESPHERE_CONFIG.key}` : `${where} not found`}`,
      {
        hint:
          'the v3 kubesphere.yaml is needed by later steps (the gateway job reads this backup); restore the ConfigMap ' +
          'from your v3 installation (e.g. the backup upgrade.sh writes) and run pre-upgrade again',
      },
    );
  }
  try {
    yaml.load(text);
  } catch {
    // The parse error quotes the text, which holds secrets: do not pass it on.
    throw new KubeSphereStateError(
      `cannot back up kubesphere-config: ${KUBESPHERE_CONFIG.key} in ${where} is not valid YAML`,
      {
        hint: `fix ${KUBESPHERE_CONFIG.key} ('kubectl -n ${KUBESPHERE_CONFIG.namespace} edit cm ${KUBESPHERE_CONFIG.name}') and run pre-upgrade again`,
      },
    );
  }
  await shared.saveRawOnce(KUBESPHERE_CONFIG_KEY, text, { sensitive: true, contentType: 'application/yaml' });
  ctx.logger.info(`[core] backed up ${where} (shared key ${KUBESPHERE_CONFIG_KEY}, encrypted)`);
}

// ---- 4. mark member clusters -----------------------------------------------------------------

/** Member Clusters (no host label) that do not carry the upgrade marks yet. */
export async function membersToMark(kube: ResourceClient): Promise<v4.Cluster[]> {
  return (await kube.listIfServed(v4.ClusterResource)).filter((c) => !isHost(c) && !hasMemberMarks(c));
}

/**
 * Labels every member Cluster `kubesphere.io/managed=true`, annotates the empty config hash (so v4
 * does not reconcile it before it is upgraded) and sets KSCoreReady=True / Schedulable=False.
 * Idempotent: conditions already set keep their timestamps, a marked Cluster is not written. The
 * ClusterList backup is completed first, so rollback can take the marks back.
 */
export async function markMemberClusters(ctx: JobContext): Promise<void> {
  const clusters = await ctx.v4.listIfServed(v4.ClusterResource);
  const members = clusters.filter((c) => !isHost(c));
  if (members.length === 0) return;
  await backupObjects(ctx.store, CORE_KEYS.clusters, v4.ClusterResource, clusters, { sensitive: true });
  let marked = 0;
  for (const m of members) {
    if (await mutateCluster(ctx.v4, m.metadata.name ?? '', markMember)) marked++;
  }
  ctx.logger.info(`[core] marked ${marked} of ${members.length} member clusters as upgrading`);
}

// ---- 5. delete ks-installer ------------------------------------------------------------------

/**
 * Backs up the Deployments of kubesphere-system (kept from the first run; encrypted, as pod specs
 * may carry credentials) and deletes ks-installer — on every run until it is gone.
 */
export async function deleteKsInstaller(ctx: JobContext): Promise<void> {
  const deployments = await ctx.v3.listAll(DeploymentResource, { namespace: KUBESPHERE_SYSTEM });
  await backupObjects(ctx.store, CORE_KEYS.kubesphereSystemDeployments, DeploymentResource, deployments, {
    sensitive: true,
  });
  const deleted = await ctx.v3.delete(DeploymentResource, KS_INSTALLER, KUBESPHERE_SYSTEM, {
    clearFinalizers: true,
  });
  if (deleted) ctx.logger.info(`[core] deleted Deployment ${KUBESPHERE_SYSTEM}/${KS_INSTALLER}`);
}

// ---- 6. label workspace namespaces -----------------------------------------------------------

/** Namespaces of a workspace (not DevOps projects) without `kubesphere.io/managed=true`. */
export async function namespacesToLabel(kube: ResourceClient): Promise<MarkRecord[]> {
  const namespaces = await kube.listAll(NamespaceResource, { labelSelector: WORKSPACE_LABEL });
  return namespaces.flatMap((ns) => {
    if ((ns.metadata.labels?.[DEVOPS_PROJECT_LABEL] ?? '') !== '') return [];
    const change = markChange(ns, {
      kind: 'Namespace',
      name: ns.metadata.name ?? '',
      field: 'label',
      key: MANAGED_LABEL,
      value: 'true',
    });
    return change ? [change] : [];
  });
}

/** Labels workspace namespaces `kubesphere.io/managed=true` (failures collected, then reported). */
export async function labelWorkspaceNamespaces(ctx: JobContext): Promise<void> {
  const changes = await namespacesToLabel(ctx.v3);
  await recordMarks(ctx.store, changes);
  await forEachCollectingErrors(
    ctx,
    'label-namespaces',
    changes,
    (c) => `Namespace ${c.name}`,
    async (c) => {
      await applyMark(ctx.v3, NamespaceResource, c);
    },
  );
  ctx.logger.info(`[core] labelled ${changes.length} workspace namespaces ${MANAGED_LABEL}=true`);
}

// ---- 7. default placement (single cluster) ---------------------------------------------------

/** WorkspaceTemplates with neither placement clusters nor a cluster selector. */
export async function templatesWithoutPlacement(kube: ResourceClient): Promise<v3.WorkspaceTemplate[]> {
  return (await kube.listIfServed(v3.WorkspaceTemplateResource)).filter((t) => {
    const p = t.spec?.placement;
    // Go's nil selector: absent or null. An empty selector `{}` selects every cluster.
    const selector: unknown = p?.clusterSelector;
    return (p?.clusters ?? []).length === 0 && (selector === undefined || selector === null);
  });
}

/**
 * On a single cluster, gives every WorkspaceTemplate without placement `placement.clusters =
 * [{name: <hostClusterName>}]`: v4 would otherwise remove the workspace's namespaces. The placement
 * before is recorded for rollback.
 */
export async function defaultWorkspacePlacement(ctx: JobContext, hostClusterName: string): Promise<void> {
  const templates = await templatesWithoutPlacement(ctx.v3);
  const placed = (p: Placement | undefined): Placement => ({ ...p, clusters: [{ name: hostClusterName }] });
  await recordEntries<PlacementRecord>(
    ctx.store,
    CORE_KEYS.placements,
    Object.fromEntries(
      templates.map((t) => [
        t.metadata.name ?? '',
        { previous: t.spec?.placement ?? null, value: placed(t.spec?.placement) },
      ]),
    ),
  );
  await forEachCollectingErrors(
    ctx,
    'default-placement',
    templates,
    (t) => `WorkspaceTemplate ${t.metadata.name ?? ''}`,
    async (t) => {
      await ctx.v3.mutate(v3.WorkspaceTemplateResource, t.metadata.name ?? '', undefined, (obj) => {
        const spec = (obj.spec ??= {});
        spec.placement = placed(spec.placement);
      });
    },
  );
  ctx.logger.info(`[core] placed ${templates.length} workspace templates on cluster ${hostClusterName}`);
}

// ---- post-upgrade: workspace managers --------------------------------------------------------

/** v4 WorkspaceTemplates (not being deleted) without `spec.template.spec.manager`. */
export async function templatesWithoutManager(kube: ResourceClient): Promise<v4.WorkspaceTemplate[]> {
  return (await kube.listAll(v4.WorkspaceTemplateResource)).filter(
    (t) => !t.metadata.deletionTimestamp && !t.spec?.template?.spec?.manager,
  );
}

/** Sets the manager of every v4 WorkspaceTemplate that has none to `admin`. */
export async function setDefaultWorkspaceManagers(ctx: JobContext): Promise<void> {
  const templates = await templatesWithoutManager(ctx.v4);
  await forEachCollectingErrors(
    ctx,
    'workspace-managers',
    templates,
    (t) => `WorkspaceTemplate ${t.metadata.name ?? ''}`,
    async (t) => {
      await ctx.v4.mutate(v4.WorkspaceTemplateResource, t.metadata.name ?? '', undefined, (obj) => {
        const tpl = ((obj.spec ??= {}).template ??= {});
        const spec = (tpl.spec ??= {});
        if (!spec.manager) spec.manager = DEFAULT_WORKSPACE_MANAGER;
      });
    },
  );
  ctx.logger.info(
    `[core] set manager ${DEFAULT_WORKSPACE_MANAGER} on ${templates.length} workspace templates`,
  );
}
