// whizard-events (reference §4.10) on a host and a member API server: kube-events backups, the
// ks-events release removed where the cc enables events, the CRDs deleted, the InstallPlan placed
// on the clusters with events, re-runs and rollback.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigMapResource, CustomResourceDefinitionResource, SecretResource } from '../../src/api/core.js';
import {
  ClusterConfigurationResource,
  ClusterResource,
  EventsExporterResource,
  EventsRuleResource,
  EventsRulerResource,
} from '../../src/api/v3/index.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { JobConfig } from '../../src/config/types.js';
import { encodeRelease, releaseSecretName } from '../../src/helm/release.js';
import type { Phase } from '../../src/jobs/index.js';
import { whizardEventsJobFactory } from '../../src/jobs/whizard-events/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { runSingleJob } from '../helpers/jobs.js';

const JOB = 'whizard-events';
const NS = 'kubesphere-logging-system';
const CONFIG = 'kube-events-exporter:\n  sinks:\n    opensearch:\n      enabled: false\n';
const REF = { name: 'whizard-events', version: '1.2.0', config: CONFIG };
const CRDS = ['exporters', 'rulers', 'rules'].map((p) => `${p}.events.kubesphere.io`);

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
  return (
    await runSingleJob(phase, { factory: whizardEventsJobFactory, config, kube, store, cluster: cluster })
  ).outcomes;
}

async function putRelease(kube: ResourceClient, name: string, manifest: string): Promise<void> {
  await kube.create(SecretResource, {
    metadata: {
      name: releaseSecretName(name, 1),
      namespace: NS,
      labels: { owner: 'helm', name, status: 'deployed', version: '1' },
    },
    type: 'helm.sh/release.v1',
    data: {
      release: encodeRelease({
        name,
        namespace: NS,
        version: 1,
        info: { status: 'deployed' },
        chart: { metadata: { name, version: '0.6.0' } },
        manifest,
      }),
    },
  });
}

const patchCc = (kube: ResourceClient, spec: Record<string, unknown>) =>
  kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', { spec });
const releases = async (kube: ResourceClient) =>
  (await kube.listAll(SecretResource, { namespace: NS, labelSelector: 'owner=helm,name=ks-events' })).length;

