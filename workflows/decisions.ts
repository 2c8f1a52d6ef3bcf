// Operator decisions: the `resolve` update (validated synchronously, so a refused decision is never
// recorded) and its signal twin, one decision per wait, and the failure policy and operator timeout
// that decide when nobody does. Handlers are registered when the workflow starts, before its first
// await, as the Temporal samples' message-passing workflows do.
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  log,
  patched,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Phase } from '../src/jobs/types.js';
import { tuningMs, type UpgradeClusterInput } from './pure/input.js';
import {
  DECISION_NOT_YET,
  resolveSignal,
  resolveUpdate,
  type AwaitingDecision,
  type Decision,
  type DecisionPoint,
  type OperatorAction,
  type ResolveRequest,
  type UpgradeStatus,
} from './messages.js';
import { now, type UpgradeState } from './state.js';

/** The operator (or the failure policy) chose abort: thrown to the top, where rollback runs. */
export class AbortRequested extends Error {
  constructor(readonly decision: Decision) {
    super(`aborted: ${decision.reason}`);
  }
}

const ACTIONS: readonly OperatorAction[] = ['retry', 'skip', 'abort'];
/**
 * Since this patch a wait for the operator takes decisions only from a workflow task after the one
 * that announced it (see `ask`). Histories recorded before it replay the old way.
 */
export const DECISION_AFTER_ANNOUNCE_PATCH = 'operator-decision-after-announce';
/**
 * History events between the task that announces a wait and the first that may decide it. A task
 * whose events a query applied early starts 1 event on (plus a signal or two that came meanwhile).
 * Any later task starts at least 5 on (task completed, the status upsert, the 1 ms timer started,
 * task scheduled, task started) and 6 once that timer has fired (or with an operator timeout's
 * timer, or a patch marker): a decision sent right after the announcement may be refused once.
 */
const EVENTS_AFTER_ANNOUNCE = 6;
/** Rejected signals kept in progress: enough to see a misbehaving client, bounded for history. */
const MAX_REJECTED_SIGNALS = 20;

/** How a wait ends when no person decides. */
export interface Fallback {
  /** With `failurePolicy: abort`: decided at once, without waiting. */
  policy: OperatorAction;
  /** After `tuning.operatorTimeout`. */
  timeout: OperatorAction;
  /** Status once decided (`Running`, or `RollingBack` during a rollback). */
  resume: UpgradeStatus;
}

/** One pending decision at most; `take` refuses a second one. */
export class Decisions {
  private pending: { request: ResolveRequest; at: string } | undefined;
  /** The wait announced, its decision not yet shown in progress (see `ask`), and when. */
  private announced: { awaiting: AwaitingDecision; historyLength: number } | undefined;

  constructor(
    private readonly state: UpgradeState,
    private readonly input: UpgradeClusterInput,
  ) {
    setHandler(
      resolveUpdate,
      (req) => {
        this.take(req);
        return { accepted: true, action: req.action };
      },
      {
        validator: (req) => {
          this.validate(req);
        },
        description:
          'Decide a failed step: {"action":"retry"|"skip"|"abort","reason":"why","by":"you"}. ' +
          'Rejected unless the upgrade is AwaitingOperator and undecided. abort rolls back the jobs touched.',
      },
    );
    setHandler(
      resolveSignal,
      (req) => {
        // Signals cannot be refused to their sender: a refused one is recorded where people look.
        try {
          this.validate(req);
          this.take(req);
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          const rejected = (this.state.progress.rejectedSignals ??= []);
          rejected.push({ at: now(), signal: 'resolveSignal', ...requestOf(req), reason });
          if (rejected.length > MAX_REJECTED_SIGNALS)
            rejected.splice(0, rejected.length - MAX_REJECTED_SIGNALS);
          log.warn('resolve signal rejected', { reason });
        }
      },
      {
        description:
          'Same as the resolve update, for clients without update support; a refusal shows in progress.',
      },
    );
  }

