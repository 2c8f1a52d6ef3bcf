// Least privilege, proven on real API servers with RBAC on: ServiceAccounts bound to the roles
// `ks-upgrade rbac` generates (on the host for the worker; on the member for the identity in the
// host's Cluster kubeconfig) run the full fixture upgrade with every job enabled — so a rule the
// access table lacks fails the job that needs it. With one rule removed, the preflight names the
// missing permission before anything changes. Then verification: it passes on the clean upgrade,
// and finds a planted v3 webhook and an InstallPlan stuck in Installing (`ks-upgrade verify`
// exits non-zero with the findings).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError, type Client, type Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import * as yaml from 'js-yaml';
import {
  NamespaceResource,
  ServiceAccountResource,
  ValidatingWebhookConfigurationResource,
} from '../../src/api/core.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import { resolveSoon } from '../../src/cli/operate.js';
import type { UpgradeConfig } from '../../src/config/types.js';
import { registerBuiltinJobs } from '../../src/jobs/builtin.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { lookupResource, type KubeObject } from '../../src/kube/types.js';
import { accessTable, loadJobsConfig, rbacManifests, renderMemberRbac } from '../../src/rbac/index.js';
import { startUpgrade } from '../../src/temporal/client.js';
import type { UpgradeClusterInput } from '../../src/upgrade/input.js';
import { BUILTIN_CONFIG_PATH } from '../../src/upgrade/plan.js';
import type { VerificationReport } from '../../src/verify/index.js';
import { type UpgradeResult } from '../../workflows/messages.js';
import { startStandInController, type StandInController } from '../fixtures/kubesphere-v4/controller.js';
import {
  startFleetStandIns,
  startV3AppStore,
  writeExtensionCharts,
} from '../fixtures/kubesphere-v4/extensions.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot, uniqueName } from '../helpers/env.js';
import { connectMemberCluster, installFixtureFleet, playCoreUpgrade } from '../helpers/kubesphere.js';
import { clusterSnapshot, diff } from '../helpers/snapshot.js';
import { startWorker, temporalClients, waitForProgress } from '../helpers/upgrade.js';

const SA = { namespace: 'ks-upgrade', name: 'ks-upgrade' };

/**
 * Applies RBAC documents; a Role (or RoleBinding) in a namespace the cluster does not have is left
 * out, as `kubectl apply` would fail it: no job touches a namespace that is not there.
 */
async function applyRbac(kube: ResourceClient, text: string): Promise<string[]> {
  const skipped: string[] = [];
  for (const doc of yaml.loadAll(text) as KubeObject[]) {
    const ns = doc.metadata.namespace;
    if (ns && !(await kube.tryGet(NamespaceResource, ns))) {
      skipped.push(`${doc.kind ?? ''} ${ns}/${doc.metadata.name ?? ''}`);
      continue;
    }
    const rt = lookupResource(doc.apiVersion ?? '', doc.kind ?? '');
    assert.ok(rt, `${doc.kind ?? ''} is a known kind`);
    await kube.apply(rt, doc, { force: true });
  }
  return skipped;
}

/** A ServiceAccount with a token, and a kubeconfig that authenticates as it. */
async function serviceAccountKubeconfig(cluster: EphemeralCluster, dir: string): Promise<string> {
  const kube = cluster.connection.client;
  await kube.createIfAbsent(NamespaceResource, { metadata: { name: SA.namespace } });
  await kube.createIfAbsent(ServiceAccountResource, { metadata: { name: SA.name, namespace: SA.namespace } });
  const res = await kube.transport.request({
    method: 'POST',
    path: `/api/v1/namespaces/${SA.namespace}/serviceaccounts/${SA.name}/token`,
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 7200 } },
  });
  assert.equal(res.status, 201, res.text);
  const token = (JSON.parse(res.text) as { status: { token: string } }).status.token;
  const admin = yaml.load(await readFile(cluster.kubeconfig, 'utf8')) as {
    clusters: { name: string; cluster: Record<string, unknown> }[];
  };
  const server = admin.clusters[0];
  assert.ok(server);
  const file = path.join(dir, `${cluster.name}-sa.kubeconfig`);
  await writeFile(
    file,
    yaml.dump({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [server],
      users: [{ name: 'ks-upgrade', user: { token } }],
      contexts: [{ name: 'ks-upgrade', context: { cluster: server.name, user: 'ks-upgrade' } }],
      'current-context': 'ks-upgrade',
    }),
    { mode: 0o600 },
  );
  return file;
}

