// Backups that grow without ever being rewritten: the first write is `<key>`, and whatever a
// later batch or attempt adds goes to a new write-once part `<key>.part-2`, `<key>.part-3` … Every
// stored object keeps the bytes, sha256 and createdAt of its first write (the fault suite checks
// it), and a retry that finds nothing new writes nothing. Used by core (its object lists and
// rollback records) and iam (its union backups); each decides what a part holds and how parts
// merge.
import { BackupKeyNotFound } from './errors.js';
import type { ResourceStore, SaveOptions } from './resource-store.js';

const PART = '.part-';

/** The parts after the first (`<key>` itself), in write order. */
export async function laterParts<T>(store: ResourceStore, key: string): Promise<T[]> {
  const more = (await store.list(`${key}${PART}`))
    .map((k) => ({ k, n: Number(k.slice(key.length + PART.length)) }))
    .filter((p) => Number.isInteger(p.n))
    .sort((a, b) => a.n - b.n);
  const out: T[] = [];
  for (const p of more) out.push(await store.load<T>(p.k));
  return out;
}

/** Every stored part in write order; [] when nothing is stored under `key`. */
export async function loadParts<T>(store: ResourceStore, key: string): Promise<T[]> {
  let first: T;
  try {
    first = await store.load<T>(key);
  } catch (err) {
    if (err instanceof BackupKeyNotFound) return [];
    throw err;
  }
  return [first, ...(await laterParts<T>(store, key))];
}

/**
 * Adds to a growing backup: `next` gets the parts stored so far ([] before the first write) and
 * returns the next part, or undefined when nothing is missing. Returns every stored part.
 */
export async function growParts<T>(
  store: ResourceStore,
  key: string,
  next: (stored: T[]) => T | undefined,
  opts: SaveOptions = {},
): Promise<T[]> {
  for (;;) {
    const parts = await loadParts<T>(store, key);
    const add = next(parts);
    if (add === undefined) return parts;
    const target = parts.length === 0 ? key : `${key}${PART}${parts.length + 1}`;
    const { created } = await store.saveOnce(target, add, opts);
    // Lost a race with another writer of the same part: read again and add what is still missing.
    if (created) return [...parts, add];
  }
}
