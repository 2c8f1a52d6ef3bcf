// Messages of the upgradeCluster workflow: the operator's `resolve` update (and its signal twin),
// the `coreUpgraded` gate signal, and the `progress` query. Shared by the workflow and clients.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { GateMode } from '../src/config/types.js';
import type { JobOutcome } from '../src/jobs/runner.js';
import type { Phase } from '../src/jobs/types.js';
import type { PreflightReport } from '../src/preflight/types.js';
import type { UpgradePlan } from '../src/upgrade/plan.js';
import type { VerificationReport } from '../src/verify/types.js';

/** Workflow-level status (also the `UpgradeStatus` search attribute). */
export type UpgradeStatus =
  | 'Planning'
  | 'Running'
  | 'AwaitingCoreUpgrade'
  | 'AwaitingOperator'
  | 'RollingBack'
  | 'Succeeded'
  | 'Failed'
  | 'Aborted';

export type OperatorAction = 'retry' | 'skip' | 'abort';

export interface ResolveRequest {
  action: OperatorAction;
  /** Why: kept in the progress query and the result, so the decision can be audited. */
  reason: string;
  /** Who decided (the CLI fills in user@host; the UI user types a name). */
  by?: string;
}

export interface Decision extends ResolveRequest {
  by: string;
  at: string;
  phase: DecisionPoint;
  job?: string;
  /** The error the decision answered. */
  error: string;
}

export type StepState =
  'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'rolled-back' | 'rollback-failed';

export interface StepProgress {
  phase: Phase;
  job: string;
  state: StepState;
  /** Activity attempts so far, over all runs of this step. */
  attempts: number;
  /** Runs started by the workflow (1 + operator retries). */
  runs: number;
  outcome?: JobOutcome;
  reason?: string;
  lastError?: string;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
}

export interface GateProgress {
  mode: GateMode;
  state: 'pending' | 'waiting' | 'passed';
  passedAt?: string;
  detail?: string;
}

/** Where an operator may be asked: a job phase, or one of the workflow's own steps. */
export type DecisionPoint = Phase | 'plan' | 'preflight' | 'gate' | 'verify';

export interface AwaitingDecision {
  phase: DecisionPoint;
  job?: string;
  error: string;
  hint?: string;
  since: string;
  allowed: OperatorAction[];
}

export interface UpgradeProgress {
  cluster: string;
  status: UpgradeStatus;
  phase?: Phase;
  job?: string;
  startedAt: string;
  updatedAt: string;
  plan?: UpgradePlan;
  phases: { phase: Phase; state: 'pending' | 'running' | 'done' | 'skipped'; reason?: string }[];
  steps: StepProgress[];
  gate: GateProgress;
  decisions: Decision[];
  awaiting?: AwaitingDecision;
  /** The preflight's report (the first step after the plan). */
  preflight?: PreflightReport;
  /** The verification's report (the last step). */
  verification?: VerificationReport;
}

export interface UpgradeResult {
  cluster: string;
  status: 'Succeeded';
  dryRun: boolean;
  steps: StepProgress[];
  decisions: Decision[];
  plan: UpgradePlan;
  preflight?: PreflightReport;
  verification?: VerificationReport;
}

export const resolveUpdate = defineUpdate<{ accepted: true; action: OperatorAction }, [ResolveRequest]>(
  'resolve',
);
export const resolveSignal = defineSignal<[ResolveRequest]>('resolveSignal');
export const coreUpgradedSignal = defineSignal<[{ by?: string; note?: string }?]>('coreUpgraded');
export const progressQuery = defineQuery<UpgradeProgress>('progress');
