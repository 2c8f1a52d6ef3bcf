// One (job, phase) step of an upgrade: what the `runJobPhase` activity and the single-phase CLI
// commands run.
import { ValidationError } from '../errors.js';
import { createJobContext } from '../jobs/context.js';
import { defaultRegistry, type JobRegistry } from '../jobs/registry.js';
import { runJobPhase, type JobPhaseResult } from '../jobs/runner.js';
import type { JobProgress, Logger, Phase } from '../jobs/types.js';
import { waitOutOutage } from '../util/outage.js';
import { checkClusterBindingOnce } from './cluster-identity.js';
import type { UpgradeClusterInput } from './input.js';
import { loadUpgradeConfig } from './plan.js';
import { clusterConnection, sharedStore } from './runtime.js';

export interface StepEnvironment {
  registry?: JobRegistry;
  logger: Logger;
  heartbeat?: (progress?: JobProgress) => void;
  /**
   * The activity's heartbeat timeout: the phase then heartbeats on its own at a third of it (with
   * the job's latest progress), whether or not the job does.
   */
  heartbeatTimeoutMs?: number;
  signal?: AbortSignal;
  /**
   * How long a step that failed because an API server did not answer waits for it to answer again
   * before it reports the failure (default 5 minutes; 0: not at all).
   */
  outageWaitMs?: number;
}

export interface StepResult extends JobPhaseResult {
  /** The config the step ran with (an operator may fix the config between attempts). */
  configSha256: string;
}

/**
 * Runs one job's phase with a freshly loaded config: an operator who fixes a config file and
 * retries gets the fix, without restarting the upgrade.
 */
export async function executeJobPhase(
  input: UpgradeClusterInput,
  jobName: string,
  phase: Phase,
  env: StepEnvironment,
): Promise<StepResult> {
  try {
    return await executeJobPhaseOnce(input, jobName, phase, env);
  } catch (err) {
    // A server (API server, S3) that did not answer: fail only once it answers again (bounded), so the retry
    // does not run into the same outage.
    if (env.outageWaitMs !== 0) {
      await waitOutOutage(
        err,
        {
          logger: env.logger,
          ...(env.heartbeat ? { heartbeat: env.heartbeat } : {}),
          ...(env.signal ? { signal: env.signal } : {}),
        },
        env.outageWaitMs,
      );
    }
    throw err;
  }
}

async function executeJobPhaseOnce(
  input: UpgradeClusterInput,
  jobName: string,
  phase: Phase,
  env: StepEnvironment,
): Promise<StepResult> {
  const registry = env.registry ?? defaultRegistry;
  const loaded = await loadUpgradeConfig(input, registry);
  const jobConfig = loaded.config.jobs[jobName];
  const factory = registry.get(jobName);
  if (!factory || !jobConfig) {
    throw new ValidationError(`job ${jobName} is not ${factory ? 'configured' : 'registered'}`, {
      hint: `add jobs.${jobName} to the config, or skip this step`,
    });
  }
  const job = factory.create(
    structuredClone(jobConfig.dynamicOptions),
    structuredClone(jobConfig.extensionRef),
  );
  const [conn, store] = await Promise.all([
    clusterConnection(input.kube),
    sharedStore(loaded.config.storage),
  ]);
  // The step writes under <cluster>/ in the store: refuse it when the name stands for another cluster.
  await checkClusterBindingOnce({ cluster: input.cluster, conn, store, bind: true });
  const ctx = createJobContext({
    job: jobName,
    phase,
    cluster: { name: input.cluster },
    kube: conn.client,
    store,
    config: jobConfig,
    logger: env.logger,
    ...(env.heartbeat ? { heartbeat: env.heartbeat } : {}),
    ...(env.signal ? { signal: env.signal } : {}),
  });
  const keepAliveMs =
    env.heartbeat && env.heartbeatTimeoutMs
      ? Math.max(100, Math.floor(env.heartbeatTimeoutMs / 3))
      : undefined;
  const result = await runJobPhase(job, ctx, keepAliveMs === undefined ? {} : { keepAliveMs });
  return { ...result, configSha256: loaded.sha256 };
}
