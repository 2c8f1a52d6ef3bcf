// post-upgrade (reference §4.2, v4 types): custom roles' rules, the users' globalrole annotation and
// the deprecated rolebases CRD.
import { CustomResourceDefinitionResource, type CustomResourceDefinition } from '../../api/core.js';
import { RoleBaseResource } from '../../api/v3/index.js';
import * as v4 from '../../api/v4/index.js';
import { getCrd, waitForCrdEstablished } from '../../kube/crd.js';
import { isAbsent } from '../../kube/errors.js';
import { apiVersionOf, type KubeObject, type ResourceType } from '../../kube/types.js';
import { forEachLimit } from '../../util/concurrency.js';
import { loadBackup } from '../patterns.js';
import type { JobContext } from '../types.js';
import {
  ANNOTATION,
  BUILTIN_GLOBAL_ROLES,
  BUILTIN_WORKSPACE_ROLE_SUFFIXES,
  KEYS,
  LABEL,
  RESOURCE,
  type ResourceKey,
} from './constants.js';
import type { IamOptions } from './options.js';
import { isCustomNamespaceRole } from './resources.js';
import { decodeSnapshot, loadSnapshots } from './snapshot.js';
import {
  ErrorList,
  backupUnion,
  describeObject,
  loadOr,
  loadUnion,
  objectId,
  progress,
  stripServerFields,
  waitUntilNotTerminating,
} from './util.js';

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A WorkspaceRole KubeSphere creates for every workspace (`<ws>-admin` …). */
export function isBuiltinWorkspaceRole(role: KubeObject): boolean {
  const ws = role.metadata.labels?.[LABEL.workspace] ?? '';
  // The original built this regex from the label unescaped; a "." in a name matched any character.
  const re = new RegExp(`^${escapeRegExp(ws)}-(${BUILTIN_WORKSPACE_ROLE_SUFFIXES.join('|')})$`);
  return re.test(role.metadata.name ?? '');
}

interface CustomRoleKind {
  rt: ResourceType<v4.Role>;
  /** The snapshot whose names were v3 roles (we only ever reset roles that came from v3). */
  snapshot: ResourceKey;
  isCustom: (role: v4.Role) => boolean;
}

/** The original's three filters, in its order. */
const CUSTOM_ROLE_KINDS: readonly CustomRoleKind[] = [
  { rt: v4.RoleResource, snapshot: RESOURCE.role, isCustom: isCustomNamespaceRole },
  {
    rt: v4.WorkspaceRoleResource,
    snapshot: RESOURCE.workspaceRole,
    isCustom: (r) => !isBuiltinWorkspaceRole(r),
  },
  {
    rt: v4.GlobalRoleResource,
    snapshot: RESOURCE.globalRole,
    isCustom: (r) => !BUILTIN_GLOBAL_ROLES.includes(r.metadata.name ?? ''),
  },
];

/** The custom roles post-upgrade would reset, per kind (also used by `plan`). */
export async function findCustomRoles(
  ctx: JobContext,
): Promise<{ kind: CustomRoleKind; roles: v4.Role[] }[]> {
  const out: { kind: CustomRoleKind; roles: v4.Role[] }[] = [];
  for (const kind of CUSTOM_ROLE_KINDS) {
    // Every role any snapshot of this attempt saw: a re-run's snapshot of rbac Roles is taken after
    // step 4 deleted them. Without any snapshot (pre-upgrade ran elsewhere) the original's filter
    // alone decides.
    const entries = await loadSnapshots(ctx.store, kind.snapshot);
    const v3Ids =
      entries.length > 0 ? new Set(entries.flatMap((e) => decodeSnapshot(e).items.map(objectId))) : undefined;
    const roles = (await ctx.kube.listIfServed(kind.rt)).filter(
      (r) =>
        kind.isCustom(r) &&
        (v3Ids === undefined || v3Ids.has(objectId(r))) &&
        // Never a role v4 composes from templates, nor a template: their rules are v4's own.
        r.aggregationRoleTemplates === undefined &&
        r.metadata.labels?.[LABEL.roleTemplate] === undefined,
    );
    out.push({
      kind,
      roles: roles.map((r) => ({ ...r, apiVersion: apiVersionOf(kind.rt), kind: kind.rt.kind })),
    });
  }
  return out;
}

