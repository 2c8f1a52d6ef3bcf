// `ks-upgrade worker` as deployed: it serves Prometheus metrics, and SIGTERM drains it — the step
// it is running finishes (no half-done step to repeat), then the process exits 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { freePort } from '../../src/temporal/dev-server.js';
import { startChildWorker, type ChildWorker } from '../helpers/child-worker.js';
import { devEnv, repoRoot, uniqueName } from '../helpers/env.js';
import { devClusterConnection } from '../helpers/kube.js';
import { demoSetup, stepLog, temporalClients } from '../helpers/upgrade.js';

describe('ks-upgrade worker', () => {
  const env = devEnv();
  let conn: ClusterConnection;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let second: ChildWorker | undefined;

  before(async () => {
    conn = await devClusterConnection();
    ({ client, connection, native } = await temporalClients());
  });
  after(async () => {
    await second?.kill();
    conn.close();
    await connection.close();
    await native.close();
  });

  it('serves metrics and drains on SIGTERM: the running step completes, nothing runs twice', async () => {
    const taskQueue = uniqueName('wrk');
    const metricsPort = await freePort();
    const child = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'bin/ks-upgrade.js'),
        'worker',
        '--temporal-address',
        env.temporalAddress,
        '--task-queue',
        taskQueue,
        '--metrics-address',
        `127.0.0.1:${metricsPort}`,
      ],
      {
        cwd: repoRoot,
        env: { ...process.env, KS_UPGRADE_PLUGINS: path.join(repoRoot, 'test/jobs/demo-plugin.ts') },
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => {
        resolve(code);
      }),
    );
    const deadline = Date.now() + 60_000;
    while (!stderr.includes('ks-upgrade worker: task queue')) {
      assert.ok(Date.now() < deadline, `worker did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(stderr, /jobs: .*alpha.*beta.*gamma/);

    const s = await demoSetup(conn.client, { jobOptions: { beta: { slow: 'pre-upgrade:3000' } } });
    const { handle } = await startUpgrade(client, s.input, taskQueue);
    while (!(await stepLog(s.log)).includes('beta pre-upgrade start')) {
      assert.ok(Date.now() < deadline, 'beta pre-upgrade did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /temporal_worker_task_slots_available|temporal_activity_execution_latency/);

    child.kill('SIGTERM');
    assert.equal(await exited, 0, `worker exit: ${stderr}`);
    assert.match(stderr, /ks-upgrade worker: stopped/);
    assert.ok(
      (await stepLog(s.log)).includes('beta pre-upgrade end'),
      'the running step finished before the worker exited',
    );

    second = await startChildWorker(env.temporalAddress, env.temporalNamespace, taskQueue);
    assert.equal((await handle.result()).status, 'Succeeded');
    const starts = (await stepLog(s.log)).filter((l) => l.endsWith(' start'));
    assert.equal(starts.length, 9, 'no step ran twice');
  });
});
