// Crash resume: the worker process is SIGKILLed in the middle of steps (between a backup and the
// action it protects, before a create, and while the workflow waits at the gate). New workers
// continue; the result equals an uninterrupted run and finished steps never run again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { ConfigMapResource } from '../../src/api/core.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { ClusterConnection } from '../../src/kube/connect.js';
import { createResourceStore } from '../../src/store/index.js';
import { startUpgrade } from '../../src/temporal/client.js';
import { coreUpgradedSignal } from '../../workflows/messages.js';
import { startChildWorker, type ChildWorker } from '../helpers/child-worker.js';
import { devEnv, uniqueName } from '../helpers/env.js';
import { devClusterConnection } from '../helpers/kube.js';
import { demoSetup, stepLog, temporalClients, waitForProgress, type DemoSetup } from '../helpers/upgrade.js';

describe('crash resume', () => {
  const env = devEnv();
  let conn: ClusterConnection;
  let kube: ResourceClient;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  const workers: ChildWorker[] = [];

  before(async () => {
    conn = await devClusterConnection();
    kube = conn.client;
    ({ client, connection, native } = await temporalClients());
  });
  after(async () => {
    for (const w of workers) await w.kill();
    conn.close();
    await connection.close();
    await native.close();
  });

  const newWorker = async (taskQueue: string): Promise<ChildWorker> => {
    const w = await startChildWorker(env.temporalAddress, env.temporalNamespace, taskQueue);
    workers.push(w);
    return w;
  };

  /** The cluster objects and backups of a run, with its own names replaced so runs compare. */
  const snapshot = async (s: DemoSetup) => {
    const norm = (text: string) => text.split(s.namespace).join('<ns>').split(s.cluster).join('<cluster>');
    const cms = (await kube.listAll(ConfigMapResource, { namespace: s.namespace }))
      .filter((c) => c.metadata.name !== 'kube-root-ca.crt')
      .map((c) => [c.metadata.name, c.data ?? {}])
      .sort();
    const store = await createResourceStore({ local: { path: s.storeDir } });
    const backups: [string, string][] = [];
    for (const key of await store.list()) {
      backups.push([norm(key), norm(Buffer.from(await store.loadRaw(key)).toString('utf8'))]);
    }
    return { cms, backups };
  };

  /** Runs to completion, starting a new worker each time the current one dies. */
  const runThroughCrashes = async (resultP: Promise<unknown>, taskQueue: string, first: ChildWorker) => {
    let w = first;
    let crashes = 0;
    for (;;) {
      const next = await Promise.race([
        resultP.then(() => 'done' as const),
        w.exited.then(() => 'died' as const),
      ]);
      if (next === 'done') return crashes;
      crashes++;
      w = await newWorker(taskQueue);
    }
  };

  let baseline: Awaited<ReturnType<typeof snapshot>>;

  it('an uninterrupted run (the baseline)', async () => {
    const s = await demoSetup(kube);
    const taskQueue = uniqueName('crash');
    await newWorker(taskQueue);
    const { handle } = await startUpgrade(client, s.input, taskQueue);
    assert.equal((await handle.result()).status, 'Succeeded');
    baseline = await snapshot(s);
    assert.equal(baseline.backups.length, 4, 'a backup per job and the cluster-name binding');
  });

  it('SIGKILL between a backup and its action, and before a create: same result, no step re-run', async () => {
    const s = await demoSetup(kube, {
      jobOptions: {
        beta: { crashAt: 'pre-upgrade:after-backup' },
        gamma: { crashAt: 'post-upgrade:before-create' },
      },
    });
    const taskQueue = uniqueName('crash');
    const first = await newWorker(taskQueue);
    const { handle } = await startUpgrade(client, s.input, taskQueue);
    const crashes = await runThroughCrashes(handle.result(), taskQueue, first);
    assert.equal(crashes, 2, 'the worker died at both injected points');

    assert.deepEqual(await snapshot(s), baseline, 'cluster state and backups equal the uninterrupted run');
    const log = await stepLog(s.log);
    assert.ok(log.includes('beta pre-upgrade crash after-backup'));
    assert.ok(log.includes('gamma post-upgrade crash before-create'));
    // Every step started exactly once, except the two that crashed (started again, then finished).
    const starts = new Map<string, number>();
    for (const l of log.filter((x) => x.endsWith(' start'))) starts.set(l, (starts.get(l) ?? 0) + 1);
    for (const [step, n] of starts) {
      const crashed = step === 'beta pre-upgrade start' || step === 'gamma post-upgrade start';
      assert.equal(n, crashed ? 2 : 1, `${step} ran ${n} times`);
    }
    assert.equal(log.filter((x) => x.endsWith(' end')).length, 9, 'nine steps finished, each once');
  });

  it('SIGKILL while the workflow waits at the gate: a new worker continues it', async () => {
    const s = await demoSetup(kube);
    const taskQueue = uniqueName('crash');
    const first = await newWorker(taskQueue);
    const { handle } = await startUpgrade(client, { ...s.input, gate: 'signal' }, taskQueue);
    await waitForProgress(handle, (p) => p.status === 'AwaitingCoreUpgrade');
    await first.kill();
    await newWorker(taskQueue);
    await handle.signal(coreUpgradedSignal, { by: 'crash-test' });
    assert.equal((await handle.result()).status, 'Succeeded');
    assert.deepEqual(await snapshot(s), baseline);
    const starts = (await stepLog(s.log)).filter((x) => x.endsWith(' start'));
    assert.equal(starts.length, 9, 'no step ran twice');
  });
});
