// A job never needs to heartbeat: a step that works past the activity's heartbeat timeout without
// a heartbeat of its own (one long list on a big cluster) is kept alive by runJobPhase, so Temporal
// never declares it dead and starts a second attempt beside the first. Real Temporal dev server
// and kube-apiserver; the demo job's `quiet` step sleeps 3× the heartbeat timeout. The same holds
// for the preflight, behind the HTTP fault proxy slowing one answer down.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { progressQuery } from '../../workflows/messages.js';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { HttpFaultProxy } from '../faults/http-proxy.js';
import { devEnv } from '../helpers/env.js';
import { demoRegistry } from '../jobs/demo.js';
import { devClusterConnection } from '../helpers/kube.js';
import { demoSetup, startWorker, stepLog, temporalClients } from '../helpers/upgrade.js';

describe('heartbeats do not depend on the job', () => {
  let conn: ClusterConnection;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;

  before(async () => {
    conn = await devClusterConnection();
    ({ client, connection, native } = await temporalClients());
    ({ worker, run, taskQueue } = await startWorker(native, demoRegistry()));
  });
  after(async () => {
    worker.shutdown();
    await run;
    conn.close();
    await connection.close();
    await native.close();
  });

  it('a phase that sleeps past the heartbeat timeout without heartbeating completes in one attempt', async () => {
    const s = await demoSetup(conn.client, { jobOptions: { alpha: { quiet: 'pre-upgrade:6000' } } });
    const input = { ...s.input, tuning: { heartbeatTimeout: '2s' } };
    const { handle } = await startUpgrade(client, input, taskQueue);

    // Done, or stuck with the operator (a timed-out step retried until it gave up): bounded either way.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const { status } = await handle.describe();
      if (status.name !== 'RUNNING') break;
      const progress = await handle.query(progressQuery).catch(() => undefined);
      assert.notEqual(
        progress?.status,
        'AwaitingOperator',
        `a step failed: ${JSON.stringify(progress?.awaiting)}`,
      );
      assert.ok(Date.now() < deadline, 'the upgrade did not finish');
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal((await handle.result()).status, 'Succeeded');

    // The history: alpha's pre-upgrade ran once — attempt 1, no timeout, nothing retried.
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = events.filter((e) => {
      const a = e.activityTaskScheduledEventAttributes;
      if (a?.activityType?.name !== 'runJobPhase') return false;
      const payload = a.input?.payloads?.[0]?.data;
      const req = JSON.parse(Buffer.from(payload ?? []).toString('utf8')) as { job: string; phase: string };
      return req.job === 'alpha' && req.phase === 'pre-upgrade';
    });
    assert.equal(scheduled.length, 1, 'scheduled once');
    const id = scheduled[0]?.eventId;
    const started = events.filter(
      (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(id),
    );
    assert.equal(started.length, 1);
    assert.equal(
      started[0]?.activityTaskStartedEventAttributes?.attempt,
      1,
      'completed in its first attempt',
    );
    assert.deepEqual(
      events.filter((e) => e.activityTaskTimedOutEventAttributes),
      [],
      'no activity timed out',
    );
    assert.deepEqual(
      (await stepLog(s.log)).filter((l) => l.startsWith('alpha pre-upgrade')),
      ['alpha pre-upgrade start', 'alpha pre-upgrade end'],
      'one run of the step, not a second one beside the first',
    );
  });

  it('a preflight whose API call outlasts the heartbeat timeout completes in one attempt', async () => {
    // The HTTP fault proxy holds the preflight's first GET /version for 3.5× the heartbeat timeout.
    const env = devEnv();
    const kc = yaml.load(await readFile(env.kubeconfig, 'utf8')) as {
      clusters: { name: string; cluster: { server: string } }[];
      contexts: { name: string; context: { cluster: string } }[];
    };
    const clusterName = kc.contexts.find((c) => c.name === env.kubeContext)?.context.cluster;
    const cluster = kc.clusters.find((c) => c.name === clusterName);
    assert.ok(cluster, 'the dev kubeconfig has the context');
    const pki = path.join(env.stateDir, 'pki');
    let seen = 0;
    const proxy = await HttpFaultProxy.start({
      target: cluster.cluster.server,
      caFile: path.join(pki, 'ca.crt'),
      certFile: path.join(pki, 'apiserver.crt'),
      keyFile: path.join(pki, 'apiserver.key'),
      rate: 1,
      faults: ['slow'],
      slowMs: 7_000,
      skip: (req) => !(req.path.startsWith('/version') && seen++ === 0),
    });
    try {
      cluster.cluster.server = proxy.url;
      const s = await demoSetup(conn.client);
      const proxied = path.join(s.dir, 'proxied.kubeconfig');
      await writeFile(proxied, yaml.dump(kc), { mode: 0o600 });
      const input = {
        ...s.input,
        kube: { kubeconfig: proxied, context: env.kubeContext },
        tuning: { heartbeatTimeout: '2s' },
      };
      const { handle } = await startUpgrade(client, input, taskQueue);
      assert.equal((await handle.result()).status, 'Succeeded');
      assert.equal(proxy.injected.slow, 1, 'the preflight waited for the slow answer');
      const events = (await handle.fetchHistory()).events ?? [];
      assert.deepEqual(
        events.filter((e) => e.activityTaskTimedOutEventAttributes),
        [],
        'no activity timed out',
      );
      const scheduled = events.find(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'preflightCluster',
      );
      const started = events.find(
        (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled?.eventId),
      );
      assert.equal(started?.activityTaskStartedEventAttributes?.attempt, 1, 'the preflight ran once');
    } finally {
      await proxy.close();
    }
  });
});
