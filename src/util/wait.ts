// The one way ks-upgrade waits for something: bounded, cancellable, and never silent. An operator
// watching a step sees what it waits for, how long it may wait, and how it is going — in the log
// and in the activity's heartbeat details (the same text in both) — and a timeout names what was
// awaited, the bound and the last state seen, so "it hung" is never the whole story.
import { KsUpgradeError } from '../errors.js';
import { sleep } from './concurrency.js';

/** Progress as a wait reports it; the same shape as a job's `JobProgress`. */
export interface WaitProgress {
  step?: string;
  message?: string;
  done?: number;
  total?: number;
}

/**
 * Where a wait reports to. A job's `JobContext` is one (pass `ctx`); an activity builds one from
 * its context; library callers pass what they have (everything is optional).
 */
export interface WaitReporter {
  readonly logger?: { info(message: string, fields?: Record<string, unknown>): void };
  heartbeat?(progress?: WaitProgress): void;
  readonly signal?: AbortSignal;
}

/** The state of a check that is not satisfied yet; made with {@link notYet}. */
export class NotYet {
  constructor(readonly state: string) {}
}

/** What a check returns while the awaited condition does not hold: the state it saw, in words. */
export function notYet(state: string): NotYet {
  return new NotYet(state);
}

/** What a timed-out wait was about, for the error. */
export interface WaitTimeout {
  what: string;
  timeoutMs: number;
  /** The state the last check saw. */
  last: string;
}

/**
 * A wait reached its bound. Names what was awaited, the bound and the last state seen. Specific
 * waits throw subclasses (their names stay the failure types the workflow sees).
 */
export class WaitTimeoutError extends KsUpgradeError {
  readonly what: string;
  readonly timeoutMs: number;
  readonly last: string;
  constructor(t: WaitTimeout, options: { hint?: string; cause?: unknown } = {}) {
    super(
      `timed out after ${formatDuration(t.timeoutMs)} waiting for ${t.what}; last seen: ${t.last}`,
      options,
    );
    this.what = t.what;
    this.timeoutMs = t.timeoutMs;
    this.last = t.last;
  }
}

/** A bounded wait. */
export interface WaitSpec<T> {
  /** What is awaited, as the end of "waiting for …", e.g. `InstallPlan devops to be Installed`. */
  what: string;
  /** The bound. */
  timeoutMs: number;
  /** Time between checks (default 1 s). */
  intervalMs?: number;
  /** When set, the interval doubles after each check up to this (fast first checks, calm later). */
  maxIntervalMs?: number;
  /**
   * Checks once: the result when the condition holds, or {@link notYet} with the state seen.
   * An error it throws ends the wait (catch the ones worth retrying and return `notYet`).
   */
  check: () => Promise<T | NotYet>;
  /** How to fix the cause of a timeout, for the operator. */
  hint?: string;
  /** How often a "still waiting" line is logged (default 30 s; heartbeats go with every check). */
  logEveryMs?: number;
  /** The error a timeout throws (a subclass of {@link WaitTimeoutError}). */
  timeoutError?: new (t: WaitTimeout, options?: { hint?: string }) => WaitTimeoutError;
}

/** `90s` → `1m30s`; below a minute in seconds (with a decimal below 10 s). */
export function formatDuration(ms: number): string {
  if (ms < 10_000) return `${Math.round(ms / 100) / 10}s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  const rest = s % 60;
  if (m < 60) return rest === 0 ? `${m}m` : `${m}m${rest}s`;
  const h = Math.floor(m / 60);
  return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
}

/**
 * Waits until `check` returns something other than {@link notYet}, and returns that. Checks at
 * once; if the condition holds nothing is logged. Otherwise it logs what it waits for and its bound,
 * heartbeats on every check and logs a "still waiting" line every `logEveryMs` (both carry the same
 * text: what, elapsed of bound, the state seen), logs how long it took, and on timeout throws a
 * {@link WaitTimeoutError} naming what, the bound and the last state. The last check lands on the
 * deadline; `reporter.signal` ends the wait at once.
 */
export async function waitFor<T>(spec: WaitSpec<T>, reporter: WaitReporter = {}): Promise<T> {
  const started = Date.now();
  const deadline = started + spec.timeoutMs;
  const bound = formatDuration(spec.timeoutMs);
  const logEvery = spec.logEveryMs ?? 30_000;
  let interval = Math.max(1, spec.intervalMs ?? 1000);
  let lastLogged = started;
  let checks = 0;
  for (;;) {
    reporter.signal?.throwIfAborted();
    const result = await spec.check();
    checks++;
    const now = Date.now();
    if (!(result instanceof NotYet)) {
      if (checks > 1) reporter.logger?.info(`waited ${formatDuration(now - started)} for ${spec.what}`);
      return result;
    }
    const text = `waiting for ${spec.what} (${formatDuration(now - started)} of ${bound}): ${result.state}`;
    if (now >= deadline) {
      const t = { what: spec.what, timeoutMs: spec.timeoutMs, last: result.state };
      const options = spec.hint === undefined ? {} : { hint: spec.hint };
      throw spec.timeoutError ? new spec.timeoutError(t, options) : new WaitTimeoutError(t, options);
    }
    if (checks === 1) {
      reporter.logger?.info(`waiting up to ${bound} for ${spec.what}: ${result.state}`);
    } else if (now - lastLogged >= logEvery) {
      reporter.logger?.info(text);
      lastLogged = now;
    }
    reporter.heartbeat?.({ step: `wait for ${spec.what}`, message: text });
    await sleep(Math.min(interval, deadline - now), reporter.signal);
    if (spec.maxIntervalMs !== undefined) interval = Math.min(interval * 2, spec.maxIntervalMs);
  }
}