describe('whizard-events job', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let hk: ResourceClient;
  let mk: ResourceClient;
  let store: ResourceStore;

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('events-host'),
      startEphemeralCluster('events-member'),
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
    // Events on the member only; both clusters still carry a ks-events release.
    await patchCc(mk, { events: { enabled: true } });
    for (const kube of [hk, mk]) {
      await kube.create(ConfigMapResource, { metadata: { name: 'ks-events-operator', namespace: NS } });
      await putRelease(
        kube,
        'ks-events',
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ks-events-operator\n',
      );
    }
    await playCoreUpgrade(hk, [[REF.name, REF.version]]);
    store = await createResourceStore({
      local: { path: await mkdtemp(path.join(tmpdir(), 'events-store-')) },
    });
  });
  after(async () => {
    await closeClusterClients();
    await Promise.all([host.remove(), member.remove()]);
  });

  it('refuses a bad rerun option and a missing extensionRef', () => {
    assert.throws(
      () => whizardEventsJobFactory.create({ rerun: 1 }, REF),
      /dynamicOptions\.rerun must be true or false/,
    );
    assert.throws(() => whizardEventsJobFactory.create({}, undefined), /jobs\.whizard-events\.extensionRef/);
  });

  it('pre-upgrade backs up the kube-events objects (and their CRDs) under the original keys', async () => {
    assert.deepEqual(await runJob(hk, 'host', store, 'pre-upgrade'), ['succeeded']);
    const scoped = store.scope('host', JOB);
    assert.deepEqual(
      (await scoped.list()).sort(),
      [
        'events-Exporters',
        'events-Rulers',
        'events-Rules',
        ...CRDS.map((c) => `${JOB}-apiextensions.k8s.io.v1.customresourcedefinitions-.${c}`),
      ].sort(),
    );
    type List = {
      apiVersion: string;
      kind: string;
      items: { kind: string; metadata: { name: string; namespace: string } }[];
    };
    const rules = await scoped.load<List>('events-Rules');
    assert.equal(rules.kind, 'RuleList');
    assert.equal(rules.apiVersion, 'events.kubesphere.io/v1alpha1');
    assert.deepEqual(
      rules.items.map((i) => `${i.kind} ${i.metadata.namespace}/${i.metadata.name}`),
      [`Rule ${NS}/ks-events-cluster-rules-default`],
    );
    assert.deepEqual(
      (await scoped.load<List>('events-Rulers')).items.map((i) => i.metadata.name),
      ['ks-events-ruler'],
    );
    assert.deepEqual(
      (await scoped.load<List>('events-Exporters')).items.map((i) => i.metadata.name),
      ['ks-events-exporter'],
    );
    // A second run keeps the first backup.
    await hk.delete(EventsRuleResource, 'ks-events-cluster-rules-default', NS);
    assert.deepEqual(await runJob(hk, 'host', store, 'pre-upgrade'), ['succeeded']);
    assert.equal((await scoped.load<List>('events-Rules')).items.length, 1);
  });

  it('post-upgrade (host, events off here): release kept, CRDs deleted, InstallPlan on the member', async () => {
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade'), ['succeeded']);
    assert.equal(await releases(hk), 1, 'events is not enabled on the host: its release is left alone');
    for (const crd of CRDS) assert.equal(await hk.tryGet(CustomResourceDefinitionResource, crd), undefined);
    assert.deepEqual((await hk.get(InstallPlanResource, REF.name)).spec, {
      extension: { name: REF.name, version: REF.version },
      enabled: true,
      upgradeStrategy: 'Manual',
      config: CONFIG,
      clusterScheduling: { placement: { clusters: ['member1'] } },
    });
    assert.ok(await store.scope('host', JOB).exists(`${JOB}-done`));
  });

  it('post-upgrade (member, events on): ks-events uninstalled, CRDs deleted, no InstallPlan', async () => {
    assert.deepEqual(await runJob(mk, 'member1', store, 'pre-upgrade'), ['succeeded']);
    assert.deepEqual(await runJob(mk, 'member1', store, 'post-upgrade'), ['succeeded']);
    assert.equal(await releases(mk), 0);
    assert.equal(await mk.tryGet(ConfigMapResource, 'ks-events-operator', NS), undefined);
    for (const crd of CRDS) assert.equal(await mk.tryGet(CustomResourceDefinitionResource, crd), undefined);
    assert.deepEqual(await mk.listIfServed(InstallPlanResource), []);
  });

  it('re-runs are no-ops once done; rerun with events off everywhere gives an empty placement (as the original)', async () => {
    const plan = await hk.get(InstallPlanResource, REF.name);
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade'), ['succeeded']);
    assert.equal(
      (await hk.get(InstallPlanResource, REF.name)).metadata.resourceVersion,
      plan.metadata.resourceVersion,
    );
    await patchCc(mk, { events: { enabled: false } });
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade', jobConfig({ rerun: 'true' })), [
      'succeeded',
    ]);
    assert.deepEqual((await hk.get(InstallPlanResource, REF.name)).spec.clusterScheduling, {
      placement: { clusters: [] },
    });
    // A configured placement is used as is.
    const configured = { ...REF, clusterScheduling: { placement: { clusters: ['host'] } } };
    assert.deepEqual(
      await runJob(hk, 'host', store, 'post-upgrade', jobConfig({ rerun: true }, configured)),
      ['succeeded'],
    );
    assert.deepEqual((await hk.get(InstallPlanResource, REF.name)).spec.clusterScheduling, {
      placement: { clusters: ['host'] },
    });
  });

  it('rollback re-creates the CRDs and the objects as backed up', async () => {
    assert.deepEqual(await runJob(hk, 'host', store, 'rollback'), ['succeeded']);
    for (const crd of CRDS) assert.ok(await hk.tryGet(CustomResourceDefinitionResource, crd), crd);
    assert.ok(
      await hk.tryGet(EventsRuleResource, 'ks-events-cluster-rules-default', NS),
      'as it was before pre-upgrade',
    );
    assert.ok(await hk.tryGet(EventsRulerResource, 'ks-events-ruler', NS));
    assert.ok(await hk.tryGet(EventsExporterResource, 'ks-events-exporter', NS));
    assert.equal(await store.scope('host', JOB).exists(`${JOB}-done`), false);
    assert.deepEqual(await runJob(hk, 'host', store, 'rollback'), ['succeeded']);
  });
});
