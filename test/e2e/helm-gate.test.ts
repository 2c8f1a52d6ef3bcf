// Gate `helm` end to end: upgradeCluster on the KubeSphere v3 fixture whose ks-core is a real Helm
// release, the target v4 chart in the real OCI registry, the real helm binary run by the worker.
// The stand-in controller plays the Deployment rollouts (bare API servers run no controllers).
//   - the whole upgrade passes the gate with no signal and no operator: exactly one helm upgrade;
//   - the worker is SIGKILLed right after `helm upgrade` returned, and again during the rollout
//     wait: still exactly one Helm revision;
//   - abort after the helm step: ks-core is back at the v3 revision (values too), before the jobs
//     roll back, and kubesphere-config is as it was before the upgrade.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type Client, type Connection, type WorkflowHandle } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import { ConfigMapResource, DeploymentResource, type Deployment } from '../../src/api/core.js';
import { RepositoryResource } from '../../src/api/v4/index.js';
import { resolveSoon } from '../../src/cli/operate.js';
import type { HelmRevision } from '../../src/helm/core-upgrade.js';
import { registerBuiltinJobs } from '../../src/jobs/builtin.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import { startUpgrade } from '../../src/temporal/client.js';
import type { UpgradeClusterInput } from '../../src/upgrade/input.js';
import { progressQuery } from '../../workflows/messages.js';
import { startStandInController, type StandInController } from '../fixtures/kubesphere-v4/controller.js';
import {
  KS_CORE_V3,
  KS_CORE_V4,
  buildKsCoreCharts,
  installKsCoreV3Release,
  pushChart,
} from '../fixtures/ks-core-charts.js';
import { startChildWorker, type ChildWorker } from '../helpers/child-worker.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { devEnv, helmTools, repoRoot } from '../helpers/env.js';
import { installKubeSphereV3 } from '../helpers/kubesphere.js';
import { startWorker, temporalClients, waitForProgress } from '../helpers/upgrade.js';

const run = promisify(execFile);
const NS = 'kubesphere-system';
const isV4 = (d: Deployment): boolean =>
  (d.spec?.template?.spec?.containers ?? []).some((c) => (c.image ?? '').endsWith(':v4.1.3'));

