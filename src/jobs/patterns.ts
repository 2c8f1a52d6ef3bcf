// The patterns the original's extension jobs share (reference §4.0), one helper each, so no job
// repeats them: P1 the done marker with `rerun`, P2 backup-once and the load of a backup that
// tells "nothing was there" from "never taken", P3 placement from the ClusterConfiguration, §3.4
// cluster scheduling, and extension values filled only where absent.
import * as yaml from 'js-yaml';
import type { ClusterConfiguration } from '../api/v3/index.js';
import type { ClusterScheduling, ExtensionRef } from '../config/types.js';
import { KsUpgradeError, ValidationError } from '../errors.js';
import { clusterConfigurationOf, isHostClusterObject, listClusters } from '../kubesphere/clusters.js';
import { getClusterConfiguration, isHostCluster } from '../kubesphere/index.js';
import {
  ABSENT_CONTENT_TYPE,
  BackupKeyNotFound,
  BackupRecordedAbsent,
  GO_IMPORT_KEY,
  type GoImportRecord,
} from '../store/index.js';
import { getPath, isRecord } from '../util/object.js';
import type { JobContext, Phase } from './types.js';

/** `dynamicOptions.rerun` as the original reads it: bool `true` or the string `"true"`. */
export function rerunRequested(options: Record<string, unknown>): boolean {
  return String(options.rerun) === 'true';
}

/**
 * P1: the `<job>-done` marker (UTC time text, as the original writes it). `check()` handles `rerun`
 * (deletes the marker) and says whether the job already finished; `mark()` is called at the end of
 * post-upgrade only, as in the original, so pre-upgrade work is redone until post succeeds.
 */
export class DoneMarker {
  readonly key: string;
  constructor(
    private readonly ctx: JobContext,
    key?: string,
  ) {
    this.key = key ?? `${ctx.job}-done`;
  }

  /** When the job finished, or undefined. With `rerun: true` the marker is removed first. */
  async check(): Promise<string | undefined> {
    if (rerunRequested(this.ctx.options)) {
      await this.ctx.store.delete(this.key);
      return undefined;
    }
    try {
      const text = Buffer.from(await this.ctx.store.loadRaw(this.key))
        .toString('utf8')
        .trim();
      if (text === '') return undefined;
      this.ctx.logger.info(
        `job ${this.ctx.job} already done at ${text} (set dynamicOptions.rerun: true to run it again)`,
      );
      return text;
    } catch (err) {
      if (err instanceof BackupKeyNotFound) return undefined;
      throw err;
    }
  }

  async mark(): Promise<void> {
    // Go's time.String() format, kept for stores shared with the original tool.
    const now = new Date().toISOString().replace('T', ' ').replace('Z', ' +0000 UTC');
    await this.ctx.store.saveRaw(this.key, now);
  }
}

/**
 * How to import a store the Go ks-upgrade wrote, so our phases can use its backups (named in the
 * error for a missing backup: the Go tool may have run pre-upgrade).
 */
export const GO_STORE_IMPORT_COMMAND = 'ks-upgrade backups import --from-go <local path | S3 settings>';

export interface BackupOnceOptions {
  /** Encrypt (and refuse without a key) even if the value does not look secret. */
  sensitive?: boolean;
  /**
   * Why there is nothing to back up when `read` returns undefined, for the absent record. `false`:
   * absence is the caller's error, not a state to keep — nothing is recorded, so a retry after the
   * fix reads the cluster again.
   */
  absent?: string | false;
}

/**
 * P2: backup-once. The stored copy wins (it is the pre-change state); otherwise `read` the cluster
 * and store what it returns. When `read` returns undefined (object or kind absent), an absent
 * record (docs/backups.md) is stored instead, so a later restore knows there was nothing to back
 * up rather than finding the backup missing; an existing absent record also wins. Unlike the
 * original, callers do their action whether or not the backup was just taken.
 */
export async function backupOnce<T>(
  ctx: JobContext,
  key: string,
  read: () => Promise<T | undefined>,
  options: BackupOnceOptions = {},
): Promise<T | undefined> {
  try {
    return await ctx.store.load<T>(key);
  } catch (err) {
    if (err instanceof BackupRecordedAbsent) return undefined;
    if (!(err instanceof BackupKeyNotFound)) throw err;
  }
  const value = await read();
  if (value === undefined) {
    if (options.absent !== false)
      await recordAbsent(ctx, key, options.absent ?? `nothing found to back up under '${key}'`);
    return undefined;
  }
  try {
    return (await ctx.store.saveOnce(key, value, options.sensitive ? { sensitive: true } : {})).value;
  } catch (err) {
    // Another run recorded the object absent in between: its earlier record wins.
    if (err instanceof BackupRecordedAbsent) return undefined;
    throw err;
  }
}

/**
 * Records that the backup under `key` found nothing (with why), unless something is stored there
 * already. For backups not taken through {@link backupOnce}.
 */
