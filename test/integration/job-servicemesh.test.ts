// The servicemesh job on a host and a (small) member API server: nothing while the cc disables the
// mesh, backups and deletion of Istio/Jaeger/Kiali in post-upgrade — also after a crash between a
// backup and its delete (the original then never deleted), the InstallPlan placed by each
// cluster's cc, re-runs and rollback.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CustomResourceDefinitionResource,
  DeploymentResource,
  MutatingWebhookConfigurationResource,
  NamespaceResource,
} from '../../src/api/core.js';
import { ClusterConfigurationResource, JaegerResource, KialiResource } from '../../src/api/v3/index.js';
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
  SERVICEMESH_OBJECTS,
  servicemeshJobFactory,
  servicemeshKey,
} from '../../src/jobs/servicemesh/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import type { ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { applyYamlFiles } from '../helpers/fixtures.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import { encryptedTempStore } from '../helpers/storage.js';

const REF: ExtensionRef = { name: 'servicemesh', version: '1.0.0' };
const ISTIO = 'istio-system';

describe('servicemesh job', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;
  const registry = new JobRegistry();
  registry.register(servicemeshJobFactory);

  const run = (phase: Phase, options: Record<string, unknown> = {}) => {
    const config = configWithJobs({
      servicemesh: { enabled: true, priority: 90, extensionRef: REF, dynamicOptions: options },
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
  const scoped = () => store.scope('host', 'servicemesh');
  const present = async () => {
    const names: string[] = [];
    for (const t of SERVICEMESH_OBJECTS) {
      if (await kube.tryGet(t.rt, t.name, t.rt.namespaced ? ISTIO : undefined))
        names.push(`${t.kind}/${t.name}`);
    }
    return names;
  };

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('sm-host'),
      startEphemeralCluster('sm-member'),
    ]);
    kube = host.connection.client;
    await installKubeSphereV3(kube, { members: { member1: member.kubeconfig } });
    const mk = member.connection.client;
    await applyYamlFiles(mk, [`${repoRoot}/test/fixtures/kubesphere-v3/crds/installer.kubesphere.io.yaml`]);
    await mk.create(NamespaceResource, { metadata: { name: 'kubesphere-system' } });
    await mk.create(ClusterConfigurationResource, {
      metadata: { name: 'ks-installer', namespace: 'kubesphere-system' },
      spec: { servicemesh: { enabled: true } },
    });
    await playCoreUpgrade(kube, [['servicemesh', '1.0.0']]);
    store = (await encryptedTempStore('servicemesh-job-')).store;
  });
  after(async () => {
    await closeClusterClients();
    await Promise.all([host.remove(), member.remove()]);
  });

  it('plan lists nothing to delete while the cc disables the mesh, only the InstallPlan', async () => {
    const actions =
      (await servicemeshJobFactory.create({}, REF).plan?.(
        createJobContext({
          job: 'servicemesh',
          phase: 'pre-upgrade',
          cluster: { name: 'host' },
          kube: kube,
          store,
          config: { enabled: true, priority: 1, extensionRef: REF, dynamicOptions: {} },
          logger: createMemoryLogger(),
        }),
      )) ?? [];
    assert.deepEqual(actions, [
      { phase: 'post-upgrade', action: 'create', target: 'InstallPlan servicemesh' },
    ]);
  });

  it('pre-upgrade does nothing; with the mesh disabled here post-upgrade only places the member', async () => {
    assert.deepEqual(await run('pre-upgrade'), ['succeeded']);
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    assert.equal((await present()).length, SERVICEMESH_OBJECTS.length, 'nothing deleted');
    assert.deepEqual(await scoped().list(), ['servicemesh-done']);
    assert.deepEqual((await kube.get(InstallPlanResource, 'servicemesh')).spec, {
      extension: { name: 'servicemesh', version: '1.0.0' },
      enabled: true,
      upgradeStrategy: 'Manual',
      clusterScheduling: { placement: { clusters: ['member1'] } },
    });
  });

  it('post-upgrade (rerun, mesh enabled) backs up and deletes everything, also after a crash between backup and delete', async () => {
    await kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { servicemesh: { enabled: true } },
    });
    // An earlier attempt backed up jaeger-query and died before deleting it.
    const jaegerQuery = await kube.get(DeploymentResource, 'jaeger-query', ISTIO);
    await scoped().saveOnce(servicemeshKey('jaeger-query', 'Deployment'), jaegerQuery);

    assert.deepEqual(await run('post-upgrade', { rerun: 'true' }), ['succeeded']);
    assert.deepEqual(await present(), [], 'every object deleted, jaeger-query included');
    assert.equal(await kube.tryGet(JaegerResource, 'jaeger', ISTIO), undefined);
    assert.equal(await kube.tryGet(KialiResource, 'kiali', ISTIO), undefined);
    for (const crd of ['kialis.kiali.io', 'jaegers.jaegertracing.io']) {
      const deadline = Date.now() + 30_000;
      while (await kube.tryGet(CustomResourceDefinitionResource, crd)) {
        assert.ok(Date.now() < deadline, `${crd} still there`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const keys = await scoped().list();
    assert.equal(keys.length, SERVICEMESH_OBJECTS.length + 2 + 2 + 1);
    assert.ok(keys.includes('servicemesh-jaeger') && keys.includes('servicemesh-kiali'));
    assert.ok(keys.includes('servicemesh-kialis.kiali.io-CustomResourceDefinition'));
    assert.ok(keys.includes('servicemesh-istio-sidecar-injector-1-14-6-MutatingWebhookConfiguration'));
    assert.ok(
      keys.includes('servicemesh-kiali-ClusterRole') && keys.includes('servicemesh-kiali-Deployment'),
    );
    const kiali = await scoped().load<{ metadata: { finalizers?: string[] } }>('servicemesh-kiali');
    assert.deepEqual(kiali.metadata.finalizers, ['kiali.io/finalizer'], 'backed up as it was');
    assert.deepEqual((await kube.get(InstallPlanResource, 'servicemesh')).spec.clusterScheduling, {
      placement: { clusters: ['host', 'member1'] },
    });
    // Done: a plain re-run is a no-op.
    const snapshot = JSON.stringify(await scoped().list());
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    assert.equal(JSON.stringify(await scoped().list()), snapshot);
  });

  it('rollback re-creates CRDs, CRs and objects, and removes the pending InstallPlan', async () => {
    assert.deepEqual(await run('rollback'), ['succeeded']);
    assert.equal(await kube.tryGet(InstallPlanResource, 'servicemesh'), undefined);
    assert.equal((await present()).length, SERVICEMESH_OBJECTS.length);
    assert.ok(await kube.tryGet(KialiResource, 'kiali', ISTIO));
    assert.ok(await kube.tryGet(MutatingWebhookConfigurationResource, 'istio-sidecar-injector-1-14-6'));
    assert.deepEqual(await run('rollback'), ['succeeded']);
  });
});
