// rollback of the core job: undoes pre-upgrade, then prepare-upgrade, newest change first, from the
// backups and records taken before each change. Every step is idempotent and touches only what
// core changed and nobody changed since. A missing backup means its action never ran (every action
// is preceded by its backup): nothing to undo there.
//
// What cannot be undone is listed in docs/jobs/core.md (post-upgrade's manager, ks-core v4 itself,
// the Retain reclaim policy which is kept on purpose).
import {
  DeploymentResource,
  NamespaceResource,
  type Deployment,
  type WebhookConfiguration,
} from '../../api/core.js';
import * as v3 from '../../api/v3/index.js';
import * as v4 from '../../api/v4/index.js';
import { NoKindError, NotFoundError } from '../../kube/errors.js';
import { apiVersionOf, type OwnerReference } from '../../kube/types.js';
import { clusterRole } from '../../kubesphere/index.js';
import { deepEqual } from '../../util/object.js';
import type { JobContext } from '../types.js';
import { forCreate } from '../helpers.js';
import { loadGrowingList, loadGrowingRecord } from './backup.js';
import { mutateCluster, restoreCluster } from './clusters.js';
import {
  CORE_KEYS,
  KS_INSTALLER,
  KUBESPHERE_SYSTEM,
  SYSTEM_WORKSPACE,
  type MarkedKind,
  type OwnerReferenceRecord,
  type PlacementRecord,
} from './constants.js';
import { revertMark, type MarkRecord } from './marks.js';
import { WEBHOOK_KINDS } from './prepare.js';
import { runStep } from './step.js';

/** Runs every rollback step, newest change first. */
export async function rollbackCore(ctx: JobContext): Promise<void> {
  // pre-upgrade, last step first
  await runStep(ctx, 'restore-placements', 'failed to restore workspace template placements', () =>
    restorePlacements(ctx),
  );
  await runStep(ctx, 'unlabel-namespaces', 'failed to remove namespace labels', () =>
    revertMarks(ctx, ['Namespace']),
  );
  await runStep(ctx, 'restore-ks-installer', 'failed to re-create ks-installer', () =>
    restoreKsInstaller(ctx),
  );
  // Members' marks (pre) and the host kubeconfig (prepare) come from the same ClusterList backup.
  await runStep(ctx, 'restore-clusters', 'failed to restore cluster objects', () => restoreClusters(ctx));
  // prepare-upgrade, last step first
  await runStep(ctx, 'restore-system-workspace', 'failed to re-create the system workspace template', () =>
    restoreMemberSystemWorkspace(ctx),
  );
  await runStep(ctx, 'unprotect-system-workspace', 'failed to remove the system workspace finalizer', () =>
    revertMarks(ctx, ['WorkspaceTemplate']),
  );
  await runStep(ctx, 'revert-network', 'failed to revert network preparation', () =>
    revertMarks(ctx, ['Workspace', 'CustomResourceDefinition']),
  );
  await runStep(ctx, 'restore-owner-references', 'failed to restore namespace owner references', () =>
    restoreOwnerReferences(ctx),
  );
  await runStep(ctx, 'scale-up', 'failed to scale up deployments', () => scaleUpControlPlane(ctx));
  // Webhooks last: with failurePolicy Fail they would reject the writes above until
  // ks-controller-manager (scaled up just now) serves them again.
  await runStep(ctx, 'restore-webhooks', 'failed to re-create kubesphere webhooks', () =>
    restoreWebhooks(ctx),
  );
}

/** Puts back the placement of templates pre-upgrade placed on the host (single cluster only). */
async function restorePlacements(ctx: JobContext): Promise<void> {
  const record = await loadGrowingRecord<PlacementRecord>(ctx, CORE_KEYS.placements);
  if (!record) return;
  let restored = 0;
  for (const [name, { previous, value }] of Object.entries(record)) {
    for (const rt of [v3.WorkspaceTemplateResource, v4.WorkspaceTemplateResource]) {
      try {
        const r = await ctx.v3.mutate(rt, name, undefined, (t) => {
          const spec = (t.spec ??= {});
          // Only core's placement is taken back: one changed since belongs to whoever changed it.
          if (!deepEqual(spec.placement, value)) return;
          if (previous === null) delete spec.placement;
          else spec.placement = previous;
        });
        if (r.changed) restored++;
        break;
      } catch (err) {
        if (err instanceof NoKindError) continue;
        if (err instanceof NotFoundError) break;
        throw err;
      }
    }
  }
  ctx.logger.info(`[core] rollback: restored the placement of ${restored} workspace templates`);
}

/** Takes back the recorded marks of the given kinds. */
async function revertMarks(ctx: JobContext, kinds: MarkedKind[]): Promise<void> {
  const record = await loadGrowingRecord<MarkRecord>(ctx, CORE_KEYS.marks);
  if (!record) return;
  const outcomes: Record<string, number> = {};
  for (const mark of Object.values(record)) {
    if (!kinds.includes(mark.kind)) continue;
    const outcome = await revertMark(ctx.v3, mark);
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    if (outcome === 'changed-since') {
      ctx.logger.warn(
        `[core] rollback: ${mark.kind} ${mark.name} ${mark.field} ${mark.key} was changed after the upgrade set it; left as it is`,
      );
    }
  }
  ctx.logger.info(`[core] rollback: ${kinds.join('/')} marks`, outcomes);
}

