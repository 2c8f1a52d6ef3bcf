// Small helpers the built-in jobs share, so each is written once: optional backup loads, objects
// made ready to be created again, up-front checks of `dynamicOptions`, and the rollback of a
// pending InstallPlan.
import { InstallPlanResource } from '../api/v4/index.js';
import type { DynamicOptions } from '../config/types.js';
import { ValidationError } from '../errors.js';
import { MANAGED_ANNOTATION } from '../extensions/index.js';
import type { KubeObject } from '../kube/types.js';
import { BackupKeyNotFound } from '../store/index.js';
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

/** The stored value, or undefined when nothing was stored under `key` (any other error throws). */
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

/** `rerun` as the original reads it — bool or the string "true"/"false" — checked up front. */
export function checkRerun(job: string, options: DynamicOptions): void {
  const v = options.rerun;
  if (v === undefined || v === null || typeof v === 'boolean' || v === 'true' || v === 'false') return;
  throw new ValidationError(
    `jobs.${job}.dynamicOptions.rerun must be true or false, got ${JSON.stringify(v)}`,
    {
      hint: 'e.g. rerun: true (the string "true" is accepted too)',
    },
  );
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
