// Operator decisions: the `resolve` update (validated synchronously, so a refused decision is never
// recorded) and its signal twin, one decision per wait, and the failure policy and operator timeout
// that decide when nobody does. Handlers are registered when the workflow starts, before its first
// await, as the Temporal samples' message-passing workflows do.
import { ApplicationFailure, condition, log, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Phase } from '../src/jobs/types.js';
import { tuningMs, type UpgradeClusterInput } from './pure/input.js';
import {
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
    const awaiting = this.state.progress.awaiting;
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
    this.state.progress.awaiting = { ...awaiting, since: now() };
    this.state.setStatus('AwaitingOperator', phase, awaiting.job);
    this.state.details([
      `### Upgrade of \`${this.input.cluster}\` is waiting for an operator`,
      `Step **${awaiting.phase}${awaiting.job ? ` / ${awaiting.job}` : ''}** failed:`,
      '',
      `> ${awaiting.error.split('\n').join('\n> ')}`,
      '',
      awaiting.hint ? `**How to fix:** ${awaiting.hint}` : '',
      '',
      'Then decide (Update **resolve** in the UI, or):',
      this.commands(awaiting.allowed),
    ]);
    const timeoutMs = tuningMs(this.input).operatorTimeout;
    let answered = true;
    if (timeoutMs === undefined) await condition(() => this.pending !== undefined);
    else answered = await condition(() => this.pending !== undefined, timeoutMs);
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
