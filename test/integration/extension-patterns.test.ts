// The pieces extension jobs share, on real API servers: chart archives and their CRDs, chart sync
// to member clusters through their Cluster kubeconfigs, helm uninstall from a release record, and
// the done-marker / backup-once / placement patterns.
import assert from 'node:assert/strict';
import { readFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  DeploymentResource,
  NamespaceResource,
  SecretResource,
} from '../../src/api/core.js';
import { ClusterConfigurationResource, ClusterResource } from '../../src/api/v3/index.js';
import type { UpgradeConfig } from '../../src/config/types.js';
import { applyExtensionCrds, chartCrds, syncExtensionChart } from '../../src/extensions/charts.js';
import { readChartFromConfigMap, writeChartConfigMap } from '../../src/extensions/index.js';
import { encodeRelease, releaseSecretName } from '../../src/helm/release.js';
import { uninstallRelease } from '../../src/helm/uninstall.js';
import { createJobContext, createMemoryLogger, type JobContext } from '../../src/jobs/index.js';
import { DoneMarker, backupOnce, placementFromClusters, setIfAbsent } from '../../src/jobs/patterns.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import { defineResource } from '../../src/kube/types.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { readTar } from '../../src/util/tar.js';
import { crdYaml, makeChart } from '../helpers/charts.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';

