// Maintenance windows end to end: `ks-upgrade fleet schedule create` makes a Temporal Schedule
// (overlap skip, pause-on-failure, catch-up window, note); `trigger` starts a fleet run; while the
// fleet file's window is closed no cluster starts, and when it opens the fleet goes on by a durable
// timer. The window the fleet started clusters in is recorded; `fleet status` finds the scheduled run.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ScheduleOverlapPolicy, type Client, type Connection, type WorkflowHandle } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import { fleetWorkflowId } from '../../src/fleet/input.js';
import { upgradeWorkflowId } from '../../src/upgrade/input.js';
import type { FleetResult } from '../../workflows/fleet/messages.js';
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
  tempDir,
  waitForFleet,
} from '../helpers/fleet.js';
import { startWorker, temporalClients, DEMO_SKIP_CHECKS } from '../helpers/upgrade.js';

const exec = promisify(execFile);

/** The CLI, against the dev Temporal server and the test's task queue. */
async function cli(
  args: string[],
  taskQueue: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(
      process.execPath,
      [
        path.join(repoRoot, 'bin/ks-upgrade.js'),
        ...args,
        '--temporal-address',
        devEnv().temporalAddress,
        '--task-queue',
        taskQueue,
      ],
      { cwd: repoRoot, timeout: 120_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const hms = (t: number): string => new Date(t).toISOString().slice(11, 19);

describe('fleet schedules and maintenance windows', () => {
  let clusters: Map<string, EphemeralCluster>;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  let scheduleId: string | undefined;
  const kube = (name: string) => {
    const c = clusters.get(name);
    if (!c) throw new Error(name);
    return c.connection.client;
  };

  before(async () => {
    clusters = await startClusters(['host', 'member1'], 'fsched');
    for (const name of clusters.keys()) await playV4Core(kube(name));
    await installHostCrds(kube('host'));
    await registerMember(kube('host'), 'member1');
    ({ client, connection, native } = await temporalClients());
    ({ worker, run, taskQueue } = await startWorker(native, demoRegistry()));
  });
  after(async () => {
    if (scheduleId)
      await client.schedule
        .getHandle(scheduleId)
        .delete()
        .catch(() => undefined);
    worker.shutdown();
    await run;
    await connection.close();
    await native.close();
    await Promise.all([...clusters.values()].map((c) => c.remove()));
  });

  it('a scheduled run waits for its window, then upgrades the fleet', async () => {
    const fleet = uniqueName('fs').slice(0, 24);
    const dir = await tempDir(fleet);
    const kubeconfig = await multiContextKubeconfig(dir, clusters);
    const configs = new Map<string, string>();
    for (const c of clusters.keys()) configs.set(c, (await demoCluster(kube(c), dir, c)).configFile);
    // The window opens 100 s from now (UTC, to the second; the CLI calls before it take a while on a
    // busy machine) and stays open for 10 minutes.
    const opensAt = Math.ceil((Date.now() + 100_000) / 1000) * 1000;
    const file = path.join(dir, 'fleet.yaml');
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
        clusters: ['host', 'member1'].map((c) => ({
          name: `${fleet}-${c}`,
          role: c === 'host' ? 'host' : 'member',
          kubesphereName: c,
          context: c,
          configFiles: [configs.get(c)],
          gateways: 'none',
        })),
        windows: { soon: { timeZone: 'UTC', start: hms(opensAt), end: hms(opensAt + 600_000) } },
        window: 'soon',
        tuning: {
          verifyTimeout: '20s',
          verifyInterval: '500ms',
          observeInterval: '500ms',
          observeMaxWait: '5s',
        },
      }),
    );

    scheduleId = `${fleet}-weekly`;
    const created = await cli(
      [
        'fleet',
        'schedule',
        'create',
        '-f',
        file,
        '--id',
        scheduleId,
        '--cron',
        '0 3 * * 6',
        '--time-zone',
        'Europe/Berlin',
        '--catchup-window',
        '10m',
        '--pause-on-failure',
        '--note',
        'Saturday 03:00, change CHG-1234',
      ],
      taskQueue,
    );
    assert.equal(created.code, 0, created.stderr);
    const d = await client.schedule.getHandle(scheduleId).describe();
    assert.equal(d.policies.overlap, ScheduleOverlapPolicy.SKIP);
    assert.equal(d.policies.pauseOnFailure, true);
    assert.equal(d.policies.catchupWindow, 600_000);
    assert.equal(d.state.note, 'Saturday 03:00, change CHG-1234');
    assert.equal(d.spec.timezone, 'Europe/Berlin');
    assert.equal(d.action.workflowType, 'upgradeFleet');

    const triggered = await cli(['fleet', 'schedule', 'trigger', scheduleId], taskQueue);
    assert.equal(triggered.code, 0, triggered.stderr);
    let handle: WorkflowHandle | undefined;
    for (const deadline = Date.now() + 60_000; !handle;) {
      const runs = (await client.schedule.getHandle(scheduleId).describe()).info.recentActions;
      const id = runs[0]?.action.workflow.workflowId;
      if (id) handle = client.workflow.getHandle(id);
      else {
        assert.ok(Date.now() < deadline, 'the schedule started no fleet run');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    assert.ok(handle.workflowId.startsWith(fleetWorkflowId(fleet)));

    // Closed window: the fleet waits on a timer; no cluster has started.
    const waiting = await waitForFleet(
      handle,
      (p) => p.status === 'WaitingForWindow',
      60_000,
      'the window wait',
    );
    assert.ok(Date.now() < opensAt, 'checked before the window opened');
    assert.ok(waiting.clusters.every((c) => c.state === 'pending'));
    assert.equal(waiting.windows.soon?.open, false);
    assert.equal(waiting.windows.soon.opensAt, opensAt);
    const status = await cli(['fleet', 'status', fleet], taskQueue);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /WaitingForWindow/);
    assert.match(status.stdout, /window soon: closed/);
    await assert.rejects(client.workflow.getHandle(upgradeWorkflowId(`${fleet}-host`)).describe());

    const result = (await handle.result()) as FleetResult;
    assert.equal(result.status, 'Succeeded');
    const hostStart = (
      await client.workflow.getHandle(upgradeWorkflowId(`${fleet}-host`)).describe()
    ).startTime.getTime();
    assert.ok(hostStart >= opensAt, `the host started ${hostStart - opensAt} ms after the window opened`);
    const described = await handle.describe();
    assert.deepEqual(described.memo?.lastWindow, {
      name: 'soon',
      opensAt: new Date(opensAt).toISOString(),
      closesAt: new Date(opensAt + 600_000).toISOString(),
      started: 2,
    });
    assert.match((await cli(['fleet', 'schedule', 'list'], taskQueue)).stdout, new RegExp(scheduleId));
    const info = await cli(['fleet', 'schedule', 'describe', scheduleId], taskQueue);
    assert.match(info.stdout, new RegExp(`ran .*${handle.workflowId}`));
    assert.equal((await cli(['fleet', 'schedule', 'delete', scheduleId], taskQueue)).code, 0);
    scheduleId = undefined;
  });
});
