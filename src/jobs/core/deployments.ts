// Scaling the v3 control plane down (prepare-upgrade) and waiting, bounded, until it is down.
import { DeploymentResource, type Deployment } from '../../api/core.js';
import { describeError } from '../../errors.js';
import type { ResourceClient } from '../../kube/client.js';
import { WaitTimeoutError, notYet, waitFor, type WaitReporter } from '../../util/wait.js';

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
  /** Where the wait logs and heartbeats, and its cancellation (a job passes its context). */
  reporter?: WaitReporter;
}

/** The control plane did not go away in time. */
export class ScaleDownTimeoutError extends WaitTimeoutError {}

/**
 * Waits until none of the named Deployments in `namespace` has available replicas (a missing one
 * counts as down). Bounded by `timeoutMs` (default 5 min) and the reporter's signal; list errors
 * are retried until the deadline, as in the original.
 */
export async function waitForScaledDown(
  kube: ResourceClient,
  namespace: string,
  names: readonly string[],
  options: ScaleDownWaitOptions = {},
): Promise<void> {
  await waitFor(
    {
      what: `the v3 control plane in ${namespace} (${names.join(', ')}) to scale down`,
      timeoutMs: options.timeoutMs ?? SCALE_DOWN_TIMEOUT_MS,
      intervalMs: FIRST_POLL_MS,
      maxIntervalMs: MAX_POLL_MS,
      check: async () => {
        let found: Deployment[];
        try {
          found = await kube.listAll(DeploymentResource, { namespace });
        } catch (err) {
          // A cancelled step must stop, not wait out the deadline.
          options.reporter?.signal?.throwIfAborted();
          return notYet(`listing the deployments failed (retrying): ${describeError(err)}`);
        }
        const pending = found.flatMap((d) => {
          const name = d.metadata.name ?? '';
          if (!names.includes(name)) return [];
          const why = notScaledDown(d);
          return why === undefined ? [] : [`${name} (${why})`];
        });
        return pending.length === 0 ? true : notYet(`still running: ${pending.join(', ')}`);
      },
      hint:
        `check why the pods do not terminate ('kubectl -n ${namespace} get pods,deployments'; the deployment controller ` +
        'of kube-controller-manager must be running), then run prepare-upgrade again: it continues where it stopped',
      timeoutError: ScaleDownTimeoutError,
    },
    options.reporter,
  );
}
