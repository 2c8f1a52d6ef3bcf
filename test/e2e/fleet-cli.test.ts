// `ks-upgrade fleet` as operators use it: a bad fleet file exits 2 before anything starts (no
// server, no workflow); plan shows waves, order and jobs; run --detach, status (exit 3 while a wave
// waits for approval), approve, status --watch to the end; cancel stops the fleet while the upgrade
// in flight runs on to its end and nothing new starts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowNotFoundError, type Client, type Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import { fleetWorkflowId } from '../../src/fleet/input.js';
import { upgradeWorkflowId } from '../../src/upgrade/input.js';
import { fleetProgressQuery } from '../../workflows/fleet/messages.js';
import { demoRegistry } from '../jobs/demo.js';
import type { EphemeralCluster } from '../helpers/cluster.js';
import { devEnv, repoRoot, uniqueName } from '../helpers/env.js';
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
import { startWorker, temporalClients, DEMO_SKIP_CHECKS } from '../helpers/upgrade.js';

const exec = promisify(execFile);
const PLUGIN = path.join(repoRoot, 'test/jobs/demo-plugin.ts');

async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(
      process.execPath,
      [path.join(repoRoot, 'bin/ks-upgrade.js'), ...args],
      {
        cwd: repoRoot,
        timeout: 300_000,
        env: { ...process.env, ...env },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('ks-upgrade fleet (CLI)', () => {
  let clusters: Map<string, EphemeralCluster>;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  let dir: string;
  let kubeconfig: string;
  const remote = (): string[] => ['--temporal-address', devEnv().temporalAddress, '--task-queue', taskQueue];
  const kube = (name: string) => {
    const c = clusters.get(name);
    if (!c) throw new Error(name);
    return c.connection.client;
  };

  /** A fleet file of host, member1, member2 (demo jobs), member1 with a slow step (long enough for a CLI call). */
  const fleetFile = async (
    fleet: string,
    extra: Record<string, unknown>,
  ): Promise<{ file: string; logs: Map<string, string> }> => {
    const logs = new Map<string, string>();
    const entries = [];
    for (const c of ['host', 'member1', 'member2']) {
      const sub = path.join(dir, fleet);
      const { configFile, log } = await demoCluster(kube(c), await tempDir(`${fleet}-${c}`), c, {
        storeDir: path.join(sub, 'backups'),
        ...(c === 'member1' ? { jobOptions: { beta: { slow: 'post-upgrade:45000' } } } : {}),
      });
      logs.set(c, log);
      entries.push({
        name: `${fleet}-${c}`,
        role: c === 'host' ? 'host' : 'member',
        kubesphereName: c,
        context: c,
        configFiles: [configFile],
        gateways: 'none',
      });
    }
    const file = path.join(dir, `${fleet}.yaml`);
    await writeFile(
      file,
      yaml.dump({
        fleet,
        defaults: {
          skipChecks: DEMO_SKIP_CHECKS,
          kubeconfig,
          useDefaults: false,
          gate: 'none',
        },
        clusters: entries,
        tuning: {
          verifyTimeout: '20s',
          verifyInterval: '500ms',
          observeInterval: '500ms',
          observeMaxWait: '5s',
        },
        ...extra,
      }),
    );
    return { file, logs };
  };

  before(async () => {
    clusters = await startClusters(['host', 'member1', 'member2'], 'fcli');
    dir = await tempDir('fcli');
    kubeconfig = await multiContextKubeconfig(dir, clusters);
    for (const name of clusters.keys()) await playV4Core(kube(name));
    await installHostCrds(kube('host'));
    await registerMember(kube('host'), 'member1');
    await registerMember(kube('host'), 'member2');
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

  it('a bad fleet file exits 2 with every problem, and nothing starts', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(
      file,
      'fleet: bad\nclusters:\n  - { name: a, role: host, context: nope }\n  - { name: a, role: member, context: member1 }\nmaxConcurrency: 0\n',
    );
    const stateDir = path.join(dir, 'state');
    const r = await cli(['fleet', 'run', '-f', file, '--state-dir', stateDir, '--kubeconfig', kubeconfig]);
    assert.equal(r.code, 2);
    assert.deepEqual(r.stderr.trim().split('\n').slice(0, 3), [
      `ks-upgrade: ${file}:3: clusters[0].context: context 'nope' is not in the kubeconfig ${kubeconfig}; use one of its contexts: host, member1, member2`,
      `${file}:4: clusters[1].name: duplicate cluster 'a' (first at line 3); give every cluster a name of its own`,
      `${file}:5: maxConcurrency: must be at least 1, got 0; use 1 or more (fix: fix each problem at the file and line it names, then run again)`,
    ]);
    assert.equal(existsSync(path.join(stateDir, 'temporal.db')), false, 'no Temporal server was started');
    await assert.rejects(client.workflow.getHandle(fleetWorkflowId('bad')).describe(), WorkflowNotFoundError);
  });

  it('plan, run --detach, status, approve, status --watch', async () => {
    const fleet = uniqueName('fcli').slice(0, 24);
    const { file } = await fleetFile(fleet, {
      approval: 'betweenWaves',
      waves: [
        { name: 'one', clusters: [`${fleet}-member1`] },
        { name: 'two', clusters: [`${fleet}-member2`] },
      ],
    });
    const plan = await cli(['fleet', 'plan', '-f', file, '--plugin', PLUGIN]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(
      plan.stdout,
      new RegExp(`Fleet ${fleet} .*: 3 clusters in 3 waves, at most 1 at once, failure budget 0`),
    );
    assert.match(plan.stdout, /wave 3: two {2}\(waits for: ks-upgrade fleet approve/);
    assert.match(plan.stdout, new RegExp(`2\\. ${fleet}-member1 +member context member1`));
    assert.match(plan.stdout, /jobs: alpha, beta, gamma; gate none/);

    const started = await cli(['fleet', 'run', '-f', file, '--detach', '--plugin', PLUGIN, ...remote()]);
    assert.equal(started.code, 0, started.stderr);
    assert.match(
      started.stdout,
      new RegExp(`started the fleet ${fleet} \\(workflow ${fleetWorkflowId(fleet)}\\)`),
    );
    const handle = client.workflow.getHandle(fleetWorkflowId(fleet));
    await waitForFleet(handle, (p) => p.status === 'AwaitingApproval');
    const status = await cli(['fleet', 'status', fleet, ...remote()]);
    assert.equal(status.code, 3, 'exit 3: the fleet waits for a person');
    assert.match(status.stdout, /AwaitingApproval, wave two/);
    assert.match(status.stdout, new RegExp(`✔ ${fleet}-member1 +one +succeeded +Succeeded`));
    assert.match(
      status.stdout,
      new RegExp(`wave two waits for approval: ks-upgrade fleet approve ${fleet} two --reason`),
    );

    const refused = await cli(['fleet', 'approve', fleet, 'three', '--reason', 'typo', ...remote()]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /the fleet refused 'approve': no wave 'three'; waves: .*one, two/);
    const approved = await cli([
      'fleet',
      'approve',
      fleet,
      'two',
      '--reason',
      'canary fine',
      '--by',
      'grace',
      ...remote(),
    ]);
    assert.equal(approved.code, 0, approved.stderr);
    const watched = await cli(['fleet', 'status', fleet, '--watch', '--interval', '1', ...remote()]);
    assert.equal(watched.code, 0, watched.stderr);
    assert.match(watched.stdout, /✔ Succeeded after 1 run\(s\)/);
    const p = await handle.query(fleetProgressQuery);
    assert.deepEqual(p.waves.find((w) => w.name === 'two')?.approval?.by, 'grace');
  });

  it('cancel: nothing new starts, the upgrade in flight runs on to its end', async () => {
    const fleet = uniqueName('fcan').slice(0, 24);
    const { file, logs } = await fleetFile(fleet, {});
    const started = await cli(['fleet', 'run', '-f', file, '--detach', '--plugin', PLUGIN, ...remote()]);
    assert.equal(started.code, 0, started.stderr);
    const handle = client.workflow.getHandle(fleetWorkflowId(fleet));
    // member1's slow post-upgrade is running.
    for (
      const deadline = Date.now() + 180_000;
      !(await steps(logs.get('member1') ?? '')).includes('beta post-upgrade start');
    ) {
      assert.ok(Date.now() < deadline, 'member1 did not reach post-upgrade');
      await new Promise((r) => setTimeout(r, 200));
    }
    const cancelled = await cli([
      'fleet',
      'cancel',
      fleet,
      '--reason',
      'maintenance window cut short',
      '--by',
      'heidi',
      ...remote(),
    ]);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.equal((err.cause as { type?: string } | undefined)?.type, 'FleetCancelled');
    assert.match(String(err.cause?.message), /cancelled by heidi: maintenance window cut short/);
    const described = await handle.describe();
    assert.equal(
      described.typedSearchAttributes.get({ name: 'UpgradeStatus', type: 'KEYWORD' } as never),
      'Cancelled',
    );
    // member1's own upgrade was not cancelled: it finishes; member2 never started.
    const m1: unknown = await client.workflow.getHandle(upgradeWorkflowId(`${fleet}-member1`)).result();
    assert.equal((m1 as { status: string }).status, 'Succeeded');
    assert.ok((await steps(logs.get('member1') ?? '')).includes('gamma post-upgrade end'));
    await assert.rejects(
      client.workflow.getHandle(upgradeWorkflowId(`${fleet}-member2`)).describe(),
      WorkflowNotFoundError,
    );
  });
});
