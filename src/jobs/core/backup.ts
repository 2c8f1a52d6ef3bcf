// Backups and rollback records of the core job. Two rules hold for every key:
//  - an entry, once stored, is never replaced: a retry after a crash (or a re-run after a partial
//    rollback) cannot overwrite the pre-change state with post-change state;
//  - every object core is about to change is in the backup before the change. The first write is
//    `saveOnce`; an object that appears later (a webhook registered between two runs, the next
//    batch of marks) goes to a new write-once part (src/store/parts.ts) before it is touched, so
//    no stored object is ever rewritten. Read them back with loadGrowingList / loadGrowingRecord.
//    Nothing is written when nothing is missing, so re-runs leave the store byte-identical.
import { apiVersionOf, type KubeList, type KubeObject, type ResourceType } from '../../kube/types.js';
import { growParts, laterParts, type ResourceStore, type SaveOptions } from '../../store/index.js';
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
  const parts = await growParts<KubeList<T>>(
    store,
    key,
    (stored) => {
      // The first part is written even when empty: "backed up, nothing was there".
      if (stored.length === 0) return asList(rt, items);
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
  const parts = await growParts<Record<string, V>>(
    store,
    key,
    (stored) => {
      if (stored.length === 0) return entries;
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
