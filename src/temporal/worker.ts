import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  makeTelemetryFilterString,
  type ActivityInterceptorsFactory,
  type LogLevel,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { createFleetActivities } from '../../activities/fleet.js';
import { createActivities } from '../../activities/index.js';
import { defaultLogFormat, formatLogLine, type LogFormat } from '../jobs/logger.js';
import type { JobRegistry } from '../jobs/registry.js';
import { upgradeWorkflowId } from '../upgrade/input.js';
import { workflowBundle } from './bundle.js';
import { dataConverterOf, loadKeyring } from './codec.js';
import { connectionOptions, type TemporalSettings } from './connection.js';

let runtimeInstalled = false;

/**
 * A log line's fields from the SDK's metadata: the run as `workflowId`/`runId`, and no task token
 * (a credential for completing the activity, of no use in a log).
 */
function shipFields(meta: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!meta) return undefined;
  const { taskToken: _token, workflowRunId, ...rest } = meta;
  return workflowRunId === undefined ? rest : { ...rest, runId: workflowRunId };
}

/** The runtime's logger: every line of the worker, its activities and workflows, as JSON or text. */
function runtimeLogger(level: LogLevel, format: LogFormat, stream: NodeJS.WritableStream): DefaultLogger {
  return new DefaultLogger(level, (entry) => {
    const fields = shipFields(entry.meta);
    stream.write(
      formatLogLine(format, {
        time: new Date(Number(entry.timestampNanos / 1_000_000n)),
        level: entry.level,
        message: entry.message,
        ...(fields ? { fields } : {}),
      }),
    );
  });
}

/**
 * Adds the upgrade's cluster, job and phase (from the activity's request) to every log line of an
 * activity, next to the workflow id, run id and attempt the SDK adds.
 */
const WORKFLOW_ID_PREFIX = upgradeWorkflowId('');
const upgradeLogAttributes: ActivityInterceptorsFactory = () => {
  let attrs: Record<string, unknown> = {};
  return {
    inbound: {
      execute: (input, next) => {
        const req = input.args[0] as
          { cluster?: unknown; job?: unknown; phase?: unknown; input?: { cluster?: unknown } } | undefined;
        const cluster = req?.cluster ?? req?.input?.cluster;
        attrs = {
          ...(typeof cluster === 'string' ? { cluster } : {}),
          ...(typeof req?.job === 'string' ? { job: req.job } : {}),
          ...(typeof req?.phase === 'string' ? { phase: req.phase } : {}),
        };
        return next(input);
      },
    },
    outbound: {
      // The SDK logs "Activity started" before the request is decoded: until then the cluster
      // comes from the workflow id (`ks-upgrade-<cluster>`, the id `run` gives every upgrade).
      getLogAttributes: (input, next) => {
        const wf = input.workflowId;
        const fallback =
          attrs.cluster === undefined && typeof wf === 'string' && wf.startsWith(WORKFLOW_ID_PREFIX)
            ? { cluster: wf.slice(WORKFLOW_ID_PREFIX.length) }
            : {};
        return next({ ...input, ...fallback, ...attrs });
      },
    },
  };
};
/**
 * Installs the Temporal runtime once per process (it must precede every connection): log level
 * and, optionally, a Prometheus endpoint with worker metrics (task slots, schedule-to-start
 * latencies, activity failures). `shutdownSignals` are the signals on which the runtime shuts its
 * workers down by itself (the SDK's default: SIGINT, SIGTERM, SIGQUIT, SIGUSR2, what `ks-upgrade
 * worker` wants); a command that handles signals itself passes `[]`.
 */
export function installRuntime(
  options: {
    logLevel?: LogLevel;
    metricsAddress?: string;
    shutdownSignals?: NodeJS.Signals[];
    /** Default: JSON unless stderr is a terminal. */
    logFormat?: LogFormat;
  } = {},
): void {
  if (runtimeInstalled) return;
  Runtime.install({
    ...(options.shutdownSignals ? { shutdownSignals: options.shutdownSignals } : {}),
    logger: runtimeLogger(
      options.logLevel ?? 'WARN',
      options.logFormat ?? defaultLogFormat(process.stderr),
      process.stderr,
    ),
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
  /** The payload codec (the same one every client of these workflows uses). */
  dataConverter?: DataConverter;
  /** Worker identity in workflow history (default `<pid>@<host>`). */
  identity?: string;
  /** Workflows kept in memory between tasks (default: the SDK's, from the heap size). */
  maxCachedWorkflows?: number;
  /** A pre-built workflow bundle (default: dist/workflow-bundle.js, else bundled now). */
  workflowBundle?: WorkflowBundleOption;
}

/** A worker serving the upgrade workflows and activities on one task queue. */
export async function createUpgradeWorker(o: UpgradeWorkerOptions): Promise<Worker> {
  const client = new Client({
    connection: o.connection,
    namespace: o.namespace,
    ...(o.dataConverter ? { dataConverter: o.dataConverter } : {}),
  });
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    workflowBundle: o.workflowBundle ?? (await workflowBundle()),
    ...(o.dataConverter ? { dataConverter: o.dataConverter } : {}),
    activities: {
      ...createActivities({
        ...(o.registry ? { registry: o.registry } : {}),
        // The preflight looks for other running upgrades of the same cluster through this client.
        temporal: { client, source: `Temporal namespace ${o.namespace}` },
      }),
      // The fleet's activities look at other workflows through the same client.
      ...createFleetActivities({ client, ...(o.registry ? { registry: o.registry } : {}) }),
    },
    interceptors: { activity: [upgradeLogAttributes] },
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
  const dataConverter = dataConverterOf(loadKeyring(settings.codec ?? {}));
  const connection = await NativeConnection.connect(connectionOptions(settings));
  const worker = await createUpgradeWorker({
    connection,
    namespace: settings.namespace,
    taskQueue: settings.taskQueue,
    ...(registry ? { registry } : {}),
    dataConverter,
    ...extra,
  });
  return { worker, connection };
}
