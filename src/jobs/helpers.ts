// Small helpers the built-in jobs share, so each is written once: optional backup loads, objects
// made ready to be created again, up-front checks of `dynamicOptions`, and the rollback of a
// pending InstallPlan.
import { InstallPlanResource } from '../api/v4/index.js';
import type { DynamicOptions } from '../config/types.js';
import { ValidationError } from '../errors.js';
import { MANAGED_ANNOTATION } from '../extensions/index.js';
import { CustomResourceDefinitionResource } from '../api/core.js';
import { crdExists, waitForCrdEstablished } from '../kube/crd.js';
import { NoKindError } from '../kube/errors.js';
import type { KubeObject, ResourceType } from '../kube/types.js';
import { BackupKeyNotFound, BackupRecordedAbsent } from '../store/index.js';
import { backupOnce, loadBackup, recordAbsent } from './patterns.js';
import { WaitTimeoutError, notYet, waitFor } from '../util/wait.js';
import type { JobContext } from './types.js';

/** A list as the original stores it (`<Kind>List`; readers only need `items`). */
export interface StoredList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown>;
  items?: T[];
}

/** `items` wrapped as the original's `<Kind>List`, so its backups and ours read the same. */
export function asList<T>(apiVersion: string, kind: string, items: T[]): StoredList<T> {
  return { apiVersion, kind: `${kind}List`, metadata: {}, items };
}

/**
 * The stored value, or undefined when nothing was stored under `key` (any other error throws). For
 * records a job keeps for itself (what it copied, what it found); a backup a restore needs is read
 * with `loadBackup`, which tells "nothing to back up" from "never taken".
 */
export async function loadOptional<T>(ctx: JobContext, key: string): Promise<T | undefined> {
  try {
    return await ctx.store.load<T>(key);
  } catch (err) {
    if (err instanceof BackupKeyNotFound) return undefined;
    throw err;
  }
}

/** The object as it can be created again: server-set metadata and status dropped. */
export function forCreate<T extends KubeObject>(obj: T): T {
  const {
    resourceVersion: _rv,
    uid: _uid,
    creationTimestamp: _ct,
    managedFields: _mf,
    generation: _gen,
    deletionTimestamp: _dt,
    ...metadata
  } = obj.metadata;
  const { status: _status, ...rest } = obj as T & { status?: unknown };
  // deletionGracePeriodSeconds and selfLink are not in ObjectMeta's type but may be in a backup.
  const {
    deletionGracePeriodSeconds: _dg,
    selfLink: _sl,
    ...clean
  } = metadata as typeof metadata & {
    deletionGracePeriodSeconds?: unknown;
    selfLink?: unknown;
  };
  return { ...rest, metadata: clean } as T;
}

/** A boolean option as the original reads it: YAML bool or the string "true"/"false". */
export function boolOption(job: string, options: DynamicOptions, name: string, fallback: boolean): boolean {
  const v = options[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw new ValidationError(
    `jobs.${job}.dynamicOptions.${name} must be true or false, got ${JSON.stringify(v)}`,
    {
      hint: `e.g. ${name}: true (the string "true" is accepted too)`,
    },
  );
}

/** `rerun` checked up front (a typo must fail the plan, not a phase). */
export function checkRerun(job: string, options: DynamicOptions): void {
  boolOption(job, options, 'rerun', false);
}

/** Rejects `dynamicOptions` keys the job does not read: a typo must not be silently ignored. */
export function checkKnownOptions(job: string, options: DynamicOptions, known: readonly string[]): void {
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new ValidationError(`jobs.${job}.dynamicOptions: unknown option(s) ${unknown.join(', ')}`, {
      hint: known.length > 0 ? `the ${job} job reads ${known.join(', ')}` : `the ${job} job reads no options`,
    });
  }
}

/**
 * Rollback of an InstallPlan: deleted only when ks-upgrade created it and the extension is not
 * installed yet (an installed extension is the operator's to uninstall).
 */
export async function removePendingInstallPlan(ctx: JobContext, name: string): Promise<void> {
  const plan = await ctx.v4.tryGet(InstallPlanResource, name);
  if (!plan) return;
  if (plan.metadata.annotations?.[MANAGED_ANNOTATION] !== 'true') {
    ctx.logger.info(`InstallPlan ${name} was not created by ks-upgrade; rollback leaves it`);
    return;
  }
  const state = plan.status?.state ?? '';
  if (state === 'Installed' || state === 'Upgraded') {
    ctx.logger.warn(
      `InstallPlan ${name} is ${state}: rollback leaves the installed extension (uninstall it from the console if needed)`,
    );
    return;
  }
  await ctx.v4.delete(InstallPlanResource, name);
  ctx.logger.info(`InstallPlan ${name} deleted (was '${state || 'pending'}')`);
}

/**
 * An object from a backup (or another namespace) ready to be created again: as {@link forCreate},
 * and without owner references — the owners' uids are gone, and the garbage collector would delete
 * an object whose owners no longer exist.
 */
export function restorable<T extends KubeObject>(obj: T, namespace?: string): T {
  const copy = forCreate(obj);
  const { ownerReferences: _or, ...metadata } = copy.metadata;
  return { ...copy, metadata: namespace ? { ...metadata, namespace } : metadata };
}

