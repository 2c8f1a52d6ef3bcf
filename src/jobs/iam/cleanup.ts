// pre-upgrade steps 3–5 (reference §4.2): delete role templates, legacy rbac Roles and the KubeFed
// federation of IAM types — each list backed up first, so rollback can put everything back.
import {
  CustomResourceDefinitionResource,
  DeploymentResource,
  NamespaceResource,
  PodResource,
  RbacClusterRoleResource,
  RbacRoleResource,
  type CustomResourceDefinition,
} from '../../api/core.js';
import {
  FederatedTypeConfigResource,
  GlobalRoleResource,
  WorkspaceRoleResource,
} from '../../api/v3/index.js';
import { crdVersions, getCrd, waitForCrdEstablished } from '../../kube/crd.js';
import { apiVersionOf, type KubeObject, type ResourceType } from '../../kube/types.js';
import { forEachLimit } from '../../util/concurrency.js';
import { WaitTimeoutError, notYet, waitFor } from '../../util/wait.js';
import { loadBackup } from '../patterns.js';
import type { JobContext } from '../types.js';
import {
  ANNOTATION,
  FEDERATED_TYPE_CONFIG_CRD,
  KEYS,
  KUBEFED_CONTROLLER,
  KUBEFED_CRDS,
  KUBEFED_NAMESPACE,
  KUBEFED_SCALE_DOWN_TIMEOUT_MS,
  KUBEFED_TYPE_CONFIGS,
  LABEL,
} from './constants.js';
import type { IamOptions } from './options.js';
import {
  ErrorList,
  backupUnion,
  describeObject,
  loadOr,
  loadUnion,
  objectId,
  stripServerFields,
  waitUntilNotTerminating,
} from './util.js';

/** The kinds whose role templates step 3 deletes, in the original's order (v3 types). */
export const ROLE_TEMPLATE_TYPES: readonly ResourceType[] = [
  RbacRoleResource,
  RbacClusterRoleResource,
  WorkspaceRoleResource,
  GlobalRoleResource,
];

/** Backup identity across kinds: apiVersion/kind/namespace/name. */
export const typedId = (o: KubeObject): string => `${o.apiVersion ?? ''}/${o.kind ?? ''}/${objectId(o)}`;

function stamp(items: KubeObject[], rt: ResourceType): KubeObject[] {
  return items.map((i) => ({ ...i, apiVersion: i.apiVersion ?? apiVersionOf(rt), kind: i.kind ?? rt.kind }));
}

/** Deletes (finalizers cleared) every item; failures are collected in `errors`, never swallowed. */
async function deleteAll(
  ctx: JobContext,
  rt: ResourceType,
  items: readonly KubeObject[],
  options: IamOptions,
  errors: ErrorList,
): Promise<number> {
  let deleted = 0;
  await forEachLimit(items, options.concurrency, async (o) => {
    try {
      if (await ctx.kube.delete(rt, o.metadata.name ?? '', o.metadata.namespace, { clearFinalizers: true })) {
        deleted++;
      }
    } catch (err) {
      errors.add(describeObject(o), err);
    }
  });
  return deleted;
}

/** Step 3: role templates of the four kinds, backed up then deleted. */
export async function deleteRoleTemplates(ctx: JobContext, options: IamOptions): Promise<void> {
  const errors = new ErrorList();
  for (const rt of ROLE_TEMPLATE_TYPES) {
    const items = stamp(await ctx.kube.listIfServed(rt, { labelSelector: LABEL.roleTemplate }), rt);
    await backupUnion(ctx.store, KEYS.roleTemplates, items, typedId);
    const deleted = await deleteAll(ctx, rt, items, options, errors);
    ctx.logger.info(`deleted ${deleted} role template(s) of kind ${rt.kind}`, {
      names: items.map(objectId),
    });
  }
  errors.throwIfAny('deleting role templates', 'fix the cause and run pre-upgrade again');
}

/**
 * Step 4: every rbac Role with a non-empty `kubesphere.io/creator`, built-in admin/viewer/operator
 * included (kept from the original: v4 manages namespace roles as iam.kubesphere.io Roles and
 * re-creates the built-ins; stale v3 copies would keep granting v3-era rules). Backed up first.
 */
export async function deleteLegacyRoles(ctx: JobContext, options: IamOptions): Promise<void> {
  const items = stamp(
    (await ctx.kube.listAll(RbacRoleResource)).filter((r) => !!r.metadata.annotations?.[ANNOTATION.creator]),
    RbacRoleResource,
  );
  await backupUnion(ctx.store, KEYS.legacyRoles, items, typedId);
  const errors = new ErrorList();
  const deleted = await deleteAll(ctx, RbacRoleResource, items, options, errors);
  ctx.logger.info(`deleted ${deleted} legacy rbac Role(s)`, { roles: items.map(objectId) });
  errors.throwIfAny('deleting legacy rbac Roles', 'fix the cause and run pre-upgrade again');
}

