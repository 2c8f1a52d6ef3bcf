// Rollback of an aborted or cancelled attempt: every job the attempt touched (a step of it started)
// that implements rollback, newest first; a rollback that fails goes to the operator (retry or
// skip, never silently past); then the attempt's backups are moved aside, so that a new attempt
// backs up the cluster as it is then. Runs to its end even when the workflow is being cancelled.
import { isCancellation, patched, workflowInfo } from '@temporalio/workflow';
import type { StepProgress } from './messages.js';
import type { UpgradePlan } from '../src/upgrade/plan.js';
import { CONTROL_ATTEMPTS, problemOf, type UpgradeSteps } from './activities.js';
import type { Decisions, Fallback } from './decisions.js';
import type { NotRestored, RollbackProgress } from './messages.js';
import { now, type UpgradeState } from './state.js';

/**
 * Runs started before this patch rolled back only jobs with a succeeded or failed step, went past
 * a failed rollback, and kept the attempt's backups in place; they replay that way.
 */
export const ROLLBACK_PATCH = 'rollback-touched-jobs-asks-operator-archives-attempt';

/** The ks-core release of gate helm: its rollback step and its records' store scope. */
const CORE_SCOPE = 'ks-core';

/** Nobody to ask, or nobody answered: the job stays not restored, and the rest goes on. */
const ROLLING_BACK: Fallback = { policy: 'skip', timeout: 'skip', resume: 'RollingBack' };

export interface RollbackOutcome {
  steps: StepProgress[];
  notRestored: NotRestored[];
  backups?: { folder: string; moved: number };
}

export class Rollback {
  constructor(
    private readonly state: UpgradeState,
    private readonly decisions: Decisions,
    private readonly steps: UpgradeSteps,
  ) {}

  /** Rolls back the attempt; `at` (workflow time of the abort) names the backups' new folder. */
  async run(
    plan: UpgradePlan | undefined,
    trigger: RollbackProgress['trigger'],
    at: string,
  ): Promise<RollbackOutcome> {
    if (!plan) return { steps: [], notRestored: [] };
    const current = patched(ROLLBACK_PATCH);
    const touched = current
      ? new Set(this.state.touched)
      : new Set(
          this.state.progress.steps
            .filter((s) => s.phase !== 'rollback' && (s.state === 'succeeded' || s.state === 'failed'))
            .map((s) => s.job),
        );
    const jobs = [...plan.jobs]
      .reverse()
      .filter((pj) => touched.has(pj.name) && pj.phases.includes('rollback'));
    const progress: RollbackProgress = { trigger, jobs: jobs.map((pj) => pj.name), notRestored: [] };
    this.state.progress.rollback = progress;
    this.state.setStatus('RollingBack');
    this.state.details(`**Rolling back** the jobs that ran on \`${plan.cluster}\`.`);
    const results: StepProgress[] = [];
    // Gate helm's undo first: ks-core back to its revision before the upgrade.
    if (this.state.coreUpgradeTried) results.push(await this.rollbackCore(current, progress));
    for (const pj of jobs) {
      const step = this.state.step('rollback', pj.name);
      for (;;) {
        step.state = 'running';
        step.runs++;
        step.startedAt = now();
        this.state.setStatus('RollingBack', 'rollback', pj.name);
        try {
          const res = await this.steps.runJobPhase(pj, 'rollback');
          step.attempts += res.attempt;
          step.state = 'rolled-back';
          delete step.lastError;
          break;
        } catch (err) {
          const p = problemOf(err, pj.retry.maximumAttempts);
          step.attempts += p.attempts;
          step.state = 'rollback-failed';
          step.lastError = p.message;
          if (!current) break;
          const d = await this.decisions.ask(
            {
              phase: 'rollback',
              job: pj.name,
              error: p.message,
              hint: p.hint ?? `fix the cause and retry; skip leaves what ${pj.name} changed as it is now`,
              allowed: ['retry', 'skip'],
            },
            ROLLING_BACK,
          );
          if (d.action === 'retry') continue;
          progress.notRestored.push({ job: pj.name, error: p.message, by: d.by, reason: d.reason });
          break;
        }
      }
      step.endedAt = now();
      results.push(step);
    }
    // The helm gate's records of this attempt (scope ks-core) go with the jobs' backups.
    const scopes = [...this.state.touched, ...(this.state.coreUpgradeTried ? [CORE_SCOPE] : [])];
    if (current && scopes.length > 0) await this.archive(scopes, at, progress);
    return {
      steps: results,
      notRestored: progress.notRestored,
      ...(progress.backups ? { backups: progress.backups } : {}),
    };
  }

  /**
   * Gate helm's undo. Runs started before {@link ROLLBACK_PATCH} (`current` false) tried it once
   * and went on; now a failure goes to the operator (retry or skip) like a job's rollback.
   */
  private async rollbackCore(current: boolean, progress: RollbackProgress): Promise<StepProgress> {
    const step = this.state.step('rollback', CORE_SCOPE);
    for (;;) {
      step.state = 'running';
      step.runs++;
      step.attempts++;
      step.startedAt = now();
      this.state.setStatus('RollingBack', 'rollback', CORE_SCOPE);
      try {
        const res = await this.steps.rollbackCoreRelease();
        step.state = 'rolled-back';
        step.reason = res.reason;
        delete step.lastError;
        break;
      } catch (err) {
        const p = problemOf(err, CONTROL_ATTEMPTS);
        step.state = 'rollback-failed';
        step.lastError = p.message;
        if (!current) break;
        const d = await this.decisions.ask(
          {
            phase: 'rollback',
            job: CORE_SCOPE,
            error: p.message,
            hint: p.hint ?? 'fix the cause and retry; skip leaves ks-core at the revision it is now',
            allowed: ['retry', 'skip'],
          },
          ROLLING_BACK,
        );
        if (d.action === 'retry') continue;
        progress.notRestored.push({ job: CORE_SCOPE, error: p.message, by: d.by, reason: d.reason });
        break;
      }
    }
    step.endedAt = now();
    return step;
  }

  /** Moves the attempt's backups aside; a failure goes to the operator like a failed rollback. */
  private async archive(scopes: string[], at: string, progress: RollbackProgress): Promise<void> {
    for (;;) {
      try {
        progress.backups = await this.steps.archiveAttempt(scopes, at, workflowInfo().runId);
        return;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const p = problemOf(err, CONTROL_ATTEMPTS);
        const d = await this.decisions.ask(
          {
            phase: 'rollback',
            error: `moving the backups of this attempt aside failed: ${p.message}`,
            hint:
              (p.hint ? `${p.hint}; then retry. ` : 'fix the storage, then retry. ') +
              'Skip keeps them in place: a new attempt would then reuse them instead of backing up the cluster as it is',
            allowed: ['retry', 'skip'],
          },
          ROLLING_BACK,
        );
        if (d.action === 'retry') continue;
        progress.notRestored.push({
          error: `backups not moved aside: ${p.message}`,
          by: d.by,
          reason: d.reason,
        });
        return;
      }
    }
  }
}
