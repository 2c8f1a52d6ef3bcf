// A job never needs to heartbeat: a step that works past the activity's heartbeat timeout without
// a heartbeat of its own (one long list on a big cluster) is kept alive by runJobPhase, so Temporal
// never declares it dead and starts a second attempt beside the first. Real Temporal dev server
// and kube-apiserver; the demo job's `quiet` step sleeps 3× the heartbeat timeout.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { progressQuery } from '../../workflows/messages.js';
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
});