  /** Throws (the update is rejected, the signal recorded as rejected) unless `req` can be taken now. */
  validate(req: unknown): asserts req is ResolveRequest {
    if (typeof req !== 'object' || req === null || Array.isArray(req)) {
      throw new Error('expected {"action":"retry"|"skip"|"abort","reason":"why","by":"you"}');
    }
    const r = req as Partial<Record<keyof ResolveRequest, unknown>>;
    if (!ACTIONS.includes(r.action as OperatorAction))
      throw new Error('action must be "retry", "skip" or "abort"');
    const awaiting = this.state.progress.awaiting ?? this.decidableAnnouncement();
    if (!awaiting && this.announced) {
      throw ApplicationFailure.create({
        type: DECISION_NOT_YET,
        message: `the upgrade is about to wait for a decision on ${stepOf(this.announced.awaiting)} (within a second): send it again`,
      });
    }
    if (!awaiting) throw new Error(`no decision is awaited: the upgrade is ${this.state.progress.status}`);
    if (this.pending) {
      const p = this.pending.request;
      throw new Error(
        `already decided: ${p.action} by ${p.by ?? 'unknown'} (${p.reason}); one decision per step, it is being applied`,
      );
    }
    if (!awaiting.allowed.includes(r.action as OperatorAction)) {
      throw new Error(
        `'${String(r.action)}' is not possible here; choose one of: ${awaiting.allowed.join(', ')}`,
      );
    }
    if (typeof r.reason !== 'string' || r.reason.trim() === '') {
      throw new Error('a reason is required: say why, it is recorded with the decision');
    }
  }

  /**
   * The announced wait, once a decision may be taken on it before `progress` shows it: in a workflow
   * task after the announcing one. That is the task whose timer ends the announcement when a worker
   * without the run cached replays it: the task that announced has no command after it, so the
   * replay joins it with the decision's task and runs the update's validator before the timer's end.
   */
  private decidableAnnouncement(): AwaitingDecision | undefined {
    const a = this.announced;
    return a && workflowInfo().historyLength >= a.historyLength + EVENTS_AFTER_ANNOUNCE
      ? a.awaiting
      : undefined;
  }

  /** Takes a validated decision; a second one in the same instant is refused here too. */
  private take(req: ResolveRequest): void {
    if (this.pending) {
      throw ApplicationFailure.create({
        type: 'DecisionRejected',
        message: `already decided: ${this.pending.request.action} by ${this.pending.request.by ?? 'unknown'}`,
      });
    }
    this.pending = { request: req, at: now() };
  }

