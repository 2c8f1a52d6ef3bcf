// The metrics-server job on a host and a (small) member API server: backups only where the cc
// enables metrics-server, taken once; deletion in post-upgrade; the InstallPlan placed on the
// clusters whose own cc enables it; re-runs and rollback (objects re-created from the backups).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  APIServiceResource,
  DeploymentResource,
  NamespaceResource,
  RbacClusterRoleResource,
  ServiceResource,
} from '../../src/api/core.js';
import { ClusterConfigurationResource } from '../../src/api/v3/index.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { ExtensionRef } from '../../src/config/types.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runPhase,
  type Phase,
} from '../../src/jobs/index.js';
import {
  METRICS_SERVER_OBJECTS,
  metricsServerJobFactory,
  metricsServerKey,
} from '../../src/jobs/metrics-server/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import type { ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { applyYamlFiles } from '../helpers/fixtures.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import { encryptedTempStore } from '../helpers/storage.js';

const REF: ExtensionRef = { name: 'metrics-server', version: '0.7.1' };

describe('metrics-server job', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;
  const registry = new JobRegistry();
  registry.register(metricsServerJobFactory);

  const run = (phase: Phase, options: Record<string, unknown> = {}) => {
    const config = configWithJobs({
      'metrics-server': { enabled: true, priority: 80, extensionRef: REF, dynamicOptions: options },
    });
    return runPhase(phase, instantiateJobs(config, registry), (j, p) =>
      createJobContext({
        job: j.name,
        phase: p,
        cluster: { name: 'host' },
        kube,
        store,
        config: j.config,
        logger: createMemoryLogger(),
      }),
    ).then((r) => r.map((x) => x.outcome));
  };
  const scoped = () => store.scope('host', 'metrics-server');
  const setEnabled = (client: ResourceClient, enabled: boolean) =>
    client.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { metrics_server: { enabled } },
    });

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('ms-host'),
      startEphemeralCluster('ms-member'),
    ]);
    kube = host.connection.client;
    await installKubeSphereV3(kube, { members: { member1: member.kubeconfig } });
    // A member needs no more than its cc for placement: metrics-server disabled there.
    const mk = member.connection.client;
    await applyYamlFiles(mk, [`${repoRoot}/test/fixtures/kubesphere-v3/crds/installer.kubesphere.io.yaml`]);
    await mk.create(NamespaceResource, { metadata: { name: 'kubesphere-system' } });
    await mk.create(ClusterConfigurationResource, {
      metadata: { name: 'ks-installer', namespace: 'kubesphere-system' },
      spec: { metrics_server: { enabled: false } },
    });
    await playCoreUpgrade(kube, [['metrics-server', '0.7.1']]);
    store = (await encryptedTempStore('metrics-server-job-')).store;
  });
  after(async () => {
    await closeClusterClients();
    await Promise.all([host.remove(), member.remove()]);
  });

  it('plan lists what exists, only where the cc enables metrics-server', async () => {
    const plan = async () =>
      (await metricsServerJobFactory.create({}, REF).plan?.(
        createJobContext({
          job: 'metrics-server',
          phase: 'pre-upgrade',
          cluster: { name: 'host' },
          kube: kube,
          store,
          config: { enabled: true, priority: 1, extensionRef: REF, dynamicOptions: {} },
          logger: createMemoryLogger(),
        }),
      )) ?? [];
    assert.deepEqual(await plan(), [
      { phase: 'post-upgrade', action: 'create', target: 'InstallPlan metrics-server' },
    ]);
    await setEnabled(kube, true);
    const actions = await plan();
    await setEnabled(kube, false);
    assert.equal(actions.filter((a) => a.action === 'delete').length, 9, 'one of the ten is absent');
  });

  it('pre-upgrade backs up nothing where the cc does not enable metrics-server', async () => {
    assert.deepEqual(await run('pre-upgrade'), ['succeeded']);
    assert.deepEqual(await scoped().list(), []);
  });

  it('pre-upgrade backs up every existing object under the original key, once', async () => {
    await setEnabled(kube, true);
    await run('pre-upgrade');
    assert.deepEqual(await scoped().list(), [
      'metrics-server-APIService--v1beta1.metrics.k8s.io.json',
      'metrics-server-ClusterRole--system:aggregated-metrics-reader.json',
      'metrics-server-ClusterRole--system:metrics-server.json',
      'metrics-server-ClusterRoleBinding--metrics-server:system:auth-delegator.json',
      'metrics-server-ClusterRoleBinding--system:metrics-server.json',
      'metrics-server-Deployment-kube-system-metrics-server.json',
      'metrics-server-RoleBinding-kube-system-metrics-server-auth-reader.json',
      'metrics-server-Service-kube-system-metrics-server.json',
      'metrics-server-ServiceAccount-kube-system-metrics-server.json',
    ]);
    const api = await scoped().load<{ kind: string; spec: { service: unknown } }>(
      'metrics-server-APIService--v1beta1.metrics.k8s.io.json',
    );
    assert.equal(api.kind, 'APIService');
    assert.deepEqual(api.spec.service, { name: 'metrics-server', namespace: 'kube-system', port: 443 });
    // A later change in the cluster does not replace the first backup.
    await kube.patch(DeploymentResource, 'metrics-server', 'kube-system', {
      metadata: { labels: { changed: 'yes' } },
    });
    const key = 'metrics-server-Deployment-kube-system-metrics-server.json';
    const before = await scoped().load(key);
    await run('pre-upgrade');
    assert.deepEqual(await scoped().load(key), before);
  });

  it('post-upgrade deletes the objects and places the InstallPlan where metrics-server was enabled', async () => {
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    for (const t of METRICS_SERVER_OBJECTS) {
      assert.equal(
        await kube.tryGet(t.rt, t.name, t.rt.namespaced ? t.namespace : undefined),
        undefined,
        metricsServerKey(t),
      );
    }
    const plan = await kube.get(InstallPlanResource, 'metrics-server');
    assert.deepEqual(plan.spec, {
      extension: { name: 'metrics-server', version: '0.7.1' },
      enabled: true,
      upgradeStrategy: 'Manual',
      clusterScheduling: { placement: { clusters: ['host'] } },
    });
    const rv = plan.metadata.resourceVersion;
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    assert.equal((await kube.get(InstallPlanResource, 'metrics-server')).metadata.resourceVersion, rv);
  });

  it('rerun places it on the member too once its cc enables it', async () => {
    await setEnabled(member.connection.client, true);
    await run('post-upgrade', { rerun: 'true' });
    assert.deepEqual((await kube.get(InstallPlanResource, 'metrics-server')).spec.clusterScheduling, {
      placement: { clusters: ['host', 'member1'] },
    });
  });

  it('rollback removes the pending InstallPlan and re-creates the objects from the backups', async () => {
    assert.deepEqual(await run('rollback'), ['succeeded']);
    assert.equal(await kube.tryGet(InstallPlanResource, 'metrics-server'), undefined);
    assert.ok(await kube.tryGet(APIServiceResource, 'v1beta1.metrics.k8s.io'));
    assert.ok(await kube.tryGet(ServiceResource, 'metrics-server', 'kube-system'));
    assert.ok(await kube.tryGet(RbacClusterRoleResource, 'system:metrics-server'));
    const deploy = await kube.get(DeploymentResource, 'metrics-server', 'kube-system');
    assert.equal(deploy.metadata.labels?.changed, undefined, 'the pre-change copy');
    assert.deepEqual(await run('rollback'), ['succeeded']);
  });
});
