// pre-upgrade steps 1 and 2 (reference §4.2): snapshot every IAM kind, then migrate each to its v4
// form, kind by kind in the original's order.
import type { CustomResourceDefinition } from '../../api/core.js';
import { KsUpgradeError } from '../../errors.js';
import type { ResourceClient } from '../../kube/client.js';
import { crdVersions, getCrd, setStoredVersions } from '../../kube/crd.js';
import { AlreadyExistsError, NoKindError } from '../../kube/errors.js';
import { apiVersionOf, resourceName, type KubeObject, type ResourceType } from '../../kube/types.js';
import { forEachLimit } from '../../util/concurrency.js';
import type { JobContext } from '../types.js';
import { KEYS } from './constants.js';
import { overlay, type ConvertOptions, type Obj } from './convert.js';
import type { IamOptions } from './options.js';
import { IAM_RESOURCES, type IamResource } from './resources.js';
import {
  appendSnapshotOnce,
  attemptStart,
  loadSnapshots,
  newestItems,
  type SnapshotList,
} from './snapshot.js';
import {
  ErrorList,
  backupUnion,
  describeObject,
  isNamespaceGone,
  loadUnion,
  objectId,
  progress,
  rewrite,
} from './util.js';

/** The v4 CRDs are not there (or do not serve v1beta1): pre-upgrade cannot write v4 objects. */
export class V4CrdsMissingError extends KsUpgradeError {}

const V4_CRDS_HINT =
  'apply the KubeSphere v4 CRDs before pre-upgrade (`helm show crds <ks-core chart> | kubectl apply -f -`, ' +
  'as upgrade.sh does between prepare-upgrade and helm upgrade), then run pre-upgrade again';

/** Every object of a type with the list's resourceVersion, page by page; unserved → empty. */
export async function listWithVersion<T extends KubeObject>(
  kube: ResourceClient,
  rt: ResourceType<T>,
): Promise<{ items: T[]; resourceVersion: string | undefined }> {
  const items: T[] = [];
  let resourceVersion: string | undefined;
  let continueToken: string | undefined;
  try {
    do {
      const page = await kube.listPage(rt, { continueToken, pageSize: 500 });
      resourceVersion ??= page.metadata.resourceVersion;
      items.push(...page.items);
      continueToken = page.metadata.continue || undefined;
    } while (continueToken);
  } catch (err) {
    // The original failed on a kind whose CRD is missing; an absent kind simply has nothing to keep.
    if (err instanceof NoKindError) return { items: [], resourceVersion: undefined };
    throw err;
  }
  return { items, resourceVersion };
}

/**
 * Step 1: one snapshot per resource key and attempt, appended to the original's timestamped
 * history. A retry keeps the snapshots its attempt already took (the pre-change state).
 */
export async function takeSnapshots(ctx: JobContext, options: ConvertOptions): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const tick = progress(ctx, 'snapshot', IAM_RESOURCES.length);
  const since = await attemptStart(ctx.store);
  for (const r of IAM_RESOURCES) {
    if ((await loadSnapshots(ctx.store, r.key)).some((e) => e.timestamp >= since)) {
      tick();
      continue;
    }
    const { items, resourceVersion } = await listWithVersion(ctx.kube, r.source);
    const kept = r.filter ? items.filter((o) => r.filter?.(o, options)) : items;
    const list: SnapshotList = {
      apiVersion: apiVersionOf(r.source),
      kind: r.listKind,
      metadata: resourceVersion ? { resourceVersion } : {},
      items: kept,
    };
    await appendSnapshotOnce(ctx.store, r.key, list, since);
    counts.set(r.key, kept.length);
    tick();
  }
  ctx.logger.info('snapshot taken', Object.fromEntries(counts));
  return counts;
}

/** Is `version` served by the CRD? */
function serves(crd: CustomResourceDefinition, version: string): boolean {
  return crd.spec.versions.some((v) => v.name === version && v.served);
}

/**
 * Checks, before anything is written, that every v4 type the migration writes is served: the
 * original found out half-way, with a "no matches for kind" error.
 */
