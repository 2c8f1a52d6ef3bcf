// The kubefed job on a host API server: not applicable on members, the FederatedTypeConfigs it
// deletes (backed up first, finalizers cleared) and hands over to the extension's helm release
// (labels and annotations replaced, the originals backed up), the CRD labels, the InstallPlan,
// re-runs and rollback.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigMapResource, CustomResourceDefinitionResource } from '../../src/api/core.js';
import { FederatedTypeConfigResource } from '../../src/api/v3/index.js';
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
import { REMOVED_TYPE_CONFIGS, SERVED_CRDS, kubefedJobFactory } from '../../src/jobs/kubefed/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import { encryptedTempStore } from '../helpers/storage.js';

const REF: ExtensionRef = { name: 'kubefed', version: '1.0.0' };
const NS = 'kube-federation-system';

describe('kubefed job', () => {
  let host: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;
  const registry = new JobRegistry();
  registry.register(kubefedJobFactory);

  const run = (phase: Phase) => {
    const config = configWithJobs({
      kubefed: { enabled: true, priority: 100, extensionRef: REF, dynamicOptions: {} },
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
  const scoped = () => store.scope('host', 'kubefed');
  const ftcNames = async () =>
    (await kube.listAll(FederatedTypeConfigResource, { namespace: NS })).map((f) => f.metadata.name ?? '');
  const setRole = async (role: string) => {
    await kube.mutate(ConfigMapResource, 'kubesphere-config', 'kubesphere-system', (cm) => {
      cm.data = {
        'kubesphere.yaml': (cm.data?.['kubesphere.yaml'] ?? '').replace(
          /clusterRole: \w+/,
          `clusterRole: ${role}`,
        ),
      };
    });
  };

  before(async () => {
    host = await startEphemeralCluster('kf-host');
    kube = host.connection.client;
    await installKubeSphereV3(kube);
    await playCoreUpgrade(kube, [['kubefed', '1.0.0']]);
    store = (await encryptedTempStore('kubefed-job-')).store;
  });
  after(() => host.remove());

  it('takes no options', () => {
    assert.throws(() => kubefedJobFactory.create({ rerun: true }, REF), /unknown option\(s\) rerun/);
  });

  it('is not applicable on a member cluster', async () => {
    await setRole('member');
    try {
      assert.deepEqual(await run('pre-upgrade'), ['skipped']);
      assert.deepEqual(await run('post-upgrade'), ['skipped']);
    } finally {
      await setRole('host');
    }
  });

  it('pre-upgrade backs up and deletes the FederatedTypeConfigs v4 no longer uses', async () => {
    const before = await ftcNames();
    const removable = before.filter((n) => REMOVED_TYPE_CONFIGS.includes(n));
    assert.ok(
      removable.includes('workspaces.tenant.kubesphere.io') &&
        removable.includes('silences.notification.kubesphere.io'),
    );
    assert.deepEqual(await run('pre-upgrade'), ['succeeded']);
    assert.deepEqual(
      (await ftcNames()).filter((n) => REMOVED_TYPE_CONFIGS.includes(n)),
      [],
    );
    const backup = await scoped().load<{ kind: string; items: { metadata: { name: string } }[] }>(
      'kubefed-removed-federatedtypeconfigs',
    );
    assert.equal(backup.kind, 'FederatedTypeConfigList');
    assert.deepEqual(backup.items.map((f) => f.metadata.name).sort(), removable.sort());
    assert.deepEqual(await run('pre-upgrade'), ['succeeded']);
    assert.deepEqual(
      (await scoped().load<{ items: unknown[] }>('kubefed-removed-federatedtypeconfigs')).items.length,
      removable.length,
    );
  });

  it('post-upgrade labels the CRDs, hands the rest to helm release kubefed and creates the InstallPlan', async () => {
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    for (const name of SERVED_CRDS) {
      const crd = await kube.get(CustomResourceDefinitionResource, name);
      assert.equal(crd.metadata.labels?.['kubesphere.io/resource-served'], 'true', name);
    }
    for (const name of ['deployments.apps', 'applications.app.k8s.io', 'services']) {
      const f = await kube.get(FederatedTypeConfigResource, name, NS);
      assert.deepEqual(f.metadata.labels, { 'app.kubernetes.io/managed-by': 'Helm' }, name);
      assert.deepEqual(f.metadata.annotations, {
        'meta.helm.sh/release-name': 'kubefed',
        'meta.helm.sh/release-namespace': NS,
      });
    }
    const meta = await scoped().load<Record<string, { labels?: Record<string, string> }>>(
      'kubefed-federatedtypeconfigs-metadata',
    );
    assert.deepEqual(meta['applications.app.k8s.io']?.labels, { 'kubefed.io/managed': 'true' });
    assert.deepEqual((await kube.get(InstallPlanResource, 'kubefed')).spec, {
      extension: { name: 'kubefed', version: '1.0.0' },
      enabled: true,
      upgradeStrategy: 'Manual',
    });
    const rv = (await kube.get(FederatedTypeConfigResource, 'deployments.apps', NS)).metadata.resourceVersion;
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    assert.equal(
      (await kube.get(FederatedTypeConfigResource, 'deployments.apps', NS)).metadata.resourceVersion,
      rv,
      'a re-run writes nothing',
    );
  });

  it('rollback restores labels and annotations, re-creates the deleted configs and removes the InstallPlan', async () => {
    assert.deepEqual(await run('rollback'), ['succeeded']);
    const apps = await kube.get(FederatedTypeConfigResource, 'applications.app.k8s.io', NS);
    assert.deepEqual(apps.metadata.labels, { 'kubefed.io/managed': 'true' });
    assert.deepEqual(apps.metadata.annotations, { 'kubesphere.io/creator': 'admin' });
    const deployments = await kube.get(FederatedTypeConfigResource, 'deployments.apps', NS);
    assert.equal(deployments.metadata.labels, undefined);
    assert.ok((await ftcNames()).includes('workspaces.tenant.kubesphere.io'));
    assert.equal(await kube.tryGet(InstallPlanResource, 'kubefed'), undefined);
  });
});
