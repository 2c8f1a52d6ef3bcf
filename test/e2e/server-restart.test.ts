// The Temporal dev server is stopped in the middle of an upgrade step and started again on the same
// SQLite file: the worker reconnects, the step completes (or is retried, idempotently) and the
// upgrade finishes.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { ConfigMapResource } from '../../src/api/core.js';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { freePort, startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import { coreUpgradedSignal } from '../../workflows/messages.js';
import { startChildWorker, type ChildWorker } from '../helpers/child-worker.js';
import { devEnv, uniqueName } from '../helpers/env.js';
import { devClusterConnection } from '../helpers/kube.js';
import { demoSetup, stepLog } from '../helpers/upgrade.js';

describe('Temporal dev server restart mid-upgrade', () => {
  let conn: ClusterConnection;
  let server: DevServer | undefined;
  let worker: ChildWorker | undefined;

  before(async () => {
    conn = await devClusterConnection();
  });
  after(async () => {
    await worker?.kill();
    await server?.stop();
    conn.close();
  });

  it('completes the upgrade after the server restarts on the same SQLite file', async () => {
    const binary = devEnv().temporalCliPath;
    const dir = await mkdtemp(path.join(tmpdir(), 'ks-upgrade-restart-'));
    const dbFile = path.join(dir, 'temporal.db');
    const port = await freePort();
    server = await startDevServer({
      binary,
      dbFile,
      port,
      headless: true,
      logFile: path.join(dir, 'server.log'),
    });
    const taskQueue = uniqueName('restart');
    worker = await startChildWorker(server.address, 'default', taskQueue);

    const s = await demoSetup(conn.client, { jobOptions: { beta: { slow: 'pre-upgrade:4000' } } });
    let connection = await Connection.connect({ address: server.address });
    let client = new Client({ connection });
    const { handle } = await startUpgrade(client, { ...s.input, gate: 'signal' }, taskQueue);
    const workflowId = handle.workflowId;

    // Stop the server while beta's pre-upgrade step runs.
    const deadline = Date.now() + 60_000;
    while (!(await stepLog(s.log)).includes('beta pre-upgrade start')) {
      assert.ok(Date.now() < deadline, 'beta pre-upgrade did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    await connection.close();
    await server.stop();
    await new Promise((r) => setTimeout(r, 3000));
    server = await startDevServer({
      binary,
      dbFile,
      port,
      headless: true,
      logFile: path.join(dir, 'server.log'),
    });

    connection = await Connection.connect({ address: server.address });
    client = new Client({ connection });
    const resumed = client.workflow.getHandle(workflowId);
    const gateDeadline = Date.now() + 90_000;
    for (;;) {
      const p = await resumed.query('progress').catch(() => undefined);
      if ((p as { status?: string } | undefined)?.status === 'AwaitingCoreUpgrade') break;
      assert.ok(Date.now() < gateDeadline, 'the upgrade did not reach the gate after the restart');
      await new Promise((r) => setTimeout(r, 250));
    }
    await resumed.signal(coreUpgradedSignal, { by: 'restart-test' });
    const result = (await resumed.result()) as { status: string };
    assert.equal(result.status, 'Succeeded');
    const names = (await conn.client.listAll(ConfigMapResource, { namespace: s.namespace }))
      .map((c) => c.metadata.name)
      .filter((n) => n !== 'kube-root-ca.crt')
      .sort();
    assert.deepEqual(names, [
      'alpha-prepared',
      'alpha-v4',
      'beta-prepared',
      'beta-v4',
      'gamma-prepared',
      'gamma-v4',
    ]);
    await connection.close();
  });
});