/** Polls a SelfSubjectAccessReview as the kubeconfig's identity until RBAC says `want`. */
async function waitForAccess(
  kubeconfig: string,
  attrs: Record<string, string>,
  want: boolean,
): Promise<void> {
  const { connectCluster } = await import('../../src/kube/connect.js');
  const conn = await connectCluster({ kubeconfig });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const res = await conn.client.transport.request({
        method: 'POST',
        path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: attrs },
        },
      });
      const allowed = (JSON.parse(res.text) as { status?: { allowed?: boolean } }).status?.allowed === true;
      if (allowed === want) return;
      assert.ok(Date.now() < deadline, `RBAC did not settle: ${JSON.stringify(attrs)} allowed=${allowed}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    conn.close();
  }
}

describe('least privilege: the generated roles are all the full upgrade needs', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let run: Promise<void>;
  let taskQueue: string;
  let controller: StandInController | undefined;
  let standIns: { stop(): Promise<void> } | undefined;
  let dir: string;
  let configFile: string;
  let config: UpgradeConfig;
  let registry: JobRegistry;
  let hostRoles: string;
  let hostSa: string;
  let extensions: [string, string][];
  let result: UpgradeResult | undefined;

  const input = (): UpgradeClusterInput => ({
    cluster: host.name,
    kube: { kubeconfig: hostSa },
    configFiles: [configFile],
    gate: 'detect',
    tuning: { heartbeatTimeout: '20s' },
  });

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('rbac-host'),
      startEphemeralCluster('rbac-member'),
    ]);
    await installFixtureFleet(
      { client: host.connection.client, kubeconfig: host.kubeconfig },
      { client: member.connection.client, kubeconfig: member.kubeconfig },
    );
    registry = new JobRegistry();
    registerBuiltinJobs(registry);
    const appStore = await startV3AppStore(host.connection.client, uniqueName('rbac-app-store'));
    dir = await mkdtemp(path.join(tmpdir(), 'ks-rbac-'));
    const keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    configFile = path.join(dir, 'all-jobs.yaml');
    await writeFile(
      configFile,
      yaml.dump({
        storage: { local: { path: path.join(dir, 'backups') }, encryption: { keyFile } },
        validator: { extensionsMuseum: { watchTimeout: '2m' } },
        jobs: {
          ...Object.fromEntries(registry.names().map((n) => [n, { enabled: true }])),
          application: { enabled: true, dynamicOptions: { ...appStore, releaseNameConflicts: 'skip' } },
        },
      }),
    );
    config = await loadJobsConfig([BUILTIN_CONFIG_PATH, configFile], registry);
    extensions = Object.values(config.jobs).flatMap((j) =>
      j.extensionRef ? [[j.extensionRef.name, j.extensionRef.version] as [string, string]] : [],
    );
    hostRoles = rbacManifests(config, registry, { serviceAccount: SA });
    // The member: the identity in the host's Cluster kubeconfig is bound to what the jobs do there.
    const memberSa = await serviceAccountKubeconfig(member, dir);
    await applyRbac(
      member.connection.client,
      renderMemberRbac(accessTable(config, registry).jobs, 'ks-upgrade-member', SA),
    );
    await connectMemberCluster(host.connection.client, 'member1', memberSa);
    hostSa = await serviceAccountKubeconfig(host, dir);
    ({ client, connection, native } = await temporalClients());
    ({ worker, run, taskQueue } = await startWorker(native, registry));
  });
  after(async () => {
    await controller?.stop();
    await standIns?.stop();
    worker.shutdown();
    await run;
    await connection.close();
    await native.close();
    await Promise.all([host.remove(), member.remove()]);
  });

  it('with one rule removed, the preflight names the missing permission and nothing changes', async () => {
    // Drop `update` on namespaces (core detaches and labels them) from the generated ClusterRole.
    const docs = yaml.loadAll(hostRoles) as (KubeObject & {
      rules?: { resources: string[]; verbs: string[] }[];
    })[];
    const role = docs.find((d) => d.kind === 'ClusterRole');
    const rule = role?.rules?.find((r) => r.resources.includes('namespaces') && r.verbs.includes('update'));
    assert.ok(rule, 'the generated ClusterRole lets core update namespaces');
    rule.verbs = rule.verbs.filter((v) => v !== 'update');
    await applyRbac(host.connection.client, docs.map((d) => yaml.dump(d)).join('---\n'));
    await waitForAccess(hostSa, { verb: 'update', group: '', resource: 'namespaces' }, false);

    const hostBefore = await clusterSnapshot(host.connection.client);
    const memberBefore = await clusterSnapshot(member.connection.client);
    const { handle } = await startUpgrade(client, input(), taskQueue);
    const p = await waitForProgress(handle, (x) => x.awaiting !== undefined, 180_000);
    assert.equal(p.awaiting?.phase, 'preflight', JSON.stringify(p.awaiting));
    assert.deepEqual(
      p.preflight?.checks.filter((c) => !c.ok).map((c) => c.name),
      ['access'],
      JSON.stringify(p.preflight, null, 2),
    );
    assert.match(
      p.awaiting.error,
      /1 missing: update core\/namespaces cluster-wide \(core: remove Workspace owner references/,
    );
    assert.match(p.awaiting.hint ?? '', /ks-upgrade rbac --config/);
    assert.deepEqual(diff(hostBefore, await clusterSnapshot(host.connection.client)), []);
    assert.deepEqual(diff(memberBefore, await clusterSnapshot(member.connection.client)), []);
    await resolveSoon(handle, { action: 'abort', reason: 'restore the rule', by: 'test' });
    await assert.rejects(handle.result(), (err: unknown) => err instanceof WorkflowFailedError);
  });

  it('with the generated roles, a ServiceAccount runs the full upgrade of the fleet, verified at the end', async () => {
    const skipped = await applyRbac(host.connection.client, hostRoles);
    await waitForAccess(hostSa, { verb: 'update', group: '', resource: 'namespaces' }, true);
    controller = startStandInController(host.connection.client, { intervalMs: 200 });
    standIns = startFleetStandIns(host.connection.client, member.connection.client);
    const { handle } = await startUpgrade(client, input(), taskQueue);
    await waitForProgress(
      handle,
      (p) => p.status === 'AwaitingCoreUpgrade' || p.awaiting !== undefined,
      300_000,
    );
    const p = await waitForProgress(handle, () => true);
    assert.equal(
      p.awaiting,
      undefined,
      `a step failed: ${JSON.stringify(p.awaiting)} (roles not applied: ${skipped.join(', ')})`,
    );
    assert.equal(p.preflight?.ok, true, JSON.stringify(p.preflight));
    await playCoreUpgrade(host.connection.client, extensions);
    await writeExtensionCharts(host.connection.client, new Map(extensions));
    // A step that fails with 403 waits for the operator: fail with its error instead of hanging.
    const end = await waitForProgress(
      handle,
      (x) => x.status === 'Succeeded' || x.awaiting !== undefined,
      600_000,
    );
    assert.equal(end.awaiting, undefined, `a step waits for the operator: ${JSON.stringify(end.awaiting)}`);
    result = await handle.result();
    assert.equal(result.status, 'Succeeded');
    assert.deepEqual(
      result.steps.filter((s) => s.state !== 'succeeded' && s.state !== 'skipped'),
      [],
    );
    assert.deepEqual(result.decisions, []);
    const ran = new Set(result.steps.filter((s) => s.outcome === 'succeeded').map((s) => s.job));
    assert.deepEqual(
      registry.names().filter((n) => !ran.has(n)),
      [],
      'every job did work under the role',
    );
    // Verification passed on the clean upgrade, and says what it looked at.
    const v = result.verification;
    assert.ok(v?.ok, JSON.stringify(v, null, 2));
    const checks = v.findings.map((f) => f.check);
    for (const c of [
      'ks-core-release',
      'rollout/ks-apiserver',
      'rollout/ks-console',
      'rollout/ks-controller-manager',
    ]) {
      assert.ok(checks.includes(c), c);
    }
    assert.ok(checks.includes('leftover/webhook/cluster.kubesphere.io'));
    assert.ok(checks.includes('installplan/devops'));
    assert.ok(checks.some((c) => c.startsWith('stored-versions/users.iam.kubesphere.io')));
  });

  it('verification finds a planted v3 webhook and an InstallPlan stuck in Installing; `ks-upgrade verify` exits 1', async () => {
    assert.ok(result, 'the upgrade ran');
    await controller?.stop();
    await standIns?.stop();
    const args = ['verify', host.name, '--kubeconfig', hostSa, '--config', configFile];
    const clean = await cli(args);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /Verification of cluster \S+: passed/);

    const kube = host.connection.client;
    await kube.create(ValidatingWebhookConfigurationResource, {
      metadata: { name: 'cluster.kubesphere.io' },
      webhooks: [
        {
          name: 'vcluster.kb.io',
          clientConfig: {
            service: { namespace: 'kubesphere-system', name: 'ks-controller-manager', path: '/validate' },
          },
          rules: [
            {
              operations: ['CREATE'],
              apiGroups: ['cluster.kubesphere.io'],
              apiVersions: ['v1alpha1'],
              resources: ['clusters'],
            },
          ],
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          failurePolicy: 'Ignore',
        },
      ],
    } as KubeObject);
    // v4.1.3's InstallPlan has no status sub-resource: its status is written through the object.
    await kube.patch(InstallPlanResource, 'devops', undefined, { status: { state: 'Installing' } }, 'merge');

    const r = await cli(args);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /Verification of cluster \S+: FAILED/);
    assert.match(
      r.stdout,
      /✖ leftover\/webhook\/cluster\.kubesphere\.io\s+webhook cluster\.kubesphere\.io still exists/,
    );
    assert.match(r.stdout, /✖ installplan\/devops\s+InstallPlan devops \(devops-[\d.]+\) is Installing/);
    const json = await cli([...args, '--json']);
    assert.equal(json.code, 1);
    const report = JSON.parse(json.stdout) as VerificationReport;
    assert.deepEqual(
      report.findings.filter((f) => !f.ok).map((f) => f.check),
      ['installplan/devops', 'leftover/webhook/cluster.kubesphere.io'],
    );
  });
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/ks-upgrade.js'), ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}
