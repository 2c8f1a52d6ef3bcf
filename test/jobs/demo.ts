// Demo jobs for the orchestration tests: real effects on a real cluster (ConfigMaps in one
// namespace) and real backups, plus fault injection driven by the cluster or the config
// (`dynamicOptions.slow` makes one step slow, to interrupt it from outside):
//   - a step fails while ConfigMap `fail-<job>-<phase>` exists (the operator "fixes" it by deleting it);
//   - `dynamicOptions.crashAt: "<phase>:<point>"` SIGKILLs the worker process once at that point
//     (a marker file next to `dynamicOptions.log` makes it happen only once);
//   - every step appends `<job> <phase> start|end` to `dynamicOptions.log` (what ran, how often).
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { ConfigMapResource, type ConfigMap } from '../../src/api/core.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import type { JobContext, JobFactory, Phase, UpgradeJob } from '../../src/jobs/types.js';

interface DemoOptions {
  namespace: string;
  log?: string;
  crashAt?: string;
  /** `"<phase>:<ms>"`: that step takes this long (heartbeating), to be interrupted from outside. */
  slow?: string;
}

function strip(cm: ConfigMap): ConfigMap {
  return {
    metadata: { name: cm.metadata.name ?? '', namespace: cm.metadata.namespace ?? '' },
    data: cm.data ?? {},
  };
}

class DemoJob implements UpgradeJob {
  constructor(
    private readonly name: string,
    private readonly o: DemoOptions,
  ) {}

  private async step(ctx: JobContext, body: () => Promise<void>): Promise<void> {
    this.log(`${this.name} ${ctx.phase} start`);
    if (await ctx.kube.tryGet(ConfigMapResource, `fail-${this.name}-${ctx.phase}`, this.o.namespace)) {
      throw new Error(`injected failure: ConfigMap fail-${this.name}-${ctx.phase} exists`);
    }
    const [slowPhase, slowMs] = (this.o.slow ?? '').split(':');
    if (slowPhase === ctx.phase) {
      for (const until = Date.now() + Number(slowMs); Date.now() < until;) {
        // A well-behaved long step: heartbeat, and stop at a safe point when cancelled.
        if (ctx.signal.aborted) {
          this.log(`${this.name} ${ctx.phase} cancelled`);
          throw new Error(`${this.name} ${ctx.phase} cancelled`);
        }
        ctx.heartbeat({ step: 'slow' });
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await body();
    this.log(`${this.name} ${ctx.phase} end`);
  }

  private log(line: string): void {
    if (this.o.log) appendFileSync(this.o.log, `${line}\n`);
  }

  /** Kills this process (the worker) the first time the named point is reached. */
  private crashPoint(phase: Phase, point: string): void {
    if (this.o.crashAt !== `${phase}:${point}` || !this.o.log) return;
    const marker = `${this.o.log}.crashed-${this.name}-${phase}-${point}`;
    if (existsSync(marker)) return;
    writeFileSync(marker, 'crashed\n');
    this.log(`${this.name} ${phase} crash ${point}`);
    process.kill(process.pid, 'SIGKILL');
  }

  prepareUpgrade(ctx: JobContext): Promise<void> {
    return this.step(ctx, async () => {
      await ctx.kube.createIfAbsent(ConfigMapResource, {
        metadata: { name: `${this.name}-prepared`, namespace: this.o.namespace },
      });
    });
  }

  preUpgrade(ctx: JobContext): Promise<void> {
    return this.step(ctx, async () => {
      const v3 = await ctx.kube.tryGet(ConfigMapResource, `${this.name}-v3`, this.o.namespace);
      const { value: backup } = await ctx.store.saveOnce('v3', v3 ? strip(v3) : null);
      this.crashPoint('pre-upgrade', 'after-backup');
      if (backup) await ctx.kube.delete(ConfigMapResource, `${this.name}-v3`, this.o.namespace);
    });
  }

  postUpgrade(ctx: JobContext): Promise<void> {
    return this.step(ctx, async () => {
      const backup = await ctx.store.load<ConfigMap | null>('v3');
      this.crashPoint('post-upgrade', 'before-create');
      await ctx.kube.createIfAbsent(ConfigMapResource, {
        metadata: { name: `${this.name}-v4`, namespace: this.o.namespace },
        data: { ...(backup?.data ?? {}), migrated: 'true' },
      });
    });
  }

  dynamicUpgrade(ctx: JobContext): Promise<void> {
    return this.step(ctx, async () => {
      await ctx.kube.mutate(ConfigMapResource, `${this.name}-v4`, this.o.namespace, (cm) => {
        cm.data = { ...cm.data, dynamic: 'done' };
      });
    });
  }

  rollback(ctx: JobContext): Promise<void> {
    return this.step(ctx, async () => {
      const backup = await ctx.store.load<ConfigMap | null>('v3').catch(() => null);
      if (backup) await ctx.kube.createIfAbsent(ConfigMapResource, backup);
      await ctx.kube.delete(ConfigMapResource, `${this.name}-v4`, this.o.namespace);
      await ctx.kube.delete(ConfigMapResource, `${this.name}-prepared`, this.o.namespace);
    });
  }
}

export function demoJobFactory(name: string): JobFactory {
  return {
    name,
    description: `demo job ${name}`,
    // What the demo jobs touch: ConfigMaps of the namespace they are configured with.
    access: (options) => [
      {
        group: '',
        resources: ['configmaps'],
        verbs: ['get', 'list', 'create', 'update', 'delete'],
        namespaces: [String(options.namespace)],
        why: 'the demo v3 and v4 ConfigMaps',
      },
    ],
    create: (options) => new DemoJob(name, options as unknown as DemoOptions),
  };
}

export const DEMO_JOBS = ['alpha', 'beta', 'gamma'] as const;

/** A registry with the demo jobs (and nothing else). */
export function demoRegistry(): JobRegistry {
  const r = new JobRegistry();
  for (const name of DEMO_JOBS) r.register(demoJobFactory(name));
  return r;
}
