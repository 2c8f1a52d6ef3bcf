// `npm run demo -- fleet`: a KubeSphere host and two members upgraded as one fleet, on the
// embedded default (a local Temporal dev server with SQLite state, the worker in this process):
//
//   1. three fresh kube-apiservers get the KubeSphere v3.4.1 fixture: a host (every component on)
//      and two members registered on it;
//   2. `upgradeFleet` runs from a fleet file: wave 1 the host alone, wave 2 both members after an
//      approval; each cluster is an `upgradeCluster` child with the original's default jobs (core,
//      iam) and the detect gate;
//   3. at each cluster's gate the demo plays `helm upgrade ks-core` to v4 on that cluster, and a
//      stand-in for the v4 controllers runs there;
//   4. the wave gate checks each cluster's observed state; for each member the fleet removes the
//      `Schedulable=False (Upgrading)` mark the host's core job set (a manual step in the original);
//   5. wave 2 waits for approval: the demo prints the command and approves as an operator would.
//
// Usage: npm run demo -- fleet [stop]
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ConfigMapResource } from '../src/api/core.js';
import * as v3 from '../src/api/v3/index.js';
import { ClusterResource } from '../src/api/v4/index.js';
import { startFleet } from '../src/cli/fleet.js';
import { renderFleet } from '../src/cli/fleet-status.js';
import { loadFleetFile } from '../src/fleet/load.js';
import { registerBuiltinJobs } from '../src/jobs/builtin.js';
import { defaultRegistry } from '../src/jobs/registry.js';
import { closeSharedConnections, connectCluster, type ClusterConnection } from '../src/kube/connect.js';
import { connectClient } from '../src/temporal/client.js';
import { defaultTemporalCliPath, ensureEmbeddedServer } from '../src/temporal/dev-server.js';
import { createUpgradeWorker, installRuntime } from '../src/temporal/worker.js';
import { upgradeWorkflowId } from '../src/upgrade/input.js';
import { approveWaveUpdate, fleetProgressQuery, type FleetProgress } from '../workflows/fleet/messages.js';
import { progressQuery } from '../workflows/messages.js';
import { startStandInController, type StandInController } from '../test/fixtures/kubesphere-v4/controller.js';
import { startFleetStandIns } from '../test/fixtures/kubesphere-v4/extensions.js';
import { startMemberInstallReports, startOrphanCollector } from '../test/helpers/fleet.js';
import {
  connectMemberCluster,
  installFixtureFleet,
  installKubeSphereV3,
  playCoreUpgrade,
} from '../test/helpers/kubesphere.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const demoDir = path.join(root, '.dev', 'demo-fleet');
const stateDir = path.join(demoDir, 'temporal');
const ROLES = ['host', 'member1', 'member2'] as const;
// API servers of their own for each run: a removed one's data stays in the dev etcd under its
// name, so a second run on the same name would find the first run's v4 objects. `stop` reads them.
const stamp = Date.now().toString(36);
const CLUSTERS = Object.fromEntries(ROLES.map((r) => [r, `ks-fleet-${r}-${stamp}`])) as Record<
  (typeof ROLES)[number],
  string
>;
const clustersFile = path.join(demoDir, 'clusters.json');
const startedClusters = (): string[] =>
  existsSync(clustersFile) ? (JSON.parse(readFileSync(clustersFile, 'utf8')) as string[]) : [];
const out = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

async function stop(): Promise<void> {
  if (existsSync(path.join(stateDir, 'server.json'))) {
    const lease = await ensureEmbeddedServer(stateDir, defaultTemporalCliPath());
    await lease.server.stop();
  }
  const started = startedClusters();
  for (const c of started) {
    await run('bash', [path.join(root, 'deploy/dev/cluster'), 'remove', c]).catch(() => undefined);
  }
  writeFileSync(clustersFile, '[]\n');
  out('fleet demo stopped (its Temporal state stays in .dev/demo-fleet/temporal/temporal.db)');
}

/** Makes a v3 fixture cluster a member known to the host as `name` (as installFixtureFleet does for member1). */
async function addSecondMember(
  host: ClusterConnection,
  member: ClusterConnection,
  kubeconfig: string,
  name: string,
): Promise<void> {
  const kube = member.client;
  await installKubeSphereV3(kube);
  await kube.patch(v3.ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
    spec: { multicluster: { clusterRole: 'member' } },
  });
  await kube.mutate(ConfigMapResource, 'kubesphere-config', 'kubesphere-system', (cm) => {
    const text = cm.data?.['kubesphere.yaml'] ?? '';
    cm.data = { ...cm.data, 'kubesphere.yaml': text.replace('clusterRole: host', 'clusterRole: member') };
  });
  for (const c of await kube.listAll(ClusterResource))
    await kube.delete(ClusterResource, c.metadata.name ?? '');
  const template = await host.client.get(ClusterResource, 'member1');
  await host.client.apply(ClusterResource, {
    apiVersion: 'cluster.kubesphere.io/v1alpha1',
    kind: 'Cluster',
    metadata: {
      name,
      labels: template.metadata.labels ?? {},
      annotations: { 'kubesphere.io/description': 'member cluster 2' },
    },
    spec: {
      ...template.spec,
      connection: {
        ...template.spec?.connection,
        kubernetesAPIEndpoint: `https://${name}.example.internal:6443`,
      },
    },
    ...(template.status ? { status: template.status } : {}),
  });
  await connectMemberCluster(host.client, name, kubeconfig);
}

