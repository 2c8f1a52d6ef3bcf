// The activities the upgrade workflow calls, with their timeouts and retry policies, and how their
// failures read to the operator. Activities are imported as types only: their code runs on workers.
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  patched,
  proxyActivities,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { CoreCrdsResult } from '../activities/core-upgrade.js';
import type { CoreRollbackResult, CoreUpgradeResult } from '../src/helm/core-upgrade.js';
import type { ArchiveAttemptResult, JobPhaseSummary, UpgradeActivities } from '../activities/index.js';
import type { PreflightReport } from '../src/preflight/types.js';
import type { VerificationReport } from '../src/verify/types.js';
import type { CheckResult } from '../src/upgrade/checks.js';
import type { Phase } from '../src/jobs/types.js';
import type { PlannedJobSteps, UpgradePlan } from '../src/upgrade/plan.js';
import { tuningMs, type UpgradeClusterInput } from './pure/input.js';
import { GATE_TIMEOUT } from './messages.js';

/** A failed activity as the operator reads it. */
export interface ActivityProblem {
  message: string;
  hint?: string;
  /** Attempts the activity made (from its failure details, else the policy's maximum). */
  attempts: number;
  /** The failure type (the root cause's error name), e.g. `GateTimeout`. */
  type?: string;
  /** The failure's first details object, e.g. the detect gate's `lastSeen`. */
  details?: Record<string, unknown>;
}

/** The error text, hint and attempts of a failed activity. */
export function problemOf(err: unknown, maxAttempts: number): ActivityProblem {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const message = cause instanceof Error ? cause.message : String(cause);
  if (!(cause instanceof ApplicationFailure)) return { message, attempts: maxAttempts };
  const d = cause.details?.[0] as Record<string, unknown> | undefined;
  return {
    message,
    attempts: typeof d?.attempt === 'number' ? d.attempt : maxAttempts,
    ...(typeof d?.hint === 'string' ? { hint: d.hint } : {}),
    ...(cause.type ? { type: cause.type } : {}),
    ...(d ? { details: d } : {}),
  };
}

/**
 * Runs started before this patch did not wait for a cancelled step to stop before rolling back; they
 * replay that way. Now the rollback starts only once the step has stopped (or timed out).
 */
export const WAIT_FOR_CANCELLED_STEP_PATCH = 'wait-for-cancelled-step';

/** Attempts of the control activities (plan, checks, gate, archive). */
export const CONTROL_ATTEMPTS = 3;
const DEFAULT_HEARTBEAT_MS = 60_000;
const DEFAULT_DETECT_MS = 2 * 3_600_000;

/** The activities of one upgrade, configured from its input. */
export class UpgradeSteps {
  readonly detectTimeoutMs: number;
  private readonly heartbeatMs: number;
  private readonly base: ActivityOptions;

  constructor(private readonly input: UpgradeClusterInput) {
    const t = tuningMs(input);
    this.detectTimeoutMs = t.detectTimeout ?? DEFAULT_DETECT_MS;
    this.heartbeatMs = t.heartbeatTimeout ?? DEFAULT_HEARTBEAT_MS;
    this.base = {
      startToCloseTimeout: '10m',
      heartbeatTimeout: this.heartbeatMs,
      retry: { maximumAttempts: CONTROL_ATTEMPTS, initialInterval: '2s', maximumInterval: '30s' },
    };
  }

  plan(): Promise<UpgradePlan> {
    return proxyActivities<UpgradeActivities>(this.base).planUpgrade(this.input);
  }

  /** The original's validators; they may wait for the museum sync (watchTimeout, 30m by default). */
  checkPhase(phase: Phase): Promise<CheckResult> {
    return proxyActivities<UpgradeActivities>({ ...this.base, startToCloseTimeout: '3h' }).checkPhase({
      input: this.input,
      phase,
    });
  }

  /**
   * One job's phase, with the job's own retry policy and timeout. Cancelled, it is waited for until
   * it stops at a safe point: a rollback must not race the step it undoes.
   */
  runJobPhase(pj: PlannedJobSteps, phase: Phase): Promise<JobPhaseSummary> {
    return proxyActivities<UpgradeActivities>({
      startToCloseTimeout: pj.timeoutMs,
      heartbeatTimeout: this.heartbeatMs,
      summary: `${phase} ${pj.name}`,
      cancellationType: patched(WAIT_FOR_CANCELLED_STEP_PATCH)
        ? ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
        : ActivityCancellationType.TRY_CANCEL,
      retry: {
        maximumAttempts: pj.retry.maximumAttempts,
        initialInterval: pj.retry.initialIntervalMs,
        maximumInterval: pj.retry.maximumIntervalMs,
      },
    }).runJobPhase({ input: this.input, job: pj.name, phase });
  }

  /**
   * The detect gate, until `deadline` (workflow time): the deadline is passed to every attempt and
   * bounds them all, and GateTimeout is final, so the documented wait is the wait.
   */
  waitForCoreUpgrade(deadline: string): Promise<CheckResult> {
    return proxyActivities<UpgradeActivities>({
      ...this.base,
      startToCloseTimeout: this.detectTimeoutMs + 60_000,
      scheduleToCloseTimeout: this.detectTimeoutMs + 5 * 60_000,
      retry: { ...this.base.retry, nonRetryableErrorTypes: [GATE_TIMEOUT] },
    }).waitForCoreUpgrade({ input: this.input, timeoutMs: this.detectTimeoutMs, deadline });
  }

  /** Read-only checks before anything changes (docs/preflight.md). */
  preflight(): Promise<PreflightReport> {
    return proxyActivities<UpgradeActivities>(this.base).preflightCluster({ input: this.input });
  }

  /** Is the upgrade done, judged from the cluster; `waitMs: 0` judges at once (docs/verification.md). */
  verify(waitMs?: number): Promise<VerificationReport> {
    return proxyActivities<UpgradeActivities>(this.base).verifyCluster({
      input: this.input,
      ...(waitMs === undefined ? {} : { waitMs }),
    });
  }

  /** Gate helm: the target chart's v4 CRDs (helm's own --timeout bounds the work inside). */
  applyCoreCrds(): Promise<CoreCrdsResult> {
    return this.core().applyCoreCrds({ input: this.input, attempt: 1 });
  }

  /** Gate helm: `helm upgrade ks-core`, at most once per gate attempt. */
  upgradeCoreRelease(attempt: number): Promise<CoreUpgradeResult> {
    return this.core().upgradeCoreRelease({ input: this.input, attempt });
  }

  /** Gate helm's undo: ks-core back to its revision before the upgrade. */
  rollbackCoreRelease(): Promise<CoreRollbackResult> {
    return this.core().rollbackCoreRelease({ input: this.input, attempt: 1 });
  }

  private core(): UpgradeActivities {
    return proxyActivities<UpgradeActivities>({ ...this.base, startToCloseTimeout: '3h' });
  }

  /** Moves the backups of an aborted attempt aside (src/store/attempts.ts). */
  archiveAttempt(jobs: string[], abortedAt: string, runId: string): Promise<ArchiveAttemptResult> {
    return proxyActivities<UpgradeActivities>(this.base).archiveAttempt({
      input: this.input,
      jobs,
      abortedAt,
      runId,
    });
  }
}
