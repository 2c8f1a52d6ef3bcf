// The full default upgrade with every job of the original enabled, on a host + member fixture fleet
// with every v3 component switched on: it completes through the detect gate, each extension gets
// its InstallPlan, and a second run of the same upgrade changes neither the cluster nor the store.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import { loadConfig } from '../../src/config/index.js';
import { registerBuiltinJobs } from '../../src/jobs/builtin.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import { createResourceStore } from '../../src/store/index.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { BUILTIN_CONFIG_PATH } from '../../src/upgrade/plan.js';
import type { UpgradeResult } from '../../workflows/messages.js';
import { startStandInController, type StandInController } from '../fixtures/kubesphere-v4/controller.js';
import {
  startFleetStandIns,
  startV3AppStore,
  writeExtensionCharts,
} from '../fixtures/kubesphere-v4/extensions.js';
import { uniqueName } from '../helpers/env.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installFixtureFleet, playCoreUpgrade } from '../helpers/kubesphere.js';
import { clusterSnapshot, diff } from '../helpers/snapshot.js';
import { startWorker, temporalClients, waitForProgress } from '../helpers/upgrade.js';

describe('full upgrade: every job enabled', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  let controller: StandInController;
  let standIns: { stop(): Promise<void> };
  let dir: string;
  let configFile: string;
  let keyFile: string;
  let extensions: [string, string][];
  let jobNames: string[];

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('full-host'),
      startEphemeralCluster('full-member'),
    ]);
    await installFixtureFleet(
      { client: host.connection.client, kubeconfig: host.kubeconfig },
      { client: member.connection.client, kubeconfig: member.kubeconfig },
    );
    const registry = new JobRegistry();
    registerBuiltinJobs(registry);
    jobNames = registry.names();
    const defaults = (await loadConfig([BUILTIN_CONFIG_PATH])).config;
    extensions = Object.values(defaults.jobs).flatMap((j) =>
      j.extensionRef ? [[j.extensionRef.name, j.extensionRef.version] as [string, string]] : [],
    );
    const appStore = await startV3AppStore(host.connection.client, uniqueName('full-app-store'));
    dir = await mkdtemp(path.join(tmpdir(), 'ks-upgrade-full-'));
    keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    configFile = path.join(dir, 'all-jobs.yaml');
    await writeFile(
      configFile,
      yaml.dump({
        storage: { local: { path: path.join(dir, 'backups') }, encryption: { keyFile } },
        validator: { extensionsMuseum: { watchTimeout: '2m' } },
        jobs: {
          ...Object.fromEntries(jobNames.map((n) => [n, { enabled: true }])),
          // The fixture has releases whose names collide in v4 on purpose: migrate the others.
          application: {
            enabled: true,
            dynamicOptions: { ...appStore, releaseNameConflicts: 'skip' },
          },
        },
      }),
    );
    controller = startStandInController(host.connection.client, { intervalMs: 200 });
    standIns = startFleetStandIns(host.connection.client, member.connection.client);
    ({ client, connection, native } = await temporalClients());
    ({ worker, run, taskQueue } = await startWorker(native, registry));
  });
  after(async () => {
    await controller.stop();
    await standIns.stop();
    worker.shutdown();
    await run;
    await connection.close();
    await native.close();
    await Promise.all([host.remove(), member.remove()]);
  });

  const upgrade = async (rerun: boolean): Promise<UpgradeResult> => {
    const { handle } = await startUpgrade(
      client,
      {
        cluster: host.name,
        kube: { kubeconfig: host.kubeconfig },
        configFiles: [configFile],
        gate: 'detect',
        tuning: { heartbeatTimeout: '20s' },
      },
      taskQueue,
      undefined,
      { rerun },
    );
    if (!rerun) {
      await waitForProgress(
        handle,
        (p) => p.status === 'AwaitingCoreUpgrade' || p.awaiting !== undefined,
        240_000,
      );
      const p = await waitForProgress(handle, () => true);
      assert.equal(p.awaiting, undefined, `a step failed: ${JSON.stringify(p.awaiting)}`);
      await playCoreUpgrade(host.connection.client, extensions);
      await writeExtensionCharts(host.connection.client, new Map(extensions));
    }
    return handle.result();
  };

  it('completes: every enabled job runs its phases, each extension gets its InstallPlan', async () => {
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
