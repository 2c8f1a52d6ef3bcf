// whizard-logging (reference §4.10) on a host and a member API server: the log sidecar injector
// removed (and recorded) where the cc enables it, the InstallPlan placed on the clusters with
// logging, with the sidecar injector in the overrides of the clusters that had it; re-runs.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigMapResource, SecretResource } from '../../src/api/core.js';
import { ClusterConfigurationResource, ClusterResource } from '../../src/api/v3/index.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { JobConfig } from '../../src/config/types.js';
import { encodeRelease, releaseSecretName } from '../../src/helm/release.js';
import type { Phase } from '../../src/jobs/index.js';
import { whizardLoggingJobFactory } from '../../src/jobs/whizard-logging/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { runSingleJob } from '../helpers/jobs.js';

const JOB = 'whizard-logging';
const NS = 'kubesphere-logging-system';
const CONFIG = 'vector-logging:\n  sinks:\n    opensearch:\n      enabled: false\n';
const REF = { name: 'whizard-logging', version: '1.2.2', config: CONFIG };

const jobConfig = (options: Record<string, unknown> = {}, ref: object = REF): JobConfig => ({
  enabled: true,
  priority: 100,
  extensionRef: structuredClone(ref) as JobConfig['extensionRef'],
  dynamicOptions: { ...options },
});

async function runJob(
  kube: ResourceClient,
  cluster: string,
  store: ResourceStore,
  phase: Phase,
  config: JobConfig = jobConfig(),
): Promise<string[]> {
  return (await runSingleJob(phase, { factory: whizardLoggingJobFactory, config, kube, store, cluster }))
    .outcomes;
}

async function putSidecarRelease(kube: ResourceClient): Promise<void> {
  await kube.create(ConfigMapResource, {
    metadata: { name: 'logsidecar-injector-configmap', namespace: NS },
  });
  await kube.create(SecretResource, {
    metadata: {
      name: releaseSecretName('logsidecar-injector', 1),
      namespace: NS,
      labels: { owner: 'helm', name: 'logsidecar-injector', status: 'deployed', version: '1' },
    },
    type: 'helm.sh/release.v1',
    data: {
      release: encodeRelease({
        name: 'logsidecar-injector',
        namespace: NS,
        version: 1,
        info: { status: 'deployed' },
        chart: { metadata: { name: 'logsidecar-injector', version: '0.1.0' } },
        manifest: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: logsidecar-injector-configmap\n',
      }),
    },
  });
}

const patchCc = (kube: ResourceClient, spec: Record<string, unknown>) =>
  kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', { spec });
const sidecarReleases = async (kube: ResourceClient) =>
  (
    await kube.listAll(SecretResource, {
      namespace: NS,
      labelSelector: 'owner=helm,name=logsidecar-injector',
    })
  ).length;

describe('whizard-logging job', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let hk: ResourceClient;
  let mk: ResourceClient;
  let store: ResourceStore;

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('logging-host'),
      startEphemeralCluster('logging-member'),
    ]);
    hk = host.connection.client;
    mk = member.connection.client;
    const members = { member1: member.kubeconfig };
    await Promise.all([installKubeSphereV3(hk, { members }), installKubeSphereV3(mk, { members })]);
    await mk.mutate(ConfigMapResource, 'kubesphere-config', 'kubesphere-system', (c) => {
      c.data = { 'kubesphere.yaml': 'multicluster:\n  clusterRole: member\n' };
    });
    for (const c of await mk.listAll(ClusterResource))
      await mk.delete(ClusterResource, c.metadata.name ?? '');
    // Logging on both; the sidecar injector on the member only (the host has a stale release).
    await patchCc(hk, { logging: { enabled: true, logsidecar: { enabled: false } } });
    await patchCc(mk, { logging: { enabled: true, logsidecar: { enabled: true } } });
    await Promise.all([putSidecarRelease(hk), putSidecarRelease(mk)]);
    await playCoreUpgrade(hk, [[REF.name, REF.version]]);
    store = await createResourceStore({
      local: { path: await mkdtemp(path.join(tmpdir(), 'logging-store-')) },
    });
  });
  after(async () => {
    await closeClusterClients();
    await Promise.all([host.remove(), member.remove()]);
  });

  it('refuses a bad rerun option and a missing extensionRef', () => {
    assert.throws(
      () => whizardLoggingJobFactory.create({ rerun: 'yes' }, REF),
      /dynamicOptions\.rerun must be true or false/,
    );
    assert.throws(
      () => whizardLoggingJobFactory.create({}, undefined),
      /jobs\.whizard-logging\.extensionRef/,
    );
  });

  it('pre-upgrade changes and stores nothing', async () => {
    assert.deepEqual(await runJob(hk, 'host', store, 'pre-upgrade'), ['succeeded']);
    assert.deepEqual(await store.scope('host', JOB).list(), []);
    assert.equal(await sidecarReleases(hk), 1);
  });

  it('post-upgrade (host, no sidecar here): release kept, InstallPlan on both clusters, the sidecar on the member', async () => {
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade'), ['succeeded']);
    assert.equal(await sidecarReleases(hk), 1);
    assert.deepEqual((await hk.get(InstallPlanResource, REF.name)).spec, {
      extension: { name: REF.name, version: REF.version },
      enabled: true,
      upgradeStrategy: 'Manual',
      config: CONFIG,
      clusterScheduling: {
        placement: { clusters: ['host', 'member1'] },
        overrides: { member1: 'logsidecar-injector:\n  enabled: true\n' },
      },
    });
    assert.deepEqual(await store.scope('host', JOB).list(), [`${JOB}-done`]);
  });

  it('post-upgrade (member, sidecar on): recorded, uninstalled, no InstallPlan', async () => {
    assert.deepEqual(await runJob(mk, 'member1', store, 'post-upgrade'), ['succeeded']);
    const scoped = store.scope('member1', JOB);
    assert.equal(Buffer.from(await scoped.loadRaw('logging_logsidecar_enabled')).toString(), 'true');
    assert.equal(await sidecarReleases(mk), 0);
    assert.equal(await mk.tryGet(ConfigMapResource, 'logsidecar-injector-configmap', NS), undefined);
    assert.deepEqual(await mk.listIfServed(InstallPlanResource), []);
  });

  it('re-runs are no-ops once done; rerun with logging off everywhere gives an empty placement', async () => {
    const plan = await hk.get(InstallPlanResource, REF.name);
    assert.deepEqual(await runJob(hk, 'host', store, 'pre-upgrade'), ['succeeded']);
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade'), ['succeeded']);
    assert.equal(
      (await hk.get(InstallPlanResource, REF.name)).metadata.resourceVersion,
      plan.metadata.resourceVersion,
    );
    await patchCc(hk, { logging: { enabled: false } });
    await patchCc(mk, { logging: { enabled: false } });
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade', jobConfig({ rerun: true })), [
      'succeeded',
    ]);
    assert.deepEqual((await hk.get(InstallPlanResource, REF.name)).spec.clusterScheduling, {
      placement: { clusters: [] },
    });
    // The member again: nothing left to uninstall, not an error.
    assert.deepEqual(await runJob(mk, 'member1', store, 'post-upgrade', jobConfig({ rerun: 'true' })), [
      'succeeded',
    ]);
  });
});
