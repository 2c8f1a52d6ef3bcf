// The preflight and verification activities: adapters from Temporal to src/preflight and
// src/verify (via src/upgrade/verification.ts).
import { Context, activityInfo } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { JobRegistry } from '../src/jobs/registry.js';
import type { PreflightReport } from '../src/preflight/index.js';
import { runningUpgrades } from '../src/temporal/upgrades.js';
import type { UpgradeClusterInput } from '../src/upgrade/input.js';
import { preflightUpgrade, verifyUpgrade } from '../src/upgrade/verification.js';
import type { VerificationReport } from '../src/verify/index.js';
import { withKeepAlive } from './keep-alive.js';

/** Input of `preflightCluster`. */
export interface PreflightRequest {
  input: UpgradeClusterInput;
}

/** Input of `verifyCluster` (the workflow's last step, and the fleet's wave gate). */
export interface VerifyRequest {
  input: UpgradeClusterInput;
  /** The ks-core appVersion expected; default `checks.targetVersion`, else the deployed v4 release's. */
  targetVersion?: string;
  /** How long to wait for rollouts and installs still in progress before judging. Default 5 minutes. */
  waitMs?: number;
}

/** A Temporal client for the activities that look at other workflows (the concurrent-upgrade check). */
export interface TemporalLookup {
  client: Client;
  /** Where it points, for evidence: `Temporal <address>, namespace <ns>`. */
  source: string;
}

/** The check activities, bound to a job registry (and, when the worker has one, a Temporal client). */
export function createCheckActivities(
  deps: { registry: JobRegistry; temporal?: TemporalLookup },
  toFailure: (err: unknown) => Error,
) {
  return {
    /**
     * The preflight of the upgrade: read-only checks (docs/preflight.md). Returns the report — a
     * failing report is a result, not an error: the workflow decides (it waits for the operator).
     */
    async preflightCluster(req: PreflightRequest): Promise<PreflightReport> {
      const ctx = Context.current();
      try {
        const wf = activityInfo().workflowExecution;
        const self = wf ? { workflowId: wf.workflowId, runId: wf.runId } : undefined;
        const concurrent = deps.temporal
          ? await runningUpgrades(deps.temporal.client, req.input.cluster, deps.temporal.source, self)
          : undefined;
        return await withKeepAlive((alive) =>
          preflightUpgrade(req.input, {
            registry: deps.registry,
            ...(concurrent ? { concurrent } : {}),
            signal: ctx.cancellationSignal,
            heartbeat: (step) => {
              alive.heartbeat(step);
            },
          }),
        );
      } catch (err) {
        throw toFailure(err);
      }
    },

    /** Verifies the cluster's upgrade on its observed state (docs/verification.md). */
    async verifyCluster(req: VerifyRequest): Promise<VerificationReport> {
      const ctx = Context.current();
      try {
        return await withKeepAlive((alive) =>
          verifyUpgrade(req.input, {
            registry: deps.registry,
            signal: ctx.cancellationSignal,
            waitMs: req.waitMs ?? 5 * 60_000,
            heartbeat: (step) => {
              alive.heartbeat(step);
            },
            ...(req.targetVersion ? { targetVersion: req.targetVersion } : {}),
          }),
        );
      } catch (err) {
        throw toFailure(err);
      }
    },
  };
}