/** A resource type for a CRD version, not registered (the cluster's CRD decides scope and plural). */
function crdType(crd: CustomResourceDefinition, version: string): ResourceType {
  return Object.freeze({
    group: crd.spec.group,
    version,
    kind: crd.spec.names.kind,
    plural: crd.spec.names.plural,
    namespaced: crd.spec.scope === 'Namespaced',
  });
}

/** A federated CRD and its objects, as backed up before deletion. */
interface FederatedCrdBackup {
  crd: CustomResourceDefinition;
  version: string;
  items: KubeObject[];
}

function labelSelector(selector: unknown): string | undefined {
  const s = selector as
    | {
        matchLabels?: Record<string, string>;
        matchExpressions?: { key: string; operator: string; values?: string[] }[];
      }
    | undefined;
  if (!s) return undefined;
  const parts = Object.entries(s.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of s.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.length > 0 ? parts.join(',') : undefined;
}

/**
 * Step 5: when kube-federation-system exists, stop the kubefed controller (so deleting federated
 * objects is not propagated to member clusters), then delete the IAM FederatedTypeConfigs and the
 * federated IAM CRDs with their objects. Everything deleted is backed up first.
 */
export async function removeKubefedIam(ctx: JobContext, options: IamOptions): Promise<void> {
  if (!(await ctx.kube.tryGet(NamespaceResource, KUBEFED_NAMESPACE))) {
    ctx.logger.info(`namespace ${KUBEFED_NAMESPACE} not found: no kubefed IAM federation to remove`);
    return;
  }
  const errors = new ErrorList();

  const deploy = await ctx.kube.tryGet(DeploymentResource, KUBEFED_CONTROLLER, KUBEFED_NAMESPACE);
  if (deploy) {
    await ctx.store.saveOnce(KEYS.kubefedController, { replicas: deploy.spec?.replicas ?? 1 });
    await ctx.kube.mutate(DeploymentResource, KUBEFED_CONTROLLER, KUBEFED_NAMESPACE, (d) => {
      d.spec = { ...d.spec, replicas: 0 };
    });
    await waitForNoPods(ctx, labelSelector(deploy.spec?.selector));
  }

  if (await getCrd(ctx.kube, FEDERATED_TYPE_CONFIG_CRD)) {
    const configs: KubeObject[] = [];
    for (const name of KUBEFED_TYPE_CONFIGS) {
      const ftc = await ctx.kube.tryGet(FederatedTypeConfigResource, name, KUBEFED_NAMESPACE);
      if (ftc) configs.push(ftc);
    }
    await backupUnion(ctx.store, KEYS.kubefedTypeConfigs, configs, typedId);
    const n = await deleteAll(ctx, FederatedTypeConfigResource, configs, options, errors);
    ctx.logger.info(`deleted ${n} kubefed FederatedTypeConfig(s)`, { names: configs.map(objectId) });
  }

  for (const name of KUBEFED_CRDS) {
    const crd = await getCrd(ctx.kube, name);
    if (!crd) continue;
    // The original listed in the first stored version; the storage version is the fallback.
    const version =
      crd.status?.storedVersions?.[0] ?? crdVersions(crd).storage ?? crd.spec.versions[0]?.name ?? '';
    const rt = crdType(crd, version);
    const items = stamp(await ctx.kube.listAll(rt), rt);
    const key = KEYS.kubefedCrd(name);
    const stored = await loadOr<FederatedCrdBackup | undefined>(ctx.store, key, undefined);
    const known = new Set((stored?.items ?? []).map(typedId));
    const added = items.filter((i) => !known.has(typedId(i)));
    if (!stored || added.length > 0) {
      // Federated users embed password hashes: encrypted.
      await ctx.store.save(
        key,
        { crd: stored?.crd ?? stripServerFields(crd), version, items: [...(stored?.items ?? []), ...added] },
        { sensitive: true },
      );
    }
    const before = errors.length;
    const n = await deleteAll(ctx, rt, items, options, errors);
    // The CRD goes only when all its objects did (deleting it first would orphan their finalizers).
    if (errors.length === before) {
      try {
        await ctx.kube.delete(CustomResourceDefinitionResource, name);
        await waitUntilNotTerminating(ctx, name);
      } catch (err) {
        // The original ignored this error; a CRD left behind keeps the federation half-alive.
        errors.add(`CRD ${name}`, err);
      }
    }
    ctx.logger.info(`deleted ${n} object(s) of ${name} and the CRD`);
  }
  errors.throwIfAny('removing the kubefed IAM federation', 'fix the cause and run pre-upgrade again');
}

/** Bounded wait (30 s, 1 s poll, as the original) for the controller's pods to go; not fatal. */
async function waitForNoPods(ctx: JobContext, selector: string | undefined): Promise<void> {
  if (!selector) return;
  try {
    await waitFor(
      {
        what: `the ${KUBEFED_CONTROLLER} pods to go`,
        timeoutMs: KUBEFED_SCALE_DOWN_TIMEOUT_MS,
        check: async () => {
          const pods = await ctx.kube.listAll(PodResource, {
            namespace: KUBEFED_NAMESPACE,
            labelSelector: selector,
          });
          return pods.length === 0 ? true : notYet(`${pods.length} pod(s) left`);
        },
      },
      ctx,
    );
  } catch (err) {
    if (!(err instanceof WaitTimeoutError)) throw err;
    ctx.logger.warn(`${err.message}; continuing (as the original)`);
  }
}

// ---------------------------------------------------------------------------------------------
// rollback

const TYPES_BY_APIVERSION_KIND = new Map<string, ResourceType>(
  [...ROLE_TEMPLATE_TYPES, FederatedTypeConfigResource].map((rt) => [`${apiVersionOf(rt)}/${rt.kind}`, rt]),
);

/** Re-creates backed-up objects that are missing now; existing ones are left as they are. */
async function recreate(ctx: JobContext, items: readonly KubeObject[], what: string): Promise<number> {
  let created = 0;
  const errors = new ErrorList();
  for (const o of items) {
    const rt = TYPES_BY_APIVERSION_KIND.get(`${o.apiVersion ?? ''}/${o.kind ?? ''}`);
    if (!rt) {
      errors.add(describeObject(o), new Error(`unknown type ${o.apiVersion ?? ''}/${o.kind ?? ''}`));
      continue;
    }
    try {
      if ((await ctx.kube.createIfAbsent(rt, stripServerFields(o))).created) created++;
    } catch (err) {
      errors.add(describeObject(o), err);
    }
  }
  if (created > 0) ctx.logger.info(`rollback: re-created ${created} ${what}`);
  errors.throwIfAny(`re-creating ${what}`, 'fix the cause and run rollback again');
  return created;
}

/** Undo of steps 5, 4, 3 (reverse order). */
export async function undoCleanup(ctx: JobContext): Promise<void> {
  // Step 5: CRDs first (and Established), then their objects, the type configs, the controller.
  for (const key of await ctx.store.list('iam-backup-kubefed-crd-')) {
    const b = await ctx.store.load<FederatedCrdBackup>(key);
    const name = b.crd.metadata.name ?? '';
    await waitUntilNotTerminating(ctx, name);
    if (!(await getCrd(ctx.kube, name))) {
      const { status: _status, ...crd } = b.crd;
      // The server adds its own cleanup finalizer; ours would only be a stale copy.
      const { finalizers: _f, ...metadata } = crd.metadata;
      await ctx.kube.create(CustomResourceDefinitionResource, {
        ...crd,
        metadata,
      });
      ctx.logger.info(`rollback: re-created CRD ${name}`);
    }
    const crd = await waitForCrdEstablished(ctx.kube, name, { reporter: ctx });
    const rt = crdType(crd, b.version);
    let n = 0;
    for (const o of b.items) if ((await ctx.kube.createIfAbsent(rt, stripServerFields(o))).created) n++;
    if (n > 0) ctx.logger.info(`rollback: re-created ${n} object(s) of ${name}`);
  }
  const configs = await loadUnion<KubeObject>(ctx.store, KEYS.kubefedTypeConfigs);
  if (configs.length > 0 && (await getCrd(ctx.kube, FEDERATED_TYPE_CONFIG_CRD))) {
    await recreate(ctx, configs, 'FederatedTypeConfig(s)');
  }
  const controller = await loadBackup<{ replicas: number }>(ctx, KEYS.kubefedController);
  if (controller && (await ctx.kube.tryGet(DeploymentResource, KUBEFED_CONTROLLER, KUBEFED_NAMESPACE))) {
    const { changed } = await ctx.kube.mutate(
      DeploymentResource,
      KUBEFED_CONTROLLER,
      KUBEFED_NAMESPACE,
      (d) => {
        // Only undo our scale-down; a replica count someone set since is theirs.
        if ((d.spec?.replicas ?? 0) === 0) d.spec = { ...d.spec, replicas: controller.replicas };
      },
    );
    if (changed) ctx.logger.info(`rollback: ${KUBEFED_CONTROLLER} scaled back to ${controller.replicas}`);
  }
  // Steps 4 and 3.
  await recreate(ctx, await loadUnion<KubeObject>(ctx.store, KEYS.legacyRoles), 'legacy rbac Role(s)');
  await recreate(ctx, await loadUnion<KubeObject>(ctx.store, KEYS.roleTemplates), 'role template(s)');
}
