// The preflight and the verification of one upgrade input: what the activities and the CLI run.
import type { JobRegistry } from '../jobs/registry.js';
import { runPreflight, type ConcurrentUpgrades, type PreflightReport } from '../preflight/index.js';
import { verifyCluster, type VerificationReport } from '../verify/index.js';
import type { UpgradeClusterInput } from './input.js';
import { loadUpgradeConfig } from './plan.js';
import { clusterConnection } from './runtime.js';

export interface CheckEnvironment {
  registry: JobRegistry;
  signal?: AbortSignal;
  heartbeat?: (step: string) => void;
}

/** The preflight of an upgrade input, with its config loaded fresh (an operator may have fixed it). */
export async function preflightUpgrade(
  input: UpgradeClusterInput,
  env: CheckEnvironment & { concurrent?: ConcurrentUpgrades },
): Promise<PreflightReport> {
  const loaded = await loadUpgradeConfig(input, env.registry);
  const { client } = await clusterConnection(input.kube);
  return runPreflight(
    {
      cluster: input.cluster,
      client: env.signal ? client.withSignal(env.signal) : client,
      config: loaded.config,
      registry: env.registry,
      ...(env.concurrent ? { concurrent: env.concurrent } : {}),
      ...(env.signal ? { signal: env.signal } : {}),
      ...(env.heartbeat ? { heartbeat: env.heartbeat } : {}),
    },
    (input.skipChecks ?? []).filter((s) => s.name !== 'verification'),
  );
}

/** The verification of an upgrade input's cluster. */
export async function verifyUpgrade(
  input: UpgradeClusterInput,
  env: CheckEnvironment & { targetVersion?: string; waitMs?: number },
): Promise<VerificationReport> {
  const loaded = await loadUpgradeConfig(input, env.registry);
  const { client } = await clusterConnection(input.kube);
  return verifyCluster(
    {
      cluster: input.cluster,
      client: env.signal ? client.withSignal(env.signal) : client,
      config: loaded.config,
      registry: env.registry,
      ...(env.targetVersion ? { targetVersion: env.targetVersion } : {}),
    },
    {
      ...(env.waitMs ? { waitMs: env.waitMs } : {}),
      ...(env.signal ? { signal: env.signal } : {}),
      onPoll: (r) =>
        env.heartbeat?.(
          `waiting: ${r.findings
            .filter((f) => !f.ok)
            .map((f) => f.check)
            .join(', ')}`,
        ),
    },
  );
}
