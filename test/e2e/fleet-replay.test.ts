// Determinism of upgradeFleet: the histories of a representative fleet — an approval, a member held
// at the wave gate and resolved by an operator, continue-as-new — replay against the current code.
// The committed ones guard fleets in flight when the code changes (a change that breaks them must
// use `patched()`). Refresh after a deliberate, versioned change:
//   KS_RECORD_HISTORY=1 npm test -- test/e2e/fleet-replay.test.ts
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import { fleetWorkflowId, type FleetInput } from '../../src/fleet/input.js';
import { workflowBundle } from '../../src/temporal/bundle.js';
import { approveWaveUpdate, resolveClusterUpdate } from '../../workflows/fleet/messages.js';
import { demoRegistry } from '../jobs/demo.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot, uniqueName } from '../helpers/env.js';
import {
  demoCluster,
  installHostCrds,
  multiContextKubeconfig,
  playV4Core,
  putExtension,
  registerMember,
  setExtensionStates,
  startClusters,
  tempDir,
  waitForFleet,
} from '../helpers/fleet.js';
import { historyFromJson, historyToJson } from '../helpers/record-history.js';
import { installTestRuntime } from '../helpers/temporal.js';
import { startWorker, temporalClients, DEMO_SKIP_CHECKS } from '../helpers/upgrade.js';

const COMMITTED = ['first', 'last'].map((run) =>
  path.join(repoRoot, `test/fixtures/histories/fleet-${run}-run.json`),
);

describe('upgradeFleet replay', () => {
  let clusters: Map<string, EphemeralCluster>;
  before(async () => {
    clusters = await startClusters(['host', 'member1'], 'freplay');
  });
  after(async () => {
    await Promise.all([...clusters.values()].map((c) => c.remove()));
  });

  it('replays the first and the last run of a freshly recorded fleet', async () => {
    installTestRuntime();
    const kube = (n: string) => (clusters.get(n) as EphemeralCluster).connection.client;
    for (const n of clusters.keys()) await playV4Core(kube(n));
    await installHostCrds(kube('host'));
    await registerMember(kube('host'), 'member1');
    await putExtension(kube('host'), 'monitoring', ['member1'], []);
    const { client, connection, native } = await temporalClients();
    const { worker, run, taskQueue } = await startWorker(native, demoRegistry());
    try {
      const fleet = uniqueName('frp').slice(0, 24);
      const dir = await tempDir(fleet);
      const kubeconfig = await multiContextKubeconfig(dir, clusters);
      const entries: FleetInput['clusters'] = [];
      for (const c of ['host', 'member1']) {
        const { configFile } = await demoCluster(kube(c), dir, c);
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
          tuning: { heartbeatTimeout: '10s' },
        },
        clusters: entries,
        waves: [
          { name: 'host', clusters: [`${fleet}-host`] },
          { name: 'members', clusters: [`${fleet}-member1`], approval: true },
        ],
        maxConcurrency: 1,
        failureBudget: { count: 0 },
        tuning: {
          historyLimit: 100,
          verifyTimeoutMs: 2000,
          verifyIntervalMs: 500,
          observeIntervalMs: 500,
          observeMaxWaitMs: 5000,
        },
      };
      const workflowId = fleetWorkflowId(fleet);
      const handle = await client.workflow.start('upgradeFleet', { taskQueue, workflowId, args: [input] });
      await waitForFleet(handle, (p) => p.status === 'AwaitingApproval');
      await handle.executeUpdate(approveWaveUpdate, {
        args: [{ wave: 'members', reason: 'record', by: 'recorder' }],
      });
      await waitForFleet(handle, (p) => p.clusters.some((c) => c.awaiting?.kind === 'gate'));
      await setExtensionStates(kube('host'), 'monitoring', ['member1']);
      await handle.executeUpdate(resolveClusterUpdate, {
        args: [{ cluster: `${fleet}-member1`, action: 'retry', reason: 'installed', by: 'recorder' }],
      });
      await handle.result();
      const runs: string[] = [];
      for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
        runs.push(w.runId);
      assert.ok(runs.length >= 2, `continue-as-new happened (${runs.length} runs)`);
      const histories = await Promise.all(
        // The list is newest first.
        [runs[runs.length - 1], runs[0]].map((id) =>
          client.workflow.getHandle(workflowId, id).fetchHistory(),
        ),
      );
      for (const [i, history] of histories.entries()) {
        if (process.env.KS_RECORD_HISTORY === '1') writeFileSync(COMMITTED[i] ?? '', historyToJson(history));
        await Worker.runReplayHistory(
          { workflowBundle: await workflowBundle() },
          historyFromJson(historyToJson(history)),
          `fresh-${i}`,
        );
      }
    } finally {
      worker.shutdown();
      await run;
      await connection.close();
      await native.close();
    }
  });

  it('replays the committed histories of a fleet recorded with an earlier build', async () => {
    installTestRuntime();
    for (const file of COMMITTED) {
      const history = historyFromJson(readFileSync(file, 'utf8'));
      assert.ok((history.events?.length ?? 0) > 30, `${file} holds a real history`);
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, path.basename(file));
    }
  });
});
