// Stored-list reads of the gateway job.
import { loadBackup } from '../patterns.js';
import type { JobContext } from '../types.js';
import type { StoredList } from './constants.js';

/**
 * The items of a stored list; undefined when pre-upgrade recorded that there was nothing to back
 * up (or, in rollback, when it never got that far). A missing backup is an error elsewhere.
 */
export async function storedItems<T>(ctx: JobContext, key: string): Promise<T[] | undefined> {
  const list = await loadBackup<StoredList<T>>(ctx, key);
  return list ? (list.items ?? []) : undefined;
}
