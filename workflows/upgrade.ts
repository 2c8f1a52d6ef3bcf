// upgradeCluster: one cluster's upgrade as a durable workflow. Deterministic code only: every
// read or write of a cluster, a file or the backup store happens in an activity.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { UpgradeActivities } from '../activities/index.js';
import type { GateMode } from '../src/config/types.js';
import type { Phase } from '../src/jobs/types.js';
import { DEFAULT_PHASES, validateUpgradeInput, type UpgradeClusterInput } from '../src/upgrade/input.js';
import type { PlannedJobSteps, UpgradePlan } from '../src/upgrade/plan.js';
import { preflightFailure, preflightMarkdown } from '../src/preflight/format.js';
import { verificationFailure, verificationMarkdown } from '../src/verify/format.js';
import {
  coreUpgradedSignal,
  progressQuery,
  resolveSignal,
  resolveUpdate,
  type AwaitingDecision,
  type Decision,
  type DecisionPoint,
  type OperatorAction,
  type ResolveRequest,
  type StepProgress,
  type UpgradeProgress,
  type UpgradeResult,
  type UpgradeStatus,
} from './messages.js';
import { UpgradeClusterKey, UpgradeJobKey, UpgradePhaseKey, UpgradeStatusKey } from './search-attributes.js';

/** Thrown inside the workflow when the operator (or the failure policy) chose abort. */
class AbortRequested extends Error {
  constructor(readonly decision: Decision) {
    super(`aborted: ${decision.reason}`);
  }
}

const now = (): string => new Date().toISOString();

/** The job phase of a decision point (undefined for the workflow's own steps). */
const jobPhase = (p: DecisionPoint): Phase | undefined =>
  p === 'plan' || p === 'preflight' || p === 'gate' || p === 'verify' ? undefined : p;

/** Go-style duration (`90s`, `1h30m`) in ms; the input was validated, so this cannot fail. */
function ms(duration: string | undefined, fallback: number): number {
  if (!duration) return fallback;
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  let total = 0;
  for (const m of duration.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(m[1]) * (units[m[2] ?? 's'] ?? 0);
  }
  return total;
}

/** The error text and hint of a failed activity, and how many attempts it made. */
function failureOf(err: unknown, maxAttempts: number): { message: string; hint?: string; attempts: number } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const message = cause instanceof Error ? cause.message : String(cause);
  let hint: string | undefined;
  let attempts = maxAttempts;
  if (cause instanceof ApplicationFailure) {
    const d = cause.details?.[0] as { hint?: string; attempt?: number } | undefined;
    hint = d?.hint;
    if (typeof d?.attempt === 'number') attempts = d.attempt;
  }
  return hint === undefined ? { message, attempts } : { message, hint, attempts };
}

