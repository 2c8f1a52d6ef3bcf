// prepare-upgrade of the core job (reference §4.1), step by step in the original's order. Every
// step backs up (or records) first and then acts on every run until the action is done: a backup
// that exists never means the action was done.
import {
  CustomResourceDefinitionResource,
  DeploymentResource,
  MutatingWebhookConfigurationResource,
  NamespaceResource,
  ValidatingWebhookConfigurationResource,
  type Deployment,
  type Namespace,
  type WebhookConfiguration,
} from '../../api/core.js';
import * as v3 from '../../api/v3/index.js';
import * as v4 from '../../api/v4/index.js';
import type { KsUpgradeError } from '../../errors.js';
import { isAbsent } from '../../kube/errors.js';
import type { KubeObject, ResourceType } from '../../kube/types.js';
import { KubeSphereStateError } from '../../kubesphere/index.js';
import type { JobContext } from '../types.js';
import { backupObjects, recordEntries } from './backup.js';
import { isHost } from './clusters.js';
import {
  CONTROL_PLANE_DEPLOYMENTS,
  CORE_KEYS,
  KS_WEBHOOK_SERVICE,
  KUBESPHERE_SYSTEM,
  NAMESPACE_NETWORK_POLICY_CRD,
  NETWORK_ISOLATE_ANNOTATION,
  PROTECTION_FINALIZER,
  RESOURCE_SERVED_LABEL,
  SYSTEM_WORKSPACE,
  type OwnerReferenceRecord,
} from './constants.js';
import { waitForScaledDown } from './deployments.js';
import { buildHostKubeconfig } from './kubeconfig.js';
import { markChange, setMarks, type MarkRecord } from './marks.js';

// ---- 1. scale down the v3 control plane ------------------------------------------------------

/** The control-plane Deployments that exist, in the original's order. */
export async function controlPlaneDeployments(ctx: JobContext): Promise<Deployment[]> {
  const found: Deployment[] = [];
  for (const name of CONTROL_PLANE_DEPLOYMENTS) {
    const d = await ctx.v3.tryGet(DeploymentResource, name, KUBESPHERE_SYSTEM);
    if (d) found.push(d);
  }
  return found;
}

/**
 * Records each Deployment's replica count (first run wins, so rollback gets the counts from before
 * the upgrade), sets `spec.replicas` to 0 where it is not, and waits — at most 5 minutes, with
 * heartbeats, stopping on cancellation — until none has an available replica.
 */
export async function scaleDownControlPlane(ctx: JobContext): Promise<void> {
  const found = await controlPlaneDeployments(ctx);
  await recordEntries(
    ctx.store,
    CORE_KEYS.replicas,
    Object.fromEntries(found.map((d) => [d.metadata.name ?? '', d.spec?.replicas ?? 1])),
  );
  let scaled = 0;
  for (const d of found) {
    const r = await ctx.v3.mutate(DeploymentResource, d.metadata.name ?? '', KUBESPHERE_SYSTEM, (obj) => {
      (obj.spec ??= {}).replicas = 0;
    });
    if (r.changed) scaled++;
  }
  ctx.logger.info(`[core] scaled ${scaled} of ${found.length} control-plane deployments to 0; waiting`, {
    deployments: found.map((d) => d.metadata.name),
  });
  await waitForScaledDown(ctx.v3, KUBESPHERE_SYSTEM, CONTROL_PLANE_DEPLOYMENTS, { reporter: ctx });
}

// ---- 2. detach namespaces from workspaces ------------------------------------------------------

/** Namespaces (not being deleted) with at least one Workspace owner reference. */
export async function namespacesToDetach(ctx: JobContext): Promise<Namespace[]> {
  return (await ctx.v3.listAll(NamespaceResource)).filter(
    (ns) => !ns.metadata.deletionTimestamp && (ns.metadata.ownerReferences ?? []).some(isWorkspaceRef),
  );
}

function isWorkspaceRef(ref: { kind: string }): boolean {
  return ref.kind === 'Workspace';
}

