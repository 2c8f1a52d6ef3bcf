// The failure budget on real servers: with budget 0 a member whose job fails (and rolls back)
// stops the next wave; with budget 1 the fleet goes on; a member waiting for its operator holds
// its wave open, shows in the fleet with the command, and an operator `skip` on that upgrade lets
// the wave close — while a pause (who and why recorded) keeps the next wave from starting.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowNotFoundError, type Client, type Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { ConfigMapResource, NamespaceResource } from '../../src/api/core.js';
import { resolveSoon } from '../../src/cli/operate.js';
import { fleetWorkflowId, type FleetInput } from '../../src/fleet/input.js';
import { upgradeWorkflowId } from '../../src/upgrade/input.js';
import { pauseUpdate, resumeUpdate, type FleetResult } from '../../workflows/fleet/messages.js';
import { demoRegistry } from '../jobs/demo.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { uniqueName } from '../helpers/env.js';
import {
  DEMO_NAMESPACE,
  demoCluster,
  installHostCrds,
  multiContextKubeconfig,
  playV4Core,
  registerMember,
  startClusters,
  steps,
  tempDir,
  waitForFleet,
} from '../helpers/fleet.js';
import { startWorker, temporalClients, DEMO_SKIP_CHECKS } from '../helpers/upgrade.js';

