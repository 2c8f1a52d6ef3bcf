/**
 * Base of every error ks-upgrade raises on purpose. `name` is stable and meaningful: activities
 * turn it into the Temporal failure type, and the workflow decides from it whether retrying can
 * help (see {@link NON_RETRYABLE_ERROR_NAMES}). `hint` tells the operator how to fix the cause.
 */
export class KsUpgradeError extends Error {
  readonly hint: string | undefined;
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options?.hint;
  }
}

/** A server that did not answer, and how to ask it once whether it answers again (never throws). */
export interface Outage {
  /** The server, in words: `the API server https://…`, `S3 at http://…`. */
  server: string;
  probe(): Promise<boolean>;
}

/** The {@link Outage} an error (or one of its causes) carries, if any. */
export function outageOf(err: unknown): Outage | undefined {
  const seen = new Set<unknown>();
  for (let e: unknown = err; e instanceof Error && !seen.has(e); e = e.cause) {
    seen.add(e);
    const o = (e as { outage?: Outage }).outage;
    if (o) return o;
  }
  return undefined;
}

/** Input the operator must fix (config, workflow input, CLI flags). Retrying cannot help. */
export class ValidationError extends KsUpgradeError {}

/** Error names that make an activity fail without retries: only a change by a human can help. */
export const NON_RETRYABLE_ERROR_NAMES: readonly string[] = [
  'ValidationError',
  'ConfigError',
  'IntegrityError',
  'EncryptionKeyError',
  'PlaintextSecretError',
  'UnsafeKeyError',
  'KeyConflictError',
  // Gate helm: a release helm left failed or busy, or a cluster that cannot take the chart, needs
  // an operator's decision (retry = a new attempt that runs helm again, or abort = roll back).
  'HelmReleaseFailedError',
  'HelmReleaseBusyError',
  'CoreReleaseMissingError',
  'CoreUpgradeConflictError',
];

/** The message, and the fix when there is one, as one line for logs and CLI output. */
export function describeError(err: unknown): string {
  if (err instanceof KsUpgradeError && err.hint) return `${err.message} (fix: ${err.hint})`;
  if (err instanceof Error) return err.message;
  return String(err);
}
