// Rollback of the iam job: undoes post-, pre- and prepare-upgrade in reverse order from the
// backups each step took before acting. Every step is safe to run again. Afterwards the upgrade
// moves the attempt's backups and markers aside (src/store/attempts.ts, for every job alike), so a
// new attempt starts from a clean history. What cannot be undone is listed in docs/jobs/iam.md.
import { CustomResourceDefinitionResource } from '../../api/core.js';
import { getCrd, setStoredVersions } from '../../kube/crd.js';
import { isAbsent } from '../../kube/errors.js';
import { apiVersionOf, type KubeObject } from '../../kube/types.js';
import { forEachLimit } from '../../util/concurrency.js';
import type { JobContext } from '../types.js';
import { undoCleanup } from './cleanup.js';
import { KEYS } from './constants.js';
import { overlay, revertConversion, type Obj } from './convert.js';
import { undoIdentityProviders } from './identity-providers.js';
import type { StoredVersionsBackup } from './migrate.js';
import type { IamOptions } from './options.js';
import { undoPost } from './post.js';
import { undoPrepare } from './prepare.js';
import { IAM_RESOURCES } from './resources.js';
import { decodeSnapshot, loadSnapshots, oldestSnapshot } from './snapshot.js';
import { ErrorList, describeObject, loadUnion, progress, stripServerFields } from './util.js';

/**
 * Reverts the conversions of pre-upgrade step 2 from the OLDEST snapshot of this attempt (the
 * state before anything changed; later snapshots were taken after partial migrations):
 * - in-place kinds: the fields the conversion changed go back to their v3 values, fields it did
 *   not touch keep their current value; objects missing now are re-created as they were;
 * - created kinds (iam Role / RoleBinding / ClusterRoleBinding): deleted — v3 has no such objects.
 */
export async function revertMigration(ctx: JobContext, options: IamOptions): Promise<void> {
  const errors = new ErrorList();
  for (const r of [...IAM_RESOURCES].reverse()) {
    if (!r.target || !r.convert) continue;
    const entries = await loadSnapshots(ctx.store, r.key);
    const oldest = oldestSnapshot(entries);
    if (!oldest) continue;
    if (r.mode === 'create') {
      // Every name any snapshot of this attempt knew: a later snapshot may hold more.
      const names = new Map<string, KubeObject>();
      for (const e of entries) for (const o of decodeSnapshot(e).items) names.set(describeObject(o), o);
      const target = r.target;
      await forEachLimit([...names.values()], options.concurrency, async (o) => {
        try {
          await ctx.kube.delete(
            target,
            o.metadata.name ?? '',
            target.namespaced ? o.metadata.namespace : undefined,
          );
        } catch (err) {
          errors.add(`${target.kind} ${o.metadata.name ?? ''}`, err);
        }
      });
      ctx.logger.info(`rollback: removed the ${target.kind} objects migrated from ${r.key}`);
      continue;
    }
    if (r.crd && !(await getCrd(ctx.kube, r.crd))) continue;
    const convert = r.convert;
    const items = decodeSnapshot(oldest).items.map((i) => ({
      ...i,
      apiVersion: i.apiVersion ?? apiVersionOf(r.source),
      kind: i.kind ?? r.source.kind,
    }));
    const tick = progress(ctx, `rollback ${r.key}`, items.length);
    await forEachLimit(items, options.concurrency, async (before) => {
      const name = before.metadata.name ?? '';
      try {
        const after = overlay(before, convert(before, options)) as Obj;
        const current = await ctx.kube.tryGet(r.source, name);
        if (!current) await ctx.kube.createIfAbsent(r.source, stripServerFields(before));
        else await ctx.kube.mutate(r.source, name, undefined, (cur) => revertConversion(cur, before, after));
      } catch (err) {
        if (!isAbsent(err)) errors.add(describeObject(before), err);
      }
      tick();
    });
    ctx.logger.info(`rollback: ${items.length} ${r.key} object(s) reverted to their v3 form`);
  }
  errors.throwIfAny('reverting the IAM migration', 'fix the cause and run rollback again');
}

/**
 * storedVersions back to their pre-upgrade lists (plus whatever is listed now: a superset is
 * always safe, a missing version is not). Cosmetic once objects are re-stored, but exact.
 */
async function restoreStoredVersions(ctx: JobContext): Promise<void> {
  const backups = await loadUnion<StoredVersionsBackup>(ctx.store, KEYS.storedVersions);
  for (const b of backups) {
    const crd = await ctx.kube.tryGet(CustomResourceDefinitionResource, b.crd);
    if (!crd) continue;
    const now = crd.status?.storedVersions ?? [];
    const wanted = [...b.storedVersions, ...now.filter((v) => !b.storedVersions.includes(v))];
    if (wanted.length === now.length && wanted.every((v) => now.includes(v))) continue;
    await setStoredVersions(ctx.kube, b.crd, wanted);
    ctx.logger.info(`rollback: CRD ${b.crd} storedVersions → [${wanted.join(', ')}]`);
  }
}

/** The whole rollback, newest change first. */
export async function rollbackIam(ctx: JobContext, options: IamOptions): Promise<void> {
  await undoPost(ctx);
  await undoIdentityProviders(ctx);
  await undoCleanup(ctx);
  await revertMigration(ctx, options);
  await restoreStoredVersions(ctx);
  await undoPrepare(ctx);
}
