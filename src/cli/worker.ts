// `ks-upgrade worker`: a long-running worker for a Temporal service (e.g. the Deployment in
// deploy/). SIGTERM/SIGINT drain it: running steps get their cancellation signal and stop at a safe
// point (shutdownGraceTime), then the process exits.
import { hostname } from 'node:os';
import { ValidationError } from '../errors.js';
import { clusterTaskQueue } from '../fleet/input.js';
import { closeSharedConnections } from '../kube/connect.js';
import { temporalSettings, type TemporalSettings } from '../temporal/connection.js';
import { installRuntime, startUpgradeWorker } from '../temporal/worker.js';
import { EXIT, jobRegistry, type CommonOptions, type Io } from './common.js';

export interface WorkerOptions extends CommonOptions {
  metricsAddress?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

export async function workerCommand(o: WorkerOptions, io: Io): Promise<number> {
  const registry = await jobRegistry(o);
  const s = temporalSettings({
    ...(o.temporalAddress ? { address: o.temporalAddress } : {}),
    ...(o.namespace ? { namespace: o.namespace } : {}),
    // `--cluster X`: a worker of cluster X's own, polling its queue with credentials that stay there.
    ...(o.taskQueue
      ? { taskQueue: o.taskQueue }
      : o.cluster
        ? { taskQueue: clusterTaskQueue(o.cluster) }
        : {}),
    ...(o.tlsCert ? { tlsCertPath: o.tlsCert } : {}),
    ...(o.tlsKey ? { tlsKeyPath: o.tlsKey } : {}),
    ...(o.tlsCa ? { tlsCaPath: o.tlsCa } : {}),
    ...(o.codecKeyFile ? { codecKeyFile: o.codecKeyFile } : {}),
  });
  if (!s.address) {
    throw new ValidationError('the worker needs a Temporal service', {
      hint: 'pass --temporal-address or set TEMPORAL_ADDRESS',
    });
  }
  const settings: TemporalSettings = { ...s, address: s.address };
  const metricsAddress = o.metricsAddress ?? process.env.KS_UPGRADE_METRICS_ADDRESS;
  installRuntime({
    logLevel: o.verbose ? 'DEBUG' : 'INFO',
    ...(metricsAddress ? { metricsAddress } : {}),
    ...(o.logFormat ? { logFormat: o.logFormat } : {}),
  });
  const { worker, connection } = await startUpgradeWorker(
    settings,
    registry,
    o.cluster ? { identity: `cluster:${o.cluster}/${process.pid}@${hostname()}` } : {},
  );
  io.stderr.write(
    `ks-upgrade worker: task queue ${settings.taskQueue} on ${settings.address} (namespace ${settings.namespace}); ` +
      `jobs: ${registry.names().join(', ') || '(none)'}${metricsAddress ? `; metrics http://${metricsAddress}/metrics` : ''}\n`,
  );
  try {
    await worker.run(); // returns after SIGINT/SIGTERM (the runtime's shutdown signals) once drained
  } finally {
    await connection.close();
    await closeSharedConnections();
  }
  io.stderr.write('ks-upgrade worker: stopped\n');
  return EXIT.ok;
}
