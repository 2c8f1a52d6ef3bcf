// The forward steps of an upgrade — the plan, a phase's validators, one job's phase — each run until
// it succeeds or an operator decides: retry runs it again, skip goes on, abort ends the attempt.
import { CancellationScope, CancelledFailure, isCancellation } from '@temporalio/workflow';
import type { Phase } from '../src/jobs/types.js';
import type { PlannedJobSteps, UpgradePlan } from '../src/upgrade/plan.js';
import { CONTROL_ATTEMPTS, problemOf, type UpgradeSteps } from './activities.js';
import { AbortRequested, type Decisions, type Fallback } from './decisions.js';
import type { UpgradeClusterInput } from './pure/input.js';
import { preflightFailure, preflightMarkdown } from './pure/preflight-report.js';
import { verificationFailure } from './pure/verification-report.js';
import { now, type UpgradeState } from './state.js';

const FORWARD: Fallback = { policy: 'abort', timeout: 'abort', resume: 'Running' };

export class ForwardSteps {
  constructor(
    private readonly state: UpgradeState,
    private readonly decisions: Decisions,
    private readonly steps: UpgradeSteps,
    private readonly input: UpgradeClusterInput,
  ) {}

  /** Loads and validates the config and plans the jobs. A config error waits for the file's fix. */
  async plan(): Promise<UpgradePlan> {
    for (;;) {
      try {
        const plan = await this.steps.plan();
        this.state.progress.plan = plan;
        return plan;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const p = problemOf(err, CONTROL_ATTEMPTS);
        const d = await this.decisions.ask(
          {
            phase: 'plan',
            error: p.message,
            ...(p.hint ? { hint: p.hint } : {}),
            allowed: ['retry', 'abort'],
          },
          FORWARD,
        );
        if (d.action === 'abort') throw new AbortRequested(d);
      }
    }
  }

  /** Runs the preflight until it passes (the operator fixes and retries) or is aborted. */
  async preflight(): Promise<void> {
    for (;;) {
      this.state.details(
        `**Preflight** of cluster \`${this.input.cluster}\`: read-only checks before anything changes.`,
      );
      let failure: { error: string; hint?: string };
      try {
        const report = await this.steps.preflight();
        this.state.progress.preflight = report;
        // A dry run reports the preflight; it changes nothing, so there is nothing to stop.
        if (report.ok || this.input.dryRun) return;
        failure = preflightFailure(report);
        this.state.details(
          `### Preflight of \`${this.input.cluster}\` failed\n\n${preflightMarkdown(report)}`,
        );
      } catch (err) {
        if (isCancellation(err)) throw err;
        const p = problemOf(err, CONTROL_ATTEMPTS);
        failure = p.hint === undefined ? { error: p.message } : { error: p.message, hint: p.hint };
      }
      const d = await this.decisions.ask(
        { phase: 'preflight', ...failure, allowed: ['retry', 'abort'] },
        FORWARD,
      );
      if (d.action === 'abort') throw new AbortRequested(d);
    }
  }

  /**
   * Verifies the cluster (the last step); a failed verification waits for the operator, unless
   * `skipChecks` names `verification`: then it is judged once and recorded.
   */
  async verify(): Promise<void> {
    const skip = this.input.skipChecks?.find((c) => c.name === 'verification');
    for (;;) {
      this.state.setStatus('Running');
      this.state.details(`**Verifying** the upgrade of cluster \`${this.input.cluster}\`.`);
      let failure: { error: string; hint?: string };
      try {
        const report = await this.steps.verify(skip ? 0 : undefined);
        this.state.progress.verification = report;
        if (report.ok || skip) return;
        failure = verificationFailure(report);
      } catch (err) {
        if (isCancellation(err)) throw err;
        const p = problemOf(err, CONTROL_ATTEMPTS);
        failure = p.hint === undefined ? { error: p.message } : { error: p.message, hint: p.hint };
      }
      const d = await this.decisions.ask(
        { phase: 'verify', ...failure, allowed: ['retry', 'skip', 'abort'] },
        FORWARD,
      );
      if (d.action === 'abort') throw new AbortRequested(d);
      if (d.action === 'skip') return;
    }
  }

  /**
   * The original's validators for `phase`: the reason to skip the phase, or undefined to run it.
   * A failed validator that the operator skips lets the phase run without it.
   */
  async skipReason(phase: Phase): Promise<string | undefined> {
    for (;;) {
      try {
        const check = await this.steps.checkPhase(phase);
        return check.ok ? undefined : check.reason;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const p = problemOf(err, CONTROL_ATTEMPTS);
        const d = await this.decisions.ask(
          {
            phase,
            error: p.message,
            ...(p.hint ? { hint: p.hint } : {}),
            allowed: ['retry', 'skip', 'abort'],
          },
          FORWARD,
        );
        if (d.action === 'abort') throw new AbortRequested(d);
        if (d.action === 'skip') return undefined;
      }
    }
  }

  /** One job's phase. The job counts as touched from the moment the step starts. */
  async run(pj: PlannedJobSteps, phase: Phase): Promise<void> {
    const step = this.state.step(phase, pj.name);
    for (;;) {
      step.state = 'running';
      step.runs++;
      step.startedAt = now();
      delete step.lastError;
      this.state.touch(pj.name);
      this.state.setStatus('Running', phase, pj.name);
      this.state.details(`**Running** ${phase} / ${pj.name} on cluster \`${this.input.cluster}\`.`);
      try {
        const res = await this.steps.runJobPhase(pj, phase);
        step.attempts += res.attempt;
        step.outcome = res.outcome;
        step.state = res.outcome === 'succeeded' ? 'succeeded' : 'skipped';
        if (res.reason) step.reason = res.reason;
        step.endedAt = now();
        step.durationMs = Date.parse(step.endedAt) - Date.parse(step.startedAt);
        if (res.outcome !== 'succeeded') this.state.untouchIfIdle(pj.name);
        return;
      } catch (err) {
        step.endedAt = now();
        // A step that ended in any way after the upgrade was cancelled was cancelled.
        if (isCancellation(err) || CancellationScope.current().consideredCancelled) {
          step.state = 'cancelled';
          throw isCancellation(err)
            ? err
            : new CancelledFailure(`${phase} ${pj.name} stopped: the upgrade was cancelled`);
        }
        const p = problemOf(err, pj.retry.maximumAttempts);
        step.attempts += p.attempts;
        step.state = 'failed';
        step.lastError = p.message;
        const d = await this.decisions.ask(
          {
            phase,
            job: pj.name,
            error: p.message,
            ...(p.hint ? { hint: p.hint } : {}),
            allowed: ['retry', 'skip', 'abort'],
          },
          FORWARD,
        );
        if (d.action === 'retry') continue;
        if (d.action === 'abort') throw new AbortRequested(d);
        step.state = 'skipped';
        step.reason = `skipped by ${d.by}: ${d.reason}`;
        return;
      }
    }
  }
}