/**
 * Removes every Workspace owner reference from every namespace (all of them — the original's loop
 * skipped the one after a removed one), after recording the namespace's references for rollback.
 * A namespace without such references is not written.
 */
export async function detachNamespaces(ctx: JobContext): Promise<void> {
  const targets = await namespacesToDetach(ctx);
  await recordEntries<OwnerReferenceRecord[string]>(
    ctx.store,
    CORE_KEYS.ownerReferences,
    Object.fromEntries(targets.map((ns) => [ns.metadata.name ?? '', ns.metadata.ownerReferences ?? []])),
  );
  let updated = 0;
  for (const [i, ns] of targets.entries()) {
    const r = await ctx.v3.mutate(NamespaceResource, ns.metadata.name ?? '', undefined, (obj) => {
      const kept = (obj.metadata.ownerReferences ?? []).filter((ref) => !isWorkspaceRef(ref));
      if (kept.length > 0) obj.metadata.ownerReferences = kept;
      else delete obj.metadata.ownerReferences;
    });
    if (r.changed) updated++;
    ctx.heartbeat({ step: 'detach-namespaces', done: i + 1, total: targets.length });
  }
  ctx.logger.info(`[core] removed workspace owner references from ${updated} namespaces`);
}

// ---- 3. delete the KubeSphere admission webhooks ---------------------------------------------

export interface WebhookKind {
  rt: ResourceType<WebhookConfiguration>;
  key: string;
}

/** Validating first, then mutating — both (the original only ever handled the validating ones). */
export const WEBHOOK_KINDS: readonly WebhookKind[] = [
  { rt: ValidatingWebhookConfigurationResource, key: CORE_KEYS.validatingWebhooks },
  { rt: MutatingWebhookConfigurationResource, key: CORE_KEYS.mutatingWebhooks },
];

/** KubeSphere's: the first webhook calls kubesphere-system/ks-controller-manager. */
export function isKubeSphereWebhook(cfg: WebhookConfiguration): boolean {
  const service = cfg.webhooks?.[0]?.clientConfig.service;
  return service?.namespace === KS_WEBHOOK_SERVICE.namespace && service.name === KS_WEBHOOK_SERVICE.name;
}

/** The KubeSphere webhook configurations of one kind present now. */
export async function kubesphereWebhooks(
  ctx: JobContext,
  kind: WebhookKind,
): Promise<WebhookConfiguration[]> {
  return (await ctx.v3.listAll(kind.rt)).filter(isKubeSphereWebhook);
}

/**
 * Backs up both lists (kept from the first run; a webhook that appears later is appended), then
 * deletes every KubeSphere webhook configuration present now — on every run, so a crash between
 * backup and delete no longer leaves the webhooks in place.
 */
export async function deleteKubeSphereWebhooks(ctx: JobContext): Promise<void> {
  const current = new Map<WebhookKind, WebhookConfiguration[]>();
  for (const kind of WEBHOOK_KINDS) {
    const found = await kubesphereWebhooks(ctx, kind);
    await backupObjects(ctx.store, kind.key, kind.rt, found);
    current.set(kind, found);
  }
  for (const kind of WEBHOOK_KINDS) {
    for (const cfg of current.get(kind) ?? []) {
      const name = cfg.metadata.name ?? '';
      if (cfg.webhooks?.some((w) => w.failurePolicy === 'Fail')) {
        ctx.logger.info(`[core] deleting ${kind.rt.kind} ${name} (failurePolicy Fail)`);
      }
      const deleted = await ctx.v3.delete(kind.rt, name, undefined, { clearFinalizers: true });
      if (deleted) ctx.logger.info(`[core] deleted ${kind.rt.kind} ${name}`);
    }
  }
}

// ---- 4. refresh the host cluster's kubeconfig (host only) ------------------------------------

/**
 * Backs up the ClusterList (every member's kubeconfig: stored encrypted), then writes a kubeconfig
 * with the `kubesphere` ServiceAccount's token into the host Cluster — on every run until it is
 * there (a re-run builds the same kubeconfig and writes nothing).
 */
