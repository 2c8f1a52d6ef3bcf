// A fleet through a worker SIGKILL, a Temporal server restart and continue-as-new (a small history
// limit): it completes, every cluster's upgrade ran once (one workflow run, each step finished
// once), and no approval is lost — one given ahead for a later wave is honoured after both.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { fleetWorkflowId, type FleetInput } from '../../src/fleet/input.js';
import { freePort, startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import { upgradeWorkflowId } from '../../src/upgrade/input.js';
import { approveWaveUpdate, type FleetResult } from '../../workflows/fleet/messages.js';
import { startChildWorker, type ChildWorker } from '../helpers/child-worker.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { devEnv, uniqueName } from '../helpers/env.js';
import {
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
import { DEMO_SKIP_CHECKS } from '../helpers/upgrade.js';

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 180_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check());) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('upgradeFleet through crashes and continue-as-new', () => {
  let clusters: Map<string, EphemeralCluster>;
  let server: DevServer | undefined;
  let worker: ChildWorker | undefined;
  let connection: Connection | undefined;
  const kube = (name: string) => {
    const c = clusters.get(name);
    if (!c) throw new Error(name);
    return c.connection.client;
  };

  before(async () => {
    clusters = await startClusters(['host', 'member1', 'member2'], 'fcrash');
    for (const name of clusters.keys()) await playV4Core(kube(name));
    await installHostCrds(kube('host'));
    await registerMember(kube('host'), 'member1');
    await registerMember(kube('host'), 'member2');
  });
  after(async () => {
    await worker?.kill();
    await connection?.close();
    await server?.stop();
    await Promise.all([...clusters.values()].map((c) => c.remove()));
  });

  it('completes with each upgrade run once and every approval kept', async () => {
    const binary = devEnv().temporalCliPath;
    const serverDir = await mkdtemp(path.join(tmpdir(), 'ks-upgrade-fleet-crash-'));
    const dbFile = path.join(serverDir, 'temporal.db');
    const port = await freePort();
    const serve = (): Promise<DevServer> =>
      startDevServer({ binary, dbFile, port, headless: true, logFile: path.join(serverDir, 'server.log') });
    server = await serve();
    const taskQueue = uniqueName('fcrash');
    worker = await startChildWorker(server.address, 'default', taskQueue);
    connection = await Connection.connect({ address: server.address });
    let client = new Client({ connection });

    const fleet = uniqueName('fc').slice(0, 24);
    const dir = await tempDir(fleet);
    const kubeconfig = await multiContextKubeconfig(dir, clusters);
    const logs = new Map<string, string>();
    const entries: FleetInput['clusters'] = [];
    for (const c of ['host', 'member1', 'member2']) {
      // The members' second job is slow in pre-upgrade: the crashes hit it mid-step.
      const { configFile, log } = await demoCluster(kube(c), dir, c, {
        ...(c === 'host' ? {} : { jobOptions: { beta: { slow: 'pre-upgrade:6000' } } }),
      });
      logs.set(c, log);
      entries.push({
        name: `${fleet}-${c}`,
        role: c === 'host' ? 'host' : 'member',
        kubesphereName: c,
        context: c,
        configFiles: [configFile],
        gateways: [],
      });
    }
    const input: FleetInput = {
      fleet,
      defaults: {
        skipChecks: DEMO_SKIP_CHECKS,
        kubeconfig,
        useDefaults: false,
        gate: 'none',
        tuning: { heartbeatTimeout: '5s' },
      },
      clusters: entries,
      waves: [
        { name: 'host', clusters: [`${fleet}-host`] },
        { name: 'first', clusters: [`${fleet}-member1`], approval: true },
        { name: 'second', clusters: [`${fleet}-member2`], approval: true },
      ],
      maxConcurrency: 1,
      failureBudget: { count: 0 },
      tuning: {
        // Small enough that the three waves cross it whatever the gate's polling adds.
        historyLimit: 60,
        verifyTimeoutMs: 60_000,
        verifyIntervalMs: 500,
        observeIntervalMs: 500,
        observeMaxWaitMs: 5000,
      },
    };
    const workflowId = fleetWorkflowId(fleet);
    let handle: WorkflowHandle = await client.workflow.start('upgradeFleet', {
      taskQueue,
      workflowId,
      args: [input],
    });
    // Approved ahead, long before its wave: must survive everything below.
    await handle.executeUpdate(approveWaveUpdate, {
      args: [{ wave: 'second', reason: 'pre-approved for tonight', by: 'erin' }],
    });
    await waitForFleet(handle, (p) => p.status === 'AwaitingApproval' && p.currentWave === 'first');
    await handle.executeUpdate(approveWaveUpdate, {
      args: [{ wave: 'first', reason: 'host looks good', by: 'frank' }],
    });

    // A hard crash of the worker in the middle of member1's slow step, and a new worker.
    await until('member1 beta pre-upgrade', async () =>
      (await steps(logs.get('member1') ?? '')).includes('beta pre-upgrade start'),
    );
    await worker.kill();
    worker = await startChildWorker(server.address, 'default', taskQueue);

    // The Temporal server stops in the middle of member2's slow step and starts again on its file.
    await until('member2 beta pre-upgrade', async () =>
      (await steps(logs.get('member2') ?? '')).includes('beta pre-upgrade start'),
    );
    await connection.close();
    await server.stop();
    await new Promise((r) => setTimeout(r, 3000));
    server = await serve();
    connection = await Connection.connect({ address: server.address });
    client = new Client({ connection });
    handle = client.workflow.getHandle(workflowId);

    const result = (await handle.result()) as FleetResult;
    assert.equal(result.status, 'Succeeded');
    assert.ok(result.runs >= 2, `continue-as-new happened (${result.runs} runs)`);
    assert.deepEqual(
      result.decisions.map((d) => [d.kind, d.wave, d.by]),
      [
        ['approveWave', 'second', 'erin'],
        ['approveWave', 'first', 'frank'],
      ],
    );
    for (const c of ['host', 'member1', 'member2']) {
      const id = upgradeWorkflowId(`${fleet}-${c}`);
      const runs = [];
      for await (const w of client.workflow.list({ query: `WorkflowId = '${id}'` })) runs.push(w.runId);
      assert.equal(runs.length, 1, `${c}: one upgrade run`);
      const ended = (await steps(logs.get(c) ?? '')).filter((l) => l.endsWith(' end'));
      assert.equal(ended.length, 9, `${c}: ${ended.join(', ')}`);
      assert.equal(new Set(ended).size, 9, `${c}: no step finished twice`);
    }
    // The crash hit a running step, which ran again from its start (idempotent by design).
    assert.ok(
      (await steps(logs.get('member1') ?? '')).filter((l) => l === 'beta pre-upgrade start').length >= 2,
    );
    // Every run of the fleet stayed near its history limit.
    for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      const events =
        (await client.workflow.getHandle(workflowId, w.runId).fetchHistory()).events?.length ?? 0;
      assert.ok(events < 300, `run ${w.runId}: ${events} events`);
    }
  });
});
