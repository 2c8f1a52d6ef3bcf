// The fleet with the real jobs on the KubeSphere v3 fixture (a host and a member, each its own
// kube-apiserver): core and gateway, the detect gate, `helm upgrade ks-core` played at each gate.
// The host's core job marks the member `Schedulable=False (Upgrading)`; the fleet removes the mark
// once the member is verified — the step the original leaves to people — and upgrades the host's
// gateway with the gateway job's dynamic-upgrade, verified on the v2 Gateway and its release.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import { GatewayResource } from '../../src/api/v4/index.js';
import { fleetWorkflowId, gatewayWorkflowId, type FleetInput } from '../../src/fleet/input.js';
import { registerBuiltinJobs } from '../../src/jobs/builtin.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import { upgradeWorkflowId } from '../../src/upgrade/input.js';
import type { FleetResult } from '../../workflows/fleet/messages.js';
import { progressQuery } from '../../workflows/messages.js';
import { startStandInController, type StandInController } from '../fixtures/kubesphere-v4/controller.js';
import { startFleetStandIns, writeExtensionCharts } from '../fixtures/kubesphere-v4/extensions.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { uniqueName } from '../helpers/env.js';
import {
  V1_CLUSTER_GATEWAY,
  installV1ClusterGateway,
  startMemberInstallReports,
  startOrphanCollector,
  memberConditions,
  multiContextKubeconfig,
  startClusters,
  tempDir,
  waitForFleet,
} from '../helpers/fleet.js';
import { installFixtureFleet, playCoreUpgrade } from '../helpers/kubesphere.js';
import { startWorker, temporalClients } from '../helpers/upgrade.js';

const GATEWAY_VERSION: [string, string] = ['gateway', '1.0.2'];

