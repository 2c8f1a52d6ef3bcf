// whizard-alerting (reference §4.6) on a host and a member API server: CRD/webhook and rule-group
// backups (by the cc flag), webhook removal, CRDs from the chart, the InstallPlan placed by each
// cluster's cc (none when no cluster has alerting), chart copy, re-runs and rollback.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  MutatingWebhookConfigurationResource,
  ValidatingWebhookConfigurationResource,
  type WebhookConfiguration,
} from '../../src/api/core.js';
import { ClusterConfigurationResource, ClusterResource, RuleGroupResource } from '../../src/api/v3/index.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { JobConfig } from '../../src/config/types.js';
import { chartConfigMapName, writeChartConfigMap } from '../../src/extensions/index.js';
import type { Phase } from '../../src/jobs/index.js';
import { whizardAlertingJobFactory } from '../../src/jobs/whizard-alerting/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { crdYaml, makeChart } from '../helpers/charts.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { runSingleJob } from '../helpers/jobs.js';

const JOB = 'whizard-alerting';
const REF = { name: 'whizard-alerting', version: '1.0.3' };
const WEBHOOK = 'rulegroups.alerting.kubesphere.io';

const jobConfig = (options: Record<string, unknown> = {}, ref: object = REF): JobConfig => ({
  enabled: true,
  priority: 10,
  extensionRef: structuredClone(ref) as JobConfig['extensionRef'],
  dynamicOptions: { rerun: false, updateCrds: true, ...options },
});

async function runJob(
  kube: ResourceClient,
  cluster: string,
  store: ResourceStore,
  phase: Phase,
  config: JobConfig = jobConfig(),
): Promise<string[]> {
  return (
    await runSingleJob(phase, { factory: whizardAlertingJobFactory, config, kube, store, cluster: cluster })
  ).outcomes;
}

/** A v3 rule-group webhook configuration served by ks-controller-manager (no server: Ignore). */
function webhook(
  kind: 'ValidatingWebhookConfiguration' | 'MutatingWebhookConfiguration',
): WebhookConfiguration {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind,
    metadata: { name: WEBHOOK },
    webhooks: [
      {
        name: `${kind === 'MutatingWebhookConfiguration' ? 'm' : 'v'}rulegroups.kb.io`,
        clientConfig: {
          service: {
            namespace: 'kubesphere-system',
            name: 'ks-controller-manager',
            path: '/validate-rulegroup',
          },
        },
        rules: [
          {
            apiGroups: ['fixture.kubesphere.io'],
            apiVersions: ['*'],
            operations: ['CREATE', 'UPDATE'],
            resources: ['*'],
          },
        ],
        failurePolicy: 'Ignore',
        timeoutSeconds: 1,
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
      },
    ],
  };
}

const patchCc = (kube: ResourceClient, body: Record<string, unknown>) =>
  kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', body);

