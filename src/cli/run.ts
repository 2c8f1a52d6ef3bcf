// `ks-upgrade run`: start (or resume) a cluster's upgrade workflow and follow it. Without a
// Temporal address it runs on the embedded default: a local dev server (SQLite state) and an
// in-process worker, so a re-run after a crash continues the same workflow.
import { NativeConnection } from '@temporalio/worker';
import { ValidationError } from '../errors.js';
import { closeSharedConnections } from '../kube/connect.js';
import { startUpgrade } from '../temporal/client.js';
import { loadUpgradeConfig } from '../upgrade/plan.js';
import { createUpgradeWorker, installRuntime } from '../temporal/worker.js';
import { EXIT, jobRegistry, temporalTarget, upgradeInput, type CommonOptions, type Io } from './common.js';
import { follow } from './follow.js';

export interface RunOptions extends CommonOptions {
  detach?: boolean;
  dryRun?: boolean;
  uiUrl?: string;
  heartbeatTimeout?: string;
  rerun?: boolean;
}

export async function runCommand(o: RunOptions, io: Io): Promise<number> {
  const registry = await jobRegistry(o);
  const input = upgradeInput(o, {
    ...(o.dryRun ? { dryRun: true } : {}),
    ...(o.heartbeatTimeout ? { tuning: { heartbeatTimeout: o.heartbeatTimeout } } : {}),
  });
  // Validate the whole config here, before a server starts or a workflow exists: bad input must fail
  // fast and change nothing. (The workflow validates again on the worker, which reads the files.)
  await loadUpgradeConfig(input, registry);
  if (o.detach && !(o.temporalAddress ?? process.env.TEMPORAL_ADDRESS)) {
    throw new ValidationError('--detach needs a Temporal service with its own workers', {
      hint: 'pass --temporal-address (the embedded default runs its worker inside this process)',
    });
  }
  const target = await temporalTarget(o, io);
  let worker: Awaited<ReturnType<typeof createUpgradeWorker>> | undefined;
  let native: NativeConnection | undefined;
  let workerRun: Promise<void> | undefined;
  const state = { interrupted: false };
  const onSigint = (): void => {
    state.interrupted = true;
    io.stderr.write('\ninterrupted: stopping; run the same command again to resume the upgrade\n');
    worker?.shutdown();
  };
  try {
    if (target.embedded) {
      installRuntime({ logLevel: o.verbose ? 'INFO' : 'ERROR' });
      native = await NativeConnection.connect({ address: target.settings.address });
      worker = await createUpgradeWorker({
        connection: native,
        namespace: target.settings.namespace,
        taskQueue: target.settings.taskQueue,
        registry,
      });
      workerRun = worker.run();
      process.once('SIGINT', onSigint);
    }
    const { handle, attached, completed } = await startUpgrade(
      target.client,
      input,
      target.settings.taskQueue,
      undefined,
      o.rerun ? { rerun: true } : {},
    );
    if (completed) {
      io.stdout.write(
        `the upgrade of cluster ${input.cluster} already succeeded (workflow ${handle.workflowId}); ` +
          `see 'ks-upgrade status ${input.cluster}', or pass --rerun to run it again\n`,
      );
      return EXIT.ok;
    }
    const uiBase = o.uiUrl ?? target.embedded?.server.uiUrl ?? process.env.TEMPORAL_UI_URL;
    const uiUrl = uiBase
      ? `${uiBase}/namespaces/${target.settings.namespace}/workflows/${handle.workflowId}`
      : undefined;
    io.stdout.write(
      `${attached ? 'resuming' : 'started'} the upgrade of cluster ${input.cluster} (workflow ${handle.workflowId})\n` +
        (uiUrl ? `Temporal UI: ${uiUrl}\n` : ''),
    );
    if (o.detach) return EXIT.ok;
    const following = follow(handle, io, {
      interactive: Boolean(io.stdin.isTTY && io.stdout.isTTY),
      ...(uiUrl ? { uiUrl } : {}),
    });
    const code = workerRun
      ? await Promise.race([
          following,
          workerRun.then(() => (state.interrupted ? EXIT.interrupted : following)),
        ])
      : await following;
    return state.interrupted ? EXIT.interrupted : code;
  } finally {
    process.removeListener('SIGINT', onSigint);
    if (worker && worker.getState() === 'RUNNING') worker.shutdown();
    await workerRun?.catch(() => undefined);
    await native?.close();
    await target.close();
    await closeSharedConnections();
  }
}
