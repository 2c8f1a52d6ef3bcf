// `npm run demo`: a full upgrade of a local KubeSphere v3 fixture cluster, on the embedded
// default (a local Temporal dev server with SQLite state, and the worker in this process).
//
//   1. two fresh kube-apiservers (`deploy/dev/cluster add ks-demo|ks-demo-member`) get the
//      KubeSphere v3 fixture with every component on: a host cluster and its member;
//   2. `upgradeCluster` runs prepare-upgrade and pre-upgrade on the host with every built-in job
//      enabled (the original's config.yaml, plus `enabled: true` for its extension jobs);
//   3. at the gate (mode detect) the demo plays `helm upgrade ks-core` to v4: the v4 CRDs, the
//      extensions museum, a v4 ks-apiserver — and a stand-in for the v4 controllers;
//   4. the workflow detects v4 core, runs post-upgrade, and the demo prints what happened.
//
// Usage: npm run demo [-- stop]     (stop: stop the demo's Temporal server and API server)
//        npm run demo -- fleet [stop]  (a host and two members as one fleet: scripts/demo-fleet.ts)
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { NativeConnection } from '@temporalio/worker';
import { ConfigMapResource, CustomResourceDefinitionResource, SecretResource } from '../src/api/core.js';
import * as v4 from '../src/api/v4/index.js';
import { follow } from '../src/cli/follow.js';
import { loadConfig } from '../src/config/index.js';
import { registerBuiltinJobs } from '../src/jobs/builtin.js';
import { defaultRegistry } from '../src/jobs/registry.js';
import { closeSharedConnections, connectCluster } from '../src/kube/connect.js';
import { createResourceStore } from '../src/store/index.js';
import { connectClient, startUpgrade } from '../src/temporal/client.js';
import { dataConverterOf, ensureLocalKeyFile, loadKeyring } from '../src/temporal/codec.js';
import { defaultTemporalCliPath, ensureEmbeddedServer } from '../src/temporal/dev-server.js';
import { createUpgradeWorker, installRuntime } from '../src/temporal/worker.js';
import { BUILTIN_CONFIG_PATH } from '../src/upgrade/plan.js';
import { progressQuery } from '../workflows/messages.js';
import { startStandInController } from '../test/fixtures/kubesphere-v4/controller.js';
import {
  startFleetStandIns,
  startV3AppStore,
  writeExtensionCharts,
} from '../test/fixtures/kubesphere-v4/extensions.js';
import { installFixtureFleet, playCoreUpgrade } from '../test/helpers/kubesphere.js';
import { backupSummaryLines, backupsPerJob } from './demo-summary.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
// The dev servers' state dir (deploy/dev/lib.sh): the demo's own state lives beside theirs.
const devState = process.env.KS_UPGRADE_DEV_STATE ?? path.join(root, '.dev');
const demoDir = path.join(devState, 'demo');
const stateDir = path.join(demoDir, 'temporal');
const CLUSTER = 'ks-demo';
const MEMBER = 'ks-demo-member';
const out = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

/**
 * Stops what a demo run left running, starting nothing: its Temporal server (by the PID in
 * server.json, only while that PID is still a `temporal` on the demo's database) and its two API
 * servers. scripts/demo then stops the dev servers when the demo started them.
 */
async function stop(): Promise<void> {
  const record = path.join(stateDir, 'server.json');
  if (existsSync(record)) {
    const { pid } = JSON.parse(readFileSync(record, 'utf8')) as { pid: number };
    if (isDemoTemporal(pid)) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 10_000;
      while (isDemoTemporal(pid) && Date.now() < deadline) await sleep(100);
      if (isDemoTemporal(pid)) process.kill(pid, 'SIGKILL');
      out(`stopped the demo's Temporal server (pid ${pid})`);
    }
    rmSync(record, { force: true });
  }
  for (const c of [CLUSTER, MEMBER]) {
    if (existsSync(path.join(devState, 'run', `apiserver-${c}.pid`))) {
      await run('bash', [path.join(root, 'deploy/dev/cluster'), 'remove', c]).catch(() => undefined);
      out(`stopped the demo's API server ${c}`);
    }
  }
  out(`demo stopped (its Temporal state stays in ${path.join(stateDir, 'temporal.db')})`);
}

