// The v3 → v4 conversions of pre-upgrade (reference §4.2, mapping table), as pure functions over
// plain JSON, plus the merge onto the object that is on the server now and its inverse for rollback.
//
// A conversion returns the object the original would have written: only the mapped fields. Unlike
// the original we never send the snapshot's resourceVersion: the result is laid over the CURRENT
// object (see `overlay`), so a write made between snapshot and migration is kept instead of
// failing with 409.
import type { PolicyRule, RoleRef, Subject } from '../../api/core.js';
import type { KubeObject } from '../../kube/types.js';
import { deepEqual, isRecord } from '../../util/object.js';
import { ANNOTATION, IAM_GROUP, LABEL } from './constants.js';
import type { IamOptions } from './options.js';

type Json = Record<string, unknown>;
/** A v3 or v4 object as plain JSON. */
export type Obj = KubeObject & Json;

export interface ConvertOptions {
  groupSubjects: IamOptions['groupSubjects'];
}

const IAM_V1BETA1 = `${IAM_GROUP}/v1beta1`;
const TENANT_V1BETA1 = 'tenant.kubesphere.io/v1beta1';

/** Copies the listed keys whose value is not undefined (the Go structs' omitempty, roughly). */
function pick(source: unknown, keys: readonly string[]): Json {
  const out: Json = {};
  if (!isRecord(source)) return out;
  for (const k of keys) if (source[k] !== undefined) out[k] = structuredClone(source[k]);
  return out;
}

function nonEmpty<T extends object>(value: T | undefined): T | undefined {
  return value && Object.keys(value).length > 0 ? value : undefined;
}

/** name, labels, annotations, finalizers: the metadata most conversions keep. */
function baseMeta(old: KubeObject, withNamespace = false): KubeObject['metadata'] {
  const m = old.metadata;
  return {
    name: m.name,
    ...(withNamespace && m.namespace !== undefined ? { namespace: m.namespace } : {}),
    ...(m.labels ? { labels: { ...m.labels } } : {}),
    ...(m.annotations ? { annotations: { ...m.annotations } } : {}),
    ...(m.finalizers ? { finalizers: [...m.finalizers] } : {}),
  };
}

function convertRoleRef(ref: RoleRef | undefined): RoleRef {
  return { apiGroup: IAM_GROUP, kind: ref?.kind ?? '', name: ref?.name ?? '' };
}

/**
 * Subjects of a v4 binding. The original keeps `kind: User` only; with `groupSubjects: migrate`
 * Group subjects stay too (v4 authorises Group subjects and workspace departments use them).
 * Both get apiGroup `iam.kubesphere.io`. Returns the last User subject's name, as the original
 * uses it for the user-ref label.
 */
export function convertSubjects(
  subjects: readonly Subject[] | undefined,
  options: ConvertOptions,
): { subjects: Subject[]; lastUser: string | undefined } {
  const out: Subject[] = [];
  let lastUser: string | undefined;
  for (const s of subjects ?? []) {
    const keep = s.kind === 'User' || (s.kind === 'Group' && options.groupSubjects === 'migrate');
    if (!keep) continue;
    if (s.kind === 'User') lastUser = s.name;
    out.push({
      kind: s.kind,
      apiGroup: IAM_GROUP,
      name: s.name,
      ...(s.namespace ? { namespace: s.namespace } : {}),
    });
  }
  return { subjects: out, lastUser };
}

/** User v1alpha2 → v1beta1. */
export function convertUser(old: Obj): Obj {
  const out: Obj = {
    apiVersion: IAM_V1BETA1,
    kind: 'User',
    metadata: baseMeta(old),
    spec: pick(old.spec, ['email', 'lang', 'description', 'displayName', 'groups', 'password']),
  };
  if (old.status !== undefined)
    out.status = pick(old.status, ['state', 'reason', 'lastTransitionTime', 'lastLoginTime']);
  return out;
}

/** GlobalRole / WorkspaceRole v1alpha2 → v1beta1: rules kept, no aggregationRoleTemplates. */
export function convertRole(old: Obj): Obj {
  const out: Obj = { apiVersion: IAM_V1BETA1, kind: old.kind ?? 'GlobalRole', metadata: baseMeta(old) };
  if (old.rules !== undefined) out.rules = structuredClone(old.rules as PolicyRule[]);
  return out;
}