export async function refreshHostKubeconfig(ctx: JobContext): Promise<void> {
  const clusters = await ctx.v3.listIfServed(v3.ClusterResource);
  await backupObjects(ctx.store, CORE_KEYS.clusters, v3.ClusterResource, clusters, { sensitive: true });
  const host = clusters.find(isHost);
  if (!host) {
    ctx.logger.info(`[core] no Cluster labelled ${v3.HOST_CLUSTER_LABEL}; host kubeconfig not refreshed`);
    return;
  }
  const kc = await buildHostKubeconfig(ctx.v3);
  if (kc.fallback) {
    ctx.logger.warn(`[core] Service default/kubernetes not found; the host kubeconfig uses ${kc.server}`);
  }
  const encoded = Buffer.from(kc.text, 'utf8').toString('base64');
  const r = await ctx.v3.mutate(v3.ClusterResource, host.metadata.name ?? '', undefined, (c) => {
    ((c.spec ??= {}).connection ??= {}).kubeconfig = encoded;
  });
  ctx.logger.info(
    r.changed
      ? `[core] host Cluster ${host.metadata.name ?? ''} now uses the kubesphere service account (server ${kc.server}, token from Secret ${kc.secretName})`
      : `[core] host Cluster ${host.metadata.name ?? ''} already uses the kubesphere service account`,
  );
}

// ---- 5. network preparation ------------------------------------------------------------------

/** Backs up a v3 list the original backed up here; a kind not served is skipped, as there. */
async function backupListIfServed<T extends KubeObject>(
  ctx: JobContext,
  rt: ResourceType<T>,
  key: string,
): Promise<void> {
  try {
    await backupObjects(ctx.store, key, rt, await ctx.v3.listAll(rt));
  } catch (err) {
    if (!isAbsent(err)) throw err;
    ctx.logger.info(`[core] ${rt.plural}.${rt.group}/${rt.version} not served; ${key} not backed up`);
  }
}

/** The CRD label and the network-isolate annotations step 5 would set. */
export async function networkMarks(
  ctx: JobContext,
): Promise<{ crd: MarkRecord[]; workspaces: MarkRecord[] }> {
  const crd = await ctx.v3.tryGet(CustomResourceDefinitionResource, NAMESPACE_NETWORK_POLICY_CRD);
  const crdChange = crd
    ? markChange(crd, {
        kind: 'CustomResourceDefinition',
        name: NAMESPACE_NETWORK_POLICY_CRD,
        field: 'label',
        key: RESOURCE_SERVED_LABEL,
        value: 'true',
      })
    : undefined;
  const workspaces = (await ctx.v3.listIfServed(v3.WorkspaceResource)).flatMap((ws) => {
    if (ws.spec?.networkIsolation !== true) return [];
    const change = markChange(ws, {
      kind: 'Workspace',
      name: ws.metadata.name ?? '',
      field: 'annotation',
      key: NETWORK_ISOLATE_ANNOTATION,
      value: 'enabled',
    });
    return change ? [change] : [];
  });
  return { crd: crdChange ? [crdChange] : [], workspaces };
}

/**
 * Backs up the v3 WorkspaceTemplate and Workspace lists, labels the NamespaceNetworkPolicy CRD as
 * served, and annotates network-isolated workspaces for v4.
 */
export async function prepareNetwork(ctx: JobContext): Promise<void> {
  await backupListIfServed(ctx, v3.WorkspaceTemplateResource, CORE_KEYS.workspaceTemplates);
  await backupListIfServed(ctx, v3.WorkspaceResource, CORE_KEYS.workspaces);
  const { crd, workspaces } = await networkMarks(ctx);
  await setMarks(ctx.v3, ctx.store, CustomResourceDefinitionResource, crd);
  const annotated = await setMarks(ctx.v3, ctx.store, v3.WorkspaceResource, workspaces);
  ctx.logger.info(`[core] network prepared: ${annotated} workspaces annotated ${NETWORK_ISOLATE_ANNOTATION}`);
}

