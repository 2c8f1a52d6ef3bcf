// The devops job on two real API servers (host and member1, the member reached through its Cluster
// kubeconfig): per-cluster encrypted backups, only the DevOps projects' Secrets, uninstall of the v3
// releases from their records while Jenkins' PV is kept and its PVC re-bound, and the InstallPlan
// with per-cluster values — Jenkins credentials in Secrets on the clusters, never in the plan.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import {
  ConfigMapResource,
  DeploymentResource,
  NamespaceResource,
  PersistentVolumeClaimResource,
  PersistentVolumeResource,
  SecretResource,
  type Deployment,
  type Secret,
} from '../../src/api/core.js';
import { ClusterConfigurationResource, ClusterResource } from '../../src/api/v3/index.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { UpgradeConfig } from '../../src/config/types.js';
import {
  CREDENTIALS_SECRET,
  DONE_KEY,
  DevOpsBackupError,
  argocdOverride,
  clusterValues,
  devopsJobFactory,
  extensionConfig,
  mergeOverrides,
} from '../../src/jobs/devops/index.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runPhase,
  type InstantiatedJob,
  type Phase,
} from '../../src/jobs/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { startStandInController } from '../fixtures/kubesphere-v4/controller.js';
import { startVolumeController } from '../fixtures/kubesphere-v4/extensions.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { applyYamlFiles } from '../helpers/fixtures.js';
import { connectFixtureMembers, playCoreUpgrade } from '../helpers/kubesphere.js';

const V3 = path.join(repoRoot, 'test/fixtures/kubesphere-v3');
const SYS = 'kubesphere-devops-system';
/** Every credential of the devops fixture. */
const LEAKS = [
  'fixture-jenkins-admin-password-do-not-leak',
  'fixture-smtp-password-do-not-leak',
  'fixture-sonar-token-do-not-leak',
  'fixture-values-admin-password-do-not-leak',
  'fixture-devops-credential-do-not-leak',
];
const MEMBER_OVERRIDE = 'agent:\n  jenkins:\n    Master:\n      ServiceType: LoadBalancer\n';

/** The core and devops parts of the v3 fixture (this job needs no other job's objects). */
async function installFixture(kube: ResourceClient): Promise<void> {
  await applyYamlFiles(kube, [
    `${V3}/crds/cluster.kubesphere.io.yaml`,
    `${V3}/crds/installer.kubesphere.io.yaml`,
    `${V3}/crds/tenant.kubesphere.io.yaml`,
    `${V3}/crds/devops.kubesphere.io.yaml`,
    `${V3}/objects/core.yaml`,
    `${V3}/objects/devops.yaml`,
  ]);
  await kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
    spec: { devops: { enabled: true } },
  });
}

const decode = (s: Secret | undefined, key: string): string =>
  Buffer.from(s?.data?.[key] ?? '', 'base64').toString('utf8');

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

