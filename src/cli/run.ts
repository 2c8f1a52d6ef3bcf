// `ks-upgrade run`: start (or resume) a cluster's upgrade workflow and follow it. Without a
// Temporal address it runs on the embedded default: a local dev server (SQLite state) and an
// in-process worker, so a re-run after a crash continues the same workflow.
import { NativeConnection } from '@temporalio/worker';
import { ValidationError } from '../errors.js';
import { closeSharedConnections } from '../kube/connect.js';
import { startUpgrade } from '../temporal/client.js';
import { stopServersBeingStarted } from '../temporal/dev-server.js';
import { createUpgradeWorker, installRuntime } from '../temporal/worker.js';
import { checkClusterBinding } from '../upgrade/cluster-identity.js';
import { loadUpgradeConfig } from '../upgrade/plan.js';
import { clusterConnection, sharedStore } from '../upgrade/runtime.js';
import {
  EXIT,
  RUN_COMMAND,
  clusterNameNote,
  clusterTarget,
  jobRegistry,
  temporalTarget,
  runInput,
  type CommonOptions,
  type Io,
  type TemporalTarget,
} from './common.js';
import { follow } from './follow.js';

export interface RunOptions extends CommonOptions {
  detach?: boolean;
  dryRun?: boolean;
  uiUrl?: string;
  heartbeatTimeout?: string;
  rerun?: boolean;
}

/** The exit code of a command stopped by a signal: 128 + its number, as a shell reports it. */
function exitCodeOf(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted;
}

/**
 * SIGINT and SIGTERM while `run` works. The first stops following: the worker is shut down, the
 * connections closed and the embedded server released (stopped when no other command uses it),
 * then `run` exits with 130 or 143. The upgrade itself is durable in Temporal: it goes on on
 * other workers, or waits, and `ks-upgrade run` again resumes it. A second signal exits at once,
 * still stopping the embedded server if nothing else uses it, so that no process is left behind.
 */
class Interruption {
  readonly controller = new AbortController();
  private received: NodeJS.Signals | undefined;
  target: TemporalTarget | undefined;
  onFirst: () => void = () => undefined;

  constructor(
    private readonly io: Io,
    private readonly cluster: string,
  ) {}

  private readonly handler = (signal: NodeJS.Signals): void => {
    if (this.received === undefined) {
      this.received = signal;
      this.io.stderr.write(
        `\ninterrupted (${signal}): stopped following the upgrade of cluster ${this.cluster}; it stays in ` +
          'Temporal, and `ks-upgrade run` with the same options again resumes it\n',
      );
      this.controller.abort();
      this.onFirst();
      return;
    }
    this.io.stderr.write(`${signal} again: exiting now\n`);
    if (this.target?.embedded) this.target.embedded.releaseNow();
    else stopServersBeingStarted();
    process.exit(exitCodeOf(this.received));
  };

  /** The exit code when a signal stopped the command (130 or 143), else undefined. */
  exitCode(): number | undefined {
    return this.received === undefined ? undefined : exitCodeOf(this.received);
  }

  /** Between the steps of starting up: a signal received meanwhile stops here. */
  throwIfStopped(): void {
    if (this.received !== undefined) throw new Error(`stopped by ${this.received}`);
  }

  install(): void {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  uninstall(): void {
    process.removeListener('SIGINT', this.handler);
    process.removeListener('SIGTERM', this.handler);
  }
}

export async function runCommand(o: RunOptions, io: Io): Promise<number> {
  const registry = await jobRegistry(o);
  const cluster = await clusterTarget(o);
  const input = runInput(o, cluster);
  // Validate the whole config here, before a server starts or a workflow exists: bad input must fail
  // fast and change nothing. (The workflow validates again on the worker, which reads the files.)
  const loaded = await loadUpgradeConfig({ ...input, allowEmpty: o.allowEmpty === true }, registry);
  const remote = Boolean(o.temporalAddress ?? process.env.TEMPORAL_ADDRESS);
  if (o.detach && !remote) {
    throw new ValidationError('--detach needs a Temporal service with its own workers', {
      hint: 'pass --temporal-address (the embedded default runs its worker inside this process)',
    });
  }
  const note = clusterNameNote(cluster);
  if (note) io.stderr.write(note);
  const interruption = new Interruption(io, input.cluster);
  interruption.install();
  let target: TemporalTarget | undefined;
  let worker: Awaited<ReturnType<typeof createUpgradeWorker>> | undefined;
  let native: NativeConnection | undefined;
  let workerRun: Promise<void> | undefined;
  const stopWorker = (): void => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
  };
  interruption.onFirst = stopWorker;
  try {
    if (!remote) {
      // This process is the worker: the name must stand for the cluster the kubeconfig points at
      // before anything else is said about "its" upgrade (e.g. that it already succeeded).
      // With a Temporal service, the workers check it before every step (they hold the store).
      await checkClusterBinding({
        cluster: input.cluster,
        conn: await clusterConnection(input.kube),
        store: await sharedStore(loaded.config.storage),
        bind: o.dryRun !== true,
      });
    }
    target = await temporalTarget(o, io, true, RUN_COMMAND);
    interruption.target = target;
    interruption.throwIfStopped();
    if (target.embedded) {
      // Signals are this command's to handle (see Interruption), not the runtime's.
      installRuntime({ logLevel: o.verbose ? 'INFO' : 'ERROR', shutdownSignals: [] });
      native = await NativeConnection.connect({ address: target.settings.address });
      worker = await createUpgradeWorker({
        connection: native,
        namespace: target.settings.namespace,
        taskQueue: target.settings.taskQueue,
        registry,
      });
      interruption.throwIfStopped();
      workerRun = worker.run();
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
    // The abort also cancels the requests in flight (the long poll for the result above all): left
    // running, one would fail when the embedded server stops, and its retry would hit the closed
    // channel ("Channel has been shut down", an uncaught exception).
    const signal = interruption.controller.signal;
    const following = target.client.connection.withAbortSignal(signal, () =>
      follow(handle, io, {
        interactive: Boolean(io.stdin.isTTY && io.stdout.isTTY),
        signal,
        ...(uiUrl ? { uiUrl } : {}),
      }),
    );
    // A worker that stops by itself (a fatal error) ends following too; its error is reported.
    const code = workerRun
      ? await Promise.race([following, workerRun.then(() => following)])
      : await following;
    return interruption.exitCode() ?? code;
  } catch (err) {
    // Whatever failed after a signal failed because of it (closed connections, a shut-down worker).
    const stopped = interruption.exitCode();
    if (stopped !== undefined) return stopped;
    throw err;
  } finally {
    // Stop everything that uses the connections before closing them, the server last.
    interruption.controller.abort();
    stopWorker();
    await workerRun?.catch(() => undefined);
    await native?.close();
    await target?.close();
    await closeSharedConnections();
    interruption.uninstall();
  }
}
