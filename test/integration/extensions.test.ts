// The InstallPlan helper and chart ConfigMaps on a real API server of the test's own.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigMapResource, NamespaceResource } from '../../src/api/core.js';
import { ExtensionVersionResource, InstallPlanResource } from '../../src/api/v4/index.js';
import {
  ExtensionVersionNotFoundError,
  InstallPlanFailedError,
  InstallPlanTimeoutError,
  ensureInstallPlan,
  readChartFromConfigMap,
  waitForInstallPlan,
  writeChartConfigMap,
} from '../../src/extensions/index.js';
import type { KsUpgradeError } from '../../src/errors.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { applyYamlFiles } from '../helpers/fixtures.js';

async function setClusterRole(kube: ResourceClient, role: string): Promise<void> {
  await kube.apply(ConfigMapResource, {
    metadata: { name: 'kubesphere-config', namespace: 'kubesphere-system' },
    data: { 'kubesphere.yaml': `multicluster:\n  clusterRole: ${role}\n` },
  });
}

describe('extensions helper', () => {
  let cluster: EphemeralCluster;
  let kube: ResourceClient;
  const ref = {
    name: 'devops',
    version: '1.1.2',
    config: 'agent:\n  jenkins:\n    kubeconfigEnabled: true\n',
    clusterScheduling: { placement: { clusters: ['host'] } },
  };

  before(async () => {
    cluster = await startEphemeralCluster('ext');
    kube = cluster.connection.client;
    await applyYamlFiles(kube, [`${repoRoot}/test/fixtures/kubesphere-v4/crds/kubesphere.io.yaml`]);
    await kube.create(NamespaceResource, { metadata: { name: 'kubesphere-system' } });
    await setClusterRole(kube, 'host');
  });
  after(() => cluster.remove());

  it('refuses to create an InstallPlan before its ExtensionVersion exists, and creates nothing', async () => {
    await assert.rejects(ensureInstallPlan(kube, ref), ExtensionVersionNotFoundError);
    assert.equal(await kube.tryGet(InstallPlanResource, 'devops'), undefined);
  });

  it('creates the InstallPlan exactly as the original does, then leaves it unchanged on re-run', async () => {
    await kube.create(ExtensionVersionResource, { metadata: { name: 'devops-1.1.2' }, spec: {} });
    const first = await ensureInstallPlan(kube, ref);
    assert.equal(first.action, 'created');
    const plan = await kube.get(InstallPlanResource, 'devops');
    assert.deepEqual(plan.spec, {
      extension: { name: 'devops', version: '1.1.2' },
      enabled: true,
      upgradeStrategy: 'Manual',
      config: ref.config,
      clusterScheduling: { placement: { clusters: ['host'] } },
    });
    const again = await ensureInstallPlan(kube, ref);
    assert.equal(again.action, 'unchanged');
    assert.equal(
      (await kube.get(InstallPlanResource, 'devops')).metadata.resourceVersion,
      plan.metadata.resourceVersion,
    );
  });

  it('updates its own InstallPlan when the configured spec changes', async () => {
    const changed = { ...ref, config: 'agent:\n  jenkins:\n    kubeconfigEnabled: false\n' };
    assert.equal((await ensureInstallPlan(kube, changed)).action, 'updated');
    assert.equal((await kube.get(InstallPlanResource, 'devops')).spec.config, changed.config);
    assert.equal((await ensureInstallPlan(kube, changed)).action, 'unchanged');
  });

  it("never overwrites an operator's edit or a plan it did not create", async () => {
    await kube.patch(InstallPlanResource, 'devops', undefined, { spec: { config: 'edited: by-operator\n' } });
    assert.equal((await ensureInstallPlan(kube, ref)).action, 'kept-modified');
    assert.equal((await kube.get(InstallPlanResource, 'devops')).spec.config, 'edited: by-operator\n');

    await kube.create(ExtensionVersionResource, { metadata: { name: 'gateway-1.0.2' }, spec: {} });
    await kube.create(InstallPlanResource, {
      metadata: { name: 'gateway' },
      spec: { extension: { name: 'gateway', version: '1.0.2' }, enabled: false },
    });
    assert.equal(
      (await ensureInstallPlan(kube, { name: 'gateway', version: '1.0.2' })).action,
      'kept-foreign',
    );
    assert.equal((await kube.get(InstallPlanResource, 'gateway')).spec.enabled, false);
  });

  it('does nothing on a member cluster', async () => {
    await setClusterRole(kube, 'member');
    try {
      await kube.create(ExtensionVersionResource, { metadata: { name: 'network-1.1.0' }, spec: {} });
      assert.equal(
        (await ensureInstallPlan(kube, { name: 'network', version: '1.1.0' })).action,
        'skipped-member',
      );
      assert.equal(await kube.tryGet(InstallPlanResource, 'network'), undefined);
    } finally {
      await setClusterRole(kube, 'host');
    }
  });

  it('waits for Installed, fails fast on InstallFailed, and times out with a clear error', async () => {
    const setState = (name: string, state: string) =>
      kube.patch(InstallPlanResource, name, undefined, { status: { state } });
    const waiting = waitForInstallPlan(kube, 'devops', { intervalMs: 50, timeoutMs: 20_000 });
    setTimeout(() => void setState('devops', 'Installed'), 300);
    assert.equal((await waiting).status?.state, 'Installed');

    await setState('gateway', 'InstallFailed');
    await assert.rejects(
      waitForInstallPlan(kube, 'gateway', { intervalMs: 50, timeoutMs: 20_000 }),
      InstallPlanFailedError,
    );
    await assert.rejects(
      waitForInstallPlan(kube, 'absent', { intervalMs: 50, timeoutMs: 200 }),
      InstallPlanTimeoutError,
    );
  });

  it('writes and reads the chart ConfigMap members install extension charts from', async () => {
    const chart = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 255]);
    await assert.rejects(readChartFromConfigMap(kube, 'gateway', '1.0.2'), (err: KsUpgradeError) => {
      assert.match(err.message, /failed to get configmap kubesphere-system\/extension-gateway-1\.0\.2-chart/);
      assert.match(err.hint ?? '', /upgrade the host cluster first/);
      return true;
    });
    assert.equal(await writeChartConfigMap(kube, 'gateway', '1.0.2', chart), 'created');
    assert.equal(await writeChartConfigMap(kube, 'gateway', '1.0.2', chart), 'unchanged');
    assert.deepEqual(await readChartFromConfigMap(kube, 'gateway', '1.0.2'), chart);
  });
});
