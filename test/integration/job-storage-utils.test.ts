// The storage-utils job on a host API server: the snapshot-controller backup (once), the CRD
// labels, the helm release uninstall, the webhook (backed up, then deleted), the InstallPlan on
// every cluster, re-runs and rollback.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CustomResourceDefinitionResource,
  SecretResource,
  StatefulSetResource,
  ValidatingWebhookConfigurationResource,
} from '../../src/api/core.js';
import { ClusterResource } from '../../src/api/v3/index.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { ExtensionRef } from '../../src/config/types.js';
import { encodeRelease, releaseSecretName } from '../../src/helm/release.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runPhase,
  type Phase,
} from '../../src/jobs/index.js';
import { STORAGE_UTILS_CRDS, storageUtilsJobFactory } from '../../src/jobs/storage-utils/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import { encryptedTempStore } from '../helpers/storage.js';

const REF: ExtensionRef = { name: 'storage-utils', version: '1.0.0' };
const WEBHOOK = 'storageclass-accessor.storage.kubesphere.io';

describe('storage-utils job', () => {
  let host: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;
  const registry = new JobRegistry();
  registry.register(storageUtilsJobFactory);

  const run = (phase: Phase, options: Record<string, unknown> = {}) => {
    const config = configWithJobs({
      'storage-utils': { enabled: true, priority: 100, extensionRef: REF, dynamicOptions: options },
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
  const scoped = () => store.scope('host', 'storage-utils');

  before(async () => {
    host = await startEphemeralCluster('su-host');
    kube = host.connection.client;
    await installKubeSphereV3(kube);
    await kube.delete(ClusterResource, 'member1');
    await kube.create(SecretResource, {
      metadata: {
        name: releaseSecretName('snapshot-controller', 1),
        namespace: 'kube-system',
        labels: { owner: 'helm', name: 'snapshot-controller', status: 'deployed', version: '1' },
      },
      type: 'helm.sh/release.v1',
      data: {
        release: encodeRelease({
          name: 'snapshot-controller',
          namespace: 'kube-system',
          version: 1,
          info: { status: 'deployed' },
          chart: { metadata: { name: 'snapshot-controller', version: '0.2.0', appVersion: '4.0.0' } },
          manifest:
            'apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: snapshot-controller\n  namespace: kube-system\n',
        }),
      },
    });
    await playCoreUpgrade(kube, [['storage-utils', '1.0.0']]);
    store = (await encryptedTempStore('storage-utils-job-')).store;
  });
  after(() => host.remove());

  it('checks its options', () => {
    assert.throws(() => storageUtilsJobFactory.create({ rerun: 'nope' }, REF), /rerun must be true or false/);
    assert.throws(() => storageUtilsJobFactory.create({}, undefined), /extensionRef.version is required/);
  });

  it('pre-upgrade backs up the v3 snapshot controller once', async () => {
    assert.deepEqual(await run('pre-upgrade'), ['succeeded']);
    const sts = await scoped().load<{ kind: string; metadata: { name: string }; spec: { replicas: number } }>(
      'old-snapshot-controller',
    );
    assert.equal(sts.kind, 'StatefulSet');
    assert.equal(sts.metadata.name, 'snapshot-controller');
    await kube.patch(StatefulSetResource, 'snapshot-controller', 'kube-system', { spec: { replicas: 3 } });
    await run('pre-upgrade');
    assert.equal(
      (await scoped().load<{ spec: { replicas: number } }>('old-snapshot-controller')).spec.replicas,
      1,
      'the first copy stays',
    );
  });

  it('post-upgrade labels CRDs, uninstalls the release, removes the webhook and places the InstallPlan everywhere', async () => {
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    for (const name of STORAGE_UTILS_CRDS) {
      const crd = await kube.get(CustomResourceDefinitionResource, name);
      assert.equal(crd.metadata.labels?.['kubesphere.io/resource-served'], 'true', name);
    }
    assert.equal(await kube.tryGet(StatefulSetResource, 'snapshot-controller', 'kube-system'), undefined);
    assert.deepEqual(
      await kube.listAll(SecretResource, { namespace: 'kube-system', labelSelector: 'owner=helm' }),
      [],
    );
    assert.equal(await kube.tryGet(ValidatingWebhookConfigurationResource, WEBHOOK), undefined);
    assert.equal(
      (await scoped().load<{ metadata: { name: string } }>('old-storageclass-accessor-webhook')).metadata
        .name,
      WEBHOOK,
    );
    const plan = await kube.get(InstallPlanResource, 'storage-utils');
    assert.deepEqual(plan.spec, {
      extension: { name: 'storage-utils', version: '1.0.0' },
      enabled: true,
      upgradeStrategy: 'Manual',
      clusterScheduling: { placement: { clusters: ['host'] } },
    });
    assert.ok(await scoped().exists('storage-utils-done'));
    const rv = plan.metadata.resourceVersion;
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    assert.deepEqual(await run('post-upgrade', { rerun: true }), ['succeeded'], 'everything is idempotent');
    assert.equal((await kube.get(InstallPlanResource, 'storage-utils')).metadata.resourceVersion, rv);
  });

  it('rollback brings back the webhook and the StatefulSet and removes the pending InstallPlan', async () => {
    assert.deepEqual(await run('rollback'), ['succeeded']);
    assert.ok(await kube.tryGet(ValidatingWebhookConfigurationResource, WEBHOOK));
    assert.equal(
      (await kube.get(StatefulSetResource, 'snapshot-controller', 'kube-system')).spec?.replicas,
      1,
    );
    assert.equal(await kube.tryGet(InstallPlanResource, 'storage-utils'), undefined);
  });
});
