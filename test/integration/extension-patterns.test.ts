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
import { UninstallTimeoutError, uninstallRelease } from '../../src/helm/uninstall.js';
import type { JobContextParams } from '../../src/jobs/context.js';
import { createJobContext, createMemoryLogger, type JobContext } from '../../src/jobs/index.js';
import {
  DoneMarker,
  GO_STORE_IMPORT_COMMAND,
  MissingBackupError,
  backupOnce,
  backupStatus,
  loadBackup,
  placementFromClusters,
  requireBackups,
  setIfAbsent,
} from '../../src/jobs/patterns.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import { defineResource } from '../../src/kube/types.js';
import {
  BackupKeyNotFound,
  BackupRecordedAbsent,
  createResourceStore,
  type ResourceStore,
} from '../../src/store/index.js';
import { readTar } from '../../src/util/tar.js';
import { WaitTimeoutError } from '../../src/util/wait.js';
import { crdYaml, makeChart } from '../helpers/charts.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';

describe('extension job building blocks', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let store: ResourceStore;

  const contextParams = (options: Record<string, unknown> = {}): JobContextParams => ({
    job: 'demo-ext',
    phase: 'post-upgrade',
    cluster: { name: 'host' },
    kube: host.connection.client,
    store,
    config: { enabled: true, priority: 1, dynamicOptions: options } satisfies UpgradeConfig['jobs'][string],
    logger: createMemoryLogger(),
  });
  const context = (options: Record<string, unknown> = {}): JobContext =>
    createJobContext(contextParams(options));

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

  it('an uninstall that waits for an object which stays says so, and its timeout names what, the bound and what is left', async () => {
    const kube = host.connection.client;
    // A finalizer nobody removes: what a PVC in use, or an object whose controller is gone, does.
    await kube.create(ConfigMapResource, {
      metadata: { name: 'held', namespace: 'kubesphere-system', finalizers: ['example.com/hold'] },
    });
    await kube.create(SecretResource, {
      metadata: {
        name: releaseSecretName('holder', 1),
        namespace: 'kubesphere-system',
        labels: { owner: 'helm', name: 'holder', status: 'deployed', version: '1' },
      },
      type: 'helm.sh/release.v1',
      data: {
        release: encodeRelease({
          name: 'holder',
          namespace: 'kubesphere-system',
          version: 1,
          info: { status: 'deployed' },
          chart: { metadata: { name: 'holder', version: '1.0.0' } },
          manifest: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n',
        }),
      },
    });
    const ctx = context();
    const logger = ctx.logger as ReturnType<typeof createMemoryLogger>;
    try {
      await assert.rejects(
        uninstallRelease(kube, 'kubesphere-system', 'holder', { wait: true, timeoutMs: 1500, reporter: ctx }),
        (err: Error & { hint?: string }) => {
          assert.ok(err instanceof UninstallTimeoutError && err instanceof WaitTimeoutError);
          assert.equal(
            err.message,
            'timed out after 1.5s waiting for the 1 deleted objects of helm release kubesphere-system/holder to be gone; ' +
              'last seen: 1 still there: ConfigMap kubesphere-system/held',
          );
          assert.match(err.hint ?? '', /finalizers/);
          return true;
        },
      );
      assert.ok(
        logger.entries.some(
          (e) =>
            e.message ===
            'waiting up to 1.5s for the 1 deleted objects of helm release kubesphere-system/holder to be gone: ' +
              '1 still there: ConfigMap kubesphere-system/held',
        ),
        logger.entries.map((e) => e.message).join('\n'),
      );
    } finally {
      await kube.patch(ConfigMapResource, 'held', 'kubesphere-system', { metadata: { finalizers: null } });
    }
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

  it('backup-once keeps the first copy and records an absent object; loadBackup tells taken, absent and never taken apart', async () => {
    const logger = createMemoryLogger();
    const ctx = createJobContext({ ...contextParams(), logger });
    assert.deepEqual(await backupOnce(ctx, 'b', () => Promise.resolve({ v: 1 })), { v: 1 });
    assert.deepEqual(await backupOnce(ctx, 'b', () => Promise.resolve({ v: 2 })), { v: 1 });
    const absent = await backupOnce<{ v: number }>(ctx, 'none', () => Promise.resolve(undefined), {
      absent: 'Widget kubesphere-system/w not found',
    });
    assert.equal(absent, undefined);
    assert.equal(await backupStatus(ctx, 'none'), 'absent');
    // The record is the pre-change state: an object that appears later does not replace it.
    assert.equal(await backupOnce(ctx, 'none', () => Promise.resolve({ v: 3 })), undefined);
    // A precondition that failed is not a state to keep: nothing recorded, the retry reads again.
    const pv = await backupOnce<{ v: number }>(ctx, 'pv', () => Promise.resolve(undefined), {
      absent: false,
    });
    assert.equal(pv, undefined);
    assert.equal(await backupStatus(ctx, 'pv'), 'missing');

    // Plain loads see "not stored" (BackupKeyNotFound), with what the record says.
    await assert.rejects(ctx.store.load('none'), (err: Error) => {
      assert.ok(err instanceof BackupRecordedAbsent && err instanceof BackupKeyNotFound);
      assert.equal(err.record.reason, 'Widget kubesphere-system/w not found');
      assert.equal(err.record.recordedBy, 'demo-ext post-upgrade');
      return true;
    });

    assert.deepEqual(await loadBackup(ctx, 'b'), { v: 1 });
    assert.equal(await loadBackup(ctx, 'none'), undefined);
    assert.ok(
      logger.entries.some(
        (e) =>
          e.message ===
          "nothing to restore from 'none': Widget kubesphere-system/w not found (recorded by demo-ext post-upgrade)",
      ),
    );
    await assert.rejects(loadBackup(ctx, 'never-taken'), (err: Error) => {
      assert.ok(err instanceof MissingBackupError);
      assert.match(
        err.message,
        /^backup 'never-taken' of job demo-ext is missing in .*demo-ext.*: demo-ext post-upgrade needs it/,
      );
      assert.match(
        err.hint ?? '',
        /the demo-ext pre-upgrade takes this backup: run it again on cluster host/,
      );
      assert.ok((err.hint ?? '').includes(GO_STORE_IMPORT_COMMAND), err.hint);
      return true;
    });
    // Rollback runs after failures by design: a backup never taken protected a change never made.
    const rbLogger = createMemoryLogger();
    const rb = createJobContext({ ...contextParams(), phase: 'rollback', logger: rbLogger });
    assert.equal(await loadBackup(rb, 'never-taken'), undefined);
    assert.match(
      rbLogger.entries.map((e) => e.message).join('\n'),
      /nothing to restore from 'never-taken': no backup was taken/,
    );
  });

  it('on a store imported from the Go tool, a missing backup is nothing to restore, with a warning', async () => {
    const logger = createMemoryLogger();
    const ctx = createJobContext({ ...contextParams(), logger });
    await assert.rejects(loadBackup(ctx, 'go-never-wrote'), MissingBackupError);
    await assert.rejects(requireBackups(ctx, ['go-never-wrote']), MissingBackupError);
    await ctx.store
      .shared()
      .save('go-store-import', { source: '/var/ks-upgrade', importedAt: '2026-12-03T00:00:00.000Z' });
    try {
      assert.equal(await loadBackup(ctx, 'go-never-wrote'), undefined);
      await requireBackups(ctx, ['go-never-wrote']);
      assert.match(
        logger.entries
          .filter((e) => e.level === 'warn')
          .map((e) => e.message)
          .join('\n'),
        /backup 'go-never-wrote' is not in this store, whose backups of cluster host were imported from the Go ks-upgrade's store \(\/var\/ks-upgrade, 2026-12-03T00:00:00.000Z\)/,
      );
    } finally {
      await ctx.store.shared().delete('go-store-import');
    }
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
