// The KubeSphere v3 fixture installs as a production cluster looks when the upgrade starts, and the
// stand-in v4 controller does its part. Every job test builds on this.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CustomResourceDefinitionResource, DeploymentResource } from '../../src/api/core.js';
import { ClusterResource, WorkspaceTemplateResource } from '../../src/api/v3/index.js';
import { InstallPlanResource, RepositoryResource } from '../../src/api/v4/index.js';
import { checkKsVersion, detectCoreUpgrade } from '../../src/upgrade/checks.js';
import { isHostCluster } from '../../src/kubesphere/index.js';
import { startStandInController } from '../fixtures/kubesphere-v4/controller.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';

describe('KubeSphere v3 fixture', () => {
  let cluster: EphemeralCluster;
  before(async () => {
    cluster = await startEphemeralCluster('fixture');
    await installKubeSphereV3(cluster.connection.client);
  });
  after(() => cluster.remove());

  it('has the v4 CRDs over v3 objects: old versions deprecated, objects stored in the old version', async () => {
    const kube = cluster.connection.client;
    const users = await kube.get(CustomResourceDefinitionResource, 'users.iam.kubesphere.io');
    assert.deepEqual(
      users.spec.versions.map((v) => [v.name, v.deprecated ?? false, v.storage]),
      [
        ['v1alpha2', true, false],
        ['v1beta1', false, true],
      ],
    );
    assert.deepEqual(users.status?.storedVersions, ['v1alpha2', 'v1beta1']);
    const wst = await kube.get(CustomResourceDefinitionResource, 'workspacetemplates.tenant.kubesphere.io');
    assert.deepEqual(wst.status?.storedVersions, ['v1alpha2', 'v1beta1']);
    assert.equal((await kube.get(WorkspaceTemplateResource, 'demo-ws')).spec?.placement?.clusters?.length, 2);
    assert.deepEqual(
      (await kube.listAll(ClusterResource)).map((c) => c.metadata.name),
      ['host', 'member1'],
    );
    assert.equal(await isHostCluster(kube), true);
    assert.deepEqual(await checkKsVersion(kube), { ok: true, reason: 'deployed ks-core is v3.4.1' });
  });

  it('plays the v4 core upgrade; the stand-in controller installs InstallPlans and syncs the museum', async () => {
    const kube = cluster.connection.client;
    const controller = startStandInController(kube, { intervalMs: 100 });
    try {
      await playCoreUpgrade(kube, [['devops', '1.1.2']]);
      const deadline = Date.now() + 20_000;
      while (!(await detectCoreUpgrade(kube)).ok) {
        assert.ok(Date.now() < deadline, (await detectCoreUpgrade(kube)).reason);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(
        (await kube.get(DeploymentResource, 'ks-apiserver', 'kubesphere-system')).status?.readyReplicas,
        1,
      );
      await kube.create(InstallPlanResource, {
        metadata: { name: 'devops' },
        spec: { extension: { name: 'devops', version: '1.1.2' }, enabled: true },
      });
      while ((await kube.get(InstallPlanResource, 'devops')).status?.state !== 'Installed') {
        assert.ok(Date.now() < deadline);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok((await kube.get(RepositoryResource, 'extensions-museum')).status?.lastSyncTime);
      assert.deepEqual(controller.installed, ['devops']);
    } finally {
      await controller.stop();
    }
  });
});