export async function recordAbsent(ctx: JobContext, key: string, reason: string): Promise<void> {
  if (await ctx.store.saveAbsentOnce(key, { reason, recordedBy: `${ctx.job} ${ctx.phase}` })) {
    ctx.logger.info(`nothing to back up under '${key}' (${reason}): recorded as absent`);
  }
}

/** What the store holds under a backup key: the backup, an absent record, or nothing. */
export async function backupStatus(ctx: JobContext, key: string): Promise<'taken' | 'absent' | 'missing'> {
  try {
    return (await ctx.store.stat(key)).contentType === ABSENT_CONTENT_TYPE ? 'absent' : 'taken';
  } catch (err) {
    if (err instanceof BackupKeyNotFound) return 'missing';
    throw err;
  }
}

/**
 * A backup a phase needs is not in the store, and no absent record says there was nothing to back
 * up: the phase that takes it did not run against this store. Retrying cannot help (non-retryable).
 */
export class MissingBackupError extends ValidationError {}

export interface LoadBackupOptions {
  /** The phase that takes this backup, for the error (default pre-upgrade). */
  takenIn?: Phase;
}

/**
 * Checks, without reading them, that every key holds a backup or an absent record: for phases that
 * read large backups (charts) only late, so a missing one still fails before anything changes.
 */
export async function requireBackups(
  ctx: JobContext,
  keys: readonly string[],
  options: LoadBackupOptions = {},
): Promise<void> {
  if (ctx.phase === 'rollback') return;
  for (const key of keys) {
    if ((await backupStatus(ctx, key)) === 'missing' && !(await missingFromGoImport(ctx, key)))
      throw missingBackup(ctx, key, options);
  }
}

/**
 * True (and a warning saying so) when the cluster's backups were imported from the Go tool's
 * store: the Go tool writes nothing where there was nothing to back up, so a key missing there is
 * taken as "nothing to back up" — the import cannot tell it from "never taken".
 */
async function missingFromGoImport(ctx: JobContext, key: string): Promise<boolean> {
  let record: GoImportRecord;
  try {
    record = await ctx.store.shared().load<GoImportRecord>(GO_IMPORT_KEY);
  } catch (err) {
    if (err instanceof BackupKeyNotFound) return false;
    throw err;
  }
  ctx.logger.warn(
    `backup '${key}' is not in this store, whose backups of cluster ${ctx.cluster.name} were imported from the Go ks-upgrade's store ` +
      `(${record.source}, ${record.importedAt}); the Go tool writes nothing where there was nothing to back up, so nothing is restored from it`,
  );
  return true;
}

function missingBackup(
  ctx: JobContext,
  key: string,
  options: LoadBackupOptions,
  cause?: unknown,
): MissingBackupError {
  const takenIn = options.takenIn ?? 'pre-upgrade';
  return new MissingBackupError(
    `backup '${key}' of job ${ctx.job} is missing in ${ctx.store.location}: ${ctx.job} ${ctx.phase} needs it, ` +
      `and no record says there was nothing to back up`,
    {
      ...(cause === undefined ? {} : { cause }),
      hint:
        `the ${ctx.job} ${takenIn} takes this backup: run it again on cluster ${ctx.cluster.name} with this store, ` +
        `or, if the Go ks-upgrade ran it, import the Go tool's store first (${GO_STORE_IMPORT_COMMAND}); then retry this step`,
    },
  );
}

/**
 * Loads a backup for a restore, telling apart the three cases the store can hold:
 * - the backup → its value;
 * - an absent record (there was nothing to back up) → undefined, and an info line saying so;
 * - nothing at all → a {@link MissingBackupError} naming the key, the job and the fix — except in
 *   rollback, which runs after failures by design: a backup never taken means the change it
 *   protects was never made either, so there is nothing to restore (logged, not an error).
 */
export async function loadBackup<T>(
  ctx: JobContext,
  key: string,
  options: LoadBackupOptions = {},
): Promise<T | undefined> {
  return loadBackupWith(ctx, key, options, () => ctx.store.load<T>(key));
}

/** {@link loadBackup} for bytes (`saveRaw` backups: charts, flags). */
export async function loadBackupRaw(
  ctx: JobContext,
  key: string,
  options: LoadBackupOptions = {},
): Promise<Uint8Array | undefined> {
  return loadBackupWith(ctx, key, options, () => ctx.store.loadRaw(key));
}

async function loadBackupWith<T>(
  ctx: JobContext,
  key: string,
  options: LoadBackupOptions,
  load: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await load();
  } catch (err) {
    if (err instanceof BackupRecordedAbsent) {
      ctx.logger.info(
        `nothing to restore from '${key}': ${err.record.reason} (recorded by ${err.record.recordedBy})`,
      );
      return undefined;
    }
    if (!(err instanceof BackupKeyNotFound)) throw err;
    if (ctx.phase === 'rollback') {
      ctx.logger.info(
        `nothing to restore from '${key}': no backup was taken (the ${ctx.job} step that takes it did not run against this store)`,
      );
      return undefined;
    }
    if (await missingFromGoImport(ctx, key)) return undefined;
    throw missingBackup(ctx, key, options, err);
  }
}

