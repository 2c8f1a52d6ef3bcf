import type { JobConfig, UpgradeConfig } from '../config/types.js';
import { KsUpgradeError, describeError } from '../errors.js';
import { keepAlive } from '../util/keep-alive.js';
import { defaultRegistry, type JobRegistry } from './registry.js';
import {
  implementsPhase,
  type JobContext,
  type JobProgress,
  type Logger,
  type Phase,
  type UpgradeJob,
} from './types.js';

/**
 * Execution order within a phase: priority descending, ties by name ascending in byte order —
 * exactly the original's rule (so `whizard-events` < `whizard-logging` regardless of locale).
 */
export function orderJobs<T extends { name: string; priority: number }>(jobs: readonly T[]): T[] {
  return [...jobs].sort((a, b) =>
    a.priority !== b.priority ? b.priority - a.priority : a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
}

/** One registered or configured job and whether it will run. */
export interface PlannedJob {
  name: string;
  priority: number;
  enabled: boolean;
  /** Why it is (not) enabled, for `ks-upgrade plan`. */
  reason: string;
}

/**
 * Every registered job with its config-derived state, in execution order (disabled ones included,
 * so a dry run can say why a job will not run). Config entries for unregistered jobs are rejected
 * by the config loader before this point.
 */
export function planJobs(config: UpgradeConfig, registry: JobRegistry = defaultRegistry): PlannedJob[] {
  const planned = registry.names().map((name): PlannedJob => {
    const jc = config.jobs[name];
    if (!jc) return { name, priority: 0, enabled: false, reason: `not configured (no jobs.${name} entry)` };
    return jc.enabled
      ? { name, priority: jc.priority, enabled: true, reason: `enabled, priority ${jc.priority}` }
      : {
          name,
          priority: jc.priority,
          enabled: false,
          reason: `disabled in config (jobs.${name}.enabled: false)`,
        };
  });
  return orderJobs(planned);
}

/** A job built from its factory, ready to run. */
export interface InstantiatedJob {
  name: string;
  priority: number;
  config: JobConfig;
  job: UpgradeJob;
}

/** Builds the enabled jobs in execution order (the original's executor construction). */
export function instantiateJobs(
  config: UpgradeConfig,
  registry: JobRegistry = defaultRegistry,
): InstantiatedJob[] {
  const result: InstantiatedJob[] = [];
  for (const p of planJobs(config, registry)) {
    if (!p.enabled) continue;
    const factory = registry.get(p.name);
    const jc = config.jobs[p.name];
    if (!factory || !jc) continue;
    try {
      // Each job gets a private copy: jobs may adjust their extensionRef before creating an InstallPlan.
      const job = factory.create(structuredClone(jc.dynamicOptions), structuredClone(jc.extensionRef));
      result.push({ name: p.name, priority: p.priority, config: jc, job });
    } catch (err) {
      throw new KsUpgradeError(`failed to create upgrade job ${p.name}: ${describeError(err)}`, {
        cause: err,
      });
    }
  }
  return result;
}

/** A job's phase failed. Carries the job and phase for the operator's decision. */
export class JobPhaseError extends KsUpgradeError {
  constructor(
    readonly job: string,
    readonly phase: Phase,
    cause: unknown,
  ) {
    super(`[Job] ${job} ${phase} failed: ${describeError(cause)}`, {
      cause,
      hint:
        `fix the cause and run the phase again (every step is safe to repeat), or skip the job: ` +
        `'ks-upgrade resolve <cluster> skip' in a workflow run, or jobs.${job}.enabled: false for a single phase`,
    });
  }
}

export type JobOutcome = 'succeeded' | 'skipped' | 'not-implemented';

export interface JobPhaseResult {
  name: string;
  outcome: JobOutcome;
  reason?: string;
  durationMs: number;
}

/** Whether the original checks `isEnabled` in this phase (prepare/pre/post only). */
export function phaseChecksEnabled(phase: Phase): boolean {
  return phase === 'prepare-upgrade' || phase === 'pre-upgrade' || phase === 'post-upgrade';
}

export interface RunJobPhaseOptions {
  /**
   * While the phase runs, heartbeat this often on the job's behalf, repeating the latest progress
   * it reported (none until it reports any). The activity passes a third of its heartbeat timeout:
   * a job busy with one long call (a big list, a slow API server) must not look dead to Temporal,
   * which would start a second attempt beside the first. Unset: only the job's own heartbeats.
   */
  keepAliveMs?: number;
}

/**
 * Keeps the phase's heartbeats going without the job's help: `ctx` with a heartbeat that records
 * the latest progress, repeated every `intervalMs` (src/util/keep-alive.ts) until `stop`.
 */
function keepPhaseAlive(ctx: JobContext, intervalMs: number): { ctx: JobContext; stop(): void } {
  const alive = keepAlive<JobProgress>((progress) => {
    ctx.heartbeat(progress);
  }, intervalMs);
  return { ctx: { ...ctx, heartbeat: alive.heartbeat }, stop: alive.stop };
}

/**
 * Runs one job's phase: the enabled check where the original makes it, then the phase method.
 * Shared by {@link runPhase} and the `runJobPhase` activity, so both behave the same.
 */
export async function runJobPhase(
  job: UpgradeJob,
  jobCtx: JobContext,
  options: RunJobPhaseOptions = {},
): Promise<JobPhaseResult> {
  const alive = options.keepAliveMs ? keepPhaseAlive(jobCtx, options.keepAliveMs) : undefined;
  try {
    return await runJobPhaseWith(job, alive?.ctx ?? jobCtx);
  } finally {
    alive?.stop();
  }
}

async function runJobPhaseWith(job: UpgradeJob, ctx: JobContext): Promise<JobPhaseResult> {
  const started = Date.now();
  const done = (outcome: JobOutcome, reason?: string): JobPhaseResult => ({
    name: ctx.job,
    outcome,
    ...(reason === undefined ? {} : { reason }),
    durationMs: Date.now() - started,
  });
  try {
    if (!implementsPhase(job, ctx.phase))
      return done('not-implemented', `${ctx.job} has no ${ctx.phase} step`);
    if (phaseChecksEnabled(ctx.phase) && job.isEnabled && !(await job.isEnabled(ctx))) {
      ctx.logger.info(
        `[Job] ${ctx.job} ${ctx.phase} skipping: the job reports it is not enabled on this cluster`,
      );
      return done('skipped', 'not enabled on this cluster');
    }
    ctx.logger.info(`[Job] ${ctx.job} ${ctx.phase} start`);
    await callPhase(job, ctx);
    ctx.logger.info(`[Job] ${ctx.job} ${ctx.phase} finished`, { durationMs: Date.now() - started });
    return done('succeeded');
  } catch (err) {
    if (err instanceof JobPhaseError) throw err;
    throw new JobPhaseError(ctx.job, ctx.phase, err);
  }
}

/**
 * Runs one phase for all jobs in process, in order (rollback: reverse order, undoing the latest
 * change first). Stops at the first failure with a {@link JobPhaseError}. Used by tests and the
 * single-phase CLI commands; the workflow runs the same {@link runJobPhase} per activity.
 */
export async function runPhase(
  phase: Phase,
  jobs: readonly InstantiatedJob[],
  contextFor: (job: InstantiatedJob, phase: Phase) => JobContext,
  logger?: Logger,
): Promise<JobPhaseResult[]> {
  const ordered = phase === 'rollback' ? [...jobs].reverse() : jobs;
  const results: JobPhaseResult[] = [];
  for (const j of ordered) {
    const result = await runJobPhase(j.job, contextFor(j, phase));
    results.push(result);
    logger?.debug(`[Job] ${j.name} ${phase}: ${result.outcome}`);
  }
  return results;
}

/** Calls the job's method for `ctx.phase` (bound to the job: jobs are often classes). */
async function callPhase(job: UpgradeJob, ctx: JobContext): Promise<void> {
  switch (ctx.phase) {
    case 'prepare-upgrade':
      return job.prepareUpgrade?.(ctx);
    case 'pre-upgrade':
      return job.preUpgrade(ctx);
    case 'post-upgrade':
      return job.postUpgrade(ctx);
    case 'dynamic-upgrade':
      return job.dynamicUpgrade?.(ctx);
    case 'rollback':
      return job.rollback?.(ctx);
  }
}