/** The upgrade of one cluster: plan, phases and their jobs in order, the gate, operator decisions. */
export async function upgradeCluster(input: UpgradeClusterInput): Promise<UpgradeResult> {
  const workflowId = workflowInfo().workflowId;
  const state: UpgradeProgress = {
    cluster: typeof input.cluster === 'string' ? input.cluster : '',
    status: 'Planning',
    startedAt: now(),
    updatedAt: now(),
    phases: [],
    steps: [],
    gate: { mode: 'none', state: 'pending' },
    decisions: [],
  };
  let pending: ResolveRequest | undefined;
  let coreUpgraded = false;

  // Handlers first: an update arriving before the first await must find its handler.
  setHandler(progressQuery, () => state, {
    description: 'Plan, per-step state (attempts, last error, timings), gate, operator decisions.',
  });
  const validateResolve = (req: ResolveRequest): void => {
    if (!state.awaiting) throw new Error(`no decision is awaited: the upgrade is ${state.status}`);
    if (typeof req !== 'object' || !['retry', 'skip', 'abort'].includes(req.action)) {
      throw new Error('action must be "retry", "skip" or "abort"');
    }
    if (!state.awaiting.allowed.includes(req.action)) {
      throw new Error(
        `'${req.action}' is not possible here; choose one of: ${state.awaiting.allowed.join(', ')}`,
      );
    }
    if (typeof req.reason !== 'string' || req.reason.trim() === '') {
      throw new Error('a reason is required: say why, it is recorded with the decision');
    }
  };
  setHandler(
    resolveUpdate,
    (req) => {
      pending = req;
      return { accepted: true, action: req.action };
    },
    {
      validator: validateResolve,
      description:
        'Decide a failed step: {"action":"retry"|"skip"|"abort","reason":"why","by":"you"}. ' +
        'Rejected unless the upgrade is AwaitingOperator. abort rolls back the jobs that ran.',
    },
  );
  setHandler(
    resolveSignal,
    (req) => {
      // The signal twin, for clients that cannot send updates: invalid requests are ignored.
      try {
        validateResolve(req);
        pending = req;
      } catch {
        // nothing to do: signals cannot be rejected
      }
    },
    { description: 'Same as the resolve update, for clients without update support (no reply).' },
  );
  setHandler(
    coreUpgradedSignal,
    (arg) => {
      coreUpgraded = true;
      state.gate.detail = `coreUpgraded signalled${arg?.by ? ` by ${arg.by}` : ''}${arg?.note ? `: ${arg.note}` : ''}`;
    },
    {
      description:
        'Send after the helm upgrade of ks-core finished: lets post-upgrade start (gate mode signal).',
    },
  );

  const problems = validateUpgradeInput(input);
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `invalid upgradeCluster input:\n${problems.join('\n')}`,
      'InvalidInput',
    );
  }

  const heartbeatTimeout = ms(input.tuning?.heartbeatTimeout, 60_000);
  const base: ActivityOptions = {
    startToCloseTimeout: '10m',
    heartbeatTimeout,
    retry: { maximumAttempts: 3, initialInterval: '2s', maximumInterval: '30s' },
  };
  const control = proxyActivities<UpgradeActivities>(base);
  // Validators may wait for the extensions-museum sync (watchTimeout, 30m in the defaults).
  const checks = proxyActivities<UpgradeActivities>({ ...base, startToCloseTimeout: '3h' });
  // Gate helm: helm's own --timeout (upgrade.helm.timeout) bounds each step inside; heartbeats
  // notice a dead worker. Set once the core upgrade was tried: abort then rolls core back first.
  const core = proxyActivities<UpgradeActivities>({ ...base, startToCloseTimeout: '3h' });
  let coreUpgradeTried = false;

  const setStatus = (status: UpgradeStatus, phase?: Phase, job?: string): void => {
    state.status = status;
    state.phase = phase;
    state.job = job;
    state.updatedAt = now();
    upsertSearchAttributes([
      { key: UpgradeStatusKey, value: status },
      { key: UpgradePhaseKey, value: phase ?? null },
      { key: UpgradeJobKey, value: job ?? null },
    ]);
  };
  upsertSearchAttributes([{ key: UpgradeClusterKey, value: input.cluster }]);
  setStatus('Planning');
  setCurrentDetails(`**Planning** the upgrade of cluster \`${input.cluster}\`.`);

  const commands = (allowed: OperatorAction[]): string =>
    allowed
      .map(
        (a) =>
          `- **${a}**: \`temporal workflow update execute -w ${workflowId} --name resolve --input '{"action":"${a}","reason":"<why>","by":"<you>"}'\`` +
          ` or \`ks-upgrade resolve ${input.cluster} ${a} --reason "<why>"\``,
      )
      .join('\n');

  /** Waits for the operator (or applies the failure policy). Returns the decision. */
  const decide = async (awaiting: Omit<AwaitingDecision, 'since'>): Promise<Decision> => {
    const record = (req: ResolveRequest, by: string): Decision => {
      const d: Decision = {
        action: req.action,
        reason: req.reason,
        by,
        at: now(),
        phase: awaiting.phase,
        error: awaiting.error,
        ...(awaiting.job ? { job: awaiting.job } : {}),
      };
      state.decisions.push(d);
      return d;
    };
    if (input.failurePolicy === 'abort') {
      return record({ action: 'abort', reason: 'failurePolicy is abort' }, 'failurePolicy');
    }
    state.awaiting = { ...awaiting, since: now() };
    setStatus('AwaitingOperator', jobPhase(awaiting.phase), awaiting.job);
    setCurrentDetails(
      [
        `### Upgrade of \`${input.cluster}\` is waiting for an operator`,
        `Step **${awaiting.phase}${awaiting.job ? ` / ${awaiting.job}` : ''}** failed:`,
        '',
        `> ${awaiting.error.split('\n').join('\n> ')}`,
        '',
        awaiting.hint ? `**How to fix:** ${awaiting.hint}` : '',
        '',
        'Then decide (Update **resolve** in the UI, or):',
        commands(awaiting.allowed),
      ].join('\n'),
    );
    const operatorTimeout = input.tuning?.operatorTimeout ? ms(input.tuning.operatorTimeout, 0) : undefined;
    let answered = true;
    if (operatorTimeout === undefined) await condition(() => pending !== undefined);
    else answered = await condition(() => pending !== undefined, operatorTimeout);
    const req = pending ?? {
      action: 'abort' as const,
      reason: `no operator decision within ${input.tuning?.operatorTimeout ?? ''}`,
    };
    pending = undefined;
    state.awaiting = undefined;
    const decision = record(req, answered ? (req.by ?? 'unknown') : 'operatorTimeout');
    setStatus('Running', jobPhase(awaiting.phase), awaiting.job);
    setCurrentDetails(`**Running**: ${decision.action} chosen by ${decision.by} (${decision.reason}).`);
    return decision;
  };

  const stepOf = (phase: Phase, job: string): StepProgress => {
    let step = state.steps.find((s) => s.phase === phase && s.job === job);
    if (!step) {
      step = { phase, job, state: 'pending', attempts: 0, runs: 0 };
      state.steps.push(step);
    }
    return step;
  };

  /** Runs a job's phase as an activity, with the job's own retry policy and timeout. */
  const runActivity = (pj: PlannedJobSteps, phase: Phase) =>
    proxyActivities<UpgradeActivities>({
      startToCloseTimeout: pj.timeoutMs,
      heartbeatTimeout,
      summary: `${phase} ${pj.name}`,
      retry: {
        maximumAttempts: pj.retry.maximumAttempts,
        initialInterval: pj.retry.initialIntervalMs,
        maximumInterval: pj.retry.maximumIntervalMs,
      },
    }).runJobPhase({ input, job: pj.name, phase });

  const runStep = async (pj: PlannedJobSteps, phase: Phase): Promise<void> => {
    const step = stepOf(phase, pj.name);
    for (;;) {
      step.state = 'running';
      step.runs++;
      step.startedAt = now();
      delete step.lastError;
      setStatus('Running', phase, pj.name);
      setCurrentDetails(`**Running** ${phase} / ${pj.name} on cluster \`${input.cluster}\`.`);
      try {
        const res = await runActivity(pj, phase);
        step.attempts += res.attempt;
        step.outcome = res.outcome;
        step.state = res.outcome === 'succeeded' ? 'succeeded' : 'skipped';
        if (res.reason) step.reason = res.reason;
        step.endedAt = now();
        step.durationMs = Date.parse(step.endedAt) - Date.parse(step.startedAt);
        return;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const f = failureOf(err, pj.retry.maximumAttempts);
        step.attempts += f.attempts;
        step.state = 'failed';
        step.lastError = f.message;
        step.endedAt = now();
        const d = await decide({
          phase,
          job: pj.name,
          error: f.message,
          ...(f.hint ? { hint: f.hint } : {}),
          allowed: ['retry', 'skip', 'abort'],
        });
        if (d.action === 'retry') continue;
        if (d.action === 'skip') {
          step.state = 'skipped';
          step.reason = `skipped by ${d.by}: ${d.reason}`;
          return;
        }
        throw new AbortRequested(d);
      }
    }
  };

  /** Undo: every job that ran (or half ran) and has a rollback, in reverse order. */
  const rollback = async (plan: UpgradePlan | undefined): Promise<StepProgress[]> => {
    if (!plan) return [];
    setStatus('RollingBack');
    setCurrentDetails(`**Rolling back** the jobs that ran on \`${input.cluster}\`.`);
    const touched = new Set(
      state.steps
        .filter((s) => s.phase !== 'rollback' && (s.state === 'succeeded' || s.state === 'failed'))
        .map((s) => s.job),
    );
    const results: StepProgress[] = [];
    if (coreUpgradeTried) results.push(await rollbackCoreStep());
    for (const pj of [...plan.jobs].reverse()) {
      if (!touched.has(pj.name) || !pj.phases.includes('rollback')) continue;
      const step = stepOf('rollback', pj.name);
      step.state = 'running';
      step.runs++;
      step.startedAt = now();
      setStatus('RollingBack', 'rollback', pj.name);
      try {
        const res = await runActivity(pj, 'rollback');
        step.attempts += res.attempt;
        step.state = 'rolled-back';
      } catch (err) {
        // One job's failed rollback must not stop the others from restoring their state.
        const f = failureOf(err, pj.retry.maximumAttempts);
        step.attempts += f.attempts;
        step.state = 'rollback-failed';
        step.lastError = f.message;
      }
      step.endedAt = now();
      results.push(step);
    }
    return results;
  };

  /** Gate helm's undo, before the jobs' rollbacks: ks-core back to its revision before the upgrade. */
  const rollbackCoreStep = async (): Promise<StepProgress> => {
    const step: StepProgress = {
      phase: 'rollback',
      job: 'ks-core',
      state: 'running',
      attempts: 1,
      runs: 1,
      startedAt: now(),
    };
    setStatus('RollingBack', 'rollback', 'ks-core');
    try {
      const res = await core.rollbackCoreRelease({ input, attempt: 1 });
      step.state = 'rolled-back';
      step.reason = res.reason;
    } catch (err) {
      step.state = 'rollback-failed';
      step.lastError = failureOf(err, 3).message;
    }
    step.endedAt = now();
    return step;
  };

  let plan: UpgradePlan | undefined;
  try {
    // Plan: load + validate the config. A config error waits for the operator to fix the file.
    for (;;) {
      try {
        plan = await control.planUpgrade(input);
        state.plan = plan;
        break;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const f = failureOf(err, 3);
        const d = await decide({
          phase: 'plan',
          error: f.message,
          ...(f.hint ? { hint: f.hint } : {}),
          allowed: ['retry', 'abort'],
        });
        if (d.action === 'abort') throw new AbortRequested(d);
      }
    }

    // Preflight: read-only checks before anything changes (docs/preflight.md). `patched` keeps
    // upgrades started by an earlier build replayable.
    if (patched('preflight')) await preflight();

    if (input.dryRun) {
      setStatus('Succeeded');
      setCurrentDetails(
        `**Dry run** of \`${input.cluster}\` planned ${plan.jobs.filter((j) => j.enabled).length} jobs; nothing changed.`,
      );
      return {
        cluster: input.cluster,
        status: 'Succeeded',
        dryRun: true,
        steps: [],
        decisions: state.decisions,
        plan,
        ...(state.preflight ? { preflight: state.preflight } : {}),
      };
    }

    const phases = input.phases ?? [...DEFAULT_PHASES];
    state.phases = phases.map((phase) => ({ phase, state: 'pending' }));
    const gateMode = input.gate ?? plan.gate;
    const gated = phases.includes('pre-upgrade') && phases.includes('post-upgrade');
    state.gate = {
      mode: gated ? gateMode : 'none',
      state: gated && gateMode !== 'none' ? 'pending' : 'passed',
    };

    for (const [index, phase] of phases.entries()) {
      const ph = state.phases[index];
      if (!ph) continue;
      if (phase === 'post-upgrade' && gated && state.gate.state !== 'passed') await passGate(gateMode);

      // The original's validators decide whether the phase runs at all.
      let skipPhase: string | undefined;
      for (;;) {
        try {
          const check = await checks.checkPhase({ input, phase });
          if (!check.ok) skipPhase = check.reason;
          break;
        } catch (err) {
          if (isCancellation(err)) throw err;
          const f = failureOf(err, 3);
          const d = await decide({
            phase,
            error: f.message,
            ...(f.hint ? { hint: f.hint } : {}),
            allowed: ['retry', 'skip', 'abort'],
          });
          if (d.action === 'abort') throw new AbortRequested(d);
          if (d.action === 'skip') break;
        }
      }
      if (skipPhase !== undefined) {
        ph.state = 'skipped';
        ph.reason = skipPhase;
        continue;
      }
      ph.state = 'running';
      // As KubeSphere's upgrade.sh: the v4 CRDs go in after prepare-upgrade, before pre-upgrade.
      if (phase === 'pre-upgrade' && gated && gateMode === 'helm') await applyCoreCrds();
      for (const pj of plan.jobs) {
        if (pj.enabled && pj.phases.includes(phase)) await runStep(pj, phase);
      }
      ph.state = 'done';
    }

    // Verification: is the upgrade really done, judged from the cluster (docs/verification.md).
    if (phases.includes('post-upgrade') && patched('verification')) await verify();

    setStatus('Succeeded');
    setCurrentDetails(
      `**Upgrade of \`${input.cluster}\` succeeded.**${state.verification ? `\n\n${verificationMarkdown(state.verification)}` : ''}`,
    );
    await condition(allHandlersFinished);
    return {
      cluster: input.cluster,
      status: 'Succeeded',
      dryRun: false,
      steps: state.steps,
      decisions: state.decisions,
      plan,
      ...(state.preflight ? { preflight: state.preflight } : {}),
      ...(state.verification ? { verification: state.verification } : {}),
    };
  } catch (err) {
    if (err instanceof AbortRequested) {
      const rolledBack = await CancellationScope.nonCancellable(() => rollback(plan));
      setStatus('Aborted');
      setCurrentDetails(
        `**Aborted** by ${err.decision.by}: ${err.decision.reason}. Rolled back: ${rolledBack.map((s) => `${s.job} (${s.state})`).join(', ') || 'nothing'}.`,
      );
      throw ApplicationFailure.create({
        message: `upgrade of cluster ${input.cluster} aborted by ${err.decision.by}: ${err.decision.reason}`,
        type: 'UpgradeAborted',
        nonRetryable: true,
        details: [
          {
            decision: err.decision,
            rollback: rolledBack.map((s) => ({ job: s.job, state: s.state, error: s.lastError })),
          },
        ],
      });
    }
    if (isCancellation(err)) {
      // Graceful cancel: the running step was cancelled at a safe point; undo what ran.
      await CancellationScope.nonCancellable(async () => {
        await rollback(plan);
        setStatus('Aborted');
        setCurrentDetails(`**Cancelled**; the jobs that ran were rolled back.`);
      });
      throw err;
    }
    setStatus('Failed');
    throw err;
  }

  /** A failed gate step goes to the operator: retry or skip (returned), or abort (thrown). */
  async function gateStepFailed(err: unknown): Promise<'retry' | 'skip'> {
    if (isCancellation(err)) throw err;
    const f = failureOf(err, 3);
    const d = await decide({
      phase: 'gate',
      error: f.message,
      ...(f.hint ? { hint: f.hint } : {}),
      allowed: ['retry', 'skip', 'abort'],
    });
    if (d.action === 'abort') throw new AbortRequested(d);
    return d.action === 'skip' ? 'skip' : 'retry';
  }

  /** Gate helm, first step: the target chart's v4 CRDs (server-side apply). */
  async function applyCoreCrds(): Promise<void> {
    for (;;) {
      setStatus('Running', 'pre-upgrade');
      setCurrentDetails(
        `**Applying** the KubeSphere v4 CRDs of the target ks-core chart on \`${input.cluster}\`.`,
      );
      try {
        const res = await core.applyCoreCrds({ input, attempt: 1 });
        state.gate.detail = `applied ${res.crds} CRDs of ${res.chart}`;
        return;
      } catch (err) {
        if ((await gateStepFailed(err)) === 'skip') return;
      }
    }
  }

  async function passGate(mode: GateMode): Promise<void> {
    if (mode === 'none') return;
    state.gate.state = 'waiting';
    if (mode === 'helm') {
      // Each operator retry is a new attempt: helm runs at most once per attempt (the activity
      // recognises its own earlier run after a crash), and never again once ks-core is at the target.
      for (let attempt = 1; ; attempt++) {
        setStatus('AwaitingCoreUpgrade');
        setCurrentDetails(
          `### \`${input.cluster}\`: upgrading KubeSphere core (helm upgrade ks-core, attempt ${attempt})`,
        );
        try {
          coreUpgradeTried = true;
          const up = await core.upgradeCoreRelease({ input, attempt });
          state.gate.detail = `ks-core revision ${up.revision} (${up.chart}): ${up.reason}`;
          setCurrentDetails(
            `### \`${input.cluster}\`: ks-core revision ${up.revision} deployed; waiting for the rollout`,
          );
          const detectMs = ms(input.tuning?.detectTimeout, 2 * 3_600_000);
          const res = await proxyActivities<UpgradeActivities>({
            ...base,
            startToCloseTimeout: detectMs + 60_000,
          }).waitForCoreUpgrade({ input, timeoutMs: detectMs });
          state.gate.detail += `; ${res.reason}`;
          break;
        } catch (err) {
          if ((await gateStepFailed(err)) === 'skip') break;
        }
      }
    } else if (mode === 'signal') {
      for (;;) {
        setStatus('AwaitingCoreUpgrade');
        setCurrentDetails(
          [
            `### \`${input.cluster}\`: pre-upgrade done, waiting for the KubeSphere v4 core upgrade`,
            'Run the helm upgrade of ks-core (see the upgrade guide), then let post-upgrade start:',
            `\`temporal workflow signal -w ${workflowId} --name coreUpgraded --input '{"by":"<you>"}'\``,
            `or \`ks-upgrade gate ${input.cluster}\``,
          ].join('\n'),
        );
        const timeout = input.tuning?.gateTimeout ? ms(input.tuning.gateTimeout, 0) : undefined;
        let passed = true;
        if (timeout === undefined) await condition(() => coreUpgraded);
        else passed = await condition(() => coreUpgraded, timeout);
        if (passed) break;
        const d = await decide({
          phase: 'gate',
          error: `no coreUpgraded signal within ${input.tuning?.gateTimeout ?? ''}`,
          allowed: ['retry', 'abort'],
        });
        if (d.action === 'abort') throw new AbortRequested(d);
      }
    } else {
      for (;;) {
        setStatus('AwaitingCoreUpgrade');
        setCurrentDetails(`### \`${input.cluster}\`: waiting until KubeSphere v4 core runs (detect gate)`);
        try {
          const detectMs = ms(input.tuning?.detectTimeout, 2 * 3_600_000);
          const res = await proxyActivities<UpgradeActivities>({
            ...base,
            startToCloseTimeout: detectMs + 60_000,
          }).waitForCoreUpgrade({ input, timeoutMs: detectMs });
          state.gate.detail = res.reason;
          break;
        } catch (err) {
          if ((await gateStepFailed(err)) === 'skip') break;
        }
      }
    }
    state.gate.state = 'passed';
    state.gate.passedAt = now();
    setStatus('Running');
  }

  /** Runs the preflight until it passes (the operator fixes and retries) or is aborted. */
  async function preflight(): Promise<void> {
    for (;;) {
      setCurrentDetails(
        `**Preflight** of cluster \`${input.cluster}\`: read-only checks before anything changes.`,
      );
      let failure: { error: string; hint?: string };
      try {
        const report = await control.preflightCluster({ input });
        state.preflight = report;
        // A dry run reports the preflight; it changes nothing, so there is nothing to stop.
        if (report.ok || input.dryRun) return;
        failure = preflightFailure(report);
        setCurrentDetails(`### Preflight of \`${input.cluster}\` failed\n\n${preflightMarkdown(report)}`);
      } catch (err) {
        if (isCancellation(err)) throw err;
        const f = failureOf(err, 3);
        failure = f.hint === undefined ? { error: f.message } : { error: f.message, hint: f.hint };
      }
      const d = await decide({ phase: 'preflight', ...failure, allowed: ['retry', 'abort'] });
      if (d.action === 'abort') throw new AbortRequested(d);
    }
  }

  /** Verifies the cluster; a failed verification waits for the operator (unless skipped in the input). */
  async function verify(): Promise<void> {
    const skip = input.skipChecks?.find((c) => c.name === 'verification');
    for (;;) {
      setStatus('Running');
      setCurrentDetails(`**Verifying** the upgrade of cluster \`${input.cluster}\`.`);
      let failure: { error: string; hint?: string };
      try {
        // Skipped: judge once and record it, without waiting for rollouts to converge.
        const report = await control.verifyCluster({ input, ...(skip ? { waitMs: 0 } : {}) });
        state.verification = report;
        if (report.ok || skip) return;
        failure = verificationFailure(report);
      } catch (err) {
        if (isCancellation(err)) throw err;
        const f = failureOf(err, 3);
        failure = f.hint === undefined ? { error: f.message } : { error: f.message, hint: f.hint };
      }
      const d = await decide({ phase: 'verify', ...failure, allowed: ['retry', 'skip', 'abort'] });
      if (d.action === 'abort') throw new AbortRequested(d);
      if (d.action === 'skip') return;
    }
  }
}
