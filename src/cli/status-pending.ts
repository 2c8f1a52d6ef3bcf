// What the server knows about the activity a step is running, for `status` and the follow output:
// while an activity fails and is retried, the workflow's own step still says `running` with no
// error (it learns of the attempts only when the activity ends), but the workflow description's
// pending activities carry the current attempt, the last failure and the last heartbeat.
import type { WorkflowExecutionDescription } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { StepProgress } from '../../workflows/messages.js';
import type { JobProgress } from '../jobs/types.js';

/** One pending activity of the upgrade workflow, as `status --json` shows it. */
export interface PendingAttempt {
  activity: string;
  activityId: string;
  /** The attempt running now or next (1 = the first). */
  attempt: number;
  /** 0 = unlimited. */
  maximumAttempts: number;
  /** `scheduled` (waiting for its retry or a worker), `started`, `cancel-requested`, `paused`… */
  state: string;
  /** The previous attempt's failure message. */
  lastFailure?: string;
  /** The last heartbeat's details (`{step, done, total, message}` for job phases). */
  lastHeartbeat?: JobProgress;
  nextAttemptAt?: string;
}

const STATES: Readonly<Record<number, string>> = {
  1: 'scheduled',
  2: 'started',
  3: 'cancel-requested',
  4: 'paused',
  5: 'pause-requested',
};

function isoOf(t: { seconds?: unknown; nanos?: number | null } | null | undefined): string | undefined {
  if (!t || t.seconds === undefined || t.seconds === null) return undefined;
  const seconds = Number(t.seconds);
  return Number.isFinite(seconds) ? new Date(seconds * 1000 + (t.nanos ?? 0) / 1e6).toISOString() : undefined;
}

/** The pending activities of a workflow description. */
export function pendingAttempts(d: WorkflowExecutionDescription): PendingAttempt[] {
  return (d.raw.pendingActivities ?? []).map((a) => {
    const payload = a.heartbeatDetails?.payloads?.[0];
    let lastHeartbeat: JobProgress | undefined;
    try {
      lastHeartbeat = payload ? defaultPayloadConverter.fromPayload<JobProgress>(payload) : undefined;
    } catch {
      lastHeartbeat = undefined;
    }
    const nextAttemptAt = isoOf(a.nextAttemptScheduleTime);
    return {
      activity: a.activityType?.name ?? '',
      activityId: a.activityId ?? '',
      attempt: a.attempt ?? 1,
      maximumAttempts: a.maximumAttempts ?? 0,
      state: STATES[a.state ?? 0] ?? 'unknown',
      ...(a.lastFailure?.message ? { lastFailure: a.lastFailure.message } : {}),
      ...(lastHeartbeat !== undefined ? { lastHeartbeat } : {}),
      ...(nextAttemptAt ? { nextAttemptAt } : {}),
    };
  });
}

/**
 * The job-phase activity of the running step: job phases run one at a time, so with one running
 * step the one pending `runJobPhase` is its activity.
 */
export function attemptOfRunningStep(
  steps: readonly StepProgress[],
  pending: readonly PendingAttempt[],
): { step: StepProgress; attempt: PendingAttempt } | undefined {
  const running = steps.filter((s) => s.state === 'running');
  const phases = pending.filter((p) => p.activity === 'runJobPhase');
  const step = running[0];
  const attempt = phases[0];
  return running.length === 1 && phases.length === 1 && step && attempt ? { step, attempt } : undefined;
}

/** `attempt 3/5, last failure: …, next attempt at …` — undefined for a first attempt with no failure. */
export function describeAttempt(a: PendingAttempt): string | undefined {
  if (a.attempt <= 1 && !a.lastFailure) return undefined;
  const of = a.maximumAttempts > 0 ? `/${a.maximumAttempts}` : '';
  return (
    `attempt ${a.attempt}${of}` +
    (a.lastFailure ? `, last failure: ${a.lastFailure}` : '') +
    (a.state === 'scheduled' && a.nextAttemptAt ? `, next attempt at ${a.nextAttemptAt}` : '')
  );
}

/** The steps with the running one's current attempt and last failure filled in from `pending`. */
export function withPendingAttempt(
  steps: readonly StepProgress[],
  pending: readonly PendingAttempt[],
): (StepProgress & { currentAttempt?: number })[] {
  const match = attemptOfRunningStep(steps, pending);
  return steps.map((s) =>
    match && s === match.step
      ? {
          ...s,
          currentAttempt: match.attempt.attempt,
          ...(match.attempt.lastFailure ? { lastError: match.attempt.lastFailure } : {}),
        }
      : s,
  );
}