describe('devops job (reference §4.4)', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let hostKube: ResourceClient;
  let memberKube: ResourceClient;
  let store: ResourceStore;
  let storeDir: string;
  let jobs: InstantiatedJob[];
  const volumeControllers: { stop(): Promise<void> }[] = [];

  const run = (phase: Phase, cluster: 'host' | 'member1' = 'host') =>
    runPhase(phase, jobs, (j, p) =>
      createJobContext({
        job: j.name,
        phase: p,
        cluster: { name: cluster },
        kube: cluster === 'host' ? hostKube : memberKube,
        store,
        config: j.config,
        logger: createMemoryLogger(),
      }),
    );
  const hostStore = () => store.scope('host', 'devops');

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('devops-host'),
      startEphemeralCluster('devops-m1'),
    ]);
    hostKube = host.connection.client;
    memberKube = member.connection.client;
    await Promise.all([installFixture(hostKube), installFixture(memberKube)]);
    // member1 is a member: its own role, no Cluster objects, no ArgoCD.
    await memberKube.apply(ConfigMapResource, {
      metadata: { name: 'kubesphere-config', namespace: 'kubesphere-system' },
      data: { 'kubesphere.yaml': 'multicluster:\n  clusterRole: member\n' },
    });
    for (const c of ['host', 'member1']) await memberKube.delete(ClusterResource, c);
    await memberKube.delete(SecretResource, 'sh.helm.release.v1.devops.v1', 'argocd');
    // The host reaches member1 through the kubeconfig in its Cluster object.
    await connectFixtureMembers(hostKube, { member1: member.kubeconfig });
    volumeControllers.push(startVolumeController(hostKube), startVolumeController(memberKube));

    storeDir = await mkdtemp(path.join(tmpdir(), 'devops-store-'));
    const keyHex = randomBytes(32).toString('hex');
    store = await createResourceStore(
      { local: { path: storeDir }, encryption: { keyEnv: 'DEVOPS_TEST_KEY' } },
      { DEVOPS_TEST_KEY: keyHex },
    );
    const registry = new JobRegistry();
    registry.register(devopsJobFactory);
    const config = {
      storage: { local: { path: storeDir } },
      validator: {
        ksVersion: { enabled: false },
        extensionsMuseum: { enabled: false, namespace: '', name: '', syncInterval: 0, watchTimeout: 0 },
      },
      jobs: {
        devops: {
          enabled: true,
          priority: 800,
          extensionRef: {
            name: 'devops',
            version: '1.1.2',
            config:
              '# kept as written unless values are added\nagent:\n  jenkins:\n    kubeconfigEnabled: true\n',
            clusterScheduling: { overrides: { member1: MEMBER_OVERRIDE } },
          },
          dynamicOptions: {},
        },
      },
      upgrade: { gate: 'none' },
    } satisfies UpgradeConfig;
    jobs = instantiateJobs(config, registry);
  });
  after(async () => {
    await Promise.all(volumeControllers.map((c) => c.stop()));
    await closeClusterClients();
    await Promise.all([host.remove(), member.remove()]);
  });

  it('computes values without crashing when ArgoCD sections or the apiserver are absent, and merges user overrides', () => {
    // ArgoCD values without dex/applicationSet/redis (the original dereferenced them).
    assert.deepEqual(argocdOverride({ server: { replicas: 3, image: { registry: '' } } }), {
      server: { replicas: 3 },
      dex: { resources: { limits: { memory: '1024Mi', cpu: '500m' } } },
    });
    assert.deepEqual(
      argocdOverride({ dex: { resources: { limits: { memory: '2Gi', cpu: '250m' } } } }).dex,
      { resources: { limits: { memory: '2Gi', cpu: '500m' } } },
      'limits below the minimum are raised, other units kept',
    );
    // No devops-apiserver Deployment and no ArgoCD: no agent.apiserver, no extension values added.
    const jenkins: Deployment = {
      metadata: { name: 'devops-jenkins' },
      spec: { template: { spec: { containers: [{ name: 'jenkins' }] } } },
    };
    const values = clusterValues('c1', {
      deployments: [jenkins],
      systemValues: {},
      argocdValues: undefined,
      jenkinsPv: undefined,
      pvcs: [{ metadata: { name: 'ks-jenkins' } }],
      jenkinsSecret: undefined,
    });
    assert.equal(values.apiserver, undefined);
    assert.deepEqual(values.override, {
      agent: { jenkins: { persistence: { existingClaim: 'ks-jenkins' }, Master: {} } },
    });
    assert.equal(extensionConfig('a: 1\n', values.apiserver), 'a: 1\n');
    // User overrides are merged over the computed values (the original always failed here).
    const merged = mergeOverrides(
      { c1: 'agent:\n  jenkins:\n    Master:\n      ServiceType: LoadBalancer\n', other: 'x: 1\n' },
      new Map([['c1', values.override]]),
    );
    assert.deepEqual(yaml.load(merged.c1 ?? ''), {
      agent: {
        jenkins: { persistence: { existingClaim: 'ks-jenkins' }, Master: { ServiceType: 'LoadBalancer' } },
      },
    });
    assert.equal(merged.other, 'x: 1\n', 'overrides of other clusters pass through');
    assert.throws(
      () =>
        clusterValues('c2', {
          deployments: [],
          systemValues: {},
          argocdValues: undefined,
          jenkinsPv: undefined,
          pvcs: [],
          jenkinsSecret: undefined,
        }),
      DevOpsBackupError,
    );
  });

  it('plan names the backups, the uninstalls and the InstallPlan, and changes nothing', async () => {
    const [job] = jobs;
    assert.ok(job);
    const ctx = createJobContext({
      job: 'devops',
      phase: 'pre-upgrade',
      cluster: { name: 'host' },
      kube: hostKube,
      store,
      config: job.config,
      logger: createMemoryLogger(),
    });
    const actions = (await job.job.plan?.(ctx)) ?? [];
    const lines = actions.map((a) => `${a.phase} ${a.action}${a.target ? ` ${a.target}` : ''}`);
    assert.ok(lines.includes('pre-upgrade back up DevOps v3 (encrypted) cluster host'));
    assert.ok(lines.includes('pre-upgrade back up DevOps v3 (encrypted) cluster member1'));
    assert.ok(lines.includes('pre-upgrade uninstall helm release kubesphere-devops-system/devops'));
    assert.ok(lines.includes('pre-upgrade uninstall helm release argocd/devops'));
    assert.ok(lines.includes('post-upgrade create InstallPlan and wait until Installed InstallPlan devops'));
    assert.deepEqual(await hostStore().list(), []);
    assert.ok(await hostKube.tryGet(DeploymentResource, 'devops-jenkins', SYS));
  });

  it('pre-upgrade on the host backs up every DevOps cluster (encrypted), uninstalls v3 and keeps Jenkins data', async () => {
    assert.deepEqual(
      (await run('pre-upgrade')).map((r) => r.outcome),
      ['succeeded'],
    );
    const s = hostStore();
    const keys = await s.list();
    for (const c of ['host', 'member1']) {
      for (const k of [
        `${c}-kubesphere-devops-system-devops-release`,
        `${c}-kubesphere-devops-system-devops-values`,
        `${c}-kubesphere-devops-system-deployments`,
        `${c}-kubesphere-devops-system-configmaps`,
        `${c}-kubesphere-devops-worker-configmaps`,
        `${c}-devops-jenkins-pvc`,
        `${c}-devops-jenkins-pv`,
        `${c}-secret-devops-jenkins`,
        `${c}-devops-projects`,
        `${c}-devops-pipelines`,
        `${c}-devops-pipelineruns`,
        `${c}-devops-gitrepos`,
        `${c}-devops-secrets`,
      ])
        assert.ok(keys.includes(k), `backup ${k}`);
    }
    assert.ok(keys.includes('host-argocd-devops-values') && keys.includes('host-argocd-configmaps'));
    assert.ok(!keys.includes('member1-argocd-devops-values'), 'member1 has no ArgoCD');
    for (const k of [
      'ks-devops-agent',
      'jenkins-casc-config',
      'current-devops-jenkins-pvc',
      'current-devops-jenkins-pv',
    ])
      assert.ok(keys.includes(k), `backup ${k}`);

    // Only the Secrets of the DevOps projects' namespaces, once, encrypted.
    const secrets = await s.load<{ items: Secret[] }>('host-devops-secrets');
    assert.deepEqual(
      secrets.items.map((x) => `${x.metadata.namespace ?? ''}/${x.metadata.name ?? ''}`),
      ['devops-project/github-token'],
    );
    for (const k of [
      'host-devops-secrets',
      'host-secret-devops-jenkins',
      'member1-kubesphere-devops-system-devops-values',
    ])
      assert.equal((await s.stat(k)).encrypted, true, `${k} is encrypted`);
    for (const file of await filesUnder(storeDir)) {
      const text = (await readFile(file)).toString('latin1');
      for (const secret of LEAKS) assert.ok(!text.includes(secret), `${file} holds no plaintext credential`);
    }

    // v3 releases uninstalled on the host, from their records.
    for (const ns of [SYS, 'argocd'])
      assert.deepEqual(
        await hostKube.listAll(SecretResource, { namespace: ns, labelSelector: 'owner=helm' }),
        [],
      );
    for (const d of ['devops-apiserver', 'devops-controller', 'devops-jenkins'])
      assert.equal(await hostKube.tryGet(DeploymentResource, d, SYS), undefined);
    assert.equal(
      await hostKube.tryGet(DeploymentResource, 'devops-agent-argocd-server', 'argocd'),
      undefined,
    );
    // Jenkins' PV kept and bound to a re-created PVC; worker PVs kept too.
    const pv = await hostKube.get(PersistentVolumeResource, 'pv-devops-jenkins');
    assert.equal(pv.spec?.persistentVolumeReclaimPolicy, 'Retain');
    const pvc = await hostKube.get(PersistentVolumeClaimResource, 'devops-jenkins', SYS);
    assert.equal(pvc.status?.phase, 'Bound');
    assert.equal(pvc.metadata.labels?.['app.kubernetes.io/managed-by'], 'ks-upgrade');
    assert.equal(pv.spec.claimRef?.uid, pvc.metadata.uid);
    assert.equal(
      (await hostKube.get(PersistentVolumeResource, 'pv-devops-maven-cache')).spec
        ?.persistentVolumeReclaimPolicy,
      'Retain',
    );
    assert.deepEqual(
      (await hostKube.get(NamespaceResource, 'kubesphere-devops-worker')).metadata.finalizers ?? [],
      [],
    );
    // ConfigMaps kept in the cluster for the v4 extension; the project namespace labelled.
    for (const cm of ['ks-devops-agent-backup', 'jenkins-casc-config-backup'])
      assert.ok(await hostKube.tryGet(ConfigMapResource, cm, SYS), cm);
    const projectNs = await hostKube.get(NamespaceResource, 'devops-project');
    assert.equal(projectNs.metadata.labels?.['devops.kubesphere.io/managed'], 'true');
    assert.equal(projectNs.metadata.labels['kubesphere.io/workspace'], 'demo-ws');
    // member1 was only backed up: its DevOps still runs.
    assert.ok(await memberKube.tryGet(DeploymentResource, 'devops-jenkins', SYS));
  });

  it('pre-upgrade again changes nothing and keeps the first backups', async () => {
    const s = hostStore();
    const before = new Map<string, string>();
    for (const k of await s.list()) before.set(k, Buffer.from(await s.loadRaw(k)).toString('base64'));
    const pvc = await hostKube.get(PersistentVolumeClaimResource, 'devops-jenkins', SYS);
    await run('pre-upgrade');
    assert.deepEqual([...before.keys()], await s.list());
    for (const [k, v] of before) assert.equal(Buffer.from(await s.loadRaw(k)).toString('base64'), v, k);
    assert.equal(
      (await hostKube.get(PersistentVolumeClaimResource, 'devops-jenkins', SYS)).metadata.uid,
      pvc.metadata.uid,
      'the re-created PVC is kept',
    );
  });

  it('pre-upgrade on the member uninstalls DevOps there, also after a crash right after its backups', async () => {
    // A first attempt backed up the Jenkins PVCs and the agent ConfigMap, then died.
    const memberStore = store.scope('member1', 'devops');
    await memberStore.saveOnce('current-devops-jenkins-pvc', {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaimList',
      metadata: {},
      items: await memberKube.listAll(PersistentVolumeClaimResource, { namespace: SYS }),
    });
    await memberStore.saveOnce(
      'ks-devops-agent',
      await memberKube.get(ConfigMapResource, 'ks-devops-agent', 'kubesphere-devops-worker'),
    );
    assert.deepEqual(
      (await run('pre-upgrade', 'member1')).map((r) => r.outcome),
      ['succeeded'],
    );
    assert.deepEqual(
      await memberKube.listAll(SecretResource, { namespace: SYS, labelSelector: 'owner=helm' }),
      [],
    );
    const pvc = await memberKube.get(PersistentVolumeClaimResource, 'devops-jenkins', SYS);
    assert.equal(pvc.status?.phase, 'Bound');
    assert.equal(
      (await memberKube.get(PersistentVolumeResource, 'pv-devops-jenkins')).spec
        ?.persistentVolumeReclaimPolicy,
      'Retain',
    );
    const memberKeys = await store.scope('member1', 'devops').list();
    assert.ok(memberKeys.includes('current-devops-jenkins-pv'));
    assert.ok(!memberKeys.some((k) => k.startsWith('member1-')), 'members back up only themselves');
  });

  it('post-upgrade installs the extension with per-cluster values; credentials only in Secrets', async () => {
    await playCoreUpgrade(hostKube, [['devops', '1.1.2']]);
    const controller = startStandInController(hostKube, { intervalMs: 100 });
    try {
      assert.deepEqual(
        (await run('post-upgrade')).map((r) => r.outcome),
        ['succeeded'],
      );
    } finally {
      await controller.stop();
    }
    const plan = await hostKube.get(InstallPlanResource, 'devops');
    assert.equal(plan.status?.state, 'Installed');
    const text = JSON.stringify(plan);
    for (const secret of LEAKS) assert.ok(!text.includes(secret), 'the InstallPlan carries no credential');
    assert.deepEqual(plan.spec.clusterScheduling?.placement, { clusters: ['host', 'member1'] });

    const config = yaml.load(plan.spec.config ?? '') as Record<string, never>;
    assert.deepEqual(config, {
      agent: { jenkins: { kubeconfigEnabled: true } },
      extension: {
        apiserver: {
          replicas: 2,
          resources: { requests: { cpu: '20m', memory: '50Mi' }, limits: { cpu: '1', memory: '1Gi' } },
        },
      },
    });
    const overrides = plan.spec.clusterScheduling.overrides ?? {};
    const hostValues = yaml.load(overrides.host ?? '') as { agent: Record<string, never> };
    const credentialsSecret = {
      name: CREDENTIALS_SECRET,
      adminPasswordKey: 'jenkins-admin-password',
      smtpPasswordKey: 'EMAIL_FROM_PASS',
      sonarTokenKey: 'SONAR_AUTH_TOKEN',
    };
    assert.deepEqual(hostValues.agent.jenkins, {
      persistence: { existingClaim: 'devops-jenkins' },
      Master: {
        resources: { requests: { cpu: '500m', memory: '2Gi' }, limits: { cpu: '2', memory: '4Gi' } },
        ServiceType: 'NodePort',
        smtp: {
          EMAIL_SMTP_HOST: 'mail.example.internal',
          EMAIL_SMTP_PORT: '465',
          EMAIL_FROM_NAME: 'KubeSphere',
          EMAIL_FROM_ADDR: 'devops@example.internal',
          EMAIL_USE_SSL: true,
        },
        sonarqube: { serverUrl: 'http://sonarqube.example.internal:9000' },
        credentialsSecret,
      },
    });
    assert.deepEqual(hostValues.agent.controller, {
      replicas: 1,
      resources: { requests: { cpu: '20m', memory: '50Mi' }, limits: { cpu: '500m', memory: '500Mi' } },
    });
    assert.deepEqual(hostValues.agent.argocd, {
      controller: {
        replicas: 1,
        resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
      },
      dex: { resources: { limits: { cpu: '500m', memory: '1024Mi' } } },
      redis: { image: { registry: 'docker.io' } },
      repoServer: { resources: { requests: { cpu: '100m', memory: '128Mi' } } },
      server: {
        replicas: 2,
        image: { registry: 'registry.example.internal', pullSecrets: [{ name: 'regcred' }] },
      },
    });
    const memberValues = yaml.load(overrides.member1 ?? '') as {
      agent: Record<string, { Master?: unknown }>;
    };
    assert.equal(memberValues.agent.argocd, undefined, 'no ArgoCD on member1');
    assert.equal(
      (memberValues.agent.jenkins?.Master as { ServiceType?: string }).ServiceType,
      'LoadBalancer',
      "the user's override wins",
    );

    // The credentials, in a Secret on each cluster.
    for (const kube of [hostKube, memberKube]) {
      const secret = await kube.get(SecretResource, CREDENTIALS_SECRET, SYS);
      assert.equal(decode(secret, 'jenkins-admin-password'), 'fixture-jenkins-admin-password-do-not-leak');
      assert.equal(decode(secret, 'EMAIL_FROM_PASS'), 'fixture-smtp-password-do-not-leak');
      assert.equal(decode(secret, 'SONAR_AUTH_TOKEN'), 'fixture-sonar-token-do-not-leak');
    }
    const marker = Buffer.from(await hostStore().loadRaw(DONE_KEY)).toString('utf8');
    for (const secret of LEAKS) assert.ok(!marker.includes(secret));
  });

  it('post-upgrade again is a no-op once done', async () => {
    const rv = (await hostKube.get(InstallPlanResource, 'devops')).metadata.resourceVersion;
    assert.deepEqual(
      (await run('post-upgrade')).map((r) => r.outcome),
      ['succeeded'],
    );
    assert.equal((await hostKube.get(InstallPlanResource, 'devops')).metadata.resourceVersion, rv);
  });

  it('refuses unknown options and a missing extension version', () => {
    assert.throws(
      () => devopsJobFactory.create({ bogus: 1 }, { name: 'devops', version: '1.1.2' }),
      /unknown option bogus/,
    );
    assert.throws(() => devopsJobFactory.create({}, undefined), /extensionRef.version is required/);
  });
});