/** Alive, and still the Temporal server on the demo's database (a recycled PID is left alone). */
function isDemoTemporal(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join(stateDir, 'temporal.db'));
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'fleet') {
    await import('./demo-fleet.js');
    return;
  }
  if (process.argv[2] === 'stop') return stop();
  mkdirSync(demoDir, { recursive: true, mode: 0o700 });

  out('▶ fresh API servers for a host and a member cluster, with the KubeSphere v3.4.1 fixture');
  const addCluster = async (name: string): Promise<string> => {
    await run('bash', [path.join(root, 'deploy/dev/cluster'), 'remove', name]).catch(() => undefined);
    const { stdout } = await run('bash', [path.join(root, 'deploy/dev/cluster'), 'add', name]);
    return stdout.trim().split('\n').pop() ?? '';
  };
  const kubeconfig = await addCluster(CLUSTER);
  const memberKubeconfig = await addCluster(MEMBER);
  const conn = await connectCluster({ kubeconfig });
  const memberConn = await connectCluster({ kubeconfig: memberKubeconfig });
  const kube = conn.client;
  await installFixtureFleet(
    { client: kube, kubeconfig },
    { client: memberConn.client, kubeconfig: memberKubeconfig },
  );
  registerBuiltinJobs();
  const jobNames = defaultRegistry.names();
  const defaults = (await loadConfig([BUILTIN_CONFIG_PATH])).config;
  const extensions = Object.values(defaults.jobs).flatMap((j) =>
    j.extensionRef ? [[j.extensionRef.name, j.extensionRef.version] as [string, string]] : [],
  );

  // The backups hold kubeconfigs and the jwtSecret: they are encrypted with a key of the demo's own.
  // The v3 app store's MinIO is played by the dev S3 server.
  const appStore = await startV3AppStore(kube, `ks-demo-app-store-${Date.now()}`);
  const keyFile = path.join(demoDir, 'backup.key');
  if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  const backups = path.join(demoDir, `backups-${Date.now()}`);
  const configFile = path.join(demoDir, 'config.yaml');
  writeFileSync(
    configFile,
    [
      '# The demo: the built-in defaults with every job enabled, and local, encrypted backups.',
      'storage:',
      '  local:',
      `    path: ${backups}`,
      '  encryption:',
      `    keyFile: ${keyFile}`,
      'validator:',
      '  extensionsMuseum:',
      '    watchTimeout: 2m',
      'jobs:',
      ...jobNames.filter((n) => n !== 'application').map((n) => `  ${n}: { enabled: true }`),
      '  application:',
      '    enabled: true',
      '    dynamicOptions:',
      `      minioEndpoint: ${appStore.minioEndpoint}`,
      `      minioBucket: ${appStore.minioBucket}`,
      '      # The fixture has v3 releases whose names collide in v4: migrate the others, list these.',
      '      releaseNameConflicts: skip',
      '',
    ].join('\n'),
  );

  installRuntime({ logLevel: 'ERROR' });
  // Payloads are encrypted; the UI decodes them through the codec server started beside it.
  const codec = { keyFile: ensureLocalKeyFile(stateDir) };
  const lease = await ensureEmbeddedServer(stateDir, defaultTemporalCliPath(), 'demo', { codec });
  const settings = {
    address: lease.server.address,
    namespace: 'default',
    taskQueue: 'ks-upgrade-demo',
    codec,
  };
  const native = await NativeConnection.connect({ address: settings.address });
  const worker = await createUpgradeWorker({
    connection: native,
    namespace: 'default',
    taskQueue: settings.taskQueue,
    registry: defaultRegistry,
    dataConverter: dataConverterOf(loadKeyring(codec)),
  });
  const workerRun = worker.run();
  const controller = startStandInController(kube);
  const standIns = startFleetStandIns(kube, memberConn.client);
  const { client, connection } = await connectClient(settings);
  try {
    const { handle } = await startUpgrade(
      client,
      {
        cluster: CLUSTER,
        kube: { kubeconfig },
        configFiles: [configFile],
        gate: 'detect',
        tuning: { heartbeatTimeout: '20s' },
      },
      settings.taskQueue,
      undefined,
      { rerun: true },
    );
    const ui = `${lease.server.uiUrl ?? ''}/namespaces/default/workflows/${handle.workflowId}`;
    out(`▶ upgradeCluster started: workflow ${handle.workflowId}\n  Temporal UI: ${ui}`);
    if (lease.codecUrl)
      out(`  payloads encrypted (key ${codec.keyFile}); the UI decodes them through ${lease.codecUrl}`);

    // Play `helm upgrade ks-core` when the workflow reaches the gate.
    const gate = (async () => {
      for (;;) {
        const p = await handle.query(progressQuery).catch(() => undefined);
        if (p?.status === 'AwaitingCoreUpgrade') break;
        if (p && ['Succeeded', 'Failed', 'Aborted'].includes(p.status)) return;
        await new Promise((r) => setTimeout(r, 300));
      }
      out('\n▶ gate: playing `helm upgrade ks-core` to v4.1.3 (v4 CRDs, extensions museum, ks-apiserver v4)');
      await playCoreUpgrade(kube, extensions);
      await writeExtensionCharts(kube, new Map(extensions));
    })();
    const code = await follow(
      handle,
      { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin },
      { interactive: false, uiUrl: ui },
    );
    await gate;

    out('\n▶ summary');
    const store = await createResourceStore({ local: { path: backups }, encryption: { keyFile } });
    const listCommand = `node bin/ks-upgrade.js backups list --config ${configFile}`;
    for (const line of backupSummaryLines(await backupsPerJob(store), listCommand)) out(`  ${line}`);
    out(`  (AES-256-GCM, key in ${keyFile})`);
    const count = async (rt: Parameters<typeof kube.listAll>[0]): Promise<number> =>
      (await kube.listIfServed(rt)).length;
    out(
      `  migrated to v1beta1: ${await count(v4.UserResource)} users, ${await count(v4.GlobalRoleResource)} global roles, ` +
        `${await count(v4.GlobalRoleBindingResource)} global role bindings, ${await count(v4.WorkspaceRoleResource)} workspace roles, ` +
        `${await count(v4.WorkspaceTemplateResource)} workspace templates`,
    );
    const users = await kube.get(CustomResourceDefinitionResource, 'users.iam.kubesphere.io');
    out(`  users.iam.kubesphere.io storedVersions: ${JSON.stringify(users.status?.storedVersions)}`);
    const idps = await kube.listAll(SecretResource, {
      namespace: 'kubesphere-system',
      labelSelector: 'config.kubesphere.io/type=identityprovider',
    });
    out(
      `  created: ${idps.length} identity-provider Secrets (${idps.map((s) => s.metadata.name).join(', ')})`,
    );
    const cm = await kube.tryGet(ConfigMapResource, 'kubesphere-config', 'kubesphere-system');
    const plans = await kube.listIfServed(v4.InstallPlanResource);
    out(`  kubesphere-config: ${cm ? 'kept' : 'missing'}`);
    out(
      `  InstallPlans created: ${plans.length} (${plans.map((p) => `${p.metadata.name ?? ''} ${p.spec.extension.version}`).join(', ')})`,
    );
    out(`\n  Temporal UI: ${ui}`);
    out('  stop the demo servers with: npm run demo -- stop   (or npm run dev:down for all dev servers)');
    process.exitCode = code;
  } finally {
    await controller.stop();
    await standIns.stop();
    worker.shutdown();
    await workerRun;
    await native.close();
    await connection.close();
    conn.close();
    memberConn.close();
    await closeSharedConnections();
    // The Temporal server keeps running (detached) so the UI link works; `npm run demo -- stop` ends it.
  }
}

await main();
