// The state of one cluster's upgrade, in one place: what the `progress` query returns, the search
// attributes and the current details the Temporal UI shows, and which jobs the attempt touched.
// Deterministic code only (workflow sandbox).
import { setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { Phase } from '../src/jobs/types.js';
import { progressQuery, type StepProgress, type UpgradeProgress, type UpgradeStatus } from './messages.js';
import { UpgradeClusterKey, UpgradeJobKey, UpgradePhaseKey, UpgradeStatusKey } from './search-attributes.js';

/** Workflow time as ISO 8601 (deterministic inside the sandbox). */
export const now = (): string => new Date().toISOString();

/** Progress, status and touched jobs of an upgrade; registers the `progress` query. */
export class UpgradeState {
  readonly progress: UpgradeProgress;
  /** Gate helm ran (or began) `helm upgrade ks-core`: a rollback then rolls core back first. */
  coreUpgradeTried = false;

  constructor(cluster: string) {
    const at = now();
    this.progress = {
      cluster,
      status: 'Planning',
      startedAt: at,
      updatedAt: at,
      phases: [],
      steps: [],
      gate: { mode: 'none', state: 'pending' },
      decisions: [],
      touched: [],
    };
    setHandler(progressQuery, () => this.progress, {
      description:
        'Plan, per-step state (attempts, last error, timings), gate, operator decisions, rollback.',
    });
  }

  /**
   * Sets the status (and the search attributes the UI filters on); `only` sets one of the two, for
   * a change the search attributes must announce before `progress` shows it (see Decisions.ask).
   */
  setStatus(
    status: UpgradeStatus,
    phase?: Phase,
    job?: string,
    only?: 'progress' | 'searchAttributes',
  ): void {
    if (only !== 'searchAttributes') {
      this.progress.status = status;
      this.progress.phase = phase;
      this.progress.job = job;
      this.progress.updatedAt = now();
    }
    if (only === 'progress') return;
    upsertSearchAttributes([
      { key: UpgradeStatusKey, value: status },
      { key: UpgradePhaseKey, value: phase ?? null },
      { key: UpgradeJobKey, value: job ?? null },
    ]);
  }

  /** The markdown the Temporal UI shows as the workflow's current details. */
  details(lines: string | string[]): void {
    setCurrentDetails(Array.isArray(lines) ? lines.join('\n') : lines);
  }

  /** Marks the cluster (search attribute `UpgradeCluster`) and the start of planning. */
  begin(cluster: string): void {
    upsertSearchAttributes([{ key: UpgradeClusterKey, value: cluster }]);
    this.setStatus('Planning');
    this.details(`**Planning** the upgrade of cluster \`${cluster}\`.`);
  }

  /** The step of `job` in `phase`, created pending on first use. */
  step(phase: Phase, job: string): StepProgress {
    let step = this.progress.steps.find((s) => s.phase === phase && s.job === job);
    if (!step) {
      step = { phase, job, state: 'pending', attempts: 0, runs: 0 };
      this.progress.steps.push(step);
    }
    return step;
  }

  /** A step of `job` starts: from now on the job counts as touched (its rollback will run). */
  touch(job: string): void {
    const touched = (this.progress.touched ??= []);
    if (!touched.includes(job)) touched.push(job);
  }

  /**
   * A step that only reported doing nothing (the job is not enabled here, or has no such phase, on
   * its first run and attempt) does not make its job touched, unless another step of the job did.
   */
  untouchIfIdle(job: string): void {
    const counts = this.progress.steps.some(
      (s) => s.job === job && s.phase !== 'rollback' && s.state !== 'pending' && !didNothing(s),
    );
    if (!counts) this.progress.touched = (this.progress.touched ?? []).filter((j) => j !== job);
  }

  /** Touched jobs, in the order their first step started. */
  get touched(): string[] {
    return this.progress.touched ?? [];
  }
}

function didNothing(s: StepProgress): boolean {
  return (
    (s.outcome === 'skipped' || s.outcome === 'not-implemented') &&
    s.state === 'skipped' &&
    s.runs === 1 &&
    s.attempts === 1
  );
}
