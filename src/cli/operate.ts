// `ks-upgrade status|resolve|gate`: look at an upgrade and act on it, from any terminal.
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ValidationError } from '../errors.js';
import { upgradeWorkflowId } from '../upgrade/input.js';
import {
  coreUpgradedSignal,
  progressQuery,
  resolveUpdate,
  type OperatorAction,
} from '../../workflows/messages.js';
import { EXIT, operatorIdentity, temporalTarget, type CommonOptions, type Io } from './common.js';

async function withHandle<T>(
  cluster: string,
  o: CommonOptions,
  io: Io,
  fn: (h: ReturnType<typeof getHandle>) => Promise<T>,
) {
  const target = await temporalTarget(o, io);
  try {
    return await fn(getHandle(target.client, cluster));
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new ValidationError(
        `no upgrade of cluster '${cluster}' (workflow ${upgradeWorkflowId(cluster)})`,
        {
          hint: 'check the cluster name, and --temporal-address / --state-dir point where the upgrade runs',
        },
      );
    }
    throw err;
  } finally {
    await target.close();
  }
}

function getHandle(client: Client, cluster: string) {
  return client.workflow.getHandle(upgradeWorkflowId(cluster));
}

export async function statusCommand(
  cluster: string,
  o: CommonOptions & { json?: boolean },
  io: Io,
): Promise<number> {
  return withHandle(cluster, o, io, async (h) => {
    const p = await h.query(progressQuery);
    if (o.json) {
      io.stdout.write(`${JSON.stringify(p, null, 2)}\n`);
    } else {
      io.stdout.write(
        `cluster ${p.cluster}: ${p.status}${p.phase ? ` (${p.phase}${p.job ? ` / ${p.job}` : ''})` : ''}\n`,
      );
      for (const s of p.steps) {
        io.stdout.write(
          `  ${s.state.padEnd(15)} ${s.phase.padEnd(16)} ${s.job.padEnd(22)} attempts ${s.attempts}${s.lastError ? `  ${s.lastError}` : ''}\n`,
        );
      }
      if (p.awaiting)
        io.stdout.write(`awaiting a decision (${p.awaiting.allowed.join('/')}): ${p.awaiting.error}\n`);
      for (const d of p.decisions)
        io.stdout.write(`decision: ${d.action} by ${d.by} at ${d.at}: ${d.reason}\n`);
    }
    if (p.status === 'AwaitingOperator') return EXIT.awaitingOperator;
    return p.status === 'Failed' || p.status === 'Aborted' ? EXIT.failed : EXIT.ok;
  });
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
  return withHandle(cluster, o, io, async (h) => {
    try {
      await h.executeUpdate(resolveUpdate, {
        args: [{ action: action as OperatorAction, reason, by: o.by ?? operatorIdentity() }],
      });
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
  });
}

export async function gateCommand(
  cluster: string,
  o: CommonOptions & { note?: string },
  io: Io,
): Promise<number> {
  return withHandle(cluster, o, io, async (h) => {
    await h.signal(coreUpgradedSignal, { by: operatorIdentity(), ...(o.note ? { note: o.note } : {}) });
    io.stdout.write(`coreUpgraded sent to the upgrade of ${cluster}: post-upgrade may start\n`);
    return EXIT.ok;
  });
}
