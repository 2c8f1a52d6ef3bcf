// How a core step runs and fails: progress for the workflow, the original's error prefixes, and
// errors that keep the cause's hint and its (non-)retryability.
import { KsUpgradeError, NON_RETRYABLE_ERROR_NAMES, ValidationError, describeError } from '../../errors.js';
import type { JobContext } from '../types.js';

/**
 * A core step failed. The message starts with the original's prefix ("failed to scale down
 * deployments: …"), so operators who know the Go tool recognise it; the hint is the cause's.
 */
export class CoreStepError extends KsUpgradeError {
  constructor(
    readonly step: string,
    prefix: string,
    cause: unknown,
  ) {
    super(`${prefix}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
      ...(cause instanceof KsUpgradeError && cause.hint ? { hint: cause.hint } : {}),
    });
  }
}

/** Errors the workflow must not retry (a human has to act) pass through unwrapped, type intact. */
function mustKeepType(err: unknown): boolean {
  return (
    err instanceof ValidationError || (err instanceof Error && NON_RETRYABLE_ERROR_NAMES.includes(err.name))
  );
}

/**
 * Runs one step: reports it (heartbeat + log), stops first if the phase was cancelled, and wraps a
 * failure with the original's prefix. Cancellation and non-retryable errors are rethrown as they are.
 */
export async function runStep<T>(
  ctx: JobContext,
  step: string,
  failurePrefix: string,
  fn: () => Promise<T>,
): Promise<T> {
  ctx.signal.throwIfAborted();
  ctx.heartbeat({ step });
  ctx.logger.debug(`[core] ${ctx.phase} step ${step}`);
  try {
    return await fn();
  } catch (err) {
    if (ctx.signal.aborted || mustKeepType(err)) throw err;
    throw new CoreStepError(step, failurePrefix, err);
  }
}

/**
 * Runs `fn` for every item, continuing past failures (as the original aggregates errors in these
 * loops), then fails once with every failure listed. Heartbeats with the progress of `step`.
 */
export async function forEachCollectingErrors<T>(
  ctx: Pick<JobContext, 'signal' | 'heartbeat'>,
  step: string,
  items: readonly T[],
  describe: (item: T) => string,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const failures: string[] = [];
  let first: unknown;
  for (const [i, item] of items.entries()) {
    ctx.signal.throwIfAborted();
    try {
      await fn(item);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      first ??= err;
      failures.push(`${describe(item)}: ${describeError(err)}`);
    }
    ctx.heartbeat({ step, done: i + 1, total: items.length });
  }
  if (failures.length === 1) throw first;
  if (failures.length > 1) {
    const shown = failures.slice(0, 5).join('; ');
    throw new KsUpgradeError(
      `${failures.length} of ${items.length} updates failed: ${shown}${failures.length > 5 ? '; …' : ''}`,
      { cause: first, hint: 'fix the causes listed and run the phase again; updates already made are kept' },
    );
  }
}