describe('upgradeFleet: failure budget, operator decisions, pause', () => {
  let clusters: Map<string, EphemeralCluster>;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  let kubeconfig: string;
  const kube = (name: string) => {
    const c = clusters.get(name);
    if (!c) throw new Error(name);
    return c.connection.client;
  };

  before(async () => {
    clusters = await startClusters(['host', 'member1', 'member2'], 'fbudget');
    kubeconfig = await multiContextKubeconfig(await tempDir('fbudget'), clusters);
    for (const name of clusters.keys()) await playV4Core(kube(name));
    await installHostCrds(kube('host'));
    await registerMember(kube('host'), 'member1');
    await registerMember(kube('host'), 'member2');
    // member1's first job fails in pre-upgrade, every time.
    await kube('member1').apply(NamespaceResource, { metadata: { name: DEMO_NAMESPACE } });
    await kube('member1').apply(ConfigMapResource, {
      metadata: { name: 'fail-alpha-pre-upgrade', namespace: DEMO_NAMESPACE },
    });
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

  /** A fleet of the three clusters in three waves; each scenario has its own cluster names and logs. */
  const fleetOf = async (
    budget: number,
    failurePolicy: 'ask' | 'abort',
  ): Promise<{ input: FleetInput; name: (c: string) => string; logs: Map<string, string> }> => {
    const fleet = uniqueName('fb').slice(0, 24);
    const dir = await tempDir(fleet);
    const logs = new Map<string, string>();
    const name = (c: string): string => `${fleet}-${c}`;
    const clustersIn: FleetInput['clusters'] = [];
    for (const c of ['host', 'member1', 'member2']) {
      const { configFile, log } = await demoCluster(kube(c), dir, c, { storeDir: path.join(dir, 'backups') });
      logs.set(c, log);
      clustersIn.push({
        name: name(c),
        role: c === 'host' ? 'host' : 'member',
        kubesphereName: c,
        context: c,
        configFiles: [configFile],
        gateways: [],
      });
    }
    return {
      name,
      logs,
      input: {
        fleet,
        defaults: {
          skipChecks: DEMO_SKIP_CHECKS,
          kubeconfig,
          useDefaults: false,
          gate: 'none',
          failurePolicy,
          tuning: { heartbeatTimeout: '10s' },
        },
        clusters: clustersIn,
        waves: [
          { name: 'host', clusters: [name('host')] },
          { name: 'first', clusters: [name('member1')] },
          { name: 'second', clusters: [name('member2')] },
        ],
        maxConcurrency: 1,
        failureBudget: { count: budget },
        tuning: {
          verifyTimeoutMs: 20_000,
          verifyIntervalMs: 500,
          observeIntervalMs: 500,
          observeMaxWaitMs: 5000,
        },
      },
    };
  };
  const start = (input: FleetInput) =>
    client.workflow.start('upgradeFleet', {
      taskQueue,
      workflowId: fleetWorkflowId(input.fleet),
      args: [input],
    });

  it('budget 0: a member whose job fails stops the next wave', async () => {
    const { input, name, logs } = await fleetOf(0, 'abort');
    const handle = await start(input);
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.match(
      String(err.cause?.message),
      /1 clusters failed, the budget allows 0: no further cluster was started/,
    );
    assert.equal((err.cause as { type?: string } | undefined)?.type, 'FailureBudgetExceeded');
    await assert.rejects(
      client.workflow.getHandle(upgradeWorkflowId(name('member2'))).describe(),
      WorkflowNotFoundError,
    );
    assert.deepEqual(await steps(logs.get('member2') ?? ''), []);
    // member1's upgrade rolled back what ran (failure policy abort).
    assert.ok((await steps(logs.get('member1') ?? '')).some((l) => l.includes('rollback')));
  });

  it('budget 1: the fleet goes on and ends PartiallySucceeded, naming the failed member', async () => {
    const { input, name } = await fleetOf(1, 'abort');
    const result = (await (await start(input)).result()) as FleetResult;
    assert.equal(result.status, 'PartiallySucceeded');
    assert.deepEqual(
      result.clusters.map((c) => [c.name, c.state]),
      [
        [name('host'), 'succeeded'],
        [name('member1'), 'failed'],
        [name('member2'), 'succeeded'],
      ],
    );
    assert.match(result.clusters[1]?.error ?? '', /aborted by failurePolicy/);
  });

  it("an operator's skip on the waiting upgrade closes its wave; a pause holds the next one", async () => {
    // This time alpha fails after its backup (post-upgrade), so skipping it leaves nothing half-done.
    await kube('member1').delete(ConfigMapResource, 'fail-alpha-pre-upgrade', DEMO_NAMESPACE);
    await kube('member1').apply(ConfigMapResource, {
      metadata: { name: 'fail-alpha-post-upgrade', namespace: DEMO_NAMESPACE },
    });
    const { input, name, logs } = await fleetOf(0, 'ask');
    const handle = await start(input);
    const held = await waitForFleet(handle, (p) => p.clusters.some((c) => c.awaiting?.kind === 'upgrade'));
    const m1 = held.clusters.find((c) => c.name === name('member1'));
    assert.ok(m1?.awaiting);
    assert.equal(held.status, 'AwaitingOperator');
    assert.equal(m1.upgradeStatus, 'AwaitingOperator');
    assert.match(m1.awaiting.error, /injected failure: ConfigMap fail-alpha-post-upgrade exists/);
    assert.deepEqual(m1.awaiting.allowed, ['retry', 'skip', 'abort']);
    assert.ok(m1.awaiting.commands.some((c) => c.startsWith(`ks-upgrade resolve ${name('member1')} skip`)));
    assert.equal(held.waves.find((w) => w.name === 'first')?.state, 'running');
    assert.equal(held.clusters.find((c) => c.name === name('member2'))?.state, 'pending');

    await handle.executeUpdate(pauseUpdate, {
      args: [{ reason: 'change freeze until the incident is closed', by: 'carol' }],
    });
    await resolveSoon(client.workflow.getHandle(upgradeWorkflowId(name('member1'))), {
      action: 'skip',
      reason: 'alpha is not used on member1',
      by: 'dave',
    });
    const paused = await waitForFleet(
      handle,
      (p) =>
        p.clusters.find((c) => c.name === name('member1'))?.state === 'succeeded' && p.status === 'Paused',
    );
    assert.equal(paused.waves.find((w) => w.name === 'first')?.state, 'done');
    assert.equal(paused.paused?.by, 'carol');
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(await steps(logs.get('member2') ?? ''), [], 'nothing starts while paused');

    await handle.executeUpdate(resumeUpdate, { args: [{ reason: 'incident closed', by: 'carol' }] });
    const result = (await handle.result()) as FleetResult;
    assert.equal(result.status, 'Succeeded');
    assert.deepEqual(
      result.decisions.map((d) => [d.kind, d.by, d.reason]),
      [
        ['pause', 'carol', 'change freeze until the incident is closed'],
        ['resume', 'carol', 'incident closed'],
      ],
    );
  });
});
