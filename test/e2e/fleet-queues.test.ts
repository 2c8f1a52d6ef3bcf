// One worker per cluster, each on its own task queue (`ks-upgrade worker --cluster X`, a process of
// its own whose only credentials are that cluster's kubeconfig), two replicas for member2: the
// fleet routes each member's upgrade and its gate checks to that member's queue, and the history
// proves member2's activities ran only on member2's workers.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client, Connection, WorkflowHandle } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { clusterTaskQueue, fleetWorkflowId, type FleetInput } from '../../src/fleet/input.js';
import { upgradeWorkflowId } from '../../src/upgrade/input.js';
import type { FleetResult } from '../../workflows/fleet/messages.js';
import { demoRegistry } from '../jobs/demo.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { devEnv, repoRoot, uniqueName } from '../helpers/env.js';
import {
  demoCluster,
  installHostCrds,
  memberConditions,
  multiContextKubeconfig,
  playV4Core,
  registerMember,
  startClusters,
  steps,
  tempDir,
} from '../helpers/fleet.js';
import { startWorker, temporalClients, DEMO_SKIP_CHECKS } from '../helpers/upgrade.js';

/** `ks-upgrade worker --cluster <name>` with only that cluster's kubeconfig. */
async function clusterWorker(cluster: string, kubeconfig: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      path.join(repoRoot, 'bin/ks-upgrade.js'),
      'worker',
      '--cluster',
      cluster,
      '--temporal-address',
      devEnv().temporalAddress,
      '--plugin',
      path.join(repoRoot, 'test/jobs/demo-plugin.ts'),
    ],
    { cwd: repoRoot, env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes(`task queue ${clusterTaskQueue(cluster)}`)) resolve();
    });
    child.on('exit', (code) => {
      reject(new Error(`worker for ${cluster} exited (${String(code)}): ${err}`));
    });
  });
  return child;
}

/** Identities of the workers that ran each activity of a workflow, by activity type. */
async function activityWorkers(
  handle: WorkflowHandle,
): Promise<{ type: string; queue: string; identity: string; input: string }[]> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, { type: string; queue: string; input: string }>();
  const out: { type: string; queue: string; identity: string; input: string }[] = [];
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) {
      const payload = s.input?.payloads?.[0]?.data;
      scheduled.set(String(e.eventId), {
        type: s.activityType?.name ?? '',
        queue: s.taskQueue?.name ?? '',
        input: payload ? Buffer.from(payload).toString('utf8') : '',
      });
    }
    const st = e.activityTaskStartedEventAttributes;
    if (st) {
      const sched = scheduled.get(String(st.scheduledEventId));
      if (sched) out.push({ ...sched, identity: st.identity ?? '' });
    }
  }
  return out;
}

describe('upgradeFleet: a worker per cluster on its own task queue', () => {
  let clusters: Map<string, EphemeralCluster>;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  const workers: ChildProcess[] = [];
  const kube = (name: string) => {
    const c = clusters.get(name);
    if (!c) throw new Error(name);
    return c.connection.client;
  };

  before(async () => {
    clusters = await startClusters(['host', 'member1', 'member2'], 'fqueue');
    for (const name of clusters.keys()) await playV4Core(kube(name));
    await installHostCrds(kube('host'));
    await registerMember(kube('host'), 'member1');
    await registerMember(kube('host'), 'member2');
    ({ client, connection, native } = await temporalClients());
    // The fleet's own worker reaches the host only.
    const hostOnly = await multiContextKubeconfig(
      await tempDir('fqueue'),
      new Map([['host', clusters.get('host') as EphemeralCluster]]),
    );
    process.env.KUBECONFIG = hostOnly;
    ({ worker, run, taskQueue } = await startWorker(native, demoRegistry()));
    workers.push(
      await clusterWorker('member1', clusters.get('member1')?.kubeconfig ?? ''),
      await clusterWorker('member2', clusters.get('member2')?.kubeconfig ?? ''),
      await clusterWorker('member2', clusters.get('member2')?.kubeconfig ?? ''),
    );
  });
  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    worker.shutdown();
    await run;
    await connection.close();
    await native.close();
    await Promise.all([...clusters.values()].map((c) => c.remove()));
  });

  it("routes each member's upgrade and gate to its own workers", async () => {
    const fleet = uniqueName('fq').slice(0, 24);
    const dir = await tempDir(fleet);
    const logs = new Map<string, string>();
    const entries: FleetInput['clusters'] = [];
    for (const c of ['host', 'member1', 'member2']) {
      const { configFile, log } = await demoCluster(kube(c), dir, c);
      logs.set(c, log);
      entries.push({
        name: `${fleet}-${c}`,
        role: c === 'host' ? 'host' : 'member',
        kubesphereName: c,
        ...(c === 'host' ? { context: 'host' } : { taskQueue: clusterTaskQueue(c) }),
        configFiles: [configFile],
        gateways: [],
      });
    }
    const input: FleetInput = {
      fleet,
      defaults: {
        skipChecks: DEMO_SKIP_CHECKS,
        useDefaults: false,
        gate: 'none',
        tuning: { heartbeatTimeout: '10s' },
      },
      clusters: entries,
      waves: [
        { name: 'host', clusters: [`${fleet}-host`] },
        { name: 'members', clusters: [`${fleet}-member1`, `${fleet}-member2`] },
      ],
      maxConcurrency: 2,
      failureBudget: { count: 0 },
      tuning: {
        verifyTimeoutMs: 20_000,
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
    const result = (await handle.result()) as FleetResult;
    assert.equal(result.status, 'Succeeded');
    for (const c of ['member1', 'member2']) {
      assert.equal(
        (await steps(logs.get(c) ?? '')).filter((l) => l.endsWith(' end')).length,
        9,
        `${c}: every step ran once`,
      );
      assert.equal(
        (await memberConditions(kube('host'), c)).Schedulable,
        undefined,
        `${c} schedulable again`,
      );
    }

    // member2's upgrade: every activity on member2's queue, started by a member2 worker.
    const m2 = await activityWorkers(client.workflow.getHandle(upgradeWorkflowId(`${fleet}-member2`)));
    assert.ok(m2.length >= 10, `member2 ran ${m2.length} activities`);
    for (const a of m2) {
      assert.equal(a.queue, clusterTaskQueue('member2'), `${a.type} on ${a.queue}`);
      assert.match(a.identity, /^cluster:member2\//, `${a.type} ran on ${a.identity}`);
    }
    const m1 = await activityWorkers(client.workflow.getHandle(upgradeWorkflowId(`${fleet}-member1`)));
    assert.ok(m1.every((a) => a.identity.startsWith('cluster:member1/')));
    // The fleet's gate: member2 verified by member2's worker; its mark on the host cleared by the host's.
    const gate = await activityWorkers(handle);
    const verify2 = gate.filter((a) => a.type === 'verifyCluster' && a.input.includes(`${fleet}-member2`));
    assert.ok(verify2.length >= 1);
    assert.ok(
      verify2.every(
        (a) => a.queue === clusterTaskQueue('member2') && a.identity.startsWith('cluster:member2/'),
      ),
    );
    const cleared = gate.filter((a) => a.type === 'clearMemberSchedulable');
    assert.equal(cleared.length, 2);
    assert.ok(cleared.every((a) => a.queue === taskQueue && !a.identity.startsWith('cluster:')));
  });
});
