// The core job's dry run: what prepare, pre and post would change on this cluster, read from the
// same functions the phases use to find their targets. Reads only; writes nothing, not even a backup.
import { DeploymentResource } from '../../api/core.js';
import * as v3 from '../../api/v3/index.js';
import * as v4 from '../../api/v4/index.js';
import { describeError } from '../../errors.js';
import { NoKindError } from '../../kube/errors.js';
import { clusterRole } from '../../kubesphere/index.js';
import type { JobContext, Phase, PlannedAction } from '../types.js';
import { isHost } from './clusters.js';
import {
  CONFIG_HASH_ANNOTATION,
  DEFAULT_WORKSPACE_MANAGER,
  KS_INSTALLER,
  KUBESPHERE_CONFIG_KEY,
  KUBESPHERE_SYSTEM,
  MANAGED_LABEL,
  SYSTEM_WORKSPACE,
} from './constants.js';
import { buildHostKubeconfig } from './kubeconfig.js';
import type { MarkRecord } from './marks.js';
import {
  WEBHOOK_KINDS,
  controlPlaneDeployments,
  kubesphereWebhooks,
  memberSystemWorkspacePlan,
  namespacesToDetach,
  networkMarks,
  protectionMark,
} from './prepare.js';
import { membersToMark, namespacesToLabel, templatesWithoutPlacement, volumesToRetain } from './pre.js';

function markAction(m: MarkRecord): string {
  const was = m.previous === null ? '' : ` (was ${m.previous})`;
  switch (m.field) {
    case 'label':
      return `label ${m.key}=${m.value}${was}`;
    case 'annotation':
      return `annotate ${m.key}=${m.value}${was}`;
    case 'finalizer':
      return `add finalizer ${m.key}`;
  }
}

/** Everything core would change on this cluster, by phase, without changing anything. */
export async function planCore(ctx: JobContext, hostClusterName: string): Promise<PlannedAction[]> {
  const actions: PlannedAction[] = [];
  const add = (phase: Phase, action: string, target?: string): void => {
    actions.push(target === undefined ? { phase, action } : { phase, action, target });
  };
  const role = await clusterRole(ctx.v3);
  const host = role !== 'member';

  // prepare-upgrade
  for (const d of await controlPlaneDeployments(ctx)) {
    const replicas = d.spec?.replicas ?? 1;
    if (replicas !== 0) {
      add(
        'prepare-upgrade',
        `scale from ${replicas} to 0 replicas (count recorded for rollback)`,
        `Deployment ${KUBESPHERE_SYSTEM}/${d.metadata.name ?? ''}`,
      );
    }
  }
  for (const ns of await namespacesToDetach(ctx)) {
    const refs = (ns.metadata.ownerReferences ?? []).filter((r) => r.kind === 'Workspace').map((r) => r.name);
    add(
      'prepare-upgrade',
      `remove Workspace owner references (${refs.join(', ')})`,
      `Namespace ${ns.metadata.name ?? ''}`,
    );
  }
  for (const kind of WEBHOOK_KINDS) {
    for (const cfg of await kubesphereWebhooks(ctx, kind)) {
      add('prepare-upgrade', 'back up and delete', `${kind.rt.kind} ${cfg.metadata.name ?? ''}`);
    }
  }
  if (host) {
    const hostCluster = (await ctx.v3.listIfServed(v3.ClusterResource)).find(isHost);
    if (hostCluster) {
      const target = `Cluster ${hostCluster.metadata.name ?? ''}`;
      try {
        const kc = await buildHostKubeconfig(ctx.v3);
        if (hostCluster.spec?.connection?.kubeconfig !== Buffer.from(kc.text, 'utf8').toString('base64')) {
          add(
            'prepare-upgrade',
            `back up all Clusters (encrypted) and set spec.connection.kubeconfig to ServiceAccount ${KUBESPHERE_SYSTEM}/kubesphere at ${kc.server}`,
            target,
          );
        }
      } catch (err) {
        add('prepare-upgrade', `WILL FAIL to refresh the kubeconfig: ${describeError(err)}`, target);
      }
    }
  }
  const network = await networkMarks(ctx);
  for (const m of [...network.crd, ...network.workspaces, ...(await protectionMark(ctx))]) {
    add('prepare-upgrade', markAction(m), `${m.kind} ${m.name}`);
  }
  if (!host) {
    const member = await memberSystemWorkspacePlan(ctx);
    const target = `WorkspaceTemplate ${SYSTEM_WORKSPACE}`;
    if (member.error) add('prepare-upgrade', `WILL FAIL: ${describeError(member.error)}`, target);
    else if (member.action === 'delete') {
      add('prepare-upgrade', 'clear finalizers and owner references, delete with propagation Orphan', target);
    }
  }

  // pre-upgrade
  for (const pv of await volumesToRetain(ctx.v3)) {
    add('pre-upgrade', 'set reclaim policy Retain', `PersistentVolume ${pv.metadata.name ?? ''}`);
  }
  if (!(await ctx.store.shared().exists(KUBESPHERE_CONFIG_KEY))) {
    add(
      'pre-upgrade',
      `back up kubesphere.yaml (encrypted, shared key ${KUBESPHERE_CONFIG_KEY})`,
      `ConfigMap ${KUBESPHERE_SYSTEM}/kubesphere-config`,
    );
  }
  for (const c of await membersToMark(ctx.v4)) {
    add(
      'pre-upgrade',
      `label ${MANAGED_LABEL}=true, annotate ${CONFIG_HASH_ANNOTATION}, set conditions KSCoreReady=True and Schedulable=False`,
      `Cluster ${c.metadata.name ?? ''}`,
    );
  }
  if (await ctx.v3.tryGet(DeploymentResource, KS_INSTALLER, KUBESPHERE_SYSTEM)) {
    add(
      'pre-upgrade',
      `back up the Deployments of ${KUBESPHERE_SYSTEM} (encrypted) and delete`,
      `Deployment ${KUBESPHERE_SYSTEM}/${KS_INSTALLER}`,
    );
  }
  for (const m of await namespacesToLabel(ctx.v3)) add('pre-upgrade', markAction(m), `Namespace ${m.name}`);
  if (role === 'none') {
    for (const t of await templatesWithoutPlacement(ctx.v3)) {
      add(
        'pre-upgrade',
        `set placement.clusters to [${hostClusterName}]`,
        `WorkspaceTemplate ${t.metadata.name ?? ''}`,
      );
    }
  }

  // post-upgrade: v4 WorkspaceTemplates are the same objects as v3's, so either view tells.
  let templates: (v3.WorkspaceTemplate | v4.WorkspaceTemplate)[];
  try {
    templates = await ctx.v4.listAll(v4.WorkspaceTemplateResource);
  } catch (err) {
    if (!(err instanceof NoKindError)) throw err;
    templates = await ctx.v3.listIfServed(v3.WorkspaceTemplateResource);
  }
  for (const t of templates) {
    if (t.metadata.deletionTimestamp || t.spec?.template?.spec?.manager) continue;
    add(
      'post-upgrade',
      `set spec.template.spec.manager to ${DEFAULT_WORKSPACE_MANAGER}`,
      `WorkspaceTemplate ${t.metadata.name ?? ''}`,
    );
  }
  return actions;
}
