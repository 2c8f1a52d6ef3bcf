// Waits and stored-list reads of the gateway job.
import { KsUpgradeError } from '../../errors.js';
import { BackupKeyNotFound } from '../../store/index.js';
import { sleep } from '../../util/concurrency.js';
import type { JobContext } from '../types.js';
import type { StoredList } from './constants.js';

/** Polls `check` every `intervalMs` until true; a bounded, heartbeating, cancellable wait. */
export async function waitUntil(
  ctx: JobContext,
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  hint: string,
  intervalMs = 1000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) {
      throw new KsUpgradeError(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}`, {
        hint,
      });
    }
    ctx.heartbeat({ step: `wait for ${what}` });
    await sleep(intervalMs, ctx.signal);
  }
}

/** The items of a stored list, or undefined when nothing was stored under `key`. */
export async function storedItems<T>(ctx: JobContext, key: string): Promise<T[] | undefined> {
  try {
    return (await ctx.store.load<StoredList<T>>(key)).items ?? [];
  } catch (err) {
    if (err instanceof BackupKeyNotFound) return undefined;
    throw err;
  }
}
