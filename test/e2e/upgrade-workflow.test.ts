// upgradeCluster end to end on the real Temporal dev server and API server, with demo jobs: order,
// backups, gate, progress, search attributes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { ConfigMapResource } from '../../src/api/core.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { createResourceStore } from '../../src/store/index.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { coreUpgradedSignal, progressQuery } from '../../workflows/messages.js';
import { demoRegistry } from '../jobs/demo.js';
import { devClusterConnection } from '../helpers/kube.js';
import { demoSetup, startWorker, stepLog, temporalClients, waitForProgress } from '../helpers/upgrade.js';
import type { ClusterConnection } from '../../src/kube/connect.js';

describe('upgradeCluster workflow', () => {
  let conn: ClusterConnection;
  let kube: ResourceClient;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;

  before(async () => {
    conn = await devClusterConnection();
    kube = conn.client;
    ({ client, connection, native } = await temporalClients());
  });
  after(async () => {
    conn.close();
    await connection.close();
    await native.close();
  });

  const cmNames = async (ns: string): Promise<string[]> =>
    (await kube.listAll(ConfigMapResource, { namespace: ns }))
      .map((c) => c.metadata.name ?? '')
      .filter((n) => n !== 'kube-root-ca.crt')
      .sort();

  it('runs prepare, pre, gate, post and dynamic for three jobs in priority order', async () => {
    const setup = await demoSetup(kube);
    const { worker, run, taskQueue } = await startWorker(native, demoRegistry());
    try {
      const { handle, attached } = await startUpgrade(
        client,
        {
          ...setup.input,
          gate: 'signal',
          phases: ['prepare-upgrade', 'pre-upgrade', 'post-upgrade', 'dynamic-upgrade'],
        },
        taskQueue,
      );
      assert.equal(attached, false);

      // pre-upgrade done: the v3 objects are gone, and the workflow waits at the gate.
      const atGate = await waitForProgress(handle, (p) => p.status === 'AwaitingCoreUpgrade');
      assert.equal(atGate.gate.state, 'waiting');
      assert.deepEqual(await cmNames(setup.namespace), ['alpha-prepared', 'beta-prepared', 'gamma-prepared']);
      const again = await startUpgrade(client, setup.input, taskQueue);
      assert.equal(again.attached, true, 'a second start attaches to the running upgrade');
      assert.equal(again.handle.workflowId, handle.workflowId);

      await handle.signal(coreUpgradedSignal, { by: 'test' });
      const result = await handle.result();
      assert.equal(result.status, 'Succeeded');

      // Order: by phase, and within a phase by priority (alpha 300, beta 200, gamma 100).
      const order = (await stepLog(setup.log))
        .filter((l) => l.endsWith(' start'))
        .map((l) => l.replace(/ start$/, ''));
      assert.deepEqual(order, [
        'alpha prepare-upgrade',
        'beta prepare-upgrade',
        'gamma prepare-upgrade',
        'alpha pre-upgrade',
        'beta pre-upgrade',
        'gamma pre-upgrade',
        'alpha post-upgrade',
        'beta post-upgrade',
        'gamma post-upgrade',
        'alpha dynamic-upgrade',
        'beta dynamic-upgrade',
        'gamma dynamic-upgrade',
      ]);
      assert.deepEqual(await cmNames(setup.namespace), [
        'alpha-prepared',
        'alpha-v4',
        'beta-prepared',
        'beta-v4',
        'gamma-prepared',
        'gamma-v4',
      ]);
      const v4 = await kube.get(ConfigMapResource, 'beta-v4', setup.namespace);
      assert.deepEqual(v4.data, { owner: 'beta', migrated: 'true', dynamic: 'done' });

      // Backups: one per job, scoped <cluster>/<job>/, holding the pre-change object; and the
      // binding of the cluster name to the API server.
      const store = await createResourceStore({ local: { path: setup.storeDir } });
      assert.deepEqual(await store.list(), [
        `${setup.cluster}/_cluster/identity.json`,
        `${setup.cluster}/alpha/v3`,
        `${setup.cluster}/beta/v3`,
        `${setup.cluster}/gamma/v3`,
      ]);
      const backup = await store.scope(setup.cluster, 'gamma').load<{ data: Record<string, string> }>('v3');
      assert.deepEqual(backup.data, { owner: 'gamma' });

      const progress = await handle.query(progressQuery);
      assert.equal(progress.steps.length, 12);
      assert.ok(progress.steps.every((s) => s.state === 'succeeded' && s.attempts === 1 && s.runs === 1));
      assert.equal(progress.gate.state, 'passed');
      assert.match(progress.gate.detail ?? '', /by test/);
      const described = await handle.describe();
      assert.equal(
        described.typedSearchAttributes.get({ name: 'UpgradeStatus', type: 'KEYWORD' } as never),
        'Succeeded',
      );
    } finally {
      worker.shutdown();
      await run;
    }
  });
});