/**
 * GlobalRoleBinding / WorkspaceRoleBinding v1alpha2 → v1beta1. Labels gain role-ref and user-ref
 * (the last User subject) only when a User subject exists — the original's rule.
 */
export function convertBinding(old: Obj, options: ConvertOptions): Obj {
  const roleRef = old.roleRef as RoleRef | undefined;
  const { subjects, lastUser } = convertSubjects(old.subjects as Subject[] | undefined, options);
  const meta = baseMeta(old);
  if (lastUser !== undefined) {
    meta.labels = { ...meta.labels, [LABEL.roleRef]: roleRef?.name ?? '', [LABEL.userRef]: lastUser };
  }
  return {
    apiVersion: IAM_V1BETA1,
    kind: old.kind ?? '',
    metadata: meta,
    subjects,
    roleRef: convertRoleRef(roleRef),
  };
}

/** LoginRecord v1alpha2 → v1beta1. */
export function convertLoginRecord(old: Obj): Obj {
  return {
    apiVersion: IAM_V1BETA1,
    kind: 'LoginRecord',
    metadata: baseMeta(old),
    spec: pick(old.spec, ['type', 'provider', 'sourceIP', 'userAgent', 'success', 'reason']),
  };
}

/** Workspace v1alpha1 → v1beta1: manager only (networkIsolation dropped), empty status. */
export function convertWorkspace(old: Obj): Obj {
  return {
    apiVersion: TENANT_V1BETA1,
    kind: 'Workspace',
    metadata: baseMeta(old),
    spec: pick(old.spec, ['manager']),
    status: {},
  };
}

/**
 * WorkspaceTemplate v1alpha2 → v1beta1: template labels/annotations and manager, placement cluster
 * NAMES only and the cluster selector; overrides (and networkIsolation) dropped.
 */
export function convertWorkspaceTemplate(old: Obj): Obj {
  const spec = isRecord(old.spec) ? old.spec : {};
  const template = isRecord(spec.template) ? spec.template : {};
  const placement = isRecord(spec.placement) ? spec.placement : {};
  const clusters = Array.isArray(placement.clusters)
    ? (placement.clusters as unknown[]).map((c) => ({
        name: isRecord(c) ? (typeof c.name === 'string' ? c.name : '') : '',
      }))
    : [];
  return {
    apiVersion: TENANT_V1BETA1,
    kind: 'WorkspaceTemplate',
    metadata: baseMeta(old),
    spec: {
      template: {
        metadata: pick(template.metadata, ['labels', 'annotations']),
        spec: pick(template.spec, ['manager']),
      },
      placement: {
        ...(clusters.length > 0 ? { clusters } : {}),
        ...pick(placement, ['clusterSelector']),
      },
    },
  };
}

/** rbac Role → iam Role (namespaced): no finalizers, annotation aggregation-roles removed. */
export function convertRbacRole(old: Obj): Obj {
  const annotations = { ...old.metadata.annotations };
  Reflect.deleteProperty(annotations, ANNOTATION.aggregationRoles);
  return {
    apiVersion: IAM_V1BETA1,
    kind: old.kind === 'ClusterRole' ? 'ClusterRole' : 'Role',
    metadata: {
      name: old.metadata.name,
      ...(old.metadata.namespace ? { namespace: old.metadata.namespace } : {}),
      ...(old.metadata.labels ? { labels: { ...old.metadata.labels } } : {}),
      ...(nonEmpty(annotations) ? { annotations } : {}),
    },
    ...(old.rules !== undefined ? { rules: structuredClone(old.rules) } : {}),
  };
}

/**
 * rbac RoleBinding / ClusterRoleBinding → iam RoleBinding / ClusterRoleBinding. role-ref is always
 * set; user-ref as the original (the last User, possibly "") whenever the source was a user
 * binding. A group-only binding (migrated with `groupSubjects: migrate`) gets no user-ref: an
 * empty user-ref would make it look like a user binding to label selectors.
 */
