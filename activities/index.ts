// Temporal activities: thin adapters from Temporal to src/. Each builds what a step needs
// (clients, scoped store, logger, heartbeat, cancellation) and calls the library.
import { ApplicationFailure, Context, activityInfo } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { KsUpgradeError, NON_RETRYABLE_ERROR_NAMES, ValidationError } from '../src/errors.js';
import { defaultRegistry, type JobRegistry } from '../src/jobs/registry.js';
import { JobPhaseError } from '../src/jobs/runner.js';
import type { JobProgress, Logger, Phase } from '../src/jobs/types.js';
import {
  checkKsVersion,
  waitForCoreUpgrade,
  waitForMuseumSync,
  type CheckResult,
} from '../src/upgrade/checks.js';
import { abortedAttemptName } from '../src/store/index.js';
import type { UpgradeClusterInput } from '../src/upgrade/input.js';
import {
  buildUpgradePlan,
  loadUpgradeConfig,
  planJobActions,
  type UpgradePlan,
} from '../src/upgrade/plan.js';
import { clusterConnection, sharedStore } from '../src/upgrade/runtime.js';
import { executeJobPhase, type StepResult } from '../src/upgrade/step.js';
import { WaitTimeoutError, type WaitReporter } from '../src/util/wait.js';
import { GATE_TIMEOUT } from '../workflows/messages.js';
import { createCoreUpgradeActivities } from './core-upgrade.js';
import { createCheckActivities, type TemporalLookup } from './checks.js';
import { withKeepAlive } from './keep-alive.js';

export type { PreflightRequest, TemporalLookup, VerifyRequest } from './checks.js';

/** Input of the `runJobPhase` activity. */
export interface JobPhaseRequest {
  input: UpgradeClusterInput;
  job: string;
  phase: Phase;
}

/** What a finished step reports to the workflow (kept in history: small, secret-free). */
export interface JobPhaseSummary extends StepResult {
  attempt: number;
}

export interface PhaseCheckRequest {
  input: UpgradeClusterInput;
  phase: Phase;
}

export interface CoreUpgradeWaitRequest {
  input: UpgradeClusterInput;
  timeoutMs: number;
  /**
   * When the wait ends (ISO time, set by the workflow): every attempt of the activity shares it, so
   * retries after a worker crash do not extend the wait. Without it: `timeoutMs` from now.
   */
  deadline?: string;
  intervalMs?: number;
}

/** Input of the `archiveAttempt` activity. */
export interface ArchiveAttemptRequest {
  input: UpgradeClusterInput;
  /** The jobs the aborted attempt touched (their backup scopes move, with `_shared`). */
  jobs: string[];
  /** Workflow time of the abort and the run ID: they name the folder, the same on every retry. */
  abortedAt: string;
  runId: string;
}

/** Where an aborted attempt's backups went (small: a folder and a count). */
export interface ArchiveAttemptResult {
  folder: string;
  moved: number;
}

function activityLogger(): Logger {
  const log = Context.current().log;
  return {
    debug: (m, f) => {
      log.debug(m, f);
    },
    info: (m, f) => {
      log.info(m, f);
    },
    warn: (m, f) => {
      log.warn(m, f);
    },
    error: (m, f) => {
      log.error(m, f);
    },
  };
}

/** Where a wait in an activity logs and heartbeats, and its cancellation. */
function activityReporter(): WaitReporter {
  const ctx = Context.current();
  return {
    logger: activityLogger(),
    heartbeat: (progress) => {
      ctx.heartbeat(progress);
    },
    signal: ctx.cancellationSignal,
  };
}

/**
 * Turns an error into the failure the workflow sees: the root cause's name is the failure type,
 * and config/validation/integrity problems are non-retryable — retrying cannot fix them, a human
 * must (the workflow then asks one).
 */
export function toFailure(err: unknown): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const root = err instanceof JobPhaseError && err.cause instanceof Error ? err.cause : err;
  const type = root instanceof Error ? root.name : 'Error';
  const message = err instanceof Error ? err.message : String(err);
  const hint =
    err instanceof KsUpgradeError ? err.hint : root instanceof KsUpgradeError ? root.hint : undefined;
  return ApplicationFailure.create({
    message,
    type,
    nonRetryable: root instanceof ValidationError || NON_RETRYABLE_ERROR_NAMES.includes(type),
    // The attempt lets the workflow count attempts over retries; the hint is shown to the operator.
    details: [{ attempt: safeAttempt(), ...(hint ? { hint } : {}) }],
  });
}

/**
 * How often a waiting activity polls and heartbeats: well inside its heartbeat timeout (a third of
 * it), never more often than every 200 ms, and at most `preferredMs`.
 */
function pollInterval(preferredMs: number): number {
  const timeout = activityInfo().heartbeatTimeoutMs;
  return timeout ? Math.max(200, Math.min(preferredMs, Math.floor(timeout / 3))) : preferredMs;
}

function safeAttempt(): number | undefined {
  try {
    return activityInfo().attempt;
  } catch {
    return undefined; // called outside an activity (tests of toFailure)
  }
}

