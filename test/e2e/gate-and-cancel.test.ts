// The detect gate on a cluster of its own (post-upgrade starts only once a v4 ks-core release is
// deployed and ks-apiserver has rolled out), and graceful cancellation (the running step stops,
// the jobs that ran are rolled back, the workflow ends cancelled).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type Client, type Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import {
  ConfigMapResource,
  DeploymentResource,
  NamespaceResource,
  SecretResource,
} from '../../src/api/core.js';
import { encodeRelease, releaseSecretName, type HelmRelease } from '../../src/helm/release.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { progressQuery } from '../../workflows/messages.js';
import { demoRegistry } from '../jobs/demo.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { devClusterConnection } from '../helpers/kube.js';
import { demoSetup, startWorker, stepLog, temporalClients, waitForProgress } from '../helpers/upgrade.js';

async function ksCoreRelease(
  kube: ResourceClient,
  version: number,
  appVersion: string,
  status: string,
): Promise<void> {
  const release: HelmRelease = {
    name: 'ks-core',
    namespace: 'kubesphere-system',
    version,
    info: { status },
    chart: { metadata: { name: 'ks-core', version: appVersion.slice(1), appVersion } },
    manifest: '',
  };
  await kube.apply(SecretResource, {
    metadata: {
      name: releaseSecretName('ks-core', version),
      namespace: 'kubesphere-system',
      labels: { owner: 'helm', name: 'ks-core', status, version: String(version) },
    },
    type: 'helm.sh/release.v1',
    data: { release: encodeRelease(release) },
  });
}

describe('gate and cancellation', () => {
  let conn: ClusterConnection;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  let cluster: EphemeralCluster;

  before(async () => {
    conn = await devClusterConnection();
    cluster = await startEphemeralCluster('gate');
    ({ client, connection, native } = await temporalClients());
    ({ worker, run, taskQueue } = await startWorker(native, demoRegistry()));
  });
  after(async () => {
    worker.shutdown();
    await run;
    conn.close();
    await cluster.remove();
    await connection.close();
    await native.close();
  });

  it('detect gate: waits until ks-core v4 is deployed and ks-apiserver is ready', async () => {
    const kube = cluster.connection.client;
    await kube.create(NamespaceResource, { metadata: { name: 'kubesphere-system' } });
    await ksCoreRelease(kube, 1, 'v3.4.1', 'deployed');
    const s = await demoSetup(kube);
    const input = { ...s.input, kube: { kubeconfig: cluster.kubeconfig }, gate: 'detect' as const };
    const { handle } = await startUpgrade(client, input, taskQueue);
    await waitForProgress(handle, (p) => p.status === 'AwaitingCoreUpgrade');

    // helm upgrade: the v4 revision is deployed, but ks-apiserver has not rolled out yet.
    await ksCoreRelease(kube, 1, 'v3.4.1', 'superseded');
    await ksCoreRelease(kube, 2, 'v4.1.3', 'deployed');
    const apiserver = await kube.create(DeploymentResource, {
      metadata: { name: 'ks-apiserver', namespace: 'kubesphere-system' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'ks-apiserver' } },
        template: {
          metadata: { labels: { app: 'ks-apiserver' } },
          spec: { containers: [{ name: 'a', image: 'kubesphere/ks-apiserver:v4.1.3' }] },
        },
      },
    });
    await new Promise((r) => setTimeout(r, 7000));
    const waiting = await handle.query(progressQuery);
    assert.equal(waiting.status, 'AwaitingCoreUpgrade', 'a v4 release alone does not open the gate');
    assert.ok(!(await stepLog(s.log)).some((l) => l.includes('post-upgrade')));

    await kube.updateStatus(DeploymentResource, {
      ...apiserver,
      status: {
        replicas: 1,
        readyReplicas: 1,
        updatedReplicas: 1,
        availableReplicas: 1,
        observedGeneration: apiserver.metadata.generation,
      },
    });
    const result = await handle.result();
    assert.equal(result.status, 'Succeeded');
    const progress = await handle.query(progressQuery);
    assert.equal(progress.gate.state, 'passed');
    assert.match(progress.gate.detail ?? '', /ks-core v4\.1\.3 deployed and ks-apiserver ready/);
  });

  it('cancel: the running step stops, the jobs that ran are rolled back, the workflow is cancelled', async () => {
    const s = await demoSetup(conn.client, { jobOptions: { gamma: { slow: 'pre-upgrade:60000' } } });
    const { handle } = await startUpgrade(client, s.input, taskQueue);
    const deadline = Date.now() + 60_000;
    while (!(await stepLog(s.log)).includes('gamma pre-upgrade start')) {
      assert.ok(Date.now() < deadline, 'gamma pre-upgrade did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    await handle.cancel();
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(String((err.cause as { name?: string } | undefined)?.name), /CancelledFailure/);
      return true;
    });
    // The step sees its cancellation at its next heartbeat and stops at a safe point.
    const stopDeadline = Date.now() + 30_000;
    while (!(await stepLog(s.log)).includes('gamma pre-upgrade cancelled')) {
      assert.ok(Date.now() < stopDeadline, 'the running step did not stop after the cancellation');
      await new Promise((r) => setTimeout(r, 100));
    }
    const log = await stepLog(s.log);
    assert.ok(!log.includes('gamma pre-upgrade end'), 'the slow step was interrupted, not finished');
    assert.deepEqual(
      log.filter((l) => l.endsWith('rollback start')),
      ['gamma rollback start', 'beta rollback start', 'alpha rollback start'],
    );
    const names = (await conn.client.listAll(ConfigMapResource, { namespace: s.namespace }))
      .map((c) => c.metadata.name)
      .filter((n) => n !== 'kube-root-ca.crt')
      .sort();
    assert.deepEqual(names, ['alpha-v3', 'beta-v3', 'gamma-v3'], 'the v3 state is back');
    assert.equal((await handle.query(progressQuery)).status, 'Aborted');
  });
});