/** Re-creates ks-installer from the kubesphere-system backup, with its replica count from before. */
async function restoreKsInstaller(ctx: JobContext): Promise<void> {
  const backup = await loadGrowingList<Deployment>(ctx, CORE_KEYS.kubesphereSystemDeployments);
  const original = backup?.items.find((d) => d.metadata.name === KS_INSTALLER);
  if (!original) return;
  const replicas = await loadGrowingRecord<number>(ctx, CORE_KEYS.replicas);
  const obj = forCreate(original);
  const want = replicas?.[KS_INSTALLER];
  if (want !== undefined) obj.spec = { ...obj.spec, replicas: want };
  const { created } = await ctx.v3.createIfAbsent(DeploymentResource, obj);
  if (created) ctx.logger.info(`[core] rollback: re-created Deployment ${KUBESPHERE_SYSTEM}/${KS_INSTALLER}`);
}

/** Restores the host kubeconfig and removes the member marks, from the ClusterList backup. */
async function restoreClusters(ctx: JobContext): Promise<void> {
  const backup = await loadGrowingList<v3.Cluster>(ctx, CORE_KEYS.clusters);
  if (!backup) return;
  let restored = 0;
  for (const original of backup.items) {
    try {
      if (
        await mutateCluster(ctx.v4, original.metadata.name ?? '', (c) => {
          restoreCluster(c, original);
        })
      )
        restored++;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  ctx.logger.info(`[core] rollback: restored ${restored} of ${backup.items.length} Cluster objects`);
}

/** On a member, re-creates WorkspaceTemplate system-workspace (deleted by prepare) from its backup. */
async function restoreMemberSystemWorkspace(ctx: JobContext): Promise<void> {
  let member: boolean;
  try {
    member = (await clusterRole(ctx.v3)) === 'member';
  } catch (err) {
    ctx.logger.warn(
      `[core] rollback: cluster role unknown (${err instanceof Error ? err.message : String(err)}); system workspace template not checked`,
    );
    return;
  }
  if (!member) return;
  const backup = await loadGrowingList<v3.WorkspaceTemplate>(ctx, CORE_KEYS.workspaceTemplates);
  const original = backup?.items.find((t) => t.metadata.name === SYSTEM_WORKSPACE);
  if (!original) return;
  for (const rt of [v3.WorkspaceTemplateResource, v4.WorkspaceTemplateResource]) {
    try {
      const { created } = await ctx.v3.createIfAbsent(rt, {
        ...forCreate(original),
        apiVersion: apiVersionOf(rt),
      });
      if (created) ctx.logger.info(`[core] rollback: re-created WorkspaceTemplate ${SYSTEM_WORKSPACE}`);
      return;
    } catch (err) {
      if (!(err instanceof NoKindError)) throw err;
    }
  }
}

function isWorkspaceRef(ref: OwnerReference): boolean {
  return ref.kind === 'Workspace';
}

/**
 * Puts the Workspace owner references back, in their original order. References added since are
 * kept (after the original ones); non-Workspace references removed since stay removed.
 */
export function restoredOwnerReferences(
  original: OwnerReference[],
  current: OwnerReference[],
): OwnerReference[] {
  const currentUids = new Set(current.map((r) => r.uid));
  const originalUids = new Set(original.map((r) => r.uid));
  const fromOriginal = original.filter((r) => isWorkspaceRef(r) || currentUids.has(r.uid));
  const added = current.filter((r) => !originalUids.has(r.uid));
  const merged = [...fromOriginal.map((r) => current.find((c) => c.uid === r.uid) ?? r), ...added];
  return merged;
}

async function restoreOwnerReferences(ctx: JobContext): Promise<void> {
  const record = await loadGrowingRecord<OwnerReferenceRecord[string]>(ctx, CORE_KEYS.ownerReferences);
  if (!record) return;
  let restored = 0;
  for (const [name, original] of Object.entries(record)) {
    try {
      const r = await ctx.v3.mutate(NamespaceResource, name, undefined, (ns) => {
        const next = restoredOwnerReferences(original, ns.metadata.ownerReferences ?? []);
        if (next.length > 0) ns.metadata.ownerReferences = next;
        else delete ns.metadata.ownerReferences;
      });
      if (r.changed) restored++;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  ctx.logger.info(`[core] rollback: restored workspace owner references of ${restored} namespaces`);
}

/**
 * Scales the control plane back to the replica counts recorded before the scale-down — only where
 * the Deployment is still at 0 (a count someone set since is theirs). No wait: the v3 control plane
 * starts on its own.
 */
async function scaleUpControlPlane(ctx: JobContext): Promise<void> {
  const record = await loadGrowingRecord<number>(ctx, CORE_KEYS.replicas);
  if (!record) return;
  const scaled: string[] = [];
  for (const [name, replicas] of Object.entries(record)) {
    try {
      const r = await ctx.v3.mutate(DeploymentResource, name, KUBESPHERE_SYSTEM, (d) => {
        if ((d.spec?.replicas ?? 1) === 0) (d.spec ??= {}).replicas = replicas;
      });
      if (r.changed) scaled.push(`${name}=${replicas}`);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  ctx.logger.info(`[core] rollback: scaled up ${scaled.length} deployments`, { scaled });
}

/** Re-creates every backed-up KubeSphere webhook configuration (validating and mutating) that is missing. */
async function restoreWebhooks(ctx: JobContext): Promise<void> {
  for (const kind of WEBHOOK_KINDS) {
    const backup = await loadGrowingList<WebhookConfiguration>(ctx, kind.key);
    let created = 0;
    for (const item of backup?.items ?? []) {
      if ((await ctx.v3.createIfAbsent(kind.rt, forCreate(item))).created) created++;
    }
    ctx.logger.info(
      `[core] rollback: re-created ${created} of ${backup?.items.length ?? 0} ${kind.rt.kind}s`,
    );
  }
}