// ---- 6. protect the system workspace ---------------------------------------------------------

/** The protection finalizer to add to WorkspaceTemplate system-workspace, through v3 then v4. */
export async function protectionMark(ctx: JobContext): Promise<MarkRecord[]> {
  for (const rt of [v3.WorkspaceTemplateResource, v4.WorkspaceTemplateResource]) {
    const wst = await ctx.v3.tryGet(rt, SYSTEM_WORKSPACE);
    // No finalizer can be added to an object being deleted (a member's, after step 7).
    if (!wst || wst.metadata.deletionTimestamp) continue;
    const change = markChange(wst, {
      kind: 'WorkspaceTemplate',
      name: SYSTEM_WORKSPACE,
      field: 'finalizer',
      key: PROTECTION_FINALIZER,
      value: PROTECTION_FINALIZER,
    });
    return change ? [change] : [];
  }
  return [];
}

/** Adds finalizer kubesphere.io/protection to WorkspaceTemplate system-workspace (v3, then v4 view). */
export async function protectSystemWorkspace(ctx: JobContext): Promise<void> {
  const changes = await protectionMark(ctx);
  for (const rt of [v3.WorkspaceTemplateResource, v4.WorkspaceTemplateResource]) {
    try {
      await setMarks(ctx.v3, ctx.store, rt, changes);
      return;
    } catch (err) {
      if (!isAbsent(err)) throw err; // NotFound / not served: try the other view
    }
  }
}

// ---- 7. member clusters: delete the system workspace template --------------------------------

/** What step 7 would do on a member: nothing, delete, or fail (and why). */
export async function memberSystemWorkspacePlan(
  ctx: JobContext,
): Promise<{ action: 'none' | 'delete' | 'in-progress'; error?: KsUpgradeError }> {
  const ws = await ctx.v3.tryGet(v3.WorkspaceResource, SYSTEM_WORKSPACE);
  if (!ws) return { action: 'none' };
  const owners = ws.metadata.ownerReferences ?? [];
  if (owners.length > 0) {
    return {
      action: 'none',
      error: new KubeSphereStateError('system workspace has unexpected owner reference', {
        hint:
          `Workspace ${SYSTEM_WORKSPACE} is owned by ${owners.map((o) => `${o.kind} ${o.name}`).join(', ')}; on a member it must have ` +
          'no owner (check that this cluster really is a member and that no federation controller still manages it), then run prepare-upgrade again',
      }),
    };
  }
  const wst = await ctx.v3.tryGet(v3.WorkspaceTemplateResource, SYSTEM_WORKSPACE);
  if (!wst) return { action: 'none' };
  return { action: wst.metadata.deletionTimestamp ? 'in-progress' : 'delete' };
}

/**
 * On a member, WorkspaceTemplate system-workspace belongs to the host: clear its finalizers and
 * owner references and delete it with propagation Orphan (its Workspace and namespaces stay).
 * Once its deletion has started, a re-run leaves it alone: clearing finalizers then would drop the
 * `orphan` finalizer and let the garbage collector delete the dependents.
 */
export async function deleteMemberSystemWorkspace(ctx: JobContext): Promise<void> {
  const plan = await memberSystemWorkspacePlan(ctx);
  if (plan.error) throw plan.error;
  if (plan.action === 'in-progress') {
    ctx.logger.info(`[core] WorkspaceTemplate ${SYSTEM_WORKSPACE} is already being deleted (orphaning)`);
    return;
  }
  if (plan.action === 'none') return;
  await ctx.v3.mutate(v3.WorkspaceTemplateResource, SYSTEM_WORKSPACE, undefined, (wst) => {
    delete wst.metadata.finalizers;
    delete wst.metadata.ownerReferences;
  });
  await ctx.v3.delete(v3.WorkspaceTemplateResource, SYSTEM_WORKSPACE, undefined, {
    propagationPolicy: 'Orphan',
  });
  ctx.logger.info(`[core] deleted WorkspaceTemplate ${SYSTEM_WORKSPACE} of this member (propagation Orphan)`);
}