  /**
   * Waits for the decision on `awaiting` (or applies the failure policy, or the operator timeout)
   * and records it once: who, why, when and what it answered.
   */
  async ask(awaiting: Omit<AwaitingDecision, 'since'>, fallback: Fallback): Promise<Decision> {
    const record = (req: ResolveRequest, by: string, at: string): Decision => {
      const d: Decision = {
        action: req.action,
        reason: req.reason,
        by,
        at,
        phase: awaiting.phase,
        error: awaiting.error,
        ...(awaiting.job ? { job: awaiting.job } : {}),
      };
      this.state.progress.decisions.push(d);
      return d;
    };
    if (this.input.failurePolicy === 'abort') {
      return record({ action: fallback.policy, reason: 'failurePolicy is abort' }, 'failurePolicy', now());
    }
    const phase = jobPhase(awaiting.phase);
    const timeoutMs = tuningMs(this.input).operatorTimeout;
    const announceFirst = patched(DECISION_AFTER_ANNOUNCE_PATCH);
    const since = now();
    if (announceFirst) {
      this.announced = { awaiting: { ...awaiting, since }, historyLength: workflowInfo().historyLength };
      this.state.setStatus('AwaitingOperator', phase, awaiting.job, 'searchAttributes');
    } else {
      this.state.progress.awaiting = { ...awaiting, since };
      this.state.setStatus('AwaitingOperator', phase, awaiting.job);
    }
    this.state.details([
      `### Upgrade of \`${this.input.cluster}\` is waiting for an operator`,
      `Step **${stepOf(awaiting)}** failed:`,
      '',
      `> ${awaiting.error.split('\n').join('\n> ')}`,
      '',
      awaiting.hint ? `**How to fix:** ${awaiting.hint}` : '',
      '',
      'Then decide (Update **resolve** in the UI, or):',
      this.commands(awaiting.allowed),
    ]);
    let answered = true;
    if (!announceFirst) {
      if (timeoutMs === undefined) await condition(() => this.pending !== undefined);
      else answered = await condition(() => this.pending !== undefined, timeoutMs);
    } else {
      // Why two workflow tasks: a query can make the worker apply a pending task's events before the
      // task itself (SDK 1.24 core). A decision sent on what that query showed is then taken in the
      // same task, after the commands those events produced, while a replay runs the decision first:
      // the history no longer matches and the run is stuck. So this task sends every command of the
      // wait (search attributes, the timeout timer, a 1 ms timer) and decisions count from a later
      // task only (decidableAnnouncement); the task the short timer ends adds no command, so a
      // decision taken in it or after replays in the order it was taken.
      answered = await CancellationScope.cancellable(async () => {
        const timedOut = timeoutMs === undefined ? undefined : sleep(timeoutMs).then(() => false);
        // Cancelled before the race below listens: not an unhandled rejection (that fails the task).
        timedOut?.catch(() => undefined);
        try {
          await sleep(1);
        } finally {
          this.announced = undefined;
        }
        // From here `progress` says AwaitingOperator and the update takes decisions.
        this.state.progress.awaiting = { ...awaiting, since };
        this.state.setStatus('AwaitingOperator', phase, awaiting.job, 'progress');
        const decided = condition(() => this.pending !== undefined).then(() => true);
        try {
          return await (timedOut ? Promise.race([decided, timedOut]) : decided);
        } finally {
          CancellationScope.current().cancel();
        }
      });
    }
    const taken = this.pending;
    this.pending = undefined;
    this.state.progress.awaiting = undefined;
    const decision =
      answered && taken
        ? record(taken.request, taken.request.by ?? 'unknown', taken.at)
        : record(
            {
              action: fallback.timeout,
              reason: `no operator decision within ${this.input.tuning?.operatorTimeout ?? ''}`,
            },
            'operatorTimeout',
            now(),
          );
    this.state.setStatus(fallback.resume, phase, awaiting.job);
    this.state.details(
      `**${fallback.resume === 'RollingBack' ? 'Rolling back' : 'Running'}**: ${decision.action} chosen by ${decision.by} (${decision.reason}).`,
    );
    return decision;
  }

  private commands(allowed: readonly OperatorAction[]): string {
    const id = workflowInfo().workflowId;
    return allowed
      .map(
        (a) =>
          `- **${a}**: \`temporal workflow update execute -w ${id} --name resolve --input '{"action":"${a}","reason":"<why>","by":"<you>"}'\`` +
          ` or \`ks-upgrade resolve ${this.input.cluster} ${a} --reason "<why>"\``,
      )
      .join('\n');
  }
}

/** `phase / job`, or the decision point alone. */
function stepOf(a: Pick<AwaitingDecision, 'phase' | 'job'>): string {
  return a.job ? `${a.phase} / ${a.job}` : a.phase;
}

/** The job phase of a decision point (undefined for the workflow's own steps). */
function jobPhase(p: DecisionPoint): Phase | undefined {
  return p === 'plan' || p === 'preflight' || p === 'gate' || p === 'verify' ? undefined : p;
}

/** The readable part of a refused request (strings only, cut short): for progress, never a payload. */
function requestOf(req: unknown): { request?: Partial<ResolveRequest> } {
  if (typeof req !== 'object' || req === null) return {};
  const r = req as Record<string, unknown>;
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v.slice(0, 200) : undefined);
  const request: Partial<ResolveRequest> = {};
  const action = text(r.action);
  if (action !== undefined) request.action = action as OperatorAction;
  const reason = text(r.reason);
  if (reason !== undefined) request.reason = reason;
  const by = text(r.by);
  if (by !== undefined) request.by = by;
  return { request };
}