export async function checkV4Crds(ctx: JobContext): Promise<void> {
  const problems: string[] = [];
  for (const r of IAM_RESOURCES) {
    if (!r.target) continue;
    const name = r.crd ?? resourceName(r.target);
    const crd = await getCrd(ctx.kube, name);
    if (!crd) {
      // A v3 kind whose CRD is absent has nothing to migrate; a missing v4-only CRD is fatal.
      if (r.mode === 'create') problems.push(`CRD ${name} is not installed`);
      continue;
    }
    if (!serves(crd, r.target.version)) problems.push(`CRD ${name} does not serve ${r.target.version}`);
  }
  if (problems.length > 0) {
    throw new V4CrdsMissingError(`the KubeSphere v4 IAM CRDs are not installed: ${problems.join('; ')}`, {
      hint: V4_CRDS_HINT,
    });
  }
}

/** Totals of one resource's migration, for logs and tests. */
export interface MigrationStats {
  converted: number;
  restored: number;
  created: number;
  skipped: number;
}

/** Step 2: every resource in order. */
export async function migrateAll(ctx: JobContext, options: IamOptions): Promise<Map<string, MigrationStats>> {
  const all = new Map<string, MigrationStats>();
  for (const r of IAM_RESOURCES) all.set(r.key, await migrateResource(ctx, r, options));
  return all;
}

/** Stamps apiVersion/kind on snapshot items (the Go tool's RBAC lists carry none). */
function withTypeMeta(items: KubeObject[], rt: ResourceType): Obj[] {
  return items.map((i) => ({ ...i, apiVersion: i.apiVersion ?? apiVersionOf(rt), kind: i.kind ?? rt.kind }));
}

/** Migrates one resource key (see {@link IamResource.mode}). */
export async function migrateResource(
  ctx: JobContext,
  r: IamResource,
  options: IamOptions,
): Promise<MigrationStats> {
  const stats: MigrationStats = { converted: 0, restored: 0, created: 0, skipped: 0 };
  if (r.mode === 'none' || !r.target) return stats;
  const snapshot = withTypeMeta((await newestItems(ctx.store, r.key)) ?? [], r.source);
  if (r.mode === 'create') {
    await createTargets(ctx, r, r.target, snapshot, options, stats);
    ctx.logger.info(`migrated ${r.key}`, { ...stats });
    return stats;
  }
  const crd = r.crd ? await getCrd(ctx.kube, r.crd) : undefined;
  if (!crd) {
    ctx.logger.info(`${r.key}: CRD not installed, nothing to migrate`);
    return stats;
  }
  await rewriteInPlace(ctx, r, r.target, snapshot, options, stats);
  await markStored(ctx, crd);
  ctx.logger.info(`migrated ${r.key} to ${r.target.version}`, { ...stats });
  return stats;
}

/**
 * In-place kinds: every live object is written back through the new version — converted when it
 * is in the snapshot (the original's set), unchanged otherwise (only re-stored, so that
 * storedVersions can drop the old version truthfully). The conversion is applied to the object
 * as it is NOW, so a change made since the snapshot is kept, and the write never carries the
 * snapshot's resourceVersion (the original's 409). An object deleted since the snapshot is
 * re-created from it, as the original did.
 */
async function rewriteInPlace(
  ctx: JobContext,
  r: IamResource,
  target: ResourceType,
  snapshot: Obj[],
  options: IamOptions,
  stats: MigrationStats,
): Promise<void> {
  const byName = new Map(snapshot.map((o) => [o.metadata.name ?? '', o]));
  const seen = new Set<string>();
  const tick = progress(ctx, `migrate ${r.key}`, snapshot.length);
  const convert = r.convert;
  const errors = new ErrorList();
  await forEachLimit(ctx.kube.list(target, { pageSize: 500 }), options.concurrency, async (live) => {
    const name = live.metadata.name ?? '';
    seen.add(name);
    const inSnapshot = convert !== undefined && byName.has(name);
    try {
      const written = await rewrite(ctx.kube, target, live, (cur) =>
        convert && inSnapshot ? overlay(cur, convert(cur as Obj, options)) : cur,
      );
      if (inSnapshot && written) stats.converted++;
      else if (written) stats.restored++;
    } catch (err) {
      // Every object is tried; the failures are reported together (the original stopped at the first).
      errors.add(describeObject(live), err);
    }
    if (inSnapshot) tick();
  });
  errors.throwIfAny(
    `migrating ${r.key}`,
    'fix the cause (admission webhooks, permissions) and run pre-upgrade again; migrated objects are kept',
  );
  const gone = convert ? await goneSinceSnapshot(ctx, snapshot, seen) : [];
  if (gone.length > 0 && convert) {
    await forEachLimit(gone, options.concurrency, async (old) => {
      ctx.logger.warn(
        `${describeObject(old)} was deleted after the snapshot; re-creating it (as the original)`,
      );
      const created = await ctx.kube.createIfAbsent(target, stripForCreate(convert(old, options)));
      if (created.created) stats.created++;
      tick();
    });
  }
}

