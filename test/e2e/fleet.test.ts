// upgradeFleet on a host and two members, each its own kube-apiserver, one worker reaching all
// three through the contexts of one kubeconfig: the host first (asserted from the children's start
// times), the canary wave, an approval recorded with who and why, a member whose extension never
// becomes Installed held at the wave gate until an operator decides, and the host's
// `Schedulable=False (Upgrading)` mark removed from each verified member.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { fleetWorkflowId, type FleetInput } from '../../src/fleet/input.js';
import { upgradeWorkflowId } from '../../src/upgrade/input.js';
import {
  approveWaveUpdate,
  fleetProgressQuery,
  resolveClusterUpdate,
  type FleetResult,
} from '../../workflows/fleet/messages.js';
import { demoRegistry } from '../jobs/demo.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { uniqueName } from '../helpers/env.js';
import {
  demoCluster,
  installHostCrds,
  memberConditions,
  multiContextKubeconfig,
  playV4Core,
  putExtension,
  registerMember,
  setExtensionStates,
  startClusters,
  steps,
  tempDir,
  waitForFleet,
} from '../helpers/fleet.js';
import { startWorker, temporalClients, DEMO_SKIP_CHECKS } from '../helpers/upgrade.js';

describe('upgradeFleet: host first, waves, approval, wave gate', () => {
  let clusters: Map<string, EphemeralCluster>;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  let dir: string;
  let kubeconfig: string;
  const logs = new Map<string, string>();
  const configs = new Map<string, string>();
  const kube = (name: string) => {
    const c = clusters.get(name);
    if (!c) throw new Error(name);
    return c.connection.client;
  };

  before(async () => {
    clusters = await startClusters(['host', 'member1', 'member2'], 'fleet');
    dir = await tempDir('fleet');
    kubeconfig = await multiContextKubeconfig(dir, clusters);
    for (const name of clusters.keys()) {
      const { configFile, log } = await demoCluster(kube(name), dir, name);
      logs.set(name, log);
      configs.set(name, configFile);
      await playV4Core(kube(name));
    }
    await installHostCrds(kube('host'));
    await registerMember(kube('host'), 'member1');
    await registerMember(kube('host'), 'member2');
    // An extension placed on both members; the host's controller reports it Installed on member1 only.
    await putExtension(kube('host'), 'monitoring', ['member1', 'member2'], ['member1']);
    ({ client, connection, native } = await temporalClients());
    ({ worker, run, taskQueue } = await startWorker(native, demoRegistry()));
  });
  after(async () => {
    worker.shutdown();
    await run;
    await connection.close();
    await native.close();
    await Promise.all([...clusters.values()].map((c) => c.remove()));
  });

  it('upgrades the host, then each wave; the gate holds member2 until its extension is installed', async () => {
    const fleet = uniqueName('fl').slice(0, 30);
    const cluster = (name: string, role: 'host' | 'member') => ({
      name: `${fleet}-${name}`,
      role,
      kubesphereName: name,
      context: name,
      configFiles: [configs.get(name) ?? ''],
      gateways: [] as string[],
    });
    const input: FleetInput = {
      fleet,
      defaults: {
        skipChecks: DEMO_SKIP_CHECKS,
        kubeconfig,
        useDefaults: false,
        gate: 'none',
        tuning: { heartbeatTimeout: '10s' },
      },
      clusters: [cluster('host', 'host'), cluster('member1', 'member'), cluster('member2', 'member')],
      waves: [
        { name: 'host', clusters: [`${fleet}-host`] },
        { name: 'canary', clusters: [`${fleet}-member1`] },
        { name: 'rest', clusters: [`${fleet}-member2`], approval: true },
      ],
      maxConcurrency: 2,
      failureBudget: { count: 0 },
      tuning: {
        verifyTimeoutMs: 3000,
        verifyIntervalMs: 500,
        observeIntervalMs: 500,
        observeMaxWaitMs: 5000,
      },
    };
    const handle = await client.workflow.start('upgradeFleet', {
      taskQueue,
      workflowId: fleetWorkflowId(fleet),
      args: [input],
    });

    // The canary is done; wave "rest" waits for its approval, and nothing of member2 ran.
    const waiting = await waitForFleet(
      handle,
      (p) => p.status === 'AwaitingApproval',
      180_000,
      'the approval',
    );
    assert.equal(waiting.currentWave, 'rest');
    assert.deepEqual(
      waiting.clusters.map((c) => [c.name.replace(`${fleet}-`, ''), c.state]),
      [
        ['host', 'succeeded'],
        ['member1', 'succeeded'],
        ['member2', 'pending'],
      ],
    );
    assert.deepEqual(await steps(logs.get('member2') ?? ''), []);
    assert.equal(
      (await memberConditions(kube('host'), 'member1')).Schedulable,
      undefined,
      'member1 schedulable again',
    );
    assert.equal((await memberConditions(kube('host'), 'member2')).Schedulable, 'False/Upgrading');

    await assert.rejects(
      handle.executeUpdate(approveWaveUpdate, { args: [{ wave: 'rest', reason: '' }] }),
      (err: Error) => /a reason is required/.test(String((err.cause as Error | undefined)?.message)),
    );
    await handle.executeUpdate(approveWaveUpdate, {
      args: [{ wave: 'rest', reason: 'canary healthy for 1h', by: 'alice' }],
    });

    // member2 upgrades, its extension is not Installed on it: the gate asks an operator, the wave stays open.
    const held = await waitForFleet(
      handle,
      (p) => p.clusters.some((c) => c.awaiting?.kind === 'gate'),
      180_000,
      'the gate to ask',
    );
    const m2 = held.clusters.find((c) => c.name === `${fleet}-member2`);
    assert.equal(held.status, 'AwaitingOperator');
    assert.ok(m2?.awaiting);
    assert.equal(m2.state, 'verifying');
    assert.match(
      m2.awaiting.error,
      /installplan\/monitoring@member2: InstallPlan monitoring on member2 is not yet reported/,
    );
    assert.ok(m2.awaiting.commands.some((c) => c.includes(`fleet resolve ${fleet} ${fleet}-member2 retry`)));
    assert.equal(held.waves.find((w) => w.name === 'rest')?.state, 'running');
    // Its upgrade itself finished: the hold is the fleet's own gate on the observed state.
    assert.equal(
      (await client.workflow.getHandle(upgradeWorkflowId(`${fleet}-member2`)).describe()).status.name,
      'COMPLETED',
    );

    await setExtensionStates(kube('host'), 'monitoring', ['member1', 'member2']);
    await handle.executeUpdate(resolveClusterUpdate, {
      args: [{ cluster: `${fleet}-member2`, action: 'retry', reason: 'extension reinstalled', by: 'bob' }],
    });
    const result = (await handle.result()) as FleetResult;
    assert.equal(result.status, 'Succeeded');
    assert.deepEqual(
      result.clusters.map((c) => c.state),
      ['succeeded', 'succeeded', 'succeeded'],
    );
    assert.deepEqual(
      result.decisions.map((d) => [d.kind, d.by, d.reason, d.wave ?? d.cluster]),
      [
        ['approveWave', 'alice', 'canary healthy for 1h', 'rest'],
        ['resolveCluster', 'bob', 'extension reinstalled', `${fleet}-member2`],
      ],
    );
    assert.equal((await memberConditions(kube('host'), 'member2')).Schedulable, undefined);
    assert.equal((await memberConditions(kube('host'), 'member2')).KSCoreReady, 'True/KSCoreReady');

    // Host first: its upgrade closed before any member's started; then the canary, then the rest.
    const times = await Promise.all(
      ['host', 'member1', 'member2'].map(async (n) => {
        const d = await client.workflow.getHandle(upgradeWorkflowId(`${fleet}-${n}`)).describe();
        assert.equal(d.typedSearchAttributes.get({ name: 'UpgradeFleet', type: 'KEYWORD' } as never), fleet);
        assert.equal(d.parentExecution?.workflowId, fleetWorkflowId(fleet));
        return { start: d.startTime.getTime(), close: d.closeTime?.getTime() ?? Infinity };
      }),
    );
    const [host, m1, m2t] = times as [(typeof times)[0], (typeof times)[0], (typeof times)[0]];
    assert.ok(host.close <= m1.start, 'the host finished before member1 started');
    assert.ok(m1.close <= m2t.start, 'the canary finished before the next wave');
    // Every cluster ran each demo job's phases once.
    for (const name of ['host', 'member1', 'member2']) {
      const started = (await steps(logs.get(name) ?? '')).filter((l) => l.endsWith(' start'));
      assert.equal(started.length, 9, `${name}: ${started.join(', ')}`);
    }
    const progress = await handle.query(fleetProgressQuery);
    assert.equal(progress.status, 'Succeeded');
    const described = await handle.describe();
    assert.equal(
      described.typedSearchAttributes.get({ name: 'UpgradeStatus', type: 'KEYWORD' } as never),
      'Succeeded',
    );
  });
});
