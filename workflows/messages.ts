// Messages of the upgradeCluster workflow: the operator's `resolve` update (and its signal twin),
// the `coreUpgraded` gate signal, and the `progress` query. Shared by the workflow and clients.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { GateMode } from '../src/config/types.js';
import type { JobOutcome } from '../src/jobs/runner.js';
import type { Phase } from '../src/jobs/types.js';
import type { PreflightReport } from '../src/preflight/types.js';
import type { UpgradePlan } from '../src/upgrade/plan.js';
import type { VerificationReport } from '../src/verify/types.js';

/** Failure type of the detect gate's deadline: final, never retried; the operator decides next. */
export const GATE_TIMEOUT = 'GateTimeout';
/**
 * Failure type of a decision refused because the wait is announced but does not take decisions
 * yet (the workflow task after the announcement): send it again.
 */
export const DECISION_NOT_YET = 'DecisionNotYet';

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

/** `cancelled`: the step was running when the upgrade was cancelled (it stopped at a safe point). */
export type StepState =
  | 'pending'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'skipped'
  | 'cancelled'
  | 'rolled-back'
  | 'rollback-failed';

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

/** A `resolveSignal` that was not taken (signals cannot be refused to the sender). */
export interface RejectedSignal {
  at: string;
  signal: 'resolveSignal';
  /** The request as sent, if it was an object. */
  request?: Partial<ResolveRequest>;
  reason: string;
}

/** What a rollback left undone: a job whose rollback failed and was skipped, or the backup move. */
export interface NotRestored {
  /** Undefined for the move of the attempt's backups. */
  job?: string;
  error: string;
  /** Who skipped it: an operator, `operatorTimeout` or `failurePolicy`. */
  by: string;
  reason: string;
}

/** The rollback of an aborted or cancelled attempt. */
export interface RollbackProgress {
  /** `abort` (an operator, operatorTimeout or failurePolicy) or `cancel`. */
  trigger: 'abort' | 'cancel';
  /** Jobs to roll back, in the order they are rolled back (newest first). */
  jobs: string[];
  notRestored: NotRestored[];
  /** Where the attempt's backups went, once moved. */
  backups?: { folder: string; moved: number };
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
  /** Jobs with a step that started (and did not report doing nothing), in order of first start. */
  touched?: string[];
  /** Resolve signals that were not taken, with the reason (the last 20). */
  rejectedSignals?: RejectedSignal[];
  rollback?: RollbackProgress;
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