describe('gate helm', () => {
  const tools = helmTools();
  const env = devEnv();
  let charts: { v3: string; v4: string };
  let ociChart: string;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  const clusters: EphemeralCluster[] = [];
  const controllers: StandInController[] = [];
  const children: ChildWorker[] = [];

  before(async () => {
    charts = await buildKsCoreCharts(tools.helm);
    ociChart = await pushChart(tools.helm, charts.v4, tools.registry);
    ({ client, connection, native } = await temporalClients());
  });
  after(async () => {
    for (const c of controllers) await c.stop();
    for (const w of children) await w.kill();
    await connection.close();
    await native.close();
    await Promise.all(clusters.map((c) => c.remove()));
  });

  /** A v3 cluster whose ks-core is a real release, and an upgrade of it with gate helm (core + iam). */
  async function setup(label: string, tuning: UpgradeClusterInput['tuning'] = {}) {
    const cluster = await startEphemeralCluster(label);
    clusters.push(cluster);
    const kube = cluster.connection.client;
    await installKubeSphereV3(kube);
    await installKsCoreV3Release(kube, {
      helm: tools.helm,
      kubeconfig: cluster.kubeconfig,
      chart: charts.v3,
    });
    const dir = await mkdtemp(path.join(tmpdir(), 'helm-gate-'));
    const keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    const configFile = path.join(dir, 'config.yaml');
    await writeFile(
      configFile,
      yaml.dump({
        storage: { local: { path: path.join(dir, 'backups') }, encryption: { keyFile } },
        jobs: { core: { enabled: true, priority: 10000 }, iam: { enabled: true, priority: 999 } },
        upgrade: {
          gate: 'helm',
          helm: {
            chart: ociChart,
            version: KS_CORE_V4.version,
            plainHttp: true,
            binary: tools.helm,
            timeout: '2m',
          },
        },
      }),
    );
    const input: UpgradeClusterInput = {
      cluster: cluster.name,
      kube: { kubeconfig: cluster.kubeconfig },
      configFiles: [configFile],
      useDefaults: false,
      tuning: { heartbeatTimeout: '5s', ...tuning },
    };
    return { cluster, kube, input };
  }

  async function history(cluster: EphemeralCluster): Promise<HelmRevision[]> {
    const { stdout } = await run(tools.helm, [
      'history',
      'ks-core',
      '-n',
      NS,
      '-o',
      'json',
      '--kubeconfig',
      cluster.kubeconfig,
    ]);
    return JSON.parse(stdout) as HelmRevision[];
  }

  async function values(cluster: EphemeralCluster, revision: number): Promise<unknown> {
    const args = ['get', 'values', 'ks-core', '-n', NS, '-o', 'json', '--revision', String(revision)];
    return JSON.parse((await run(tools.helm, [...args, '--kubeconfig', cluster.kubeconfig])).stdout);
  }

  const upgradeRevisions = (revs: HelmRevision[]) =>
    revs.map((r) => [r.revision, r.status, r.chart, r.app_version]);
  const ONE_UPGRADE = [
    [1, 'superseded', `ks-core-${KS_CORE_V3.version}`, KS_CORE_V3.appVersion],
    [2, 'deployed', `ks-core-${KS_CORE_V4.version}`, KS_CORE_V4.appVersion],
  ];

  it('a full upgrade passes the gate by itself: no signal, no operator, one helm upgrade', async () => {
    const { cluster, kube, input } = await setup('helm-gate');
    controllers.push(startStandInController(kube, { intervalMs: 200 }));
    const registry = new JobRegistry();
    registerBuiltinJobs(registry);
    const { worker, run: running, taskQueue } = await startWorker(native, registry);
    try {
      const { handle } = await startUpgrade(client, input, taskQueue);
      const result = await within(handle.result(), handle, 'the upgrade to finish');
      assert.equal(result.status, 'Succeeded');
      assert.deepEqual(result.decisions, [], 'no operator decision was needed');
      const failed = result.steps.filter((s) => s.state !== 'succeeded');
      assert.deepEqual(failed, []);
      assert.deepEqual(
        [...new Set(result.steps.map((s) => s.job))].sort(),
        ['core', 'iam'],
        'the jobs ran around the gate',
      );
      const progress = await handle.query(progressQuery);
      assert.equal(progress.gate.mode, 'helm');
      assert.equal(progress.gate.state, 'passed');
      assert.match(
        progress.gate.detail ?? '',
        /ks-core revision 2 \(ks-core-1\.1\.4\): helm upgrade deployed/,
      );
      assert.doesNotMatch(progress.gate.detail ?? '', /signalled/);
      assert.deepEqual(upgradeRevisions(await history(cluster)), ONE_UPGRADE);
      const apiserver = await kube.get(DeploymentResource, 'ks-apiserver', NS);
      assert.equal(
        apiserver.spec?.template?.spec?.containers?.[0]?.image,
        'docker.io/kubesphere/ks-apiserver:v4.1.3',
      );
      assert.ok(await kube.tryGet(RepositoryResource, 'extensions-museum'));
    } finally {
      worker.shutdown();
      await running;
    }
  });

  it('a worker killed right after helm upgrade returned, and one killed during the rollout wait: one revision', async () => {
    const { cluster, kube, input } = await setup('helm-crash');
    // v4 Deployments do not roll out until the test lets them.
    let rollout = false;
    controllers.push(startStandInController(kube, { intervalMs: 200, rollsOut: (d) => rollout || !isV4(d) }));
    const script = path.join(repoRoot, 'test/helpers/builtin-worker-process.ts');
    const taskQueue = `helm-crash-${cluster.name}`;
    const start = async (kill?: string): Promise<ChildWorker> => {
      const w = await startChildWorker(env.temporalAddress, env.temporalNamespace, taskQueue, {
        script,
        env: { ...process.env, ...(kill ? { KS_TEST_KILL_AFTER: kill } : {}) },
      });
      children.push(w);
      return w;
    };

    const first = await start('upgradeCoreRelease');
    const { handle } = await startUpgrade(client, input, taskQueue);
    assert.equal(await within(first.exited, handle, 'the first worker to kill itself'), 'SIGKILL');
    // helm had run to completion when the worker died.
    assert.deepEqual(upgradeRevisions(await history(cluster)), ONE_UPGRADE);

    const second = await start();
    await within(waitForPending(handle, 'waitForCoreUpgrade'), handle, 'the rollout wait');
    const progress = await handle.query(progressQuery);
    assert.match(
      progress.gate.detail ?? '',
      /revision 2 .*had already run/,
      'the retried step read the release',
    );
    await second.kill();

    await start();
    rollout = true;
    const result = await within(handle.result(), handle, 'the upgrade to finish');
    assert.equal(result.status, 'Succeeded');
    assert.deepEqual(result.decisions, []);
    assert.deepEqual(upgradeRevisions(await history(cluster)), ONE_UPGRADE, 'exactly one helm upgrade');
  });

  it('abort after the helm step restores the v3 ks-core release before the jobs roll back', async () => {
    const { cluster, kube, input } = await setup('helm-abort', { detectTimeout: '8s' });
    // The v4 control plane never becomes ready: the gate times out and the operator aborts.
    controllers.push(startStandInController(kube, { intervalMs: 200, rollsOut: (d) => !isV4(d) }));
    const configBefore = (await kube.get(ConfigMapResource, 'kubesphere-config', NS)).data;
    const replicasBefore = (await kube.get(DeploymentResource, 'ks-apiserver', NS)).spec?.replicas;
    const registry = new JobRegistry();
    registerBuiltinJobs(registry);
    const { worker, run: running, taskQueue } = await startWorker(native, registry);
    try {
      const { handle } = await startUpgrade(client, input, taskQueue);
      const waiting = await waitForProgress(handle, (p) => p.awaiting?.phase === 'gate', 300_000);
      assert.match(waiting.awaiting?.error ?? '', /not detected within 8s; last seen: /);
      assert.deepEqual(upgradeRevisions(await history(cluster)), ONE_UPGRADE);
      await resolveSoon(handle, { action: 'abort', reason: 'v4 does not come up', by: 'test' });
      await assert.rejects(handle.result(), (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError);
        const cause = err.cause as {
          type?: string;
          details?: { rollback?: { job: string; state: string }[] }[];
        };
        assert.equal(cause.type, 'UpgradeAborted');
        const order = (cause.details?.[0]?.rollback ?? []).map((r) => `${r.job} ${r.state}`);
        assert.deepEqual(
          order,
          ['ks-core rolled-back', 'iam rolled-back', 'core rolled-back'],
          JSON.stringify(cause.details),
        );
        return true;
      });
    } finally {
      worker.shutdown();
      await running;
    }
    const revs = await history(cluster);
    const last = revs.at(-1);
    assert.equal(revs.length, 3);
    assert.deepEqual(
      [last?.status, last?.chart, last?.app_version],
      ['deployed', `ks-core-${KS_CORE_V3.version}`, KS_CORE_V3.appVersion],
    );
    assert.deepEqual(await values(cluster, 3), await values(cluster, 1));
    assert.deepEqual((await kube.get(ConfigMapResource, 'kubesphere-config', NS)).data, configBefore);
    const apiserver = await kube.get(DeploymentResource, 'ks-apiserver', NS);
    assert.equal(apiserver.spec?.template?.spec?.containers?.[0]?.image, 'kubesphere/ks-apiserver:v3.4.1');
    assert.equal(apiserver.spec.replicas, replicasBefore);
    assert.equal(await kube.tryGet(RepositoryResource, 'extensions-museum'), undefined);
  });
});

/** The promise, or a failure after `ms` that shows where the upgrade stands (instead of a hang). */
async function within<T>(p: Promise<T>, handle: WorkflowHandle, what: string, ms = 300_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void handle
        .query(progressQuery)
        .catch(() => undefined)
        .then((p) => {
          reject(
            new Error(
              `waited ${ms} ms for ${what}; upgrade ${p?.status ?? '?'}, gate ${JSON.stringify(p?.gate)}, awaiting ${JSON.stringify(p?.awaiting)}`,
            ),
          );
        });
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until the workflow has a pending activity of this type (running or being retried). */
async function waitForPending(
  handle: WorkflowHandle,
  activityType: string,
  timeoutMs = 240_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const d = await handle.describe();
    if (d.raw.pendingActivities?.some((a) => a.activityType?.name === activityType)) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`no pending ${activityType} within ${timeoutMs} ms`);
}
