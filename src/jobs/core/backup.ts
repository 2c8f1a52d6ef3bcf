// Backups and rollback records of the core job. Two rules hold for every key:
//  - an entry, once stored, is never replaced: a retry after a crash (or a re-run after a partial
//    rollback) cannot overwrite the pre-change state with post-change state;
//  - every object core is about to change is in the backup before the change. The first write is
//    `saveOnce`; an object that appears later (a webhook registered between two runs) is appended
//    before it is touched. Nothing is rewritten when nothing is missing, so re-runs leave the store
//    byte-identical.
import { apiVersionOf, type KubeList, type KubeObject, type ResourceType } from '../../kube/types.js';
import type { ResourceStore, SaveOptions } from '../../store/index.js';

/** The List object the original tool stored (`{apiVersion, kind: <Kind>List, metadata, items}`). */
export function asList<T extends KubeObject>(rt: ResourceType<T>, items: T[]): KubeList<T> {
  return { apiVersion: apiVersionOf(rt), kind: `${rt.kind}List`, metadata: {}, items };
}

/** `namespace/name`: identity of an object in a backup list. */
export function objectId(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
}

/**
 * Backs up `items` under `key` as a List: stored once; objects not in the stored list yet are
 * appended (existing entries are never replaced). Returns the stored items.
 */
export async function backupObjects<T extends KubeObject>(
  store: ResourceStore,
  key: string,
  rt: ResourceType<T>,
  items: T[],
  opts: SaveOptions = {},
): Promise<T[]> {
  const { value, created } = await store.saveOnce(key, asList(rt, items), opts);
  if (created) return value.items;
  const known = new Set(value.items.map(objectId));
  const missing = items.filter((i) => !known.has(objectId(i)));
  if (missing.length === 0) return value.items;
  const merged: KubeList<T> = { ...value, items: [...value.items, ...missing] };
  await store.save(key, merged, opts);
  return merged.items;
}

/**
 * Records `entries` in the map under `key`: keys already recorded keep their first value, new keys
 * are added. Returns the whole record.
 */
export async function recordEntries<V>(
  store: ResourceStore,
  key: string,
  entries: Record<string, V>,
  opts: SaveOptions = {},
): Promise<Record<string, V>> {
  const { value, created } = await store.saveOnce(key, entries, opts);
  if (created) return value;
  const missing = Object.entries(entries).filter(([k]) => !Object.hasOwn(value, k));
  if (missing.length === 0) return value;
  const merged = { ...value, ...Object.fromEntries(missing) };
  await store.save(key, merged, opts);
  return merged;
}
