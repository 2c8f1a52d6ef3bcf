// Running one built-in job's phase in-process, as the job tests do: a config holding only that job
// (validators off, gate none), a fresh registry, and a context on the test's own cluster and store.
import type { JobConfig, UpgradeConfig } from '../../src/config/types.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runPhase,
  type JobFactory,
  type JobProgress,
  type Phase,
} from '../../src/jobs/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { ResourceStore } from '../../src/store/index.js';

/** An upgrade config with only `jobs` (validators off, no gate). */
export function configWithJobs(jobs: Record<string, JobConfig>): UpgradeConfig {
  return {
    storage: { local: { path: '' } },
    validator: {
      ksVersion: { enabled: false },
      extensionsMuseum: { enabled: false, namespace: '', name: '', syncInterval: 0, watchTimeout: 0 },
    },
    jobs,
    upgrade: { gate: 'none' },
  };
}

export interface SingleJobRun {
  factory: JobFactory;
  config: JobConfig;
  kube: ResourceClient;
  store: ResourceStore;
  /** The cluster name the context carries. Default `host`. */
  cluster?: string;
  /** Where the job logs (default: a fresh memory logger). */
  logger?: ReturnType<typeof createMemoryLogger>;
  heartbeat?: (progress?: JobProgress) => void;
}

/** Runs `phase` of one job; its outcomes and the log lines (`level: message`) it wrote. */
export async function runSingleJob(
  phase: Phase,
  run: SingleJobRun,
): Promise<{ outcomes: string[]; logs: string[] }> {
  const registry = new JobRegistry();
  registry.register(run.factory);
  const logger = run.logger ?? createMemoryLogger();
  const results = await runPhase(
    phase,
    instantiateJobs(configWithJobs({ [run.factory.name]: run.config }), registry),
    (j, p) =>
      createJobContext({
        job: j.name,
        phase: p,
        cluster: { name: run.cluster ?? 'host' },
        kube: run.kube,
        store: run.store,
        config: j.config,
        logger,
        ...(run.heartbeat ? { heartbeat: run.heartbeat } : {}),
      }),
  );
  return {
    outcomes: results.map((r) => r.outcome),
    logs: logger.entries.map((e) => `${e.level}: ${e.message}`),
  };
}
