// The full default upgrade with every job of the original enabled, on a host + member fixture fleet
// with every v3 component switched on: it completes through the detect gate, each extension gets
// its InstallPlan, and a second run of the same upgrade changes neither the cluster nor the store.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import { createResourceStore } from '../../src/store/index.js';
import { startUpgrade } from '../../src/temporal/client.js';
import type { UpgradeResult } from '../../workflows/messages.js';
import { passGateAndFinish, prepareFullUpgrade, type FullUpgradeFixture } from '../helpers/full-upgrade.js';
import { clusterSnapshot, diff } from '../helpers/snapshot.js';
import { startWorker, temporalClients } from '../helpers/upgrade.js';

describe('full upgrade: every job enabled', () => {
  let fx: FullUpgradeFixture;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;

  before(async () => {
    fx = await prepareFullUpgrade();
    ({ client, connection, native } = await temporalClients());
    ({ worker, run, taskQueue } = await startWorker(native, fx.registry));
  });
  after(async () => {
    worker.shutdown();
    await run;
    await connection.close();
    await native.close();
    await fx.stop();
  });

  const upgrade = async (rerun: boolean): Promise<UpgradeResult> => {
    const { handle } = await startUpgrade(client, fx.input, taskQueue, undefined, { rerun });
    return rerun ? handle.result() : passGateAndFinish(fx, handle);
  };

  it('completes: every enabled job runs its phases, each extension gets its InstallPlan', async () => {
    const { host, jobNames, extensions } = fx;
    const result = await upgrade(false);
    assert.equal(result.status, 'Succeeded');
    const failed = result.steps.filter((s) => s.state !== 'succeeded' && s.state !== 'skipped');
    assert.deepEqual(failed, []);
    assert.deepEqual(result.decisions, []);
    const planned = new Set(result.plan.jobs.map((j) => j.name));
    for (const name of jobNames) assert.ok(planned.has(name), `job ${name} is in the plan`);
    // Jobs that found their component on this fleet did work in some phase.
    const ran = new Set(result.steps.filter((s) => s.outcome === 'succeeded').map((s) => s.job));
    const notApplicable = jobNames.filter((n) => !ran.has(n));
    assert.deepEqual(notApplicable, [], `jobs that found nothing to do: ${notApplicable.join(', ')}`);
    // Every extension of the original's config gets its InstallPlan, at the configured version.
    const plans = (await host.connection.client.listAll(InstallPlanResource))
      .map((p) => [p.metadata.name ?? '', p.spec.extension.version])
      .sort();
    assert.deepEqual(plans, [...extensions].sort());
  });

  it('a second run changes neither the cluster nor the store', async () => {
    const { host, member, dir, keyFile, controller, standIns } = fx;
    const store = await createResourceStore({
      local: { path: path.join(dir, 'backups') },
      encryption: { keyFile },
    });
    const keysBefore = await store.list();
    const statsBefore = await Promise.all(keysBefore.map((k) => store.stat(k)));
    await controller.stop();
    await standIns.stop();
    const hostBefore = await clusterSnapshot(host.connection.client);
    const memberBefore = await clusterSnapshot(member.connection.client);

    const result = await upgrade(true);
    assert.equal(result.status, 'Succeeded');

    assert.deepEqual(diff(hostBefore, await clusterSnapshot(host.connection.client)), []);
    assert.deepEqual(diff(memberBefore, await clusterSnapshot(member.connection.client)), []);
    assert.deepEqual(await store.list(), keysBefore);
    assert.deepEqual(await Promise.all(keysBefore.map((k) => store.stat(k))), statsBefore);
  });
});
