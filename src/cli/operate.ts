// `ks-upgrade status|resolve|gate`: look at an upgrade and act on it, from any terminal.
import {
  ApplicationFailure,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { ValidationError } from '../errors.js';
import { upgradeWorkflowId } from '../upgrade/input.js';
import {
  DECISION_NOT_YET,
  coreUpgradedSignal,
  progressQuery,
  resolveUpdate,
  type OperatorAction,
  type ResolveRequest,
  type StepProgress,
  type UpgradeProgress,
  type UpgradeResult,
} from '../../workflows/messages.js';
import { UpgradeJobKey, UpgradePhaseKey, UpgradeStatusKey } from '../../workflows/search-attributes.js';
import {
  EXIT,
  RUN_COMMAND,
  operatorIdentity,
  temporalTarget,
  type CommonOptions,
  type Io,
  type TemporalTarget,
} from './common.js';
import {
  describeAttempt,
  pendingAttempts,
  withPendingAttempt,
  type PendingAttempt,
} from './status-pending.js';

/** How an upgrade that is no longer running ended, in words. */
const FINISHED: Readonly<Record<string, string>> = {
  COMPLETED: 'it succeeded',
  FAILED: 'it failed (or was aborted)',
  CANCELLED: 'it was cancelled',
  TERMINATED: 'it was terminated',
  TIMED_OUT: 'it timed out',
};

/**
 * A signal or update to an upgrade that has finished fails as "not found"; say that it finished,
 * and how, instead of "no upgrade". Undefined when there really is no such workflow.
 */
async function finishedError(
  handle: WorkflowHandle,
  cluster: string,
  nothingLeft: string,
): Promise<ValidationError | undefined> {
  let status: string;
  try {
    status = (await handle.describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
  if (status === 'RUNNING') return undefined;
  return new ValidationError(
    `the upgrade of cluster ${cluster} has already finished: ${FINISHED[status] ?? status.toLowerCase()}; ${nothingLeft}`,
    {
      hint: `see 'ks-upgrade status ${cluster}'; 'ks-upgrade run${status === 'COMPLETED' ? ' --rerun' : ''}' starts it again`,
    },
  );
}

async function withHandle<T>(
  cluster: string,
  o: CommonOptions,
  io: Io,
  fn: (h: ReturnType<typeof getHandle>, target: TemporalTarget) => Promise<T>,
  /** For commands that act on a running upgrade: what a finished one leaves nothing of. */
  nothingLeft?: string,
) {
  const target = await temporalTarget(o, io);
  try {
    const handle = getHandle(target.client, cluster);
    if (nothingLeft !== undefined) {
      const finished = await finishedError(handle, cluster, nothingLeft);
      if (finished) throw finished;
      noWorkerCheck(target, cluster);
    }
    return await fn(handle, target);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      const finished =
        nothingLeft === undefined
          ? undefined
          : await finishedError(getHandle(target.client, cluster), cluster, nothingLeft);
      throw (
        finished ??
        new ValidationError(`no upgrade of cluster '${cluster}' (workflow ${upgradeWorkflowId(cluster)})`, {
          hint: 'check the cluster name, and --temporal-address / --state-dir point where the upgrade runs',
        })
      );
    }
    throw err;
  } finally {
    await target.close();
  }
}

/** The `ks-upgrade run` processes using the embedded server: the upgrade's worker runs in them. */
function attachedRuns(target: TemporalTarget): string[] {
  return (target.embedded?.otherUsers() ?? [])
    .filter((u) => u.command === RUN_COMMAND)
    .map((u) => `${u.command} (pid ${u.pid})`);
}

/**
 * On the embedded server, the only worker is inside a `ks-upgrade run`. Without one, a decision
 * would wait for a worker forever (an update needs one to be accepted): say what to do instead.
 */
function noWorkerCheck(target: TemporalTarget, cluster: string): void {
  if (!target.embedded || attachedRuns(target).length > 0) return;
  throw new ValidationError(
    `no worker runs the upgrade of cluster ${cluster}: on the embedded Temporal server it runs inside ` +
      '`ks-upgrade run`, and none is running',
    {
      hint: 'start `ks-upgrade run` with the options of the upgrade: it resumes it and shows what it waits for',
    },
  );
}

/** For `status` on the embedded server: whether it was kept running, and who runs the upgrade. */
function embeddedLines(target: TemporalTarget, running: boolean): string {
  const e = target.embedded;
  if (!e) return '';
  const others = e.otherUsers();
  const server = e.started
    ? 'embedded Temporal server: not running before this command (stopped when the last command using it ended); ' +
      `started for this command and stopped after it (state: ${e.stateDir})`
    : `embedded Temporal server: running (pid ${e.server.pid}), kept for ${
        others.map((u) => `${u.command} (pid ${u.pid})`).join(', ') || 'another command'
      }`;
  if (!running) return `${server}\n`;
  const runs = attachedRuns(target);
  const worker =
    runs.length > 0
      ? `the upgrade's worker runs in ${runs.join(', ')}`
      : 'no worker runs this upgrade: it continues when `ks-upgrade run` resumes it';
  return `${server}\n${worker}\n`;
}

function getHandle(client: Client, cluster: string) {
  return client.workflow.getHandle(upgradeWorkflowId(cluster));
}

/** The exit code of `status` for an upgrade status (docs/cli.md). */
function statusExit(status: string | undefined): number {
  if (status === 'AwaitingOperator') return EXIT.awaitingOperator;
  return status === 'Failed' || status === 'Aborted' ? EXIT.failed : EXIT.ok;
}

/**
 * What the server knows without a worker: the search attributes the workflow keeps up to date.
 * The progress query needs a worker, and on the embedded server there is none between two runs.
 */
function progressFromSearchAttributes(cluster: string, d: WorkflowExecutionDescription) {
  const sa = d.typedSearchAttributes;
  return {
    cluster,
    status: sa.get(UpgradeStatusKey) ?? d.status.name,
    phase: sa.get(UpgradePhaseKey),
    job: sa.get(UpgradeJobKey),
    workflowStatus: d.status.name,
  };
}

/** The status line and step table of an upgrade, from its progress or its result. */
function writeSteps(
  io: Io,
  p: Pick<UpgradeProgress, 'cluster' | 'status' | 'phase' | 'job'> & {
    steps: readonly (StepProgress & { currentAttempt?: number })[];
  },
): void {
  io.stdout.write(
    `cluster ${p.cluster}: ${p.status}${p.phase ? ` (${p.phase}${p.job ? ` / ${p.job}` : ''})` : ''}\n`,
  );
  for (const s of p.steps) {
    const attempts =
      s.currentAttempt !== undefined ? `attempt ${s.currentAttempt}` : `attempts ${s.attempts}`;
    io.stdout.write(
      `  ${s.state.padEnd(15)} ${s.phase.padEnd(16)} ${s.job.padEnd(22)} ${attempts}${s.lastError ? `  ${s.lastError}` : ''}\n`,
    );
  }
}

/** One line per activity being retried (or waiting for its next attempt). */
function writePending(io: Io, pending: readonly PendingAttempt[]): void {
  for (const a of pending) {
    const what = describeAttempt(a);
    if (what) io.stdout.write(`retrying ${a.activity} (${a.activityId}, ${a.state}): ${what}\n`);
  }
}

function writeDecisions(io: Io, decisions: UpgradeProgress['decisions']): void {
  for (const d of decisions) io.stdout.write(`decision: ${d.action} by ${d.by} at ${d.at}: ${d.reason}\n`);
}

/** The upgrade status word of a workflow that ended without a result. */
const ENDED_STATUS: Readonly<Record<string, string>> = {
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
  TERMINATED: 'Terminated',
  TIMED_OUT: 'TimedOut',
};

/**
 * `status` of an upgrade that is no longer running. Its result (or failure) is in the workflow
 * history, which the server returns without a worker; the progress query would need one and,
 * with none polling, only fails ("Failed to query Workflow").
 */
async function finishedStatus(
  h: WorkflowHandle,
  cluster: string,
  description: WorkflowExecutionDescription,
  o: { json?: boolean },
  io: Io,
  extra: string,
): Promise<number> {
  const workflowStatus = description.status.name;
  let result: UpgradeResult | undefined;
  let error: string | undefined;
  try {
    result = (await h.result()) as UpgradeResult;
  } catch (err) {
    // WorkflowFailedError: the cause is the failure (an application error, the terminate reason…).
    const cause = err instanceof WorkflowFailedError ? err.cause : err;
    error = cause instanceof Error ? cause.message : String(cause);
  }
  if (result) {
    if (o.json) {
      io.stdout.write(`${JSON.stringify({ ...result, workflowStatus }, null, 2)}\n`);
      io.stderr.write(extra);
    } else {
      writeSteps(io, result);
      writeDecisions(io, result.decisions);
      io.stdout.write(extra);
    }
    return statusExit(result.status);
  }
  const q = progressFromSearchAttributes(cluster, description);
  // The search attribute keeps the last status the workflow set (Aborted, Failed); a workflow
  // stopped from outside (terminated, cancelled, timed out) never set one.
  const status =
    q.status === 'Aborted' || q.status === 'Failed' ? q.status : (ENDED_STATUS[workflowStatus] ?? 'Failed');
  if (o.json) {
    io.stdout.write(`${JSON.stringify({ ...q, status, steps: null, error }, null, 2)}\n`);
    io.stderr.write(extra);
  } else {
    io.stdout.write(
      `cluster ${cluster}: ${status}${q.phase ? ` (${q.phase}${q.job ? ` / ${q.job}` : ''})` : ''}\n` +
        `  the workflow ended: ${FINISHED[workflowStatus] ?? workflowStatus.toLowerCase()}${error ? `: ${error}` : ''}\n` +
        extra,
    );
  }
  return EXIT.failed;
}

export async function statusCommand(
  cluster: string,
  o: CommonOptions & { json?: boolean },
  io: Io,
): Promise<number> {
  return withHandle(cluster, o, io, async (h, target) => {
    const description = await h.describe();
    const running = description.status.name === 'RUNNING';
    const extra = embeddedLines(target, running);
    if (!running) return finishedStatus(h, cluster, description, o, io, extra);
    // The current attempt and last failure of the step's activity: the workflow learns of them
    // only when the activity ends, the server's description has them while it retries.
    const pending = pendingAttempts(description);
    // Without a run attached, nothing on the embedded server can answer a query: do not wait for one.
    let p: UpgradeProgress | undefined;
    let unanswered: string | undefined;
    if (target.embedded && attachedRuns(target).length === 0) {
      unanswered = 'no worker is running';
    } else {
      try {
        p = await h.query(progressQuery);
      } catch (err) {
        unanswered = `the workers did not answer: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    if (p === undefined) {
      const q = progressFromSearchAttributes(cluster, description);
      if (o.json) {
        io.stdout.write(
          `${JSON.stringify({ ...q, steps: null, unanswered, pendingActivities: pending }, null, 2)}\n`,
        );
        io.stderr.write(extra);
      } else {
        io.stdout.write(
          `cluster ${cluster}: ${q.status}${q.phase ? ` (${q.phase}${q.job ? ` / ${q.job}` : ''})` : ''}\n` +
            `  (from the workflow's search attributes; the steps need the progress query, and ${unanswered ?? ''})\n`,
        );
        writePending(io, pending);
        io.stdout.write(extra);
      }
      return statusExit(q.status);
    }
    const steps = withPendingAttempt(p.steps, pending);
    if (o.json) {
      io.stdout.write(`${JSON.stringify({ ...p, steps, pendingActivities: pending }, null, 2)}\n`);
      io.stderr.write(extra);
    } else {
      writeSteps(io, { ...p, steps });
      writePending(io, pending);
      if (p.awaiting)
        io.stdout.write(`awaiting a decision (${p.awaiting.allowed.join('/')}): ${p.awaiting.error}\n`);
      writeDecisions(io, p.decisions);
      io.stdout.write(extra);
    }
    return statusExit(p.status);
  });
}

/**
 * Sends the decision; sent again (up to 10 s) while the upgrade says it is about to wait, which it
 * does for one workflow task after the status says AwaitingOperator.
 */
export async function resolveSoon(
  h: WorkflowHandle,
  req: ResolveRequest,
): Promise<{ accepted: true; action: OperatorAction }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await h.executeUpdate(resolveUpdate, { args: [req] });
    } catch (err) {
      const notYet =
        err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure
          ? err.cause.type === DECISION_NOT_YET
          : false;
      if (!notYet || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export async function resolveCommand(
  cluster: string,
  action: string,
  o: CommonOptions & { reason?: string; by?: string },
  io: Io,
): Promise<number> {
  if (!['retry', 'skip', 'abort'].includes(action)) {
    throw new ValidationError(`unknown decision '${action}'`, { hint: 'use retry, skip or abort' });
  }
  if (!o.reason)
    throw new ValidationError('--reason is required', { hint: 'say why: it is recorded with the decision' });
  const reason = o.reason;
  return withHandle(
    cluster,
    o,
    io,
    async (h) => {
      try {
        await resolveSoon(h, { action: action as OperatorAction, reason, by: o.by ?? operatorIdentity() });
      } catch (err) {
        if (
          err instanceof WorkflowUpdateFailedError ||
          (err instanceof Error && /rejected|validat/i.test(err.message))
        ) {
          const why =
            err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
          io.stderr.write(`ks-upgrade: the upgrade refused '${action}': ${why}\n`);
          return EXIT.usage;
        }
        throw err;
      }
      io.stdout.write(`${action} sent to the upgrade of ${cluster}\n`);
      return EXIT.ok;
    },
    'there is no decision to make',
  );
}

export async function gateCommand(
  cluster: string,
  o: CommonOptions & { note?: string },
  io: Io,
): Promise<number> {
  return withHandle(
    cluster,
    o,
    io,
    async (h) => {
      await h.signal(coreUpgradedSignal, { by: operatorIdentity(), ...(o.note ? { note: o.note } : {}) });
      io.stdout.write(`coreUpgraded sent to the upgrade of ${cluster}: post-upgrade may start\n`);
      return EXIT.ok;
    },
    'there is no gate to open',
  );
}