describe('upgradeFleet with the real jobs on the KubeSphere v3 fixture', () => {
  let clusters: Map<string, EphemeralCluster>;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  let controllers: StandInController[] = [];
  let standIns: { stop(): Promise<void> } | undefined;
  let collector: { stop(): Promise<void> } | undefined;
  let reports: { stop(): Promise<void> } | undefined;
  const kube = (name: string) => {
    const c = clusters.get(name);
    if (!c) throw new Error(name);
    return c.connection.client;
  };

  before(async () => {
    clusters = await startClusters(['host', 'member1'], 'freal');
    const host = clusters.get('host') as EphemeralCluster;
    const member = clusters.get('member1') as EphemeralCluster;
    await installFixtureFleet(
      { client: host.connection.client, kubeconfig: host.kubeconfig },
      { client: member.connection.client, kubeconfig: member.kubeconfig },
    );
    await installV1ClusterGateway(kube('host'));
    controllers = [startStandInController(kube('host')), startStandInController(kube('member1'))];
    standIns = startFleetStandIns(kube('host'), kube('member1'));
    collector = startOrphanCollector(kube('member1'));
    ({ client, connection, native } = await temporalClients());
    const registry = new JobRegistry();
    registerBuiltinJobs(registry);
    ({ worker, run, taskQueue } = await startWorker(native, registry));
  });
  after(async () => {
    for (const c of controllers) await c.stop();
    await standIns?.stop();
    await collector?.stop();
    await reports?.stop();
    worker.shutdown();
    await run;
    await connection.close();
    await native.close();
    await Promise.all([...clusters.values()].map((c) => c.remove()));
  });

  it('host, member, Schedulable cleared, the host gateway upgraded and verified', async () => {
    const fleet = uniqueName('fr').slice(0, 24);
    const dir = await tempDir(fleet);
    const kubeconfig = await multiContextKubeconfig(dir, clusters);
    const keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    const common = path.join(dir, 'common.yaml');
    const member = path.join(dir, 'member.yaml');
    await writeFile(
      common,
      yaml.dump({
        storage: { local: { path: path.join(dir, 'backups') }, encryption: { keyFile } },
        validator: { extensionsMuseum: { watchTimeout: '2m' } },
        jobs: { iam: { enabled: false }, gateway: { enabled: true } },
      }),
    );
    await writeFile(member, yaml.dump({ validator: { extensionsMuseum: { enabled: false } } }));
    const input: FleetInput = {
      fleet,
      defaults: { kubeconfig, configFiles: [common], gate: 'detect', tuning: { heartbeatTimeout: '20s' } },
      clusters: [
        { name: `${fleet}-host`, role: 'host', kubesphereName: 'host', context: 'host' },
        {
          name: `${fleet}-member1`,
          role: 'member',
          kubesphereName: 'member1',
          context: 'member1',
          configFiles: [common, member],
        },
      ],
      waves: [
        { name: 'host', clusters: [`${fleet}-host`] },
        { name: 'members', clusters: [`${fleet}-member1`] },
      ],
      maxConcurrency: 1,
      failureBudget: { count: 0 },
      tuning: {
        verifyTimeoutMs: 120_000,
        verifyIntervalMs: 1000,
        observeIntervalMs: 500,
        observeMaxWaitMs: 5000,
      },
    };
    const handle = await client.workflow.start('upgradeFleet', {
      taskQueue,
      workflowId: fleetWorkflowId(fleet),
      args: [input],
    });

    // At each cluster's gate: `helm upgrade ks-core` to v4 on it (the gateway CRD comes from its extension).
    let markedWhileUpgrading: string | undefined;
    for (const c of ['host', 'member1']) {
      const child = client.workflow.getHandle(upgradeWorkflowId(`${fleet}-${c}`));
      for (const deadline = Date.now() + 300_000; ;) {
        const p = await child.query(progressQuery).catch(() => undefined);
        if (p?.status === 'AwaitingCoreUpgrade') break;
        assert.ok(!p?.awaiting, `${c}: ${JSON.stringify(p?.awaiting)}`);
        assert.ok(Date.now() < deadline, `${c} did not reach its gate`);
        await new Promise((r) => setTimeout(r, 500));
      }
      if (c === 'member1')
        markedWhileUpgrading = (await memberConditions(kube('host'), 'member1')).Schedulable;
      await playCoreUpgrade(kube(c), c === 'host' ? [GATEWAY_VERSION] : [], {
        skipCrds: ['gateways.gateway.kubesphere.io'],
      });
      if (c === 'host') await writeExtensionCharts(kube('host'), new Map([GATEWAY_VERSION]));
      // member1 runs v4 now: the host's controller installs the extensions placed on it.
      else reports = startMemberInstallReports(kube('host'), 'member1');
    }
    // Bounded: a cluster held at a gate shows its evidence here instead of hanging the test.
    await waitForFleet(
      handle,
      (p) => p.status === 'Succeeded' || p.clusters.some((c) => c.awaiting !== undefined),
      600_000,
    ).then((p) => {
      const held = p.clusters.filter((c) => c.awaiting).map((c) => [c.name, c.awaiting?.error]);
      assert.deepEqual(held, []);
    });
    const result = (await handle.result()) as FleetResult;
    assert.equal(result.status, 'Succeeded', JSON.stringify(result.clusters));

    // The host's core job marked member1; the fleet removed the mark once member1 was verified.
    assert.equal(markedWhileUpgrading, 'False/Upgrading');
    const conditions = await memberConditions(kube('host'), 'member1');
    assert.equal(conditions.Schedulable, undefined);
    assert.equal(conditions.KSCoreReady, 'True/KSCoreReady');

    // The host's gateway: its own dynamic-upgrade run, then the v2 Gateway and its release verified.
    const progress = await waitForFleet(handle, () => true);
    const hostRecord = progress.clusters.find((c) => c.name === `${fleet}-host`);
    assert.deepEqual(
      hostRecord?.gateways?.map((g) => [g.name, g.state]),
      [[V1_CLUSTER_GATEWAY, 'succeeded']],
    );
    assert.deepEqual(progress.clusters.find((c) => c.name === `${fleet}-member1`)?.gateways, []);
    const gwRun = await client.workflow
      .getHandle(gatewayWorkflowId(`${fleet}-host`, V1_CLUSTER_GATEWAY))
      .describe();
    assert.equal(gwRun.status.name, 'COMPLETED');
    const v2 = await kube('host').get(
      GatewayResource,
      'kubesphere-router-cluster',
      'kubesphere-controls-system',
    );
    assert.equal(
      (v2 as { spec?: { appVersion?: string } }).spec?.appVersion,
      'kubesphere-nginx-ingress-4.12.1',
    );
    assert.ok(hostRecord);
    assert.ok(hostRecord.verification?.ok);
    // member1's gate: its own state and the host's report of its extensions (gateway placed on it).
    assert.ok(progress.clusters.find((c) => c.name === `${fleet}-member1`)?.verification?.ok);
  });
});
