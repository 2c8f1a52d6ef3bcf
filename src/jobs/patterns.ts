// The patterns the original's extension jobs share (reference §4.0), one helper each, so no job
// repeats them: P1 the done marker with `rerun`, P2 backup-once, P3 placement from the
// ClusterConfiguration, §3.4 cluster scheduling, and extension values filled only where absent.
import * as yaml from 'js-yaml';
import type { ClusterConfiguration } from '../api/v3/index.js';
import type { ClusterScheduling, ExtensionRef } from '../config/types.js';
import { KsUpgradeError } from '../errors.js';
import { clusterConfigurationOf, isHostClusterObject, listClusters } from '../kubesphere/clusters.js';
import { getClusterConfiguration, isHostCluster } from '../kubesphere/index.js';
import { BackupKeyNotFound } from '../store/index.js';
import { getPath, isRecord } from '../util/object.js';
import type { JobContext } from './types.js';

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
 * P2: backup-once. The stored copy wins (it is the pre-change state); otherwise `read` the cluster
 * and store what it returns. `undefined` from `read` (object or kind absent) stores nothing.
 * Unlike the original, callers do their action whether or not the backup was just taken.
 */
export async function backupOnce<T>(
  ctx: JobContext,
  key: string,
  read: () => Promise<T | undefined>,
  options: { sensitive?: boolean } = {},
): Promise<T | undefined> {
  try {
    return await ctx.store.load<T>(key);
  } catch (err) {
    if (!(err instanceof BackupKeyNotFound)) throw err;
  }
  const value = await read();
  if (value === undefined) return undefined;
  return (await ctx.store.saveOnce(key, value, options)).value;
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