export function convertRbacBinding(old: Obj, options: ConvertOptions): Obj {
  const roleRef = old.roleRef as RoleRef | undefined;
  const { subjects, lastUser } = convertSubjects(old.subjects as Subject[] | undefined, options);
  const labels: Record<string, string> = { ...old.metadata.labels, [LABEL.roleRef]: roleRef?.name ?? '' };
  if (lastUser !== undefined || old.metadata.labels?.[LABEL.userRef] !== undefined) {
    labels[LABEL.userRef] = lastUser ?? '';
  }
  const clusterScoped = old.kind === 'ClusterRoleBinding';
  return {
    apiVersion: IAM_V1BETA1,
    kind: clusterScoped ? 'ClusterRoleBinding' : 'RoleBinding',
    metadata: {
      name: old.metadata.name,
      ...(!clusterScoped && old.metadata.namespace ? { namespace: old.metadata.namespace } : {}),
      labels,
      ...(old.metadata.annotations ? { annotations: { ...old.metadata.annotations } } : {}),
    },
    subjects,
    roleRef: convertRoleRef(roleRef),
  };
}

const METADATA_KEPT_FROM_CONVERSION = ['labels', 'annotations', 'finalizers'] as const;

/**
 * The converted object laid over the object on the server: identity and server metadata (uid,
 * resourceVersion, ownerReferences …) from `current`; labels, annotations, finalizers and every
 * body field from `converted`. Body fields the conversion does not produce are dropped, as the
 * original's typed Update dropped them.
 */
export function overlay<T extends KubeObject>(current: T, converted: Obj): T {
  const metadata: Json = { ...current.metadata };
  for (const k of METADATA_KEPT_FROM_CONVERSION) {
    const v = converted.metadata[k];
    if (v === undefined) Reflect.deleteProperty(metadata, k);
    else metadata[k] = structuredClone(v);
  }
  const out: Json = { apiVersion: current.apiVersion, kind: current.kind, metadata };
  for (const [k, v] of Object.entries(converted)) {
    if (k === 'apiVersion' || k === 'kind' || k === 'metadata') continue;
    out[k] = structuredClone(v);
  }
  return out as T;
}

/**
 * Reverts in `current` what changed between `before` and `after`, and nothing else: a field the
 * change did not touch keeps its current value (a later edit survives rollback). Nested objects
 * are compared field by field, arrays as a whole. Mutates `current`.
 */
export function undoChange(current: Json, before: unknown, after: unknown): void {
  const b = isRecord(before) ? before : {};
  const a = isRecord(after) ? after : {};
  for (const key of new Set([...Object.keys(b), ...Object.keys(a)])) {
    if (deepEqual(b[key], a[key])) continue;
    const cur = current[key];
    const bk = b[key];
    const ak = a[key];
    // A map the change created (labels where there were none) is undone key by key too, so keys
    // someone else added since are kept; it disappears only if nothing else is left in it.
    const mapLike = (v: unknown): boolean => v === undefined || isRecord(v);
    if (isRecord(cur) && mapLike(bk) && mapLike(ak) && (isRecord(bk) || isRecord(ak))) {
      undoChange(cur, bk, ak);
      if (bk === undefined && Object.keys(cur).length === 0) Reflect.deleteProperty(current, key);
    } else if (bk === undefined) Reflect.deleteProperty(current, key);
    else current[key] = structuredClone(bk);
  }
}

/**
 * Rollback of a conversion on the object now on the server: `before` is the v3 snapshot item,
 * `after` what the migration made of it. Labels, annotations, finalizers and body fields are
 * reverted where the migration changed them.
 */
export function revertConversion<T extends KubeObject>(current: T, before: Obj, after: Obj): T {
  const out = structuredClone(current) as T & Json;
  const meta = out.metadata as Json;
  const pickMeta = (o: Obj): Json => pick(o.metadata, METADATA_KEPT_FROM_CONVERSION);
  undoChange(meta, pickMeta(before), pickMeta(after));
  const body = (o: Json): Json =>
    Object.fromEntries(
      Object.entries(o).filter(([k]) => k !== 'apiVersion' && k !== 'kind' && k !== 'metadata'),
    );
  undoChange(out, body(before), body(after));
  return out;
}
