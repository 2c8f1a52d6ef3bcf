// The `iam` job (priority 999 in the original's config): moves KubeSphere v3 users, roles, role
// bindings, login records, groups and workspaces to their v4 (iam.kubesphere.io/v1beta1,
// tenant.kubesphere.io/v1beta1) form, following reference §4.2 step by step, with the original's
// store formats so an upgrade the Go tool started can be finished here. docs/jobs/iam.md has the
// steps, store keys, options, fixed bugs, decisions and what rollback can and cannot undo.
import { PlaintextSecretError } from '../../store/index.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';
import { deleteLegacyRoles, deleteRoleTemplates, removeKubefedIam } from './cleanup.js';
import type { StatusPhase } from './constants.js';
import { migrateIdentityProviders } from './identity-providers.js';
import { checkV4Crds, migrateAll, takeSnapshots } from './migrate.js';
import { parseIamOptions, type IamOptions } from './options.js';
import { planIam } from './plan.js';
import { annotateUsers, deleteRoleBases, resetCustomRoles } from './post.js';
import { adoptHelmObjects, fixAdminBinding, rewriteReleaseRecord } from './prepare.js';
import { rollbackIam } from './rollback.js';
import { markPhaseDone, phaseDone } from './snapshot.js';

export { parseIamOptions, DEFAULT_IAM_OPTIONS, type IamOptions } from './options.js';
export { KEYS as IAM_STORE_KEYS, RESOURCE as IAM_RESOURCE_KEYS } from './constants.js';

/**
 * The plan refuses the job without `storage.encryption`; this covers every other way in (a
 * single-phase command, a test): fail before the first change, not at the first secret backup.
 */
function requireEncryption(ctx: JobContext): void {
  if (ctx.store.encryptionKeyId !== undefined) return;
  throw new PlaintextSecretError(
    `the iam job backs up password hashes and identity-provider credentials, and the backup store (${ctx.store.location}) has no encryption key`,
    {
      hint:
        'configure storage.encryption.keyFile (or keyEnv) with a 32-byte key, e.g. `head -c 32 /dev/urandom > backup.key`, ' +
        'and run the phase again; nothing was changed',
    },
  );
}

class IamJob implements UpgradeJob {
  constructor(private readonly options: IamOptions) {}

  /**
   * Runs `body` unless the original's status key says the phase succeeded, then records success.
   * A phase that fails half-way leaves no marker, so the next run does every step again — each
   * step is safe to repeat (backups only grow, writes start from the current object).
   */
  private async once(ctx: JobContext, phase: StatusPhase, body: () => Promise<void>): Promise<void> {
    requireEncryption(ctx);
    if (await phaseDone(ctx.store, phase)) {
      ctx.logger.info('iam has been upgraded successfully, skip job', { phase });
      return;
    }
    await body();
    await markPhaseDone(ctx.store, phase);
  }

  async prepareUpgrade(ctx: JobContext): Promise<void> {
    await this.once(ctx, 'prepare-upgrade', async () => {
      await adoptHelmObjects(ctx);
      await fixAdminBinding(ctx);
      await rewriteReleaseRecord(ctx);
    });
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    await this.once(ctx, 'pre-upgrade', async () => {
      // Checked first: the original discovered missing v4 CRDs only half-way through.
      await checkV4Crds(ctx);
      await takeSnapshots(ctx, this.options);
      ctx.logger.info('start to migrate data');
      await migrateAll(ctx, this.options);
      ctx.logger.info('start to remove deprecated roletemplates');
      await deleteRoleTemplates(ctx, this.options);
      ctx.logger.info('start to remove legacy roles');
      await deleteLegacyRoles(ctx, this.options);
      ctx.logger.info('start to remove federated iam resources');
      await removeKubefedIam(ctx, this.options);
      ctx.logger.info('start to upgrade identity providers');
      await migrateIdentityProviders(ctx);
    });
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    await this.once(ctx, 'post-upgrade', async () => {
      ctx.logger.info('start to default custom roles');
      await resetCustomRoles(ctx, this.options);
      ctx.logger.info("start to update user's globalrole annotation");
      await annotateUsers(ctx, this.options);
      ctx.logger.info('start to delete deprecated crds');
      await deleteRoleBases(ctx, this.options);
    });
  }

  async rollback(ctx: JobContext): Promise<void> {
    await rollbackIam(ctx, this.options);
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    return planIam(ctx, this.options);
  }
}

/**
 * The iam job. Requires `storage.encryption`: its snapshots hold users' password hashes, its
 * backups identity-provider credentials and the ks-core release record.
 */
export const iamJobFactory: JobFactory = {
  name: 'iam',
  description:
    'Users, roles, bindings, workspaces → KubeSphere v4 IAM (v1beta1); role templates, legacy roles, kubefed IAM federation and identity providers',
  requiresEncryption: true,
  create(options) {
    return new IamJob(parseIamOptions(options));
  },
};
