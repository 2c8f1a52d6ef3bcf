// Cluster objects: the host's kubeconfig (prepare-upgrade), the member marks (pre-upgrade), and
// putting both back from the ClusterList backup (rollback).
import {
  ClusterResource,
  HOST_CLUSTER_LABEL,
  type Cluster,
  type ClusterCondition,
} from '../../api/v4/index.js';
import type { ResourceClient } from '../../kube/client.js';
import { ConflictError } from '../../kube/errors.js';
import { deepEqual } from '../../util/object.js';
import { CONFIG_HASH_ANNOTATION, EMPTY_CONFIG_HASH, MANAGED_LABEL, MEMBER_CONDITIONS } from './constants.js';

/** Condition types pre-upgrade owns on member Clusters. */
const MARKED_CONDITION_TYPES: readonly string[] = MEMBER_CONDITIONS.map((c) => c.type);

/** The host Cluster carries the host label (any value, as the original checks key presence). */
export function isHost(c: Cluster): boolean {
  return c.metadata.labels?.[HOST_CLUSTER_LABEL] !== undefined;
}

/** `metav1.Time` format: RFC 3339 in seconds. */
function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The conditions with KSCoreReady=True and Schedulable=False set. A condition that already says
 * the same (status, reason, message) is kept as it is, timestamps included: a re-run changes nothing.
 */
export function withMemberConditions(conditions: ClusterCondition[], at: string = now()): ClusterCondition[] {
  const result = [...conditions];
  for (const want of MEMBER_CONDITIONS) {
    const i = result.findIndex((c) => c.type === want.type);
    const old = i >= 0 ? result[i] : undefined;
    if (old && old.status === want.status && old.reason === want.reason && old.message === want.message)
      continue;
    const next: ClusterCondition = {
      type: want.type,
      status: want.status,
      lastUpdateTime: at,
      // The transition time moves only when the status does.
      lastTransitionTime: old?.status === want.status ? (old.lastTransitionTime ?? at) : at,
      reason: want.reason,
      message: want.message,
    };
    if (i >= 0) result[i] = next;
    else result.push(next);
  }
  return result;
}

/** True when the member marks are all on the Cluster (nothing for pre-upgrade to do). */
export function hasMemberMarks(c: Cluster): boolean {
  return (
    c.metadata.labels?.[MANAGED_LABEL] === 'true' &&
    c.metadata.annotations?.[CONFIG_HASH_ANNOTATION] === EMPTY_CONFIG_HASH &&
    deepEqual(withMemberConditions(c.status?.conditions ?? [], ''), c.status?.conditions ?? [])
  );
}

/**
 * Read-modify-write of a Cluster through the main resource (the original's way: the Cluster CRD
 * has no status sub-resource). Should a CRD have one, the server drops status changes from the main
 * update; then the status is written through the sub-resource as well. No write when nothing changes.
 */
export async function mutateCluster(
  kube: ResourceClient,
  name: string,
  fn: (c: Cluster) => void,
): Promise<boolean> {
  const main = await kube.mutate(ClusterResource, name, undefined, (c) => {
    fn(c);
  });
  const wanted = structuredClone(main.object);
  fn(wanted);
  if (deepEqual(wanted.status, main.object.status)) return main.changed;
  for (let attempt = 1; ; attempt++) {
    const current = await kube.get(ClusterResource, name);
    const next = structuredClone(current);
    fn(next);
    if (deepEqual(next.status, current.status)) return true;
    try {
      await kube.updateStatus(ClusterResource, next);
      return true;
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= 8) throw err;
    }
  }
}

/** Pre-upgrade's marks on a member Cluster (label, annotation, conditions). */
export function markMember(c: Cluster): void {
  (c.metadata.labels ??= {})[MANAGED_LABEL] = 'true';
  (c.metadata.annotations ??= {})[CONFIG_HASH_ANNOTATION] = EMPTY_CONFIG_HASH;
  const status = (c.status ??= {});
  status.conditions = withMemberConditions(status.conditions ?? []);
}

function restoreMapEntry(
  target: Record<string, string> | undefined,
  original: Record<string, string> | undefined,
  key: string,
): Record<string, string> | undefined {
  const value = original?.[key];
  const next = Object.fromEntries(Object.entries(target ?? {}).filter(([k]) => k !== key));
  if (value !== undefined) next[key] = value;
  return Object.keys(next).length === 0 ? undefined : next;
}

/**
 * Puts back on `c` what prepare/pre changed, from `original` (the ClusterList backup): the host's
 * kubeconfig, and the managed label, config-hash annotation and KSCoreReady/Schedulable conditions
 * (each as it was: restored, or removed when it was not there). Other fields are left as they are.
 */
export function restoreCluster(c: Cluster, original: Cluster): void {
  if (isHost(original)) {
    const kubeconfig = original.spec?.connection?.kubeconfig;
    const connection = ((c.spec ??= {}).connection ??= {});
    if (kubeconfig === undefined) delete connection.kubeconfig;
    else connection.kubeconfig = kubeconfig;
  }
  c.metadata.labels = restoreMapEntry(c.metadata.labels, original.metadata.labels, MANAGED_LABEL);
  c.metadata.annotations = restoreMapEntry(
    c.metadata.annotations,
    original.metadata.annotations,
    CONFIG_HASH_ANNOTATION,
  );
  if (c.metadata.labels === undefined) delete c.metadata.labels;
  if (c.metadata.annotations === undefined) delete c.metadata.annotations;
  const current = c.status?.conditions;
  if (current === undefined) {
    const originalMarked = (original.status?.conditions ?? []).filter((x) =>
      MARKED_CONDITION_TYPES.includes(x.type),
    );
    if (originalMarked.length > 0) (c.status ??= {}).conditions = originalMarked;
    return;
  }
  // Keep the others where they are; put each marked type back at its original position.
  const next = current.filter((x) => !MARKED_CONDITION_TYPES.includes(x.type));
  (original.status?.conditions ?? []).forEach((x, i) => {
    if (MARKED_CONDITION_TYPES.includes(x.type)) next.splice(Math.min(i, next.length), 0, x);
  });
  if (!c.status) return;
  if (next.length === 0 && original.status?.conditions === undefined) delete c.status.conditions;
  else c.status.conditions = next;
}