/** The activities, bound to a job registry (tests and plugin builds pass their own). */
export function createActivities(deps: { registry?: JobRegistry; temporal?: TemporalLookup } = {}) {
  const registry = deps.registry ?? defaultRegistry;

  return {
    ...createCoreUpgradeActivities({ registry, toFailure, logger: activityLogger }),
    ...createCheckActivities({ registry, ...(deps.temporal ? { temporal: deps.temporal } : {}) }, toFailure),

    /** Loads and validates the config, and plans the jobs (dry run: asks each job what it would do). */
    async planUpgrade(input: UpgradeClusterInput): Promise<UpgradePlan> {
      try {
        return await withKeepAlive(async (alive) => {
          const loaded = await loadUpgradeConfig(input, registry);
          const plan = buildUpgradePlan(input.cluster, loaded, registry);
          if (!input.dryRun) return plan;
          const [conn, store] = await Promise.all([
            clusterConnection(input.kube),
            sharedStore(loaded.config.storage),
          ]);
          await planJobActions(plan, loaded, registry, {
            kube: conn.client,
            store,
            logger: activityLogger(),
            heartbeat: () => {
              alive.heartbeat();
            },
          });
          return plan;
        });
      } catch (err) {
        throw toFailure(err);
      }
    },

    /** One job's phase. Heartbeats carry the job's progress; cancellation reaches it as an AbortSignal. */
    async runJobPhase(req: JobPhaseRequest): Promise<JobPhaseSummary> {
      const ctx = Context.current();
      try {
        const result = await executeJobPhase(req.input, req.job, req.phase, {
          registry,
          logger: activityLogger(),
          heartbeat: (progress?: JobProgress) => {
            ctx.heartbeat(progress);
          },
          heartbeatTimeoutMs: activityInfo().heartbeatTimeoutMs,
          signal: ctx.cancellationSignal,
        });
        return { ...result, attempt: activityInfo().attempt };
      } catch (err) {
        // Stopped because the workflow cancelled it: a cancellation (the step stopped at a safe
        // point), not a failure to retry or to put before the operator.
        if (ctx.cancellationDetails?.cancelRequested) {
          throw new CancelledFailure(`${req.job} ${req.phase} stopped: the upgrade was cancelled`);
        }
        throw toFailure(err);
      }
    },

    /** The original's validators for a phase: false means "skip this phase", with the reason. */
    async checkPhase(req: PhaseCheckRequest): Promise<CheckResult> {
      try {
        const loaded = await loadUpgradeConfig(req.input, registry);
        const v = loaded.config.validator;
        const { client } = await clusterConnection(req.input.kube);
        if ((req.phase === 'prepare-upgrade' || req.phase === 'pre-upgrade') && v.ksVersion.enabled) {
          const res = await checkKsVersion(client);
          if (!res.ok) return res;
        }
        if (req.phase === 'post-upgrade' && v.extensionsMuseum.enabled) {
          return await waitForMuseumSync(client, v.extensionsMuseum, {
            reporter: activityReporter(),
            intervalMs: pollInterval(2000),
          });
        }
        return { ok: true, reason: 'no validator applies' };
      } catch (err) {
        throw toFailure(err);
      }
    },

    /**
     * The detect gate: polls until KubeSphere v4 core runs. At the deadline it fails for good
     * (`GateTimeout`, not retried), saying what it saw last, and the workflow asks the operator.
     */
    async waitForCoreUpgrade(req: CoreUpgradeWaitRequest): Promise<CheckResult> {
      try {
        const { client } = await clusterConnection(req.input.kube);
        const deadline = req.deadline ? Date.parse(req.deadline) : Date.now() + req.timeoutMs;
        try {
          return await waitForCoreUpgrade(client, {
            timeoutMs: Math.max(0, deadline - Date.now()),
            intervalMs: pollInterval(req.intervalMs ?? 5000),
            reporter: activityReporter(),
          });
        } catch (err) {
          if (!(err instanceof WaitTimeoutError)) throw err;
          // A deadline is final: retrying would wait the whole bound again. The operator decides.
          throw ApplicationFailure.create({
            type: GATE_TIMEOUT,
            nonRetryable: true,
            message: `KubeSphere v4 core not detected within ${Math.round(req.timeoutMs / 1000)}s; last seen: ${err.last}`,
            details: [
              {
                attempt: safeAttempt(),
                lastSeen: err.last,
                hint: 'run the helm upgrade of ks-core (see the upgrade guide) until ks-core v4 is deployed and ks-apiserver is ready, then retry this step',
              },
            ],
          });
        }
      } catch (err) {
        throw toFailure(err);
      }
    },

    /**
     * Files an aborted attempt's backups away once its rollback is over, so that the next attempt
     * backs up the cluster as it is then (src/store/attempts.ts). Safe to retry.
     */
    async archiveAttempt(req: ArchiveAttemptRequest): Promise<ArchiveAttemptResult> {
      try {
        const loaded = await loadUpgradeConfig(req.input, registry);
        const store = await sharedStore(loaded.config.storage);
        const attempt = abortedAttemptName(req.abortedAt, req.runId);
        const { folder, moved } = await store.moveAttemptAside(req.input.cluster, req.jobs, attempt);
        activityLogger().info(`backups of the aborted attempt moved to ${folder}`, { objects: moved.length });
        return { folder, moved: moved.length };
      } catch (err) {
        throw toFailure(err);
      }
    },
  };
}

/** The activity interface the workflow proxies (type only). */
export type UpgradeActivities = ReturnType<typeof createActivities>;
