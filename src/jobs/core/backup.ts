// Backups and rollback records of the core job. Two rules hold for every key:
//  - an entry, once stored, is never replaced: a retry after a crash (or a re-run after a partial
//    rollback) cannot overwrite the pre-change state with post-change state;
//  - every object core is about to change is in the backup before the change. The first write is
//    `saveOnce`; an object that appears later (a webhook registered between two runs, the next
//    batch of marks) goes to a new write-once part `<key>.part-<n>` before it is touched, so no
//    stored object is ever rewritten (the fault suite checks each keeps its first sha256). Read
//    them back with loadGrowingList / loadGrowingRecord. Nothing is written when nothing is
//    missing, so re-runs leave the store byte-identical.
import { apiVersionOf, type KubeList, type KubeObject, type ResourceType } from '../../kube/types.js';
import type { ResourceStore, SaveOptions } from '../../store/index.js';
import type { JobContext } from '../types.js';
import { loadBackup } from '../patterns.js';

/** The List object the original tool stored (`{apiVersion, kind: <Kind>List, metadata, items}`). */
export function asList<T extends KubeObject>(rt: ResourceType<T>, items: T[]): KubeList<T> {
  return { apiVersion: apiVersionOf(rt), kind: `${rt.kind}List`, metadata: {}, items };
}

/** `namespace/name`: identity of an object in a backup list. */
export function objectId(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
}

/** Parts after the first of a growing backup: `<key>.part-2`, `<key>.part-3` … */
const PART = '.part-';

/** The stored parts of a growing backup after the first (`<key>` itself), in write order. */
async function laterParts<T>(store: ResourceStore, key: string): Promise<T[]> {
  const more = (await store.list(`${key}${PART}`))
    .map((k) => ({ k, n: Number(k.slice(key.length + PART.length)) }))
    .filter((p) => Number.isInteger(p.n))
    .sort((a, b) => a.n - b.n);
  const out: T[] = [];
  for (const p of more) out.push(await store.load<T>(p.k));
  return out;
}

/**
 * Adds to a growing backup: the first write is `key`; later ones each a new write-once part.
 * `missing` computes what the stored parts lack (undefined: nothing). Returns every stored part.
 */
async function grow<T>(
  store: ResourceStore,
  key: string,
  first: T,
  missing: (stored: T[]) => T | undefined,
  opts: SaveOptions,
): Promise<T[]> {
  const { value, created } = await store.saveOnce(key, first, opts);
  if (created) return [value];
  for (;;) {
    const parts = [value, ...(await laterParts<T>(store, key))];
    const add = missing(parts);
    if (add === undefined) return parts;
    const r = await store.saveOnce(`${key}${PART}${parts.length + 1}`, add, opts);
    // Lost a race with another writer of the same part: read again and add what is still missing.
    if (r.created) return [...parts, add];
  }
}

/**
 * Backs up `items` under `key` as a List: stored once; objects not stored yet go to a new part
 * (existing entries are never replaced). Returns the stored items.
 */
export async function backupObjects<T extends KubeObject>(
  store: ResourceStore,
  key: string,
  rt: ResourceType<T>,
  items: T[],
  opts: SaveOptions = {},
): Promise<T[]> {
  const parts = await grow<KubeList<T>>(
    store,
    key,
    asList(rt, items),
    (stored) => {
      const known = new Set(stored.flatMap((p) => p.items.map(objectId)));
      const missing = items.filter((i) => !known.has(objectId(i)));
      return missing.length === 0 ? undefined : asList(rt, missing);
    },
    opts,
  );
  return parts.flatMap((p) => p.items);
}

/**
 * Records `entries` in the map under `key`: keys already recorded keep their first value, new keys
 * go to a new part. Returns the whole record.
 */
export async function recordEntries<V>(
  store: ResourceStore,
  key: string,
  entries: Record<string, V>,
  opts: SaveOptions = {},
): Promise<Record<string, V>> {
  const parts = await grow<Record<string, V>>(
    store,
    key,
    entries,
    (stored) => {
      const missing = Object.entries(entries).filter(([k]) => !stored.some((p) => Object.hasOwn(p, k)));
      return missing.length === 0 ? undefined : Object.fromEntries(missing);
    },
    opts,
  );
  return mergeFirstWins(parts);
}

function mergeFirstWins<V>(parts: Record<string, V>[]): Record<string, V> {
  const out: Record<string, V> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p)) if (!Object.hasOwn(out, k)) out[k] = v;
  return out;
}

/** A List backup of {@link backupObjects} with all its parts, for a restore ({@link loadBackup} rules). */
export async function loadGrowingList<T extends KubeObject>(
  ctx: JobContext,
  key: string,
): Promise<KubeList<T> | undefined> {
  const first = await loadBackup<KubeList<T>>(ctx, key);
  if (first === undefined) return undefined;
  const more = await laterParts<KubeList<T>>(ctx.store, key);
  return { ...first, items: [...first.items, ...more.flatMap((p) => p.items)] };
}

/** A record of {@link recordEntries} with all its parts (first value of each entry wins). */
export async function loadGrowingRecord<V>(
  ctx: JobContext,
  key: string,
): Promise<Record<string, V> | undefined> {
  const first = await loadBackup<Record<string, V>>(ctx, key);
  if (first === undefined) return undefined;
  return mergeFirstWins([first, ...(await laterParts<Record<string, V>>(ctx.store, key))]);
}
