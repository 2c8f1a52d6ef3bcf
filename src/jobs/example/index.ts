// A complete, runnable example job — the Quick Start of docs/writing-a-job.md. It is registered
// only by its test (`registry.register(exampleJobFactory)`), never in the built-in job set.
//
// What it does: ConfigMaps labelled `example.kubesphere.io/migrate=true` in one namespace are "v3
// state". pre-upgrade backs them up and removes them; post-upgrade re-creates them in their "v4"
// form (label `example.kubesphere.io/version: v4`); rollback restores the v3 originals.
import { ConfigMapResource, type ConfigMap } from '../../api/core.js';
import { ccFlag, getClusterConfiguration } from '../../kubesphere/index.js';
import { backupOnce, loadBackup } from '../patterns.js';
import type { JobContext, JobFactory, PlannedAction, UpgradeJob } from '../types.js';

const SELECTOR = 'example.kubesphere.io/migrate=true';
const BACKUP_KEY = 'configmaps';

/** Options from `jobs.example.dynamicOptions`. */
interface ExampleOptions {
  namespace: string;
}

class ExampleJob implements UpgradeJob {
  constructor(private readonly options: ExampleOptions) {}

  /** Runs only where the v3 installer enabled the (imaginary) example component. */
  async isEnabled(ctx: JobContext): Promise<boolean> {
    return ccFlag(await getClusterConfiguration(ctx.v3), ['spec', 'example', 'enabled']);
  }

  async plan(ctx: JobContext): Promise<PlannedAction[]> {
    const found = await this.listV3(ctx);
    return [
      ...found.map((cm) => ({
        phase: 'pre-upgrade' as const,
        action: 'back up and delete',
        target: `ConfigMap ${this.options.namespace}/${cm.metadata.name ?? ''}`,
      })),
      { phase: 'post-upgrade', action: `re-create ${found.length} ConfigMaps as v4` },
    ];
  }

  async preUpgrade(ctx: JobContext): Promise<void> {
    // 1. Back up once. On a retry after a crash, backupOnce returns the first backup (the state
    //    before any change) instead of overwriting it with what is left now.
    const backup = (await backupOnce(ctx, BACKUP_KEY, () => this.listV3(ctx))) ?? [];
    // 2. Act — always, not only when the backup was just written: a crash between steps 1 and 2
    //    must still lead to the deletion on retry. Delete is idempotent.
    for (const cm of backup) {
      await ctx.v3.delete(ConfigMapResource, cm.metadata.name ?? '', this.options.namespace);
      ctx.heartbeat({ step: 'delete', message: cm.metadata.name ?? '' });
    }
    ctx.logger.info(`backed up and removed ${backup.length} ConfigMaps`);
  }

  async postUpgrade(ctx: JobContext): Promise<void> {
    // A backup pre-upgrade never took is an error naming the key and the fix, not "nothing to do".
    const backup = (await loadBackup<ConfigMap[]>(ctx, BACKUP_KEY)) ?? [];
    for (const old of backup) {
      // Create-if-absent: a re-run finds the objects already there and moves on.
      await ctx.v4.createIfAbsent(ConfigMapResource, toV4(old));
    }
    ctx.logger.info(`re-created ${backup.length} ConfigMaps`);
  }

  async rollback(ctx: JobContext): Promise<void> {
    // In rollback a backup never taken means the change never happened: logged, nothing to undo.
    const backup = (await loadBackup<ConfigMap[]>(ctx, BACKUP_KEY)) ?? [];
    for (const old of backup) {
      const name = old.metadata.name ?? '';
      // Undo post-upgrade first (a v4 copy may exist), then restore the v3 original.
      const current = await ctx.v3.tryGet(ConfigMapResource, name, this.options.namespace);
      if (current?.metadata.labels?.['example.kubesphere.io/version'] === 'v4') {
        await ctx.v3.delete(ConfigMapResource, name, this.options.namespace);
      }
      await ctx.v3.createIfAbsent(ConfigMapResource, stripServerFields(old));
    }
  }

  private listV3(ctx: JobContext): Promise<ConfigMap[]> {
    return ctx.v3.listAll(ConfigMapResource, { namespace: this.options.namespace, labelSelector: SELECTOR });
  }
}

function stripServerFields(cm: ConfigMap): ConfigMap {
  const {
    resourceVersion: _rv,
    uid: _uid,
    creationTimestamp: _ct,
    managedFields: _mf,
    ...metadata
  } = cm.metadata;
  return { ...cm, metadata };
}

function toV4(old: ConfigMap): ConfigMap {
  const cm = stripServerFields(old);
  return {
    ...cm,
    metadata: { ...cm.metadata, labels: { ...cm.metadata.labels, 'example.kubesphere.io/version': 'v4' } },
  };
}

/** The factory: parses and checks options once, when the job is built from the config. */
export const exampleJobFactory: JobFactory = {
  name: 'example',
  description: 'Example job from docs/writing-a-job.md (moves labelled ConfigMaps to their v4 form)',
  create(options) {
    const namespace = options.namespace ?? 'example-system';
    if (typeof namespace !== 'string') throw new Error('dynamicOptions.namespace must be a string');
    return new ExampleJob({ namespace });
  },
};