describe('whizard-alerting job', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let hk: ResourceClient;
  let mk: ResourceClient;
  let store: ResourceStore;

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('alert-host'),
      startEphemeralCluster('alert-member'),
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
    await hk.create(ValidatingWebhookConfigurationResource, webhook('ValidatingWebhookConfiguration'));
    await hk.create(MutatingWebhookConfigurationResource, webhook('MutatingWebhookConfiguration'));
    await mk.create(ValidatingWebhookConfigurationResource, webhook('ValidatingWebhookConfiguration'));
    await playCoreUpgrade(hk, [[REF.name, REF.version]]);
    // The chart's CRDs: a newer rulegroups CRD (same stored version) and one the v3 cluster lacks.
    const rulegroups = crdYaml('alerting.kubesphere.io', 'rulegroups', 'RuleGroup')
      .replace('name: v1\n', 'name: v2beta1\n')
      .replace(
        'metadata: { name: rulegroups.alerting.kubesphere.io }',
        'metadata: { name: rulegroups.alerting.kubesphere.io, labels: { from-chart: "true" } }',
      );
    const chart = await makeChart(REF.name, {
      'crds/rulegroups.yaml': rulegroups,
      'crds/rulers.yaml': crdYaml('alerting.kubesphere.io', 'rulers', 'Ruler'),
    });
    await writeChartConfigMap(hk, REF.name, REF.version, chart);
    store = await createResourceStore({
      local: { path: await mkdtemp(path.join(tmpdir(), 'alert-store-')) },
    });
  });
  after(async () => {
    await closeClusterClients();
    await Promise.all([host.remove(), member.remove()]);
  });

  it('refuses options it cannot read, naming them', () => {
    assert.throws(
      () => whizardAlertingJobFactory.create({ rerun: 'sometimes' }, REF),
      /jobs\.whizard-alerting\.dynamicOptions\.rerun must be true or false/,
    );
  });

  it('pre-upgrade with alerting off backs up the CRDs and webhooks only', async () => {
    assert.deepEqual(await runJob(hk, 'host', store, 'pre-upgrade'), ['succeeded']);
    assert.deepEqual((await store.scope('host', JOB).list()).sort(), [
      `${JOB}-admissionregistration.k8s.io.v1.mutatingwebhookconfigurations-.${WEBHOOK}`,
      `${JOB}-admissionregistration.k8s.io.v1.validatingwebhookconfigurations-.${WEBHOOK}`,
      `${JOB}-apiextensions.k8s.io.v1.customresourcedefinitions-.clusterrulegroups.alerting.kubesphere.io`,
      `${JOB}-apiextensions.k8s.io.v1.customresourcedefinitions-.globalrulegroups.alerting.kubesphere.io`,
      `${JOB}-apiextensions.k8s.io.v1.customresourcedefinitions-.rulegroups.alerting.kubesphere.io`,
    ]);
    const vwc = await store
      .scope('host', JOB)
      .load<WebhookConfiguration>(
        `${JOB}-admissionregistration.k8s.io.v1.validatingwebhookconfigurations-.${WEBHOOK}`,
      );
    assert.equal(vwc.kind, 'ValidatingWebhookConfiguration');
    assert.ok(
      await hk.tryGet(ValidatingWebhookConfigurationResource, WEBHOOK),
      'nothing deleted in pre-upgrade',
    );
  });

  it('pre-upgrade with alerting on also backs up the users’ rule groups (not the generated ones)', async () => {
    await patchCc(hk, { spec: { alerting: { enabled: true } } });
    assert.deepEqual(await runJob(hk, 'host', store, 'pre-upgrade'), ['succeeded']);
    const scoped = store.scope('host', JOB);
    type List = {
      apiVersion: string;
      kind: string;
      items: { apiVersion: string; kind: string; metadata: { name: string } }[];
    };
    const names = async (plural: string) =>
      (await scoped.load<List>(`${JOB}-alerting.kubesphere.io.v2beta1.${plural}`)).items.map(
        (i) => `${i.apiVersion}/${i.kind}/${i.metadata.name}`,
      );
    assert.deepEqual(await names('globalrulegroups'), [
      'alerting.kubesphere.io/v2beta1/GlobalRuleGroup/custom-node-rules',
    ]);
    assert.deepEqual(await names('clusterrulegroups'), [
      'alerting.kubesphere.io/v2beta1/ClusterRuleGroup/custom-apiserver-rules',
    ]);
    assert.deepEqual(await names('rulegroups'), [
      'alerting.kubesphere.io/v2beta1/RuleGroup/demo-workload-rules',
    ]);
    // The rule groups are backed up whole, as v3 stores them: a global rule's node names are
    // scoped per cluster ({cluster, names}, ScopedNodeNames of rulegroup_types.go, v3.4.1), which the
    // extension's adapter reads back.
    const globals = await scoped.load<{ items: { spec: { rules: { exprBuilder?: unknown }[] } }[] }>(
      `${JOB}-alerting.kubesphere.io.v2beta1.globalrulegroups`,
    );
    assert.deepEqual(globals.items[0]?.spec.rules[0]?.exprBuilder, {
      node: {
        names: [
          { cluster: 'host', names: ['node1'] },
          { cluster: 'member1', names: ['node2'] },
        ],
        comparator: '>',
        metricThreshold: { cpu: { utilization: 0.9 } },
      },
    });
    const list = await scoped.load<List>(`${JOB}-alerting.kubesphere.io.v2beta1.rulegroups`);
    assert.equal(list.kind, 'List');
    assert.equal(list.apiVersion, 'v1');
    // A re-run keeps the first backup even after the cluster changed.
    await hk.delete(RuleGroupResource, 'demo-workload-rules', 'demo-project');
    assert.deepEqual(await runJob(hk, 'host', store, 'pre-upgrade'), ['succeeded']);
    assert.deepEqual(await names('rulegroups'), [
      'alerting.kubesphere.io/v2beta1/RuleGroup/demo-workload-rules',
    ]);
  });

  it('post-upgrade with no cluster on alerting: webhooks removed, CRDs applied, no InstallPlan', async () => {
    await patchCc(hk, { spec: { alerting: { enabled: false } } });
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade'), ['succeeded']);
    assert.equal(await hk.tryGet(ValidatingWebhookConfigurationResource, WEBHOOK), undefined);
    assert.equal(await hk.tryGet(MutatingWebhookConfigurationResource, WEBHOOK), undefined);
    const crd = await hk.get(CustomResourceDefinitionResource, 'rulegroups.alerting.kubesphere.io');
    assert.equal(crd.metadata.labels?.['from-chart'], 'true', 'the chart’s CRD was applied (force)');
    assert.ok(await hk.tryGet(CustomResourceDefinitionResource, 'rulers.alerting.kubesphere.io'));
    assert.equal(await hk.tryGet(InstallPlanResource, REF.name), undefined);
    assert.ok(
      await mk.tryGet(ConfigMapResource, chartConfigMapName(REF.name, REF.version), 'kubesphere-system'),
    );
    assert.ok(await store.scope('host', JOB).exists(`${JOB}-done`));
    // Done: a second run changes nothing, even with alerting turned on.
    await patchCc(hk, { spec: { alerting: { enabled: true } } });
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade'), ['succeeded']);
    assert.equal(await hk.tryGet(InstallPlanResource, REF.name), undefined);
  });

  it('post-upgrade (rerun) places the extension on the clusters with alerting on, KSE 3.5 status included', async () => {
    await patchCc(mk, {
      spec: { alerting: { enabled: false } },
      status: { alerting: { status: 'enabled' } },
    });
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade', jobConfig({ rerun: true })), [
      'succeeded',
    ]);
    const plan = await hk.get(InstallPlanResource, REF.name);
    assert.deepEqual(plan.spec, {
      extension: REF,
      enabled: true,
      upgradeStrategy: 'Manual',
      config: 'global:\n  rules:\n    distributionMode: Member\n',
      clusterScheduling: { placement: { clusters: ['host', 'member1'] } },
    });
  });

  it('distribution mode follows whizard unless the user set it; a configured placement is used as is', async () => {
    await patchCc(hk, { spec: { monitoring: { whizard: { enabled: true } } } });
    const rerun = (ref: object) =>
      runJob(hk, 'host', store, 'post-upgrade', jobConfig({ rerun: 'true' }, ref));
    assert.deepEqual(await rerun(REF), ['succeeded']);
    assert.equal(
      (await hk.get(InstallPlanResource, REF.name)).spec.config,
      'global:\n  rules:\n    distributionMode: None\n',
    );
    await rerun({
      ...REF,
      config: 'global:\n  rules:\n    distributionMode: Member\n',
      clusterScheduling: { placement: { clusters: ['member1'] } },
    });
    const plan = await hk.get(InstallPlanResource, REF.name);
    assert.equal(plan.spec.config, 'global:\n  rules:\n    distributionMode: Member\n');
    assert.deepEqual(plan.spec.clusterScheduling, { placement: { clusters: ['member1'] } });
  });

  it('on the member: webhook removed, CRDs from the copied chart, no InstallPlan', async () => {
    assert.deepEqual(await runJob(mk, 'member1', store, 'pre-upgrade'), ['succeeded']);
    assert.ok(
      (await store.scope('member1', JOB).list()).every((k) => !k.includes('v2beta1')),
      'alerting is off in the member’s spec: no rule groups',
    );
    assert.deepEqual(await runJob(mk, 'member1', store, 'post-upgrade'), ['succeeded']);
    assert.equal(await mk.tryGet(ValidatingWebhookConfigurationResource, WEBHOOK), undefined);
    assert.ok(await mk.tryGet(CustomResourceDefinitionResource, 'rulers.alerting.kubesphere.io'));
    assert.deepEqual(await mk.listIfServed(InstallPlanResource), []);
  });

  it('rollback re-creates the webhook configurations, idempotently', async () => {
    assert.deepEqual(await runJob(hk, 'host', store, 'rollback'), ['succeeded']);
    const vwc = await hk.get(ValidatingWebhookConfigurationResource, WEBHOOK);
    assert.equal(vwc.webhooks?.[0]?.clientConfig.service?.name, 'ks-controller-manager');
    assert.ok(await hk.tryGet(MutatingWebhookConfigurationResource, WEBHOOK));
    assert.equal(await store.scope('host', JOB).exists(`${JOB}-done`), false);
    assert.deepEqual(await runJob(hk, 'host', store, 'rollback'), ['succeeded']);
  });
});
