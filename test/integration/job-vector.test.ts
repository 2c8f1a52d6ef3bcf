// vector (reference §4.10) on a single cluster: the fluentbit-operator objects backed up (CRDs and
// operator included), CRDs and operator removed, the fluent-bit DaemonSet removed even when no
// operator does it, the InstallPlan, the bounded wait for the sinks Secret, re-runs and rollback.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CustomResourceDefinitionResource,
  DaemonSetResource,
  DeploymentResource,
  SecretResource,
} from '../../src/api/core.js';
import {
  ClusterConfigurationResource,
  FluentBitResource,
  LoggingOutputResource,
} from '../../src/api/v3/index.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { JobConfig } from '../../src/config/types.js';
import type { Phase } from '../../src/jobs/index.js';
import { createVectorJobFactory, vectorJobFactory } from '../../src/jobs/vector/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { runSingleJob } from '../helpers/jobs.js';

const JOB = 'vector';
const NS = 'kubesphere-logging-system';
const REF = { name: 'vector', version: '1.0.4' };
const CRDS = ['parsers', 'filters', 'inputs', 'outputs', 'fluentbits', 'fluentbitconfigs'].map(
  (p) => `${p}.logging.kubesphere.io`,
);
const FAST = createVectorJobFactory({
  fluentBitPollMs: 100,
  fluentBitChecks: 5,
  sinksPollMs: 100,
  sinksChecks: 5,
});

const jobConfig = (options: Record<string, unknown> = {}, ref: object = REF): JobConfig => ({
  enabled: true,
  priority: 101,
  extensionRef: structuredClone(ref) as JobConfig['extensionRef'],
  dynamicOptions: { ...options },
});

async function runJob(
  kube: ResourceClient,
  store: ResourceStore,
  phase: Phase,
  config: JobConfig = jobConfig(),
): Promise<{ outcomes: string[]; logs: string[] }> {
  return runSingleJob(phase, { factory: FAST, config, kube, store });
}

describe('vector job', () => {
  let cluster: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;

  before(async () => {
    cluster = await startEphemeralCluster('vector');
    kube = cluster.connection.client;
    await installKubeSphereV3(kube);
    await kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { logging: { enabled: true } },
    });
    await playCoreUpgrade(kube, [[REF.name, REF.version]]);
    store = await createResourceStore({
      local: { path: await mkdtemp(path.join(tmpdir(), 'vector-store-')) },
    });
  });
  after(() => cluster.remove());

  it('refuses a bad rerun option and a missing extensionRef', () => {
    assert.throws(
      () => vectorJobFactory.create({ rerun: 'maybe' }, REF),
      /jobs\.vector\.dynamicOptions\.rerun/,
    );
    assert.throws(() => vectorJobFactory.create({}, undefined), /jobs\.vector\.extensionRef/);
  });

  it('pre-upgrade backs up the pipeline objects under the original keys, and the CRDs and operator', async () => {
    assert.deepEqual((await runJob(kube, store, 'pre-upgrade')).outcomes, ['succeeded']);
    const scoped = store.scope('host', JOB);
    assert.deepEqual(
      (await scoped.list()).sort(),
      [
        'logging-filter',
        'logging-fluentbit',
        'logging-fluentbitconfig',
        'logging-input',
        'logging-output',
        `${JOB}-apps.v1.deployments-${NS}.fluentbit-operator`,
        ...CRDS.map((c) => `${JOB}-apiextensions.k8s.io.v1.customresourcedefinitions-.${c}`),
      ].sort(),
      'no logging-parser: there are no Parsers',
    );
    type List = { kind: string; items: { kind: string; metadata: { name: string } }[] };
    const output = await scoped.load<List>('logging-output');
    assert.equal(output.kind, 'OutputList');
    assert.deepEqual(
      output.items.map((i) => `${i.kind}/${i.metadata.name}`),
      ['Output/es'],
    );
    assert.deepEqual(
      (await scoped.load<List>('logging-fluentbit')).items.map((i) => i.metadata.name),
      ['fluent-bit'],
    );
    assert.ok(
      await kube.tryGet(DeploymentResource, 'fluentbit-operator', NS),
      'nothing removed in pre-upgrade',
    );
    // A second run keeps the first backup.
    await kube.delete(LoggingOutputResource, 'es', NS);
    assert.deepEqual((await runJob(kube, store, 'pre-upgrade')).outcomes, ['succeeded']);
    assert.equal((await scoped.load<List>('logging-output')).items.length, 1);
  });

  it('post-upgrade removes the pipeline (fluent-bit too when no operator removes it) and creates the InstallPlan', async () => {
    const { outcomes, logs } = await runJob(kube, store, 'post-upgrade');
    assert.deepEqual(outcomes, ['succeeded']);
    for (const crd of CRDS)
      assert.equal(await kube.tryGet(CustomResourceDefinitionResource, crd), undefined, crd);
    // No garbage collector or operator here: the job removes the orphan after its bounded wait.
    assert.equal(await kube.tryGet(DaemonSetResource, 'fluent-bit', NS), undefined);
    assert.ok(logs.some((l) => /^warn: DaemonSet .*fluent-bit was not removed by its operator/.test(l)));
    assert.equal(await kube.tryGet(DeploymentResource, 'fluentbit-operator', NS), undefined);
    assert.deepEqual((await kube.get(InstallPlanResource, REF.name)).spec, {
      extension: REF,
      enabled: true,
      upgradeStrategy: 'Manual',
      clusterScheduling: { placement: { clusters: ['host'] } },
    });
    // The sinks Secret never came: a warning after the bounded wait, as the original went on.
    assert.ok(
      logs.some((l) => /^warn: Secret .*vector-sinks does not exist yet/.test(l)),
      logs.join('\n'),
    );
    assert.ok(await store.scope('host', JOB).exists(`${JOB}-done`));
  });

  it('a second run is a no-op; rerun with the sinks Secret present finishes without warnings', async () => {
    const plan = await kube.get(InstallPlanResource, REF.name);
    assert.deepEqual((await runJob(kube, store, 'post-upgrade')).outcomes, ['succeeded']);
    await kube.create(SecretResource, {
      metadata: { name: 'vector-sinks', namespace: NS },
      stringData: { 'sinks.yaml': '{}' },
    });
    const { outcomes, logs } = await runJob(kube, store, 'post-upgrade', jobConfig({ rerun: true }));
    assert.deepEqual(outcomes, ['succeeded']);
    assert.deepEqual(
      logs.filter((l) => l.startsWith('warn')),
      [],
    );
    assert.equal(
      (await kube.get(InstallPlanResource, REF.name)).metadata.resourceVersion,
      plan.metadata.resourceVersion,
    );
  });

  it('rollback re-creates the CRDs, the pipeline objects as backed up, and the operator', async () => {
    assert.deepEqual((await runJob(kube, store, 'rollback')).outcomes, ['succeeded']);
    for (const crd of CRDS) assert.ok(await kube.tryGet(CustomResourceDefinitionResource, crd), crd);
    assert.ok(
      await kube.tryGet(LoggingOutputResource, 'es', NS),
      'the output deleted after the backup is back',
    );
    assert.ok(await kube.tryGet(FluentBitResource, 'fluent-bit', NS));
    assert.ok(await kube.tryGet(DeploymentResource, 'fluentbit-operator', NS));
    assert.equal(await store.scope('host', JOB).exists(`${JOB}-done`), false);
    assert.deepEqual((await runJob(kube, store, 'rollback')).outcomes, ['succeeded']);
  });
});
