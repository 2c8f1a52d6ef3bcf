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
import type { ResourceClient } from '../../src/kube/client.js';
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
import { startWorker, temporalClients, waitForProgress } from '../helpers/upgrade.js';

/** Every object the API server lists, by resource, namespace and name → resourceVersion. */
async function clusterSnapshot(kube: ResourceClient): Promise<Map<string, string>> {
  const get = async <T>(p: string): Promise<T | undefined> => {
    const res = await kube.transport.request({ method: 'GET', path: p });
    // An aggregated API whose backing service does not run here (metrics.k8s.io) answers 503.
    if (res.status === 503) return undefined;
    assert.equal(res.status, 200, `GET ${p}: HTTP ${res.status}`);
    return JSON.parse(res.text) as T;
  };
  interface Resources {
    resources: { name: string; verbs: string[] }[];
  }
  const groups = await get<{ groups: { preferredVersion: { groupVersion: string } }[] }>('/apis');
  const bases = ['/api/v1', ...(groups?.groups ?? []).map((g) => `/apis/${g.preferredVersion.groupVersion}`)];
  // Leases and events move on their own (the API server's heartbeats), not by the upgrade.
  const volatile = new Set(['leases', 'events']);
  const out = new Map<string, string>();
  for (const base of bases) {
    const list = await get<Resources>(base);
    for (const r of list?.resources ?? []) {
      if (r.name.includes('/') || !r.verbs.includes('list') || volatile.has(r.name)) continue;
      const items = await get<{
        items: { metadata: { namespace?: string; name: string; resourceVersion: string } }[];
      }>(`${base}/${r.name}`);
      for (const o of items?.items ?? []) {
        out.set(
          `${base}/${r.name} ${o.metadata.namespace ?? ''}/${o.metadata.name}`,
          o.metadata.resourceVersion,
        );
      }
    }
  }
  return out;
}

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const changes: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) changes.push(b.has(k) ? `changed ${k}` : `deleted ${k}`);
  for (const k of b.keys()) if (!a.has(k)) changes.push(`created ${k}`);
  return changes;
}

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