/**
 * Step 1: custom roles lose their rules (v4 authorises through role templates; v3 rules do not mean
 * the same there). Each role is backed up first and logged with the v3 templates it was built
 * from, so it can be re-authored. `customRoleRules: keep` only logs.
 */
export async function resetCustomRoles(ctx: JobContext, options: IamOptions): Promise<void> {
  const errors = new ErrorList();
  for (const { kind, roles } of await findCustomRoles(ctx)) {
    if (roles.length === 0) continue;
    await backupUnion(ctx.store, KEYS.customRoles, roles, (r) => `${r.kind ?? ''}/${objectId(r)}`);
    for (const r of roles) {
      const templates = r.metadata.annotations?.[ANNOTATION.aggregationRoles] ?? '(none recorded)';
      const verb =
        options.customRoleRules === 'keep' ? 'keeps its v3 rules (customRoleRules: keep)' : 'rules emptied';
      ctx.logger.warn(
        `custom ${kind.rt.kind} ${objectId(r)}: ${verb}; re-author it in the v4 console from role templates (v3 templates: ${templates}); its v3 rules are in backup ${KEYS.customRoles}`,
      );
    }
    if (options.customRoleRules === 'keep') continue;
    await forEachLimit(roles, options.concurrency, async (r) => {
      try {
        await ctx.kube.mutate(kind.rt, r.metadata.name ?? '', r.metadata.namespace, (cur) => {
          cur.rules = [];
        });
      } catch (err) {
        if (!isAbsent(err)) errors.add(describeObject(r), err);
      }
    });
  }
  errors.throwIfAny('resetting custom roles', 'fix the cause and run post-upgrade again');
}

/** Users without the annotation → their first GlobalRoleBinding's role (the original's pick). */
export async function usersToAnnotate(ctx: JobContext): Promise<{ name: string; globalRole: string }[]> {
  // One list of bindings instead of the original's one list per user (10 000 users = 10 000 lists).
  const firstRole = new Map<string, string>();
  for await (const b of ctx.kube.list(v4.GlobalRoleBindingResource, { labelSelector: LABEL.userRef })) {
    const user = b.metadata.labels?.[LABEL.userRef] ?? '';
    if (!firstRole.has(user)) firstRole.set(user, b.roleRef.name);
  }
  const out: { name: string; globalRole: string }[] = [];
  for await (const u of ctx.kube.list(v4.UserResource)) {
    const name = u.metadata.name ?? '';
    const role = firstRole.get(name);
    if (!u.metadata.annotations?.[ANNOTATION.globalRole] && role) out.push({ name, globalRole: role });
  }
  return out;
}

/** Step 2: `iam.kubesphere.io/globalrole` on every user that lacks it and has a binding. */
export async function annotateUsers(ctx: JobContext, options: IamOptions): Promise<void> {
  const todo = await usersToAnnotate(ctx);
  if (todo.length === 0) return;
  await backupUnion(ctx.store, KEYS.userAnnotations, todo, (u) => u.name);
  const errors = new ErrorList();
  const tick = progress(ctx, 'annotate users', todo.length);
  await forEachLimit(todo, options.concurrency, async (u) => {
    try {
      await ctx.kube.mutate(v4.UserResource, u.name, undefined, (cur) => {
        if (cur.metadata.annotations?.[ANNOTATION.globalRole]) return;
        cur.metadata.annotations = { ...cur.metadata.annotations, [ANNOTATION.globalRole]: u.globalRole };
      });
    } catch (err) {
      if (!isAbsent(err)) errors.add(`User ${u.name}`, err);
    }
    tick();
  });
  ctx.logger.info(`added the globalrole annotation to ${todo.length} user(s)`);
  errors.throwIfAny('annotating users with their global role', 'fix the cause and run post-upgrade again');
}

/** The rolebases CRD and its objects before deletion. */
interface RoleBasesBackup {
  crd: CustomResourceDefinition;
  items: KubeObject[];
}

/**
 * Step 3: delete every RoleBase (finalizers cleared), then the CRD. Failures are returned — the
 * original ignored a failed CRD deletion.
 */