/** A boolean flag of a cc; missing → false (the original's PluginEnabled, tolerant of odd types). */
export function ccEnabled(cc: ClusterConfiguration, path: readonly string[]): boolean {
  const v = getPath(cc, path);
  return v === true || v === 'true';
}

/**
 * P3: the clusters on which a component is enabled, by each cluster's own cc (the host's locally,
 * members' through their kubeconfig). A single cluster without Cluster objects counts as `host`.
 */
export async function clustersWhere(
  ctx: JobContext,
  enabled: (cc: ClusterConfiguration) => boolean,
): Promise<{ clusters: string[]; ccs: Map<string, ClusterConfiguration> }> {
  const ccs = new Map<string, ClusterConfiguration>();
  const list = await listClusters(ctx.kube);
  if (list.length === 0) {
    const cc = await getClusterConfiguration(ctx.kube);
    ccs.set('host', cc);
    return { clusters: enabled(cc) ? ['host'] : [], ccs };
  }
  const clusters: string[] = [];
  for (const c of list) {
    const name = c.metadata.name ?? '';
    const cc = await clusterConfigurationOf(ctx.kube, c);
    ccs.set(name, cc);
    if (enabled(cc)) clusters.push(name);
    ctx.heartbeat({ step: 'read cluster configurations', message: name });
  }
  return { clusters, ccs };
}

/** True when the ref already says where to install (the user's configured placement wins). */
export function hasConfiguredPlacement(ref: ExtensionRef | undefined): boolean {
  const p = ref?.clusterScheduling?.placement;
  return (p?.clusters?.length ?? 0) > 0 || p?.clusterSelector !== undefined;
}

/**
 * §3.4 GenerateClusterScheduling / P3: when the ref has no placement, place the extension on the
 * clusters where `enabled(cc)` holds, with per-cluster values from `overrideFor(cc)`. Unlike the
 * original, a failure reading a cluster's configuration is an error, not silently skipped.
 */
export async function placementFromClusters(
  ctx: JobContext,
  ref: ExtensionRef,
  enabled: (cc: ClusterConfiguration) => boolean,
  overrideFor?: (cc: ClusterConfiguration, cluster: string) => Record<string, unknown> | undefined,
): Promise<ClusterScheduling | undefined> {
  if (hasConfiguredPlacement(ref)) return ref.clusterScheduling;
  const { clusters, ccs } = await clustersWhere(ctx, enabled);
  const overrides: Record<string, string> = { ...ref.clusterScheduling?.overrides };
  for (const name of clusters) {
    const values = overrideFor?.(ccs.get(name) as ClusterConfiguration, name);
    if (values && Object.keys(values).length > 0 && overrides[name] === undefined)
      overrides[name] = yaml.dump(values);
  }
  return {
    ...ref.clusterScheduling,
    placement: { clusters },
    ...(Object.keys(overrides).length > 0 ? { overrides } : {}),
  };
}

/** Whether this is where InstallPlans go (P4): the host, or a single cluster. */
export async function onHost(ctx: JobContext): Promise<boolean> {
  return isHostCluster(ctx.kube);
}

/** Names of the host-labelled Cluster objects (for jobs that treat the host specially). */
export async function hostClusterNames(ctx: JobContext): Promise<string[]> {
  return (await listClusters(ctx.kube)).filter(isHostClusterObject).map((c) => c.metadata.name ?? '');
}

/** The extension's values (`extensionRef.config`, YAML text) as an object. */
export function extensionValues(ref: ExtensionRef | undefined): Record<string, unknown> {
  if (!ref?.config) return {};
  const parsed = yaml.load(ref.config);
  if (parsed !== null && parsed !== undefined && !isRecord(parsed)) {
    throw new KsUpgradeError(`jobs.<job>.extensionRef.config of ${ref.name} is not a YAML mapping`);
  }
  return (parsed as Record<string, unknown> | undefined) ?? {};
}

/**
 * Sets `path` (dot-separated) in `values` only when absent: the user's config always wins over
 * values ks-upgrade derives from the cluster. Returns whether it set anything.
 */
export function setIfAbsent(values: Record<string, unknown>, path: string, value: unknown): boolean {
  const keys = path.split('.');
  let cur: Record<string, unknown> = values;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (next === undefined || next === null) cur[k] = {};
    else if (!isRecord(next)) return false;
    cur = cur[k] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1] ?? '';
  if (cur[last] !== undefined) return false;
  cur[last] = value;
  return true;
}

/** `values` as the YAML text an InstallPlan carries (undefined for no values). */
export function valuesText(values: Record<string, unknown>): string | undefined {
  return Object.keys(values).length === 0 ? undefined : yaml.dump(values, { lineWidth: -1 });
}
