// upgradeCluster: one cluster's upgrade as a durable workflow. Deterministic code only: every read
// or write of a cluster, a file or the backup store happens in an activity. The story is here; the
// state, the decisions, the gate, the steps and the rollback each have a module of their own.
import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  isCancellation,
  patched,
} from '@temporalio/workflow';
import type { UpgradePlan } from '../src/upgrade/plan.js';
import { UpgradeSteps } from './activities.js';
import { AbortRequested, Decisions } from './decisions.js';
import { Gate } from './gate.js';
import { DEFAULT_PHASES, validateUpgradeInput, type UpgradeClusterInput } from './pure/input.js';
import type { Decision, UpgradeResult } from './messages.js';
import { Rollback, type RollbackOutcome } from './rollback.js';
import { now, UpgradeState } from './state.js';
import { verificationMarkdown } from './pure/verification-report.js';
import { ForwardSteps } from './steps.js';

/** The upgrade of one cluster: plan, phases and their jobs in order, the gate, operator decisions. */
export async function upgradeCluster(input: UpgradeClusterInput): Promise<UpgradeResult> {
  // Handlers first (before any await): a message arriving early must find its handler.
  const state = new UpgradeState(clusterOf(input));
  const decisions = new Decisions(state, input);
  const gate = new Gate(state, decisions, input);

  const problems = validateUpgradeInput(input);
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `invalid upgradeCluster input:\n${problems.join('\n')}`,
      'InvalidInput',
    );
  }
  const steps = new UpgradeSteps(input);
  const forward = new ForwardSteps(state, decisions, steps, input);
  const rollback = new Rollback(state, decisions, steps);
  state.begin(input.cluster);

  let plan: UpgradePlan | undefined;
  try {
    plan = await forward.plan();
    // Read-only checks before anything changes (docs/preflight.md); patched: runs started by an
    // earlier build replay without it.
    if (patched('preflight')) await forward.preflight();
    if (input.dryRun) {
      state.setStatus('Succeeded');
      state.details(
        `**Dry run** of \`${input.cluster}\` planned ${plan.jobs.filter((j) => j.enabled).length} jobs; nothing changed.`,
      );
      return {
        cluster: input.cluster,
        status: 'Succeeded',
        dryRun: true,
        steps: [],
        decisions: state.progress.decisions,
        plan,
        ...reports(state),
      };
    }

    const phases = input.phases ?? [...DEFAULT_PHASES];
    state.progress.phases = phases.map((phase) => ({ phase, state: 'pending' }));
    const gateMode = input.gate ?? plan.gate;
    const gated = phases.includes('pre-upgrade') && phases.includes('post-upgrade');
    state.progress.gate = {
      mode: gated ? gateMode : 'none',
      state: gated && gateMode !== 'none' ? 'pending' : 'passed',
    };

    for (const [index, phase] of phases.entries()) {
      const ph = state.progress.phases[index];
      if (!ph) continue;
      if (phase === 'post-upgrade' && gated && state.progress.gate.state !== 'passed')
        await gate.pass(gateMode, steps);
      const skip = await forward.skipReason(phase);
      if (skip !== undefined) {
        ph.state = 'skipped';
        ph.reason = skip;
        continue;
      }
      ph.state = 'running';
      // As KubeSphere's upgrade.sh: the v4 CRDs go in after prepare-upgrade, before pre-upgrade.
      if (phase === 'pre-upgrade' && gated && gateMode === 'helm') await gate.applyCoreCrds(steps);
      for (const pj of plan.jobs) if (pj.enabled && pj.phases.includes(phase)) await forward.run(pj, phase);
      ph.state = 'done';
    }

    // Is the upgrade really done, judged from the cluster (docs/verification.md).
    if (phases.includes('post-upgrade') && patched('verification')) await forward.verify();

    state.setStatus('Succeeded');
    const verified = state.progress.verification;
    state.details(
      `**Upgrade of \`${input.cluster}\` succeeded.**${verified ? `\n\n${verificationMarkdown(verified)}` : ''}`,
    );
    await condition(allHandlersFinished);
    return {
      cluster: input.cluster,
      status: 'Succeeded',
      dryRun: false,
      steps: state.progress.steps,
      decisions: state.progress.decisions,
      plan,
      ...reports(state),
    };
  } catch (err) {
    if (err instanceof AbortRequested) {
      // The rollback runs to its end, even if the workflow is cancelled meanwhile.
      const outcome = await CancellationScope.nonCancellable(() =>
        rollback.run(plan, 'abort', err.decision.at),
      );
      state.setStatus('Aborted');
      state.details(`**Aborted** by ${err.decision.by}: ${err.decision.reason}. ${summary(outcome)}`);
      await condition(allHandlersFinished);
      throw abortedFailure(input.cluster, err.decision, outcome);
    }
    if (isCancellation(err)) {
      // A graceful cancel: the running step stopped at a safe point; undo what the attempt touched.
      await CancellationScope.nonCancellable(async () => {
        const outcome = await rollback.run(plan, 'cancel', now());
        state.setStatus('Aborted');
        state.details(`**Cancelled**. ${summary(outcome)}`);
      });
      throw err;
    }
    state.setStatus('Failed');
    throw err;
  }
}

/** The cluster name for progress before the input is validated (it may not even be an object). */
function clusterOf(input: unknown): string {
  const cluster =
    typeof input === 'object' && input !== null ? (input as { cluster?: unknown }).cluster : undefined;
  return typeof cluster === 'string' ? cluster : '';
}

/** The preflight's and the verification's reports, when they ran. */
function reports(state: UpgradeState): Pick<UpgradeResult, 'preflight' | 'verification'> {
  const { preflight, verification } = state.progress;
  return { ...(preflight ? { preflight } : {}), ...(verification ? { verification } : {}) };
}

function summary(outcome: RollbackOutcome): string {
  const rolledBack = outcome.steps.map((s) => `${s.job} (${s.state})`).join(', ') || 'nothing';
  const missing = outcome.notRestored.map((n) => `${n.job ?? 'backups'} (${n.error})`).join(', ');
  return `Rolled back: ${rolledBack}.${missing ? ` **Not restored: ${missing}.**` : ''}`;
}

/** `UpgradeAborted`: who decided, what was rolled back, what was not restored, where the backups went. */
function abortedFailure(cluster: string, decision: Decision, outcome: RollbackOutcome): ApplicationFailure {
  const missing = outcome.notRestored.map((n) => `${n.job ?? 'backups'} (${n.error})`).join(', ');
  return ApplicationFailure.create({
    message: `upgrade of cluster ${cluster} aborted by ${decision.by}: ${decision.reason}${missing ? `; not restored: ${missing}` : ''}`,
    type: 'UpgradeAborted',
    nonRetryable: true,
    details: [
      {
        decision,
        rollback: outcome.steps.map((s) => ({
          job: s.job,
          state: s.state,
          ...(s.lastError ? { error: s.lastError } : {}),
        })),
        notRestored: outcome.notRestored,
        ...(outcome.backups ? { backups: outcome.backups } : {}),
      },
    ],
  });
}