export async function deleteRoleBases(ctx: JobContext, options: IamOptions): Promise<void> {
  const crd = await getCrd(ctx.kube, RESOURCE.roleBase);
  if (!crd) {
    ctx.logger.info(`CRD ${RESOURCE.roleBase} not found: nothing to delete`);
    return;
  }
  const items = (await ctx.kube.listIfServed(RoleBaseResource)).map((i) => ({
    ...i,
    apiVersion: i.apiVersion ?? apiVersionOf(RoleBaseResource),
    kind: i.kind ?? RoleBaseResource.kind,
  }));
  const stored = await loadOr<RoleBasesBackup | undefined>(ctx.store, KEYS.roleBases, undefined);
  const known = new Set((stored?.items ?? []).map(objectId));
  const added = items.filter((i) => !known.has(objectId(i)));
  if (!stored || added.length > 0) {
    await ctx.store.save(
      KEYS.roleBases,
      { crd: stored?.crd ?? stripServerFields(crd), items: [...(stored?.items ?? []), ...added] },
      { sensitive: true },
    );
  }
  const errors = new ErrorList();
  await forEachLimit(items, options.concurrency, async (o) => {
    try {
      await ctx.kube.delete(RoleBaseResource, o.metadata.name ?? '', undefined, { clearFinalizers: true });
    } catch (err) {
      errors.add(describeObject(o), err);
    }
  });
  errors.throwIfAny('deleting RoleBases', 'fix the cause and run post-upgrade again');
  await ctx.kube.delete(CustomResourceDefinitionResource, RESOURCE.roleBase);
  // CRD deletion is asynchronous; waiting (bounded) makes "post-upgrade succeeded" mean "gone".
  await waitUntilNotTerminating(ctx, RESOURCE.roleBase);
  ctx.logger.info(`deleted ${items.length} RoleBase(s) and CRD ${RESOURCE.roleBase}`);
}

// ---------------------------------------------------------------------------------------------
// rollback

/** Undo of steps 3, 2, 1. */
export async function undoPost(ctx: JobContext): Promise<void> {
  const bases = await loadBackup<RoleBasesBackup>(ctx, KEYS.roleBases);
  if (bases) {
    // post-upgrade's CRD deletion may still be finishing: objects cannot be created until it has.
    await waitUntilNotTerminating(ctx, RESOURCE.roleBase);
    if (!(await getCrd(ctx.kube, RESOURCE.roleBase))) {
      const { status: _s, ...crd } = bases.crd;
      const { finalizers: _f, ...metadata } = crd.metadata;
      await ctx.kube.create(CustomResourceDefinitionResource, {
        ...crd,
        metadata,
      });
      ctx.logger.info(`rollback: re-created CRD ${RESOURCE.roleBase}`);
    }
    await waitForCrdEstablished(ctx.kube, RESOURCE.roleBase, { reporter: ctx });
    for (const o of bases.items) await ctx.kube.createIfAbsent(RoleBaseResource, stripServerFields(o));
  }

  const annotated = await loadUnion<{ name: string; globalRole: string }>(ctx.store, KEYS.userAnnotations);
  await forEachLimit(annotated, 8, async (u) => {
    await ctx.kube
      .mutate(v4.UserResource, u.name, undefined, (cur) => {
        // Only our value is removed; an annotation v4 (or an admin) changed since stays.
        if (cur.metadata.annotations?.[ANNOTATION.globalRole] !== u.globalRole) return;
        Reflect.deleteProperty(cur.metadata.annotations, ANNOTATION.globalRole);
      })
      .catch((err: unknown) => {
        if (!isAbsent(err)) throw err;
      });
  });
  if (annotated.length > 0)
    ctx.logger.info(`rollback: removed the globalrole annotation of ${annotated.length} user(s)`);

  const roles = await loadUnion<v4.Role>(ctx.store, KEYS.customRoles);
  for (const r of roles) {
    const rt = CUSTOM_ROLE_KINDS.find((k) => k.rt.kind === r.kind)?.rt;
    if (!rt) continue;
    await ctx.kube
      .mutate(rt, r.metadata.name ?? '', r.metadata.namespace, (cur) => {
        // Restored only while still empty: a role re-authored in v4 since is not overwritten.
        if ((cur.rules ?? []).length === 0 && (r.rules ?? []).length > 0) cur.rules = r.rules;
      })
      .catch((err: unknown) => {
        if (!isAbsent(err)) throw err;
      });
  }
}
