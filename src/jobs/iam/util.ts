// Small building blocks of the iam job: conflict-retried writes on the current object, union
// backups, aggregated errors and throttled progress.
import { KsUpgradeError, describeError } from '../../errors.js';
import type { ResourceClient } from '../../kube/client.js';
import { ConflictError, KubeApiError, NotFoundError } from '../../kube/errors.js';
import type { KubeObject, ResourceType } from '../../kube/types.js';
import { BackupKeyNotFound, growParts, loadParts, type ResourceStore } from '../../store/index.js';
import type { JobContext } from '../types.js';
import { getCrd } from '../../kube/crd.js';
import { notYet, waitFor } from '../../util/wait.js';

/** A step failed for some objects; every failure is listed, none is swallowed. */
export class IamStepError extends KsUpgradeError {}

/** `namespace/name` or `name`: the identity of an object within its kind. */
export function objectId(obj: KubeObject): string {
  const { namespace, name } = obj.metadata;
  return namespace ? `${namespace}/${name ?? ''}` : (name ?? '');
}

/** `Kind namespace/name`, for logs and errors. */
export function describeObject(obj: KubeObject): string {
  return `${obj.kind ?? 'object'} ${objectId(obj)}`;
}

/**
 * The object as it can be created again: server-populated metadata (uid, resourceVersion,
 * timestamps, managed fields, generation) and status-free creation concerns removed.
 */
export function stripServerFields<T extends KubeObject>(obj: T): T {
  const {
    resourceVersion: _rv,
    uid: _uid,
    creationTimestamp: _ct,
    deletionTimestamp: _dt,
    managedFields: _mf,
    generation: _g,
    ...metadata
  } = obj.metadata;
  const copy = structuredClone(obj);
  copy.metadata = structuredClone(metadata);
  delete (copy.metadata as { deletionGracePeriodSeconds?: unknown }).deletionGracePeriodSeconds;
  return copy;
}

/**
 * Read-modify-write that ALWAYS writes, starting from `current` (usually straight from a list) and
 * re-reading on 409. Unlike `ResourceClient.mutate` it does not skip an unchanged object: writing
 * an object back is how it is re-encoded in the CRD's storage version (what `storedVersions`
 * promises). The API server skips the etcd write when the encoded bytes are identical, so a re-run
 * does not change resourceVersions. Returns undefined when the object is gone.
 */
export async function rewrite<T extends KubeObject>(
  kube: ResourceClient,
  rt: ResourceType<T>,
  current: T,
  fn: (obj: T) => T,
  maxAttempts = 8,
): Promise<T | undefined> {
  let cur = current;
  for (let attempt = 1; ; attempt++) {
    try {
      return await kube.update(rt, fn(structuredClone(cur)));
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      if (!(err instanceof ConflictError) || attempt >= maxAttempts) throw err;
      // Someone wrote the object since we read it: start again from what is there now.
      const fresh = await kube.tryGet(rt, cur.metadata.name ?? '', cur.metadata.namespace);
      if (!fresh) return undefined;
      cur = fresh;
    }
  }
}

/** The stored value, or `fallback` when the key does not exist. */
export async function loadOr<T>(store: ResourceStore, key: string, fallback: T): Promise<T> {
  try {
    return await store.load<T>(key);
  } catch (err) {
    if (err instanceof BackupKeyNotFound) return fallback;
    throw err;
  }
}

/** Every item of a union backup written by {@link backupUnion} ([] when there is none). */
export async function loadUnion<T>(store: ResourceStore, key: string): Promise<T[]> {
  return (await loadParts<T[]>(store, key)).flat();
}

/**
 * A backup that only grows and is never rewritten: items whose id is already stored keep their
 * FIRST stored state (the state before this job changed anything); new ids go to a new write-once
 * part (`<key>.part-<n>`, src/store/parts.ts), so an object that appears on a later attempt is
 * still backed up before it is touched, and every stored object stays byte-identical to its first
 * write. Read it back with {@link loadUnion}. Always encrypted (the iam job requires a key): role
 * and user data is sensitive enough.
 */
export async function backupUnion<T>(
  store: ResourceStore,
  key: string,
  items: readonly T[],
  idOf: (item: T) => string,
): Promise<T[]> {
  const parts = await growParts<T[]>(
    store,
    key,
    (stored) => {
      const known = new Set(stored.flat().map(idOf));
      const added = items.filter((i) => !known.has(idOf(i)));
      // The first part is written even when empty: "backed up, nothing was there" is worth recording.
      return stored.length > 0 && added.length === 0 ? undefined : added;
    },
    { sensitive: true },
  );
  return parts.flat();
}

/** Collects per-object failures of a step and throws them together at the end. */
export class ErrorList {
  private readonly errors: string[] = [];
  add(what: string, err: unknown): void {
    this.errors.push(`${what}: ${describeError(err)}`);
  }
  get length(): number {
    return this.errors.length;
  }
  /** Throws an {@link IamStepError} listing every failure, if there was any. */
  throwIfAny(step: string, hint: string): void {
    if (this.errors.length === 0) return;
    const shown = this.errors.slice(0, 20);
    const more = this.errors.length - shown.length;
    throw new IamStepError(
      `${step}: ${this.errors.length} failure(s): ${shown.join('; ')}${more > 0 ? `; … and ${more} more` : ''}`,
      { hint },
    );
  }
}

/** The namespace of a namespaced create is being deleted or gone: nothing to migrate into. */
export function isNamespaceGone(err: unknown): boolean {
  if (!(err instanceof KubeApiError)) return false;
  const causes = err.apiStatus?.details?.causes ?? [];
  if (causes.some((c) => c.reason === 'NamespaceTerminating')) return true;
  // POST into a namespace that does not exist: 404 naming the namespace.
  return err instanceof NotFoundError && err.apiStatus?.details?.kind === 'namespaces';
}

/**
 * Heartbeats with `{step, done, total}` at most every 250 ms (and always on the last item), so a
 * 10 000-object step keeps the activity alive without flooding it.
 */
export function progress(ctx: JobContext, step: string, total?: number): (n?: number) => void {
  let done = 0;
  let last = 0;
  ctx.heartbeat({ step, done, ...(total === undefined ? {} : { total }) });
  return (n = 1) => {
    done += n;
    const now = Date.now();
    if (now - last >= 250 || (total !== undefined && done >= total)) {
      last = now;
      ctx.heartbeat({ step, done, ...(total === undefined ? {} : { total }) });
    }
  };
}

/** Unix seconds, as the original's snapshot timestamps. */
export function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Waits (bounded, 60 s) until a CRD being deleted is gone: a terminating CRD accepts no new
 * objects, and "deleted" should mean gone when the step reports success.
 */
export async function waitUntilNotTerminating(ctx: JobContext, name: string): Promise<void> {
  await waitFor(
    {
      what: `CRD ${name} to finish deleting`,
      timeoutMs: 60_000,
      // An empty CRD goes within a few hundred ms: a flat 500 ms poll overshot each one by up to
      // that much, three times per pre-upgrade (the kubefed CRDs). Fast first checks, then 500 ms.
      intervalMs: 25,
      maxIntervalMs: 500,
      check: async () =>
        (await getCrd(ctx.kube, name))?.metadata.deletionTimestamp ? notYet('still terminating') : true,
      hint: `check 'kubectl get ${name}' for objects whose finalizers block the deletion, then run the phase again`,
    },
    ctx,
  );
}
