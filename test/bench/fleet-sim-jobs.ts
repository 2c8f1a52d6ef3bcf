// The fleet benchmark's simulation: upgrade jobs that do nothing (every phase returns at once), so
// the benchmark measures the orchestration — the fleet, its children, the gate — not the jobs.
import type { JobFactory, UpgradeJob } from '../../src/jobs/types.js';

export const SIM_JOBS = ['sim-noop-a', 'sim-noop-b'] as const;

const noop = (): Promise<void> => Promise.resolve();

function simJob(name: string): JobFactory {
  return {
    name,
    description: `simulation: a no-op job (${name}) for the fleet benchmark`,
    create: (): UpgradeJob => ({ prepareUpgrade: noop, preUpgrade: noop, postUpgrade: noop }),
  };
}

/** Plugin entry point (`--plugin test/bench/fleet-sim-jobs.ts`). */
export const jobs = SIM_JOBS.map(simJob);
