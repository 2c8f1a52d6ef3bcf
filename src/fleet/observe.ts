// How the fleet sees the cluster upgrades it runs or attached to: one activity looks at all of
// them (describe, and the progress query of one that waits for an operator) and returns only when
// something the fleet acts on changed — so a long upgrade costs the fleet's history almost nothing.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { UpgradeProgress } from '../../workflows/messages.js';
import { UpgradeJobKey, UpgradePhaseKey, UpgradeStatusKey } from '../../workflows/search-attributes.js';
import { sleep } from '../util/concurrency.js';

/**
 * What the fleet distinguishes: a running upgrade, one waiting for an operator, one waiting for
 * the core upgrade (gate), a closed one, and one that does not exist.
 */
export type UpgradeClass = 'running' | 'awaiting-operator' | 'awaiting-core' | 'closed' | 'missing';

export interface WatchedUpgrade {
  workflowId: string;
  /** The class the fleet last saw ('' at first). */
  known: string;
  /** Report its closing (an attached upgrade: the fleet has no child result for it). */
  reportClose: boolean;
}

export interface ObserveRequest {
  watch: WatchedUpgrade[];
  pollMs: number;
  maxWaitMs: number;
}

export interface Observation {
  workflowId: string;
  cls: UpgradeClass;
  upgradeStatus?: string;
  phase?: string;
  job?: string;
  awaiting?: { error: string; hint?: string; allowed: string[] };
  closed?: { status: string; error?: string };
}

const MAX_TEXT = 500;
const clip = (s: string): string => (s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT - 1)}…` : s);

/** One look at one upgrade workflow. */
export async function lookAt(client: Client, workflowId: string): Promise<Observation> {
  const handle = client.workflow.getHandle(workflowId);
  let d: Awaited<ReturnType<typeof handle.describe>>;
  try {
    d = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { workflowId, cls: 'missing' };
    throw err;
  }
  const upgradeStatus = d.typedSearchAttributes.get(UpgradeStatusKey);
  const phase = d.typedSearchAttributes.get(UpgradePhaseKey);
  const job = d.typedSearchAttributes.get(UpgradeJobKey);
  const base = {
    workflowId,
    ...(upgradeStatus ? { upgradeStatus } : {}),
    ...(phase ? { phase } : {}),
    ...(job ? { job } : {}),
  };
  const status = d.status.name;
  if (status !== 'RUNNING') {
    let error: string | undefined;
    if (status !== 'COMPLETED') {
      error = await handle.result().then(
        () => undefined,
        (err: unknown) => {
          const cause = (err as { cause?: unknown }).cause;
          return cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err);
        },
      );
    }
    return { ...base, cls: 'closed', closed: { status, ...(error ? { error: clip(error) } : {}) } };
  }
  if (upgradeStatus === 'AwaitingOperator') {
    try {
      const p = await handle.query<UpgradeProgress>('progress');
      if (p.awaiting) {
        return {
          ...base,
          cls: 'awaiting-operator',
          awaiting: {
            error: clip(p.awaiting.error),
            ...(p.awaiting.hint ? { hint: clip(p.awaiting.hint) } : {}),
            allowed: p.awaiting.allowed,
          },
        };
      }
    } catch {
      // no worker answers queries right now: report it running, the next look sees more
    }
  }
  return { ...base, cls: upgradeStatus === 'AwaitingCoreUpgrade' ? 'awaiting-core' : 'running' };
}

/**
 * Looks at the watched upgrades every `pollMs` until one changes class in a way the fleet acts on
 * (a closed child is left out: the fleet gets its result anyway), every watched one is closed, or
 * `maxWaitMs` passed. Returns the changed observations only.
 */
export async function observeUpgrades(
  client: Client,
  req: ObserveRequest,
  o: { heartbeat?: () => void; signal?: AbortSignal; concurrency?: number } = {},
): Promise<Observation[]> {
  const deadline = Date.now() + req.maxWaitMs;
  const limit = o.concurrency ?? 16;
  for (;;) {
    const seen: Observation[] = [];
    for (let i = 0; i < req.watch.length; i += limit) {
      seen.push(
        ...(await Promise.all(req.watch.slice(i, i + limit).map((w) => lookAt(client, w.workflowId)))),
      );
    }
    const changed = seen.filter((obs, i) => {
      const w = req.watch[i];
      if (!w || obs.cls === (w.known || 'running')) return false;
      return w.reportClose || (obs.cls !== 'closed' && obs.cls !== 'missing');
    });
    const allClosed = seen.every((obs) => obs.cls === 'closed' || obs.cls === 'missing');
    if (changed.length > 0 || allClosed || Date.now() >= deadline) return changed;
    o.heartbeat?.();
    await sleep(req.pollMs, o.signal);
  }
}
