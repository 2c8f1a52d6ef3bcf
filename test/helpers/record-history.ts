// Records the history of a representative upgrade (gate, a failed step, an operator retry, all
// phases) for the replay test (test/e2e/replay.test.ts). After a deliberate, versioned workflow
// change, refresh the committed fixture with: KS_RECORD_HISTORY=1 npm test -- test/e2e/replay.test.ts
// CommonJS module: its namespace comes as the default export under ESM.
import proto from '@temporalio/proto';
import { ConfigMapResource } from '../../src/api/core.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { coreUpgradedSignal, resolveUpdate } from '../../workflows/messages.js';
import { demoRegistry } from '../jobs/demo.js';
import { devClusterConnection } from './kube.js';
import { FAST_RETRY, demoSetup, startWorker, temporalClients, waitForProgress } from './upgrade.js';

const History = proto.temporal.api.history.v1.History;
type IHistory = proto.temporal.api.history.v1.IHistory;

/** Runs the upgrade; returns its history. */
export async function recordRepresentativeHistory(): Promise<IHistory> {
  const conn = await devClusterConnection();
  const { client, connection, native } = await temporalClients();
  const { worker, run, taskQueue } = await startWorker(native, demoRegistry());
  try {
    const s = await demoSetup(conn.client, { jobSettings: FAST_RETRY });
    await conn.client.create(ConfigMapResource, {
      metadata: { name: 'fail-beta-post-upgrade', namespace: s.namespace },
    });
    const { handle } = await startUpgrade(
      client,
      {
        ...s.input,
        gate: 'signal',
        phases: ['prepare-upgrade', 'pre-upgrade', 'post-upgrade', 'dynamic-upgrade'],
      },
      taskQueue,
    );
    await waitForProgress(handle, (p) => p.status === 'AwaitingCoreUpgrade');
    await handle.signal(coreUpgradedSignal, { by: 'recorder' });
    await waitForProgress(handle, (p) => p.status === 'AwaitingOperator');
    await conn.client.delete(ConfigMapResource, 'fail-beta-post-upgrade', s.namespace);
    await handle.executeUpdate(resolveUpdate, {
      args: [{ action: 'retry', reason: 'fixed', by: 'recorder' }],
    });
    await handle.result();
    return await handle.fetchHistory();
  } finally {
    worker.shutdown();
    await run;
    conn.close();
    await connection.close();
    await native.close();
  }
}

/**
 * A history as JSON through @temporalio/proto's own codec (longs and bytes as strings). The SDK's
 * historyToJSON/historyFromJSON fail here ("type must be a Type") because npm installs two copies
 * of protobufjs 8 side by side; this stays within one.
 */
export function historyToJson(history: IHistory): string {
  return JSON.stringify(
    History.toObject(History.fromObject(history), { longs: String, bytes: String, enums: Number }),
  );
}

/** The inverse of {@link historyToJson}. */
export function historyFromJson(json: string): IHistory {
  return History.fromObject(JSON.parse(json) as Record<string, unknown>);
}
