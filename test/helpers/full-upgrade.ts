// The full default upgrade's fixture: a host + member fleet with every v3 component on, a config
// enabling every job of the original, and the stand-ins that play the v4 controllers. Shared by
// the full-upgrade test and the secret scan.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import * as yaml from 'js-yaml';
import { loadConfig } from '../../src/config/index.js';
import { registerBuiltinJobs } from '../../src/jobs/builtin.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import type { UpgradeClusterInput } from '../../src/upgrade/input.js';
import { BUILTIN_CONFIG_PATH } from '../../src/upgrade/plan.js';
import type { UpgradeResult } from '../../workflows/messages.js';
import type { upgradeCluster } from '../../workflows/upgrade.js';
import { startStandInController, type StandInController } from '../fixtures/kubesphere-v4/controller.js';
import {
  startFleetStandIns,
  startV3AppStore,
  writeExtensionCharts,
} from '../fixtures/kubesphere-v4/extensions.js';
import { startEphemeralCluster, type EphemeralCluster } from './cluster.js';
import { uniqueName } from './env.js';
import { installFixtureFleet, playCoreUpgrade } from './kubesphere.js';
import { waitForProgress } from './upgrade.js';

export interface FullUpgradeFixture {
  host: EphemeralCluster;
  member: EphemeralCluster;
  registry: JobRegistry;
  jobNames: string[];
  extensions: [string, string][];
  dir: string;
  configFile: string;
  /** The backup store's encryption key file. */
  keyFile: string;
  controller: StandInController;
  standIns: { stop(): Promise<void> };
  /** The workflow input of the upgrade of the host. */
  input: UpgradeClusterInput;
  /** Stops the stand-ins and removes both clusters. */
  stop(): Promise<void>;
}

/**
 * Starts the fleet and writes the all-jobs config. `storage` replaces the default (a local dir);
 * storage encryption is on either way.
 */
export async function prepareFullUpgrade(
  options: {
    storage?: Record<string, unknown>;
    /** The host and member API servers (default: two fresh ones on the dev etcd). */
    clusters?: [EphemeralCluster, EphemeralCluster];
    /** The workflow input's tuning (default: a 20 s heartbeat timeout). */
    tuning?: UpgradeClusterInput['tuning'];
  } = {},
): Promise<FullUpgradeFixture> {
  const [host, member] =
    options.clusters ??
    (await Promise.all([startEphemeralCluster('full-host'), startEphemeralCluster('full-member')]));
  await installFixtureFleet(
    { client: host.connection.client, kubeconfig: host.kubeconfig },
    { client: member.connection.client, kubeconfig: member.kubeconfig },
  );
  const registry = new JobRegistry();
  registerBuiltinJobs(registry);
  const jobNames = registry.names();
  const defaults = (await loadConfig([BUILTIN_CONFIG_PATH])).config;
  const extensions = Object.values(defaults.jobs).flatMap((j) =>
    j.extensionRef ? [[j.extensionRef.name, j.extensionRef.version] as [string, string]] : [],
  );
  const appStore = await startV3AppStore(host.connection.client, uniqueName('full-app-store'));
  const dir = await mkdtemp(path.join(tmpdir(), 'ks-upgrade-full-'));
  const keyFile = path.join(dir, 'backup.key');
  await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
  const configFile = path.join(dir, 'all-jobs.yaml');
  await writeFile(
    configFile,
    yaml.dump({
      storage: {
        ...(options.storage ?? { local: { path: path.join(dir, 'backups') } }),
        encryption: { keyFile },
      },
      validator: { extensionsMuseum: { watchTimeout: '2m' } },
      jobs: {
        ...Object.fromEntries(jobNames.map((n) => [n, { enabled: true }])),
        // The fixture has releases whose names collide in v4 on purpose: migrate the others.
        application: {
          enabled: true,
          dynamicOptions: { ...appStore, releaseNameConflicts: 'skip' },
        },
      },
    }),
  );
  const controller = startStandInController(host.connection.client, { intervalMs: 200 });
  const standIns = startFleetStandIns(host.connection.client, member.connection.client);
  return {
    host,
    member,
    registry,
    jobNames,
    extensions,
    dir,
    configFile,
    keyFile,
    controller,
    standIns,
    input: {
      cluster: host.name,
      kube: { kubeconfig: host.kubeconfig },
      configFiles: [configFile],
      gate: 'detect',
      tuning: options.tuning ?? { heartbeatTimeout: '20s' },
    },
    stop: async () => {
      await controller.stop();
      await standIns.stop();
      await Promise.all([host.remove(), member.remove()]);
    },
  };
}

/**
 * Follows a first full upgrade through its gate: waits until the workflow reaches it (no step
 * failed on the way), plays `helm upgrade ks-core` to v4, and returns the result.
 */
export async function passGateAndFinish(
  fx: FullUpgradeFixture,
  handle: WorkflowHandle<typeof upgradeCluster>,
): Promise<UpgradeResult> {
  await waitForProgress(
    handle,
    (p) => p.status === 'AwaitingCoreUpgrade' || p.awaiting !== undefined,
    240_000,
  );
  const p = await waitForProgress(handle, () => true);
  assert.equal(p.awaiting, undefined, `a step failed: ${JSON.stringify(p.awaiting)}`);
  await playCoreUpgrade(fx.host.connection.client, fx.extensions);
  await writeExtensionCharts(fx.host.connection.client, new Map(fx.extensions));
  return handle.result();
}
