// Riding out a server that is away (an API server restarted or upgraded, S3 down for a minute): a
// step that failed because a server did not answer waits for it to answer again before it reports
// the failure, so the retry that follows runs against a server that is back instead of burning
// the step's few attempts during the outage.
import { describeError, outageOf } from '../errors.js';
import { notYet, waitFor, WaitTimeoutError, type WaitReporter } from './wait.js';

/** How long a failed step waits for a server that did not answer, by default. */
export const OUTAGE_WAIT_MS = 5 * 60_000;

/**
 * When `err` comes from a server that did not answer (an error carrying an `outage`), waits
 * (logged, heartbeating, bounded) until the server answers again. Returns whether it did; never
 * throws, except when the wait is aborted. The caller rethrows `err` either way: this only decides
 * when.
 */
export async function waitOutOutage(
  err: unknown,
  reporter: WaitReporter,
  timeoutMs = OUTAGE_WAIT_MS,
): Promise<boolean> {
  const outage = outageOf(err);
  if (!outage) return false;
  try {
    await waitFor(
      {
        what: `${outage.server} to answer again (${describeError(err)})`,
        timeoutMs,
        intervalMs: 1_000,
        maxIntervalMs: 5_000,
        check: async () => ((await outage.probe()) ? true : notYet('no answer')),
        hint: 'bring the server back; the step is retried when it answers',
      },
      reporter,
    );
    return true;
  } catch (waitErr) {
    if (waitErr instanceof WaitTimeoutError) return false;
    throw waitErr;
  }
}