function schedulable(conditions: { type: string; status: string; reason?: string }[] | undefined): string {
  const c = conditions?.find((x) => x.type === 'Schedulable');
  return c ? `Schedulable=${c.status} (${c.reason ?? ''})` : 'no Schedulable mark';
}

async function main(): Promise<void> {
  if (process.argv.includes('stop')) return stop();
  mkdirSync(demoDir, { recursive: true, mode: 0o700 });

  out('▶ three fresh API servers: a KubeSphere v3.4.1 host and two members registered on it');
  const kubeconfigs: Record<string, string> = {};
  const started = startedClusters();
  writeFileSync(clustersFile, `${JSON.stringify([...started, ...Object.values(CLUSTERS)])}\n`);
  for (const [role, name] of Object.entries(CLUSTERS)) {
    const { stdout } = await run('bash', [path.join(root, 'deploy/dev/cluster'), 'add', name]);
    kubeconfigs[role] = stdout.trim().split('\n').pop() ?? '';
  }
  const conns: Record<string, ClusterConnection> = {};
  for (const role of Object.keys(CLUSTERS))
    conns[role] = await connectCluster({ kubeconfig: kubeconfigs[role] ?? '' });
  const conn = (role: keyof typeof CLUSTERS): ClusterConnection => {
    const c = conns[role];
    if (!c) throw new Error(role);
    return c;
  };
  await installFixtureFleet(
    { client: conn('host').client, kubeconfig: kubeconfigs.host ?? '' },
    { client: conn('member1').client, kubeconfig: kubeconfigs.member1 ?? '' },
  );
  await addSecondMember(conn('host'), conn('member2'), kubeconfigs.member2 ?? '', 'member2');

  // One kubeconfig with a context per cluster: the worker reaches all three (fleet access mode a).
  const kubeconfig = path.join(demoDir, 'kubeconfig');
  const merged = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [] as unknown[],
    users: [] as unknown[],
    contexts: [] as unknown[],
    'current-context': 'host',
  };
  for (const role of Object.keys(CLUSTERS)) {
    const yaml = await import('js-yaml');
    const kc = yaml.load(readFileSync(kubeconfigs[role] ?? '', 'utf8')) as {
      clusters: { cluster: unknown }[];
      users: { user: unknown }[];
    };
    merged.clusters.push({ name: role, cluster: kc.clusters[0]?.cluster });
    merged.users.push({ name: role, user: kc.users[0]?.user });
    merged.contexts.push({ name: role, context: { cluster: role, user: role } });
  }
  writeFileSync(kubeconfig, (await import('js-yaml')).dump(merged), { mode: 0o600 });

  // The original's defaults (core, iam); members skip the extensions-museum check, as the
  // original's upgrade.sh does (the museum runs on the host only).
  const backups = path.join(demoDir, `backups-${Date.now()}`);
  // The core job refuses plaintext backups (kubesphere-config holds the JWT secret): the demo
  // encrypts them with a key of its own.
  const keyFile = path.join(demoDir, 'backup.key');
  if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  writeFileSync(
    path.join(demoDir, 'common.yaml'),
    `# Every cluster: local, encrypted backups.\nstorage:\n  local:\n    path: ${backups}\n  encryption:\n    keyFile: ${keyFile}\nvalidator:\n  extensionsMuseum:\n    watchTimeout: 2m\n`,
  );
  writeFileSync(
    path.join(demoDir, 'member.yaml'),
    '# Members: no extensions museum.\nvalidator:\n  extensionsMuseum:\n    enabled: false\n',
  );
  const fleetFile = path.join(demoDir, 'fleet.yaml');
  writeFileSync(
    fleetFile,
    [
      '# The demo fleet: the host alone, then both members after an approval.',
      'fleet: demo',
      'defaults:',
      `  kubeconfig: ${kubeconfig}`,
      '  configFiles: [common.yaml]',
      '  gate: detect',
      '  tuning: { heartbeatTimeout: 20s }',
      'clusters:',
      '  - { name: host, role: host, context: host, gateways: none }',
      '  - { name: member1, role: member, context: member1, configFiles: [common.yaml, member.yaml], gateways: none }',
      '  - { name: member2, role: member, context: member2, configFiles: [common.yaml, member.yaml], gateways: none }',
      'waves:',
      '  - { name: members, clusters: [member1, member2], approval: true }',
      'maxConcurrency: 2',
      'tuning: { verifyTimeout: 2m, verifyInterval: 2s, observeInterval: 1s }',
      '',
    ].join('\n'),
  );
  out(`▶ fleet file ${fleetFile}`);
  const input = await loadFleetFile(fleetFile);
  registerBuiltinJobs();

  installRuntime({ logLevel: 'ERROR' });
  const lease = await ensureEmbeddedServer(stateDir, defaultTemporalCliPath());
  const settings = {
    address: lease.server.address,
    namespace: 'default',
    taskQueue: 'ks-upgrade-demo-fleet',
  };
  const native = await NativeConnection.connect({ address: settings.address });
  const worker = await createUpgradeWorker({
    connection: native,
    namespace: 'default',
    taskQueue: settings.taskQueue,
    registry: defaultRegistry,
  });
  const workerRun = worker.run();
  const controllers: StandInController[] = Object.values(conns).map((c) => startStandInController(c.client));
  const standIns = startFleetStandIns(conn('host').client, conn('member1').client);
  // No kube-controller-manager on the demo's API servers: play its garbage collector for the
  // object a member's core job deletes with propagation Orphan, and (once a member runs v4) the
  // host's controller reporting the extensions placed on it installed.
  const loops = [startOrphanCollector(conn('member1').client), startOrphanCollector(conn('member2').client)];
  const { client, connection } = await connectClient(settings);
  try {
    const { handle } = await startFleet(client, input, settings.taskQueue);
    const ui = `${lease.server.uiUrl ?? ''}/namespaces/default/workflows/${handle.workflowId}`;
    out(`▶ upgradeFleet started: workflow ${handle.workflowId}\n  Temporal UI: ${ui}\n`);

    const played = new Set<string>();
    const seen = new Map<string, string>();
    let approved = false;
    let last: FleetProgress | undefined;
    for (;;) {
      const d = await handle.describe();
      if (d.status.name !== 'RUNNING') break;
      const p = await handle.query(fleetProgressQuery).catch(() => undefined);
      if (!p) {
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      last = p;
      for (const c of p.clusters) {
        const line = `${c.state}${c.upgradeStatus ? ` / ${c.upgradeStatus}` : ''}${c.phase ? ` ${c.phase}` : ''}${c.job ? ` ${c.job}` : ''}`;
        if (seen.get(c.name) !== line)
          out(`  ${c.name.padEnd(8)} ${line}${c.note && c.state === 'succeeded' ? `  — ${c.note}` : ''}`);
        seen.set(c.name, line);
        // At a cluster's gate, play `helm upgrade ks-core` to v4 there.
        if (c.state === 'upgrading' && !played.has(c.name)) {
          const child = await client.workflow
            .getHandle(upgradeWorkflowId(c.name))
            .query(progressQuery)
            .catch(() => undefined);
          if (child?.status === 'AwaitingCoreUpgrade') {
            played.add(c.name);
            out(`▶ ${c.name}: at the gate — playing \`helm upgrade ks-core\` to v4.1.3 on it`);
            await playCoreUpgrade(conn(c.name as keyof typeof CLUSTERS).client, []);
            if (c.name !== 'host') loops.push(startMemberInstallReports(conn('host').client, c.name));
          }
        }
      }
      const waiting = p.waves.find((w) => w.state === 'awaiting-approval');
      if (waiting && !approved) {
        approved = true;
        out(`\n⏸  wave ${waiting.name} waits for approval. An operator runs:`);
        out(
          `   ks-upgrade fleet approve demo ${waiting.name} --reason "host verified" --state-dir ${stateDir}`,
        );
        out(
          `   (or in the Temporal UI: Update "approveWave" with {"wave":"${waiting.name}","reason":"…","by":"…"})`,
        );
        out('   the demo approves as that operator:');
        await handle.executeUpdate(approveWaveUpdate, {
          args: [{ wave: waiting.name, reason: 'host verified', by: 'demo-operator' }],
        });
        out('');
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    await printSummary(handle, conn('host'), last);
    out(`\n  Temporal UI: ${ui}`);
    out(
      '  stop the demo servers with: npm run demo -- fleet stop   (or npm run dev:down for all dev servers)',
    );
  } finally {
    for (const c of controllers) await c.stop();
    await standIns.stop();
    for (const l of loops) await l.stop();
    worker.shutdown();
    await workerRun;
    await native.close();
    await connection.close();
    for (const c of Object.values(conns)) c.close();
    await closeSharedConnections();
  }
}

async function printSummary(
  handle: WorkflowHandle,
  host: ClusterConnection,
  last: FleetProgress | undefined,
): Promise<void> {
  const outcome = await handle.result().then(
    () => 'Succeeded',
    (err: unknown) => `failed: ${err instanceof Error ? err.message : String(err)}`,
  );
  const p = await handle.query(fleetProgressQuery).catch(() => last);
  out('\n▶ summary');
  if (p) out(renderFleet({ progress: p }, handle.workflowId));
  for (const m of ['member1', 'member2']) {
    const c = await host.client.get(ClusterResource, m);
    out(`  host's Cluster ${m}: ${schedulable(c.status?.conditions)}`);
  }
  out(
    `  fleet: ${outcome}; decisions: ${p?.decisions.map((d) => `${d.kind} ${d.wave ?? d.cluster ?? ''} by ${d.by} (${d.reason})`).join('; ') ?? '-'}`,
  );
  process.exitCode = outcome === 'Succeeded' ? 0 : 1;
}

await main();