describe('extension job building blocks', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let store: ResourceStore;

  const context = (options: Record<string, unknown> = {}): JobContext =>
    createJobContext({
      job: 'demo-ext',
      phase: 'post-upgrade',
      cluster: { name: 'host' },
      kube: host.connection.client,
      store,
      config: { enabled: true, priority: 1, dynamicOptions: options } satisfies UpgradeConfig['jobs'][string],
      logger: createMemoryLogger(),
    });

  before(async () => {
    [host, member] = await Promise.all([startEphemeralCluster('xhost'), startEphemeralCluster('xmember')]);
    store = await createResourceStore({ local: { path: await mkdtemp(path.join(tmpdir(), 'patterns-')) } });
    for (const c of [host, member]) {
      await c.connection.client.create(NamespaceResource, { metadata: { name: 'kubesphere-system' } });
    }
    const { applyYamlFiles } = await import('../helpers/fixtures.js');
    const { repoRoot } = await import('../helpers/env.js');
    for (const c of [host, member]) {
      await applyYamlFiles(c.connection.client, [
        `${repoRoot}/test/fixtures/kubesphere-v3/crds/installer.kubesphere.io.yaml`,
        `${repoRoot}/test/fixtures/kubesphere-v3/crds/cluster.kubesphere.io.yaml`,
      ]);
    }
    await host.connection.client.create(ClusterConfigurationResource, {
      metadata: { name: 'ks-installer', namespace: 'kubesphere-system' },
      spec: { events: { enabled: false }, monitoring: { whizard: { enabled: true } } },
    });
    await member.connection.client.create(ClusterConfigurationResource, {
      metadata: { name: 'ks-installer', namespace: 'kubesphere-system' },
      spec: { events: { enabled: true }, monitoring: { whizard: { enabled: false } } },
    });
    // The host knows the member through a Cluster object holding the member's kubeconfig.
    const memberKubeconfig = await readFile(member.kubeconfig);
    await host.connection.client.create(ClusterResource, {
      metadata: { name: 'host', labels: { 'cluster-role.kubesphere.io/host': '' } },
      spec: { connection: { type: 'direct' } },
    });
    await host.connection.client.create(ClusterResource, {
      metadata: { name: 'member1' },
      spec: { connection: { type: 'direct', kubeconfig: memberKubeconfig.toString('base64') } },
    });
  });
  after(async () => {
    await closeClusterClients();
    await Promise.all([host.remove(), member.remove()]);
  });

  it('reads chart archives (long names included) and finds the CRDs of the chart and its sub-charts', async () => {
    const long = `templates/${'x'.repeat(120)}.yaml`;
    const chart = await makeChart('ext', {
      'crds/widgets.yaml': crdYaml('ext.example.io', 'widgets', 'Widget'),
      'charts/sub/Chart.yaml': 'apiVersion: v2\nname: sub\nversion: 0.1.0\n',
      'charts/sub/crds/gadgets.yaml': crdYaml('ext.example.io', 'gadgets', 'Gadget'),
      'templates/deployment.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: not-a-crd }\n',
      [long]: 'kind: ConfigMap\n',
    });
    const paths = readTar(chart).map((e) => e.path);
    assert.ok(paths.includes(`ext/${long}`), 'a path longer than 100 bytes survives');
    assert.deepEqual(
      chartCrds(chart)
        .map((c) => c.metadata.name)
        .sort(),
      ['gadgets.ext.example.io', 'widgets.ext.example.io'],
    );
    // Applied from the chart ConfigMap (the museum is not reachable from here).
    await writeChartConfigMap(host.connection.client, 'ext', '1.0.0', chart);
    const applied = await applyExtensionCrds(
      host.connection.client,
      { name: 'ext', version: '1.0.0' },
      { force: true },
    );
    assert.deepEqual(applied.sort(), ['gadgets.ext.example.io', 'widgets.ext.example.io']);
    assert.ok(
      await host.connection.client.tryGet(CustomResourceDefinitionResource, 'gadgets.ext.example.io'),
    );
  });

  it('copies a chart to every cluster, members through their Cluster kubeconfig', async () => {
    const clusters = await host.connection.client.listAll(ClusterResource);
    const result = await syncExtensionChart(
      host.connection.client,
      { name: 'ext', version: '1.0.0' },
      clusters,
    );
    assert.deepEqual(result, { host: 'unchanged', member1: 'created' });
    const onMember = await readChartFromConfigMap(member.connection.client, 'ext', '1.0.0');
    assert.deepEqual(onMember, await readChartFromConfigMap(host.connection.client, 'ext', '1.0.0'));
  });

  it('uninstalls a helm release from its record: objects (kind found by discovery) and records go, kept ones stay', async () => {
    const kube = host.connection.client;
    const Widget = defineResource({
      group: 'ext.example.io',
      version: 'v1',
      kind: 'Widget',
      plural: 'widgets',
      namespaced: true,
    });
    await kube.create(ConfigMapResource, {
      metadata: { name: 'rel-config', namespace: 'kubesphere-system' },
    });
    await kube.create(ConfigMapResource, { metadata: { name: 'rel-keep', namespace: 'kubesphere-system' } });
    await kube.create(Widget, { metadata: { name: 'rel-widget', namespace: 'kubesphere-system' } });
    const manifest = [
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rel-config\n',
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rel-keep\n  annotations:\n    helm.sh/resource-policy: keep\n',
      'apiVersion: ext.example.io/v1\nkind: Widget\nmetadata:\n  name: rel-widget\n',
      'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: already-gone\n',
    ].join('---\n');
    for (const version of [1, 2]) {
      await kube.create(SecretResource, {
        metadata: {
          name: releaseSecretName('rel', version),
          namespace: 'kubesphere-system',
          labels: {
            owner: 'helm',
            name: 'rel',
            status: version === 2 ? 'deployed' : 'superseded',
            version: String(version),
          },
        },
        type: 'helm.sh/release.v1',
        data: {
          release: encodeRelease({
            name: 'rel',
            namespace: 'kubesphere-system',
            version,
            info: { status: 'deployed' },
            chart: { metadata: { name: 'rel', version: '1.0.0' } },
            manifest,
          }),
        },
      });
    }
    const result = await uninstallRelease(kube, 'kubesphere-system', 'rel', {
      wait: true,
      timeoutMs: 20_000,
    });
    assert.deepEqual(result.deleted.sort(), [
      'ConfigMap kubesphere-system/rel-config',
      'Widget kubesphere-system/rel-widget',
    ]);
    assert.deepEqual(result.kept, ['ConfigMap kubesphere-system/rel-keep']);
    assert.equal(await kube.tryGet(ConfigMapResource, 'rel-config', 'kubesphere-system'), undefined);
    assert.ok(await kube.tryGet(ConfigMapResource, 'rel-keep', 'kubesphere-system'));
    assert.equal(await kube.tryGet(DeploymentResource, 'already-gone', 'kubesphere-system'), undefined);
    assert.deepEqual(
      await kube.listAll(SecretResource, {
        namespace: 'kubesphere-system',
        labelSelector: 'owner=helm,name=rel',
      }),
      [],
    );
    assert.equal(
      (await uninstallRelease(kube, 'kubesphere-system', 'rel')).found,
      false,
      'an absent release is not an error',
    );
  });

  it('done marker: absent, marked, honoured, and reset by rerun', async () => {
    const marker = new DoneMarker(context());
    assert.equal(await marker.check(), undefined);
    await marker.mark();
    assert.match((await marker.check()) ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \+0000 UTC$/);
    assert.equal(await new DoneMarker(context({ rerun: 'true' })).check(), undefined, 'rerun clears it');
    assert.equal(await marker.check(), undefined);
    assert.equal(
      await new DoneMarker(context({ rerun: 'yes' })).check(),
      undefined,
      'nothing to clear; not done',
    );
  });

  it('backup-once keeps the first copy and stores nothing for an absent object', async () => {
    const ctx = context();
    assert.deepEqual(await backupOnce(ctx, 'b', () => Promise.resolve({ v: 1 })), { v: 1 });
    assert.deepEqual(await backupOnce(ctx, 'b', () => Promise.resolve({ v: 2 })), { v: 1 });
    const absent = await backupOnce<{ v: number }>(ctx, 'none', () => Promise.resolve(undefined));
    assert.equal(absent, undefined);
    assert.equal(await ctx.store.exists('none'), false);
  });

  it('places an extension on the clusters whose own cc enables it, with per-cluster values', async () => {
    const ctx = context();
    const scheduling = await placementFromClusters(
      ctx,
      { name: 'whizard-events', version: '1.2.0' },
      (cc) => cc.spec?.events !== undefined && (cc.spec.events as { enabled?: boolean }).enabled === true,
      (cc, name) => ({
        cluster: name,
        whizard: (cc.spec?.monitoring as { whizard?: unknown } | undefined)?.whizard,
      }),
    );
    assert.deepEqual(scheduling, {
      placement: { clusters: ['member1'] },
      overrides: { member1: 'cluster: member1\nwhizard:\n  enabled: false\n' },
    });
    const configured = { name: 'x', version: '1', clusterScheduling: { placement: { clusters: ['host'] } } };
    assert.deepEqual(
      await placementFromClusters(ctx, configured, () => true),
      configured.clusterScheduling,
      'configured placement wins',
    );
  });

  it('fills extension values only where the user set none', () => {
    const values: Record<string, unknown> = { whizard: { enabled: true } };
    assert.equal(setIfAbsent(values, 'whizard.enabled', false), false);
    assert.equal(setIfAbsent(values, 'whizard.service.size', '20Gi'), true);
    assert.deepEqual(values, { whizard: { enabled: true, service: { size: '20Gi' } } });
  });
});
