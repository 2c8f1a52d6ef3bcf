// Labels, annotations and finalizers core sets — recorded before they are set, so rollback can
// take back exactly those (and leave marks that were there before the upgrade alone).
import { CustomResourceDefinitionResource, NamespaceResource } from '../../api/core.js';
import * as v3 from '../../api/v3/index.js';
import * as v4 from '../../api/v4/index.js';
import type { ResourceClient } from '../../kube/client.js';
import { NoKindError, NotFoundError } from '../../kube/errors.js';
import type { KubeObject, ResourceType } from '../../kube/types.js';
import type { ResourceStore } from '../../store/index.js';
import { recordEntries } from './backup.js';
import { CORE_KEYS, type AddedMark, type MarkedKind } from './constants.js';

/** A mark core wants on an object: the value (for a finalizer: its name). */
export interface WantedMark {
  kind: MarkedKind;
  name: string;
  field: AddedMark['field'];
  key: string;
  value: string;
}

/** Stored record entry: what was there before, plus what core set. */
export type MarkRecord = AddedMark & { value: string };

/** Record id: one entry per (object, field, key). */
export function markId(m: Pick<AddedMark, 'kind' | 'name' | 'field' | 'key'>): string {
  return `${m.kind}/${m.name}/${m.field}/${m.key}`;
}

/**
 * Resource types through which a kind is reached, preferred first. WorkspaceTemplates are reached
 * through v3 first, then v4 (the same server objects), so rollback works whichever is still served.
 */
const TYPES: Record<MarkedKind, ResourceType[]> = {
  Namespace: [NamespaceResource],
  Workspace: [v3.WorkspaceResource, v4.WorkspaceResource],
  WorkspaceTemplate: [v3.WorkspaceTemplateResource, v4.WorkspaceTemplateResource],
  CustomResourceDefinition: [CustomResourceDefinitionResource],
};

/** The value of a mark on an object: label/annotation value, finalizer name, or null when absent. */
export function markValue(obj: KubeObject, field: AddedMark['field'], key: string): string | null {
  switch (field) {
    case 'label':
      return obj.metadata.labels?.[key] ?? null;
    case 'annotation':
      return obj.metadata.annotations?.[key] ?? null;
    case 'finalizer':
      return obj.metadata.finalizers?.includes(key) ? key : null;
  }
}

/** Sets (value) or removes (null) a mark on an object in place. */
export function setMarkValue(
  obj: KubeObject,
  field: AddedMark['field'],
  key: string,
  value: string | null,
): void {
  const meta = obj.metadata;
  if (field === 'finalizer') {
    const rest = (meta.finalizers ?? []).filter((f) => f !== key);
    meta.finalizers = value === null ? rest : [...rest, key];
    if (meta.finalizers.length === 0) delete meta.finalizers;
    return;
  }
  const map = Object.fromEntries(
    Object.entries((field === 'label' ? meta.labels : meta.annotations) ?? {}).filter(([k]) => k !== key),
  );
  if (value !== null) map[key] = value;
  const next = Object.keys(map).length === 0 ? undefined : map;
  if (field === 'label') meta.labels = next;
  else meta.annotations = next;
}

/** The record entry for setting `want` on `obj`, or undefined when the object already carries it. */
export function markChange(obj: KubeObject, want: WantedMark): MarkRecord | undefined {
  const current = markValue(obj, want.field, want.key);
  if (current === want.value) return undefined;
  return { ...want, previous: current };
}

/** Records the marks core is about to set (one store write for the whole batch). */
export async function recordMarks(store: ResourceStore, changes: MarkRecord[]): Promise<void> {
  if (changes.length === 0) return;
  await recordEntries(store, CORE_KEYS.marks, Object.fromEntries(changes.map((c) => [markId(c), c])));
}

/** Sets one mark through `rt`: conflict-retried read-modify-write, no write when it is there. */
export async function applyMark(kube: ResourceClient, rt: ResourceType, c: MarkRecord): Promise<boolean> {
  const r = await kube.mutate(rt, c.name, undefined, (obj) => {
    setMarkValue(obj, c.field, c.key, c.value);
  });
  return r.changed;
}

/** Records the marks (before any is set), then sets each one. Returns how many objects were written. */
export async function setMarks(
  kube: ResourceClient,
  store: ResourceStore,
  rt: ResourceType,
  changes: MarkRecord[],
): Promise<number> {
  await recordMarks(store, changes);
  let written = 0;
  for (const c of changes) if (await applyMark(kube, rt, c)) written++;
  return written;
}

/** What reverting one recorded mark did. */
export type RevertOutcome = 'reverted' | 'unchanged' | 'gone' | 'changed-since';

/**
 * Puts back what was there before core set the mark — only while the object still carries core's
 * value: a mark someone changed after the upgrade is theirs now and is left alone.
 */
export async function revertMark(kube: ResourceClient, mark: MarkRecord): Promise<RevertOutcome> {
  for (const rt of TYPES[mark.kind]) {
    const seen: { outcome: RevertOutcome } = { outcome: 'unchanged' };
    try {
      await kube.mutate(rt, mark.name, undefined, (obj) => {
        seen.outcome = 'unchanged'; // the mutation re-runs on a conflict
        const now = markValue(obj, mark.field, mark.key);
        if (now === mark.previous) return;
        if (now !== mark.value) {
          seen.outcome = 'changed-since';
          return;
        }
        setMarkValue(obj, mark.field, mark.key, mark.previous);
        seen.outcome = 'reverted';
      });
      return seen.outcome;
    } catch (err) {
      if (err instanceof NoKindError) continue; // this version is no longer served: try the next
      if (err instanceof NotFoundError) return 'gone';
      throw err;
    }
  }
  return 'gone';
}
