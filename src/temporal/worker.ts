import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  makeTelemetryFilterString,
  type LogLevel,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import { Client } from '@temporalio/client';
import { createFleetActivities } from '../../activities/fleet.js';
import { createActivities } from '../../activities/index.js';
import type { JobRegistry } from '../jobs/registry.js';
import { workflowBundle } from './bundle.js';
import { connectionOptions, type TemporalSettings } from './connection.js';

let runtimeInstalled = false;

/**
 * Installs the Temporal runtime once per process (it must precede every connection): log level
 * and, optionally, a Prometheus endpoint with worker metrics (task slots, schedule-to-start
 * latencies, activity failures). `shutdownSignals` are the signals on which the runtime shuts its
 * workers down by itself (the SDK's default: SIGINT, SIGTERM, SIGQUIT, SIGUSR2, what `ks-upgrade
 * worker` wants); a command that handles signals itself passes `[]`.
 */
export function installRuntime(
  options: { logLevel?: LogLevel; metricsAddress?: string; shutdownSignals?: NodeJS.Signals[] } = {},
): void {
  if (runtimeInstalled) return;
  Runtime.install({
    ...(options.shutdownSignals ? { shutdownSignals: options.shutdownSignals } : {}),
    logger: new DefaultLogger(options.logLevel ?? 'WARN'),
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: options.logLevel ?? 'WARN' }) },
      ...(options.metricsAddress ? { metrics: { prometheus: { bindAddress: options.metricsAddress } } } : {}),
    },
  });
  runtimeInstalled = true;
}

export interface UpgradeWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  registry?: JobRegistry;
  /** Concurrent steps; upgrades are heavy on the API server, keep it modest. Default 8. */
  maxConcurrentActivities?: number;
  /**
   * How long the server waits for this worker to pick up a workflow task it holds in its cache
   * before giving it to another worker (the delay before a dead worker's workflow moves). Default 10s.
   */
  stickyQueueScheduleToStartTimeout?: string;
  /** Worker identity in workflow history (default `<pid>@<host>`). */
  identity?: string;
  /** Workflows kept in memory between tasks (default: the SDK's, from the heap size). */
  maxCachedWorkflows?: number;
  /** A pre-built workflow bundle (default: dist/workflow-bundle.js, else bundled now). */
  workflowBundle?: WorkflowBundleOption;
}

/** A worker serving the upgrade workflows and activities on one task queue. */
export async function createUpgradeWorker(o: UpgradeWorkerOptions): Promise<Worker> {
  const client = new Client({ connection: o.connection, namespace: o.namespace });
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    workflowBundle: o.workflowBundle ?? (await workflowBundle()),
    activities: {
      ...createActivities({
        ...(o.registry ? { registry: o.registry } : {}),
        // The preflight looks for other running upgrades of the same cluster through this client.
        temporal: { client, source: `Temporal namespace ${o.namespace}` },
      }),
      // The fleet's activities look at other workflows through the same client.
      ...createFleetActivities({ client, ...(o.registry ? { registry: o.registry } : {}) }),
    },
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivities ?? 8,
    // Let a running step notice shutdown (its AbortSignal fires) and stop at a safe point.
    shutdownGraceTime: '20s',
    ...(o.stickyQueueScheduleToStartTimeout
      ? { stickyQueueScheduleToStartTimeout: o.stickyQueueScheduleToStartTimeout }
      : {}),
    ...(o.identity ? { identity: o.identity } : {}),
    ...(o.maxCachedWorkflows !== undefined ? { maxCachedWorkflows: o.maxCachedWorkflows } : {}),
  });
}

/** Connects and creates a worker from settings (the `ks-upgrade worker` command). */
export async function startUpgradeWorker(
  settings: TemporalSettings,
  registry?: JobRegistry,
  extra: Pick<UpgradeWorkerOptions, 'identity'> = {},
): Promise<{ worker: Worker; connection: NativeConnection }> {
  const connection = await NativeConnection.connect(connectionOptions(settings));
  const worker = await createUpgradeWorker({
    connection,
    namespace: settings.namespace,
    taskQueue: settings.taskQueue,
    ...(registry ? { registry } : {}),
    ...extra,
  });
  return { worker, connection };
}
