// A step that failed because the API server did not answer waits until the server answers again
// before it reports the failure (bounded, logged), so its retry does not run into the same outage:
// a real kube-apiserver is killed and started again on its port.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigMapResource } from '../../src/api/core.js';
import { connectCluster, type ClusterConnection } from '../../src/kube/connect.js';
import { NotFoundError } from '../../src/kube/errors.js';
import { outageOf } from '../../src/errors.js';
import { waitOutOutage } from '../../src/util/outage.js';
import { KubeUnreachableError } from '../../src/kube/transport.js';
import { StorageUnavailableError } from '../../src/storage/storage.js';
import { S3Storage } from '../../src/storage/s3.js';
import { FaultProxy } from '../faults/proxy.js';
import { FaultServers } from '../faults/servers.js';
import { devEnv } from '../helpers/env.js';
import { devS3Config } from '../helpers/storage.js';

describe('waiting out an unreachable API server', () => {
  let servers: FaultServers;
  let conn: ClusterConnection;
  let cluster: string;

  before(async () => {
    servers = await FaultServers.start('outage');
    const [host] = servers.pair;
    cluster = host.name;
    conn = await connectCluster({ kubeconfig: host.kubeconfig });
  });
  after(async () => {
    conn.close();
    await servers.stop();
  });

  const failedGet = async (): Promise<unknown> =>
    conn.client.get(ConfigMapResource, 'absent', 'default').then(
      () => assert.fail('the GET succeeded'),
      (err: unknown) => err,
    );

  it('waits until the API server is back, then returns', async () => {
    await servers.apiservers.get(cluster)?.stop('SIGKILL');
    const err = await failedGet();
    assert.ok(err instanceof KubeUnreachableError, String(err));
    assert.equal(outageOf(err)?.server, `the API server ${conn.server}`);
    const lines: string[] = [];
    const beats: unknown[] = [];
    let restartedAt = 0;
    const restart = (async () => {
      await new Promise((r) => setTimeout(r, 3_000));
      await servers.apiservers.get(cluster)?.start();
      restartedAt = Date.now();
    })();
    const back = await waitOutOutage(
      new Error('step failed', { cause: err }),
      { logger: { info: (l) => lines.push(l) }, heartbeat: (p) => beats.push(p) },
      120_000,
    );
    await restart;
    assert.equal(back, true);
    assert.ok(restartedAt > 0 && Date.now() >= restartedAt - 50, 'returned only once the server was back');
    assert.ok(
      lines.some((l) => l.startsWith(`waiting up to 2m for the API server ${conn.server} to answer again`)),
      lines.join('\n'),
    );
    assert.ok(beats.length > 0, 'heartbeats while waiting');
    // And the server answers requests again.
    await assert.rejects(conn.client.get(ConfigMapResource, 'absent', 'default'), NotFoundError);
  });

  it('gives up at its bound and says so, without throwing', async () => {
    await servers.apiservers.get(cluster)?.stop('SIGKILL');
    const err = await failedGet();
    const lines: string[] = [];
    const t0 = Date.now();
    const back = await waitOutOutage(err, { logger: { info: (l) => lines.push(l) } }, 1_500);
    assert.equal(back, false);
    assert.ok(Date.now() - t0 >= 1_400);
    await servers.apiservers.get(cluster)?.start();
  });

  it('waits for S3 to answer again after a network-level failure', async () => {
    const proxy = await FaultProxy.start({ target: devEnv().s3Endpoint });
    try {
      const storage = new S3Storage(devS3Config({ endpoint: `http://${proxy.address}` }), {
        requestTimeoutMs: 2_000,
      });
      proxy.setMode('reset');
      const err = await storage.get('absent').then(
        () => assert.fail('the read succeeded'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof StorageUnavailableError, String(err));
      assert.equal(outageOf(err)?.server, `S3 at http://${proxy.address}`);
      assert.equal(await waitOutOutage(err, {}, 1_500), false, 'still down: gives up at the bound');
      setTimeout(() => {
        proxy.setMode('pass');
      }, 2_000);
      const lines: string[] = [];
      assert.equal(await waitOutOutage(err, { logger: { info: (l) => lines.push(l) } }, 60_000), true);
      assert.ok(
        lines.some((l) => l.includes(`S3 at http://${proxy.address} to answer again`)),
        lines.join('\n'),
      );
    } finally {
      await proxy.close();
    }
  });

  it('a cancelled step stops waiting at once', async () => {
    await servers.apiservers.get(cluster)?.stop('SIGKILL');
    try {
      const err = await failedGet();
      const abort = new AbortController();
      const t0 = Date.now();
      setTimeout(() => {
        abort.abort(new Error('the workflow cancelled the step'));
      }, 500);
      await assert.rejects(waitOutOutage(err, { signal: abort.signal }, 120_000));
      assert.ok(Date.now() - t0 < 30_000, 'did not wait for the bound');
    } finally {
      await servers.apiservers.get(cluster)?.start();
    }
  });

  it('does not wait for other errors', async () => {
    const err = await failedGet();
    assert.ok(err instanceof NotFoundError);
    assert.equal(await waitOutOutage(err, {}, 60_000), false);
  });
});
