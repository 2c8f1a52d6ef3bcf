// The tower job on a host API server: not applicable unless the cc says host, the helm hand-over of
// Service and Deployment kubesphere-system/tower (backed up first), the Service type rule (a load
// balancer with an address is kept), the InstallPlan with the default config, re-runs and rollback.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DeploymentResource, ServiceResource } from '../../src/api/core.js';
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
import { towerJobFactory } from '../../src/jobs/tower/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import { encryptedTempStore } from '../helpers/storage.js';

// The sample config.yaml's extensionRef of the tower job.
const REF: ExtensionRef = {
  name: 'tower',
  version: '1.0.0',
  config: 'tower:\n  service:\n    create: false\n',
};
const NS = 'kubesphere-system';
const HELM_ANNOTATIONS = {
  'meta.helm.sh/release-name': 'tower',
  'meta.helm.sh/release-namespace': 'extension-tower',
};

describe('tower job', () => {
  let host: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;
  const registry = new JobRegistry();
  registry.register(towerJobFactory);

  const run = (phase: Phase) => {
    const config = configWithJobs({
      tower: { enabled: true, priority: 100, extensionRef: REF, dynamicOptions: {} },
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
  const scoped = () => store.scope('host', 'tower');
  const setCcRole = (clusterRole: string) =>
    kube.patch(ClusterConfigurationResource, 'ks-installer', NS, { spec: { multicluster: { clusterRole } } });
  const setIngress = (ingress: { ip: string }[]) =>
    kube.patch(ServiceResource, 'tower', NS, { status: { loadBalancer: { ingress } } }, 'merge', 'status');

  before(async () => {
    host = await startEphemeralCluster('tw-host');
    kube = host.connection.client;
    await installKubeSphereV3(kube);
    await playCoreUpgrade(kube, [['tower', '1.0.0']]);
    store = (await encryptedTempStore('tower-job-')).store;
  });
  after(() => host.remove());

  it('is not applicable unless the cc says host', async () => {
    await setCcRole('member');
    try {
      assert.deepEqual(await run('pre-upgrade'), ['skipped']);
      assert.deepEqual(await run('post-upgrade'), ['skipped']);
      assert.deepEqual(await scoped().list(), []);
    } finally {
      await setCcRole('host');
    }
  });

  it('pre-upgrade hands tower to the helm release; a load balancer with an address keeps its type', async () => {
    await setIngress([{ ip: '192.0.2.10' }]);
    assert.deepEqual(await run('pre-upgrade'), ['succeeded']);
    const svc = await kube.get(ServiceResource, 'tower', NS);
    assert.equal(svc.spec?.type, 'LoadBalancer');
    assert.equal(svc.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm');
    assert.deepEqual(svc.metadata.annotations, HELM_ANNOTATIONS);
    const deploy = await kube.get(DeploymentResource, 'tower', NS);
    assert.deepEqual(deploy.metadata.labels, {
      app: 'tower',
      'app.kubernetes.io/name': 'tower',
      'app.kubernetes.io/managed-by': 'Helm',
    });
    assert.deepEqual(await scoped().list(), ['tower-deployment', 'tower-service']);
    const backup = await scoped().load<{
      metadata: { labels: Record<string, string> };
      spec: { type: string };
    }>('tower-service');
    assert.equal(backup.metadata.labels['app.kubernetes.io/managed-by'], undefined, 'the pre-change copy');
    assert.equal(backup.spec.type, 'LoadBalancer');
  });

  it('pre-upgrade makes a load balancer without an address a NodePort service; re-runs write nothing', async () => {
    await setIngress([]);
    await run('pre-upgrade');
    const svc = await kube.get(ServiceResource, 'tower', NS);
    assert.equal(svc.spec?.type, 'NodePort');
    const rv = svc.metadata.resourceVersion;
    await run('pre-upgrade');
    assert.equal((await kube.get(ServiceResource, 'tower', NS)).metadata.resourceVersion, rv);
  });

  it('post-upgrade creates the InstallPlan with the configured values', async () => {
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    assert.deepEqual((await kube.get(InstallPlanResource, 'tower')).spec, {
      extension: { name: 'tower', version: '1.0.0' },
      enabled: true,
      upgradeStrategy: 'Manual',
      config: 'tower:\n  service:\n    create: false\n',
    });
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
  });

  it('rollback removes the pending InstallPlan and gives tower its v3 metadata and type back', async () => {
    assert.deepEqual(await run('rollback'), ['succeeded']);
    assert.equal(await kube.tryGet(InstallPlanResource, 'tower'), undefined);
    const svc = await kube.get(ServiceResource, 'tower', NS);
    assert.equal(svc.spec?.type, 'LoadBalancer');
    assert.deepEqual(svc.metadata.labels, { app: 'tower', 'app.kubernetes.io/name': 'tower' });
    assert.equal(svc.metadata.annotations, undefined);
    const deploy = await kube.get(DeploymentResource, 'tower', NS);
    assert.deepEqual(deploy.metadata.labels, { app: 'tower', 'app.kubernetes.io/name': 'tower' });
  });
});