/**
 * Creates a restored object unless it exists. Right after its CRD is (re-)created the kind can
 * answer "not served" for a moment: retried for up to 30 s, then false with a warning.
 */
export async function restoreObject(ctx: JobContext, rt: ResourceType, obj: KubeObject): Promise<boolean> {
  try {
    return await waitFor(
      {
        what: `${rt.plural}.${rt.group} to be served (to restore ${rt.kind} ${obj.metadata.name ?? ''})`,
        timeoutMs: 30_000,
        intervalMs: 250,
        check: async () => {
          try {
            await ctx.kube.createIfAbsent(rt, obj);
            return true;
          } catch (err) {
            if (!(err instanceof NoKindError)) throw err;
            return notYet(`${rt.plural}.${rt.group} is not served`);
          }
        },
      },
      ctx,
    );
  } catch (err) {
    if (!(err instanceof WaitTimeoutError)) throw err;
    ctx.logger.warn(`cannot restore ${rt.kind} ${obj.metadata.name ?? ''}: ${err.message}`);
    return false;
  }
}

/**
 * Waits (bounded) until the CRDs are gone: their deletion finishes only once the API server has
 * removed every object of theirs, and the extension installed next may bring CRDs of the same name.
 */
export async function waitForCrdsDeleted(
  ctx: JobContext,
  names: readonly string[],
  timeoutMs = 5 * 60_000,
  intervalMs = 500,
): Promise<void> {
  let left: string[] = [...names];
  await waitFor(
    {
      what: `CRDs ${names.join(', ')} to be deleted`,
      timeoutMs,
      intervalMs,
      check: async () => {
        const still: string[] = [];
        for (const name of left) if (await crdExists(ctx.kube, name)) still.push(name);
        left = still;
        return left.length === 0 ? true : notYet(`still being deleted: ${left.join(', ')}`);
      },
      hint: `objects with finalizers block the deletion: list them with 'kubectl get ${names.join(',')} -A', remove their finalizers, then retry the step`,
    },
    ctx,
  );
}

/** The store key of a CRD backed up by `job`, as the original names it. */
export function crdBackupKey(job: string, crd: string): string {
  return `${job}-apiextensions.k8s.io.v1.customresourcedefinitions-.${crd}`;
}

/** A kind whose CRD and objects a job backs up (under `crdBackupKey` and `key`) and deletes. */
export interface BackedUpKind {
  crd: string;
  key: string;
  rt: ResourceType;
}

/**
 * Backs up, once each, the CRD of every kind and the list of its objects (as the original's
 * `<Kind>List`, empty when there are none) — what {@link restoreKinds} and post-upgrade's
 * re-creation need. A kind whose CRD does not exist gets absent records for both keys.
 * `sensitive` marks a list whose objects hold credentials (asked of every page: true for one
 * page marks the list). The list is read and written one page at a time
 * (`store.saveListOnce`): the same bytes as `saveOnce` of {@link asList}, in memory
 * bounded by a page whatever the number of objects.
 */
export async function backupKinds(
  ctx: JobContext,
  kinds: readonly BackedUpKind[],
  sensitive: (items: readonly KubeObject[]) => boolean = () => false,
): Promise<void> {
  for (const k of kinds) {
    const absent = `CRD ${k.crd} not found`;
    const crd = await backupOnce(
      ctx,
      crdBackupKey(ctx.job, k.crd),
      () => ctx.kube.tryGet(CustomResourceDefinitionResource, k.crd),
      { absent },
    );
    if (!crd) {
      await recordAbsent(ctx, k.key, absent);
      continue;
    }
    const head = asList(`${k.rt.group}/${k.rt.version}`, k.rt.kind, []);
    try {
      const saved = await ctx.store.saveListOnce(k.key, head, ctx.kube.listPagesIfServed(k.rt), {
        sensitive,
      });
      ctx.logger.info(
        saved.items !== undefined
          ? `${k.rt.kind}s backed up under ${k.key}: ${saved.items}`
          : `${k.rt.kind}s already backed up under ${k.key} (at ${saved.info.createdAt}): kept`,
      );
    } catch (err) {
      // Recorded absent by an earlier run: that record of the pre-change state wins.
      if (!(err instanceof BackupRecordedAbsent)) throw err;
      ctx.logger.info(`${k.rt.kind}s under ${k.key}: recorded as absent by an earlier run, kept`);
    }
  }
}

/**
 * Rollback of deleted CRDs and their objects: every CRD first (and waited for), then the objects;
 * only what is missing is created.
 */
export async function restoreKinds(ctx: JobContext, kinds: readonly BackedUpKind[]): Promise<void> {
  for (const k of kinds) {
    const crd = await loadBackup<KubeObject>(ctx, crdBackupKey(ctx.job, k.crd));
    if (crd && (await ctx.kube.createIfAbsent(CustomResourceDefinitionResource, restorable(crd))).created) {
      await waitForCrdEstablished(ctx.kube, k.crd, { reporter: ctx });
      ctx.logger.info(`CRD ${k.crd} restored`);
    }
  }
  for (const k of kinds) {
    const list = await loadBackup<{ items?: KubeObject[] }>(ctx, k.key);
    for (const item of list?.items ?? []) {
      if (!(await restoreObject(ctx, k.rt, restorable(item)))) break;
    }
  }
}