/**
 * Snapshot items no longer listed, except the role templates this job deleted itself (step 3) in an
 * earlier attempt: a retry must not bring those back only for step 3 to delete them again.
 */
async function goneSinceSnapshot(ctx: JobContext, snapshot: Obj[], listed: Set<string>): Promise<Obj[]> {
  const gone = snapshot.filter((o) => !listed.has(o.metadata.name ?? ''));
  if (gone.length === 0) return gone;
  const id = (o: KubeObject): string => `${o.kind ?? ''} ${objectId(o)}`;
  const ours = new Set((await loadUnion<KubeObject>(ctx.store, KEYS.roleTemplates)).map(id));
  return gone.filter((o) => !ours.has(id(o)));
}

/** Create-mode kinds: each snapshot item's conversion is created unless it exists (original). */
async function createTargets(
  ctx: JobContext,
  r: IamResource,
  target: ResourceType,
  snapshot: Obj[],
  options: IamOptions,
  stats: MigrationStats,
): Promise<void> {
  const convert = r.convert;
  if (!convert || snapshot.length === 0) return;
  const tick = progress(ctx, `migrate ${r.key}`, snapshot.length);
  const errors = new ErrorList();
  await forEachLimit(snapshot, options.concurrency, async (old) => {
    try {
      await ctx.kube.create(target, stripForCreate(convert(old, options)));
      stats.created++;
    } catch (err) {
      if (err instanceof AlreadyExistsError) stats.skipped++;
      else if (isNamespaceGone(err)) {
        stats.skipped++;
        ctx.logger.warn(`${describeObject(old)}: its namespace is gone or terminating; not migrated`);
      } else if (err instanceof NoKindError) {
        throw new V4CrdsMissingError(`${resourceName(target)}/${target.version} is not served`, {
          cause: err,
          hint: V4_CRDS_HINT,
        });
      } else errors.add(objectId(old), err);
    }
    tick();
  });
  errors.throwIfAny(
    `migrating ${r.key}`,
    'fix the cause and run pre-upgrade again; created objects are kept',
  );
}

function stripForCreate(obj: Obj): Obj {
  const {
    resourceVersion: _rv,
    uid: _uid,
    creationTimestamp: _ct,
    managedFields: _mf,
    ...metadata
  } = obj.metadata;
  return { ...obj, metadata };
}

/**
 * storedVersions = [storage version], after every object was re-stored in it. The original set it
 * first (before rewriting anything) and for Group/GroupBinding without rewriting at all, so a
 * crash — or those kinds — left objects in a version the CRD no longer admitted having.
 */
async function markStored(ctx: JobContext, crd: CustomResourceDefinition): Promise<void> {
  const name = crd.metadata.name ?? '';
  const { storage } = crdVersions(crd);
  const before = crd.status?.storedVersions ?? [];
  if (!storage || (before.length === 1 && before[0] === storage)) return;
  await backupUnion(ctx.store, KEYS.storedVersions, [{ crd: name, storedVersions: before }], (b) => b.crd);
  await setStoredVersions(ctx.kube, name, [storage]);
  ctx.logger.info(`CRD ${name}: storedVersions [${before.join(', ')}] → [${storage}]`);
}

/** The storedVersions backup entry. */
export interface StoredVersionsBackup {
  crd: string;
  storedVersions: string[];
}
