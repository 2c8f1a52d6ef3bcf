// Scaling the v3 control plane down (prepare-upgrade) and waiting, bounded, until it is down.
import { DeploymentResource, type Deployment } from '../../api/core.js';
import { KsUpgradeError, describeError } from '../../errors.js';
import type { ResourceClient } from '../../kube/client.js';
import { sleep } from '../../util/concurrency.js';
import type { Logger } from '../types.js';

/** The original waited 5 minutes for the control plane to go away. */
export const SCALE_DOWN_TIMEOUT_MS = 5 * 60_000;
/** Polls start fast (the usual case is a few seconds) and back off to the original's 5 s period. */
const FIRST_POLL_MS = 250;
const MAX_POLL_MS = 5_000;

/** Why a Deployment is not down yet, or undefined when it is (or is gone). */
export function notScaledDown(d: Deployment): string | undefined {
  const available = d.status?.availableReplicas ?? 0;
  if (available > 0) return `${available} available`;
  // A status the controller wrote before it saw the scale-down says nothing about the new spec.
  const observed = d.status?.observedGeneration;
  const generation = d.metadata.generation;
  if (observed !== undefined && generation !== undefined && observed < generation) {
    return `status not observed yet (generation ${generation}, observed ${observed})`;
  }
  return undefined;
}

/** Options of {@link waitForScaledDown}. */
export interface ScaleDownWaitOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called on every poll with what is still running (activities heartbeat here). */
  onPoll?: (pending: string[]) => void;
  logger?: Logger;
}

/** The control plane did not go away in time. */
export class ScaleDownTimeoutError extends KsUpgradeError {}

/**
 * Waits until none of the named Deployments in `namespace` has available replicas (a missing one
 * counts as down). Bounded by `timeoutMs` (default 5 min) and `signal`; list errors are retried
 * until the deadline, as in the original.
 */
export async function waitForScaledDown(
  kube: ResourceClient,
  namespace: string,
  names: readonly string[],
  options: ScaleDownWaitOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? SCALE_DOWN_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let interval = FIRST_POLL_MS;
  let pending: string[] = [...names];
  let lastError: unknown;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const found = await kube.listAll(DeploymentResource, { namespace });
      pending = found.flatMap((d) => {
        const name = d.metadata.name ?? '';
        if (!names.includes(name)) return [];
        const why = notScaledDown(d);
        return why === undefined ? [] : [`${name} (${why})`];
      });
      lastError = undefined;
      if (pending.length === 0) return;
    } catch (err) {
      // A cancelled step must stop, not wait out the deadline.
      options.signal?.throwIfAborted();
      lastError = err;
      options.logger?.warn('listing deployments failed while waiting for scale-down; retrying', {
        error: describeError(err),
      });
    }
    options.onPoll?.(pending);
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new ScaleDownTimeoutError(
        `the v3 control plane in ${namespace} is still running after ${Math.round(timeoutMs / 1000)}s: ${pending.join(', ')}` +
          (lastError === undefined ? '' : `; last error: ${describeError(lastError)}`),
        {
          hint:
            `check why the pods do not terminate ('kubectl -n ${namespace} get pods,deployments'; the deployment controller ` +
            'of kube-controller-manager must be running), then run prepare-upgrade again: it continues where it stopped',
        },
      );
    }
    // The last poll lands on the deadline, so a slow scale-down gets its full time.
    await sleep(Math.min(interval, left), options.signal);
    interval = Math.min(interval * 2, MAX_POLL_MS);
  }
}
