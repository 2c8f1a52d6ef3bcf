// whizard-monitoring (reference §4.5) on a host and a member API server: release and object
// backups (Secrets encrypted), uninstall and deletion, CRDs from the extension chart, the
// InstallPlan with values from each cluster's cc, the chart copied to the member, re-runs, rollback.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  DaemonSetResource,
  SecretResource,
  ServiceResource,
  type Secret,
} from '../../src/api/core.js';
import {
  ClusterConfigurationResource,
  ClusterResource,
  PrometheusResource,
  PrometheusRuleResource,
} from '../../src/api/v3/index.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { JobConfig } from '../../src/config/types.js';
import { chartConfigMapName, writeChartConfigMap } from '../../src/extensions/index.js';
import { encodeRelease, releaseSecretName } from '../../src/helm/release.js';
import { createJobContext, createMemoryLogger, type Phase } from '../../src/jobs/index.js';
import { whizardMonitoringJobFactory } from '../../src/jobs/whizard-monitoring/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { crdYaml, makeChart } from '../helpers/charts.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { runSingleJob } from '../helpers/jobs.js';
import { encryptedTempStore } from '../helpers/storage.js';

const JOB = 'whizard-monitoring';
const NS = 'kubesphere-monitoring-system';
const REF = { name: 'whizard-monitoring', version: '1.1.1' };

const jobConfig = (options: Record<string, unknown> = {}, ref: object = REF): JobConfig => ({
  enabled: true,
  priority: 100,
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
    await runSingleJob(phase, { factory: whizardMonitoringJobFactory, config, kube, store, cluster: cluster })
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
        chart: { metadata: { name, version: '0.1.0' } },
        config: { password: `${name}-values-do-not-leak` },
        manifest,
      }),
    },
  });
}

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n`;

/** Every stored key of a job on a cluster, with its content (decrypted). */
async function storeSnapshot(store: ResourceStore, cluster: string): Promise<Record<string, string>> {
  const scoped = store.scope(cluster, JOB);
  const out: Record<string, string> = {};
  for (const key of await scoped.list()) out[key] = Buffer.from(await scoped.loadRaw(key)).toString('utf8');
  return out;
}

describe('whizard-monitoring job', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let hk: ResourceClient;
  let mk: ResourceClient;
  let store: ResourceStore;
  let chart: Buffer;

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('mon-host'),
      startEphemeralCluster('mon-member'),
    ]);
    hk = host.connection.client;
    mk = member.connection.client;
    const members = { member1: member.kubeconfig };
    await Promise.all([installKubeSphereV3(hk, { members }), installKubeSphereV3(mk, { members })]);
    // The member: role member in kubesphere.yaml and cc, no Cluster objects of its own.
    await mk.mutate(ConfigMapResource, 'kubesphere-config', 'kubesphere-system', (c) => {
      c.data = { 'kubesphere.yaml': 'multicluster:\n  clusterRole: member\n' };
    });
    for (const c of await mk.listAll(ClusterResource))
      await mk.delete(ClusterResource, c.metadata.name ?? '');
    const patchCc = (kube: ResourceClient, spec: Record<string, unknown>) =>
      kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', { spec });
    await patchCc(hk, {
      monitoring: {
        prometheus: { volumeSize: '30Gi' },
        whizard: { enabled: true },
        process_exporter: { enabled: true },
        calico_exporter: { enabled: false },
      },
      etcd: { monitoring: true, endpointIps: '192.168.1.1, 192.168.1.2', tlsEnable: false },
    });
    await patchCc(mk, {
      multicluster: { clusterRole: 'member' },
      monitoring: {
        prometheus: { volumeSize: '100Gi' },
        whizard: { enabled: true, client: { gatewayUrl: 'http://192.168.1.1:30990' } },
        process_exporter: { enabled: true },
      },
      etcd: { monitoring: true, endpointIps: '192.168.2.1', tlsEnable: true },
    });
    // v3 helm releases: enabled ones (process exporter, whizard), one whose component is disabled.
    await hk.create(ConfigMapResource, { metadata: { name: 'ks-process-config', namespace: NS } });
    await putRelease(hk, 'ks-process', cm('ks-process-config'));
    await putRelease(hk, 'whizard', cm('whizard-config'));
    await putRelease(hk, 'ks-calico', cm('ks-calico-config'));
    await putRelease(mk, 'whizard', cm('whizard-config'));
    await playCoreUpgrade(hk, [[REF.name, REF.version]]);
    chart = await makeChart('whizard-monitoring', {
      'crds/whizard.yaml': crdYaml('monitoring.whizard.io', 'gateways', 'Gateway'),
      'charts/kube-prometheus-stack/crds/agents.yaml': crdYaml(
        'monitoring.coreos.com',
        'prometheusagents',
        'PrometheusAgent',
      ),
    });
    await writeChartConfigMap(hk, REF.name, REF.version, chart);
    store = (await encryptedTempStore('mon-store-')).store;
  });
  after(async () => {
    await closeClusterClients();
    await Promise.all([host.remove(), member.remove()]);
  });

  it('refuses options it cannot read, naming them', () => {
    assert.throws(
      () => whizardMonitoringJobFactory.create({ updateCrds: 'yes' }, REF),
      /jobs\.whizard-monitoring\.dynamicOptions\.updateCrds must be true or false/,
    );
    assert.equal(whizardMonitoringJobFactory.requiresEncryption, true);
  });

  it('plan lists the backups (Secrets encrypted), deletions, uninstalls and the InstallPlan', async () => {
    const config = jobConfig();
    const job = whizardMonitoringJobFactory.create(config.dynamicOptions, config.extensionRef);
    const ctx = createJobContext({
      job: JOB,
      phase: 'pre-upgrade',
      cluster: { name: 'host' },
      kube: hk,
      store,
      config,
      logger: createMemoryLogger(),
    });
    const plan = (await job.plan?.(ctx)) ?? [];
    const lines = plan.map((a) => `${a.phase} ${a.action}${a.target ? ` ${a.target}` : ''}`);
    for (const line of [
      `pre-upgrade back up (encrypted) helm release ${NS}/ks-process`,
      `post-upgrade uninstall helm release ${NS}/whizard`,
      `pre-upgrade back up (encrypted) Secret ${NS}/alertmanager-main`,
      `post-upgrade delete Prometheus ${NS}/k8s`,
      'post-upgrade delete ClusterRole kubesphere-prometheus-k8s',
      'post-upgrade apply the extension chart CRDs whizard-monitoring-1.1.1',
      'post-upgrade create InstallPlan whizard-monitoring',
    ]) {
      assert.ok(lines.includes(line), `${line}\n${lines.join('\n')}`);
    }
    assert.ok(!lines.some((l) => l.includes('ks-calico')), 'the calico exporter is disabled');
    assert.deepEqual(await store.scope('host', JOB).list(), [], 'a plan writes nothing');
  });

  it('pre-upgrade refuses to store the Secrets in plaintext', async () => {
    const plain = await createResourceStore({
      local: { path: await mkdtemp(path.join(tmpdir(), 'mon-plain-')) },
    });
    await assert.rejects(runJob(hk, 'host', plain, 'pre-upgrade'), /storage\.encryption/);
  });

  it('pre-upgrade (host) backs up the enabled releases and every present object, Secrets encrypted', async () => {
    assert.deepEqual(await runJob(hk, 'host', store, 'pre-upgrade'), ['succeeded']);
    const scoped = store.scope('host', JOB);
    const o = (gvr: string, ns: string, ...names: string[]) => names.map((n) => `${JOB}-${gvr}-${ns}.${n}`);
    assert.deepEqual(
      (await scoped.list()).sort(),
      [
        `${JOB}.helm.release-${NS}.ks-process`,
        `${JOB}.helm.release-${NS}.whizard`,
        ...o('monitoring.coreos.com.v1.thanosrulers', NS, 'kubesphere'),
        ...o('monitoring.coreos.com.v1.alertmanagers', NS, 'main'),
        ...o('monitoring.coreos.com.v1.prometheuses', NS, 'k8s'),
        ...o('.v1.daemonsets', NS, 'node-exporter'),
        ...o('.v1.deployments', NS, 'kube-state-metrics', 'prometheus-operator'),
        ...o(
          '.v1.services',
          NS,
          'alertmanager-main',
          'kube-state-metrics',
          'node-exporter',
          'prometheus-k8s',
        ),
        ...o('.v1.services', 'kube-system', 'kube-scheduler-svc'),
        ...o('.v1.secrets', NS, 'alertmanager-main', 'prometheus-operator'),
        ...o(
          'monitoring.coreos.com.v1.prometheusrules',
          NS,
          'prometheus-k8s-etcd-rules',
          'prometheus-k8s-rules',
        ),
        ...o('monitoring.coreos.com.v1.servicemonitors', NS, 'etcd', 'kubelet', 'node-exporter'),
        ...o(
          'rbac.authorization.k8s.io.v1.clusterrolebindings',
          '',
          'kubesphere-node-exporter',
          'kubesphere-prometheus-k8s',
        ),
        ...o(
          'rbac.authorization.k8s.io.v1.clusterroles',
          '',
          'kubesphere-node-exporter',
          'kubesphere-prometheus-k8s',
        ),
        ...o(
          '.v1.serviceaccounts',
          NS,
          'kube-state-metrics',
          'node-exporter',
          'prometheus-k8s',
          'prometheus-operator',
        ),
        ...o('policy.v1.poddisruptionbudgets', NS, 'prometheus-k8s'),
      ].sort(),
    );
    // Objects are stored as the cluster had them, apiVersion/kind included.
    const prom = await scoped.load<{ apiVersion: string; kind: string; spec: unknown }>(
      `${JOB}-monitoring.coreos.com.v1.prometheuses-${NS}.k8s`,
    );
    assert.equal(prom.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(prom.kind, 'Prometheus');
    const live = (await hk.get(PrometheusResource, 'k8s', NS)) as { spec?: unknown };
    assert.deepEqual(prom.spec, live.spec);
    const release = await scoped.load<{ name: string; manifest: string }>(
      `${JOB}.helm.release-${NS}.ks-process`,
    );
    assert.equal(release.name, 'ks-process');
    // Secrets and release records (values!) are encrypted at rest.
    for (const key of [`${JOB}-.v1.secrets-${NS}.alertmanager-main`, `${JOB}.helm.release-${NS}.whizard`]) {
      const info = await scoped.stat(key);
      assert.equal(info.sensitive, true, key);
      assert.ok(info.encrypted, key);
    }
    const secret = await scoped.load<Secret>(`${JOB}-.v1.secrets-${NS}.alertmanager-main`);
    assert.equal(
      secret.data?.['alertmanager.yaml'],
      (await hk.get(SecretResource, 'alertmanager-main', NS)).data?.['alertmanager.yaml'],
    );
    // Nothing was changed in pre-upgrade.
    assert.ok(await hk.tryGet(PrometheusResource, 'k8s', NS));
    assert.equal(
      (await hk.listAll(SecretResource, { namespace: NS, labelSelector: 'owner=helm' })).length,
      3,
    );
  });

  it('pre-upgrade again keeps the first backups (a change since is not written over them)', async () => {
    const before = await storeSnapshot(store, 'host');
    await hk.patch(PrometheusResource, 'k8s', NS, { spec: { replicas: 5 } });
    assert.deepEqual(await runJob(hk, 'host', store, 'pre-upgrade'), ['succeeded']);
    assert.deepEqual(await storeSnapshot(store, 'host'), before);
  });

  it('pre-upgrade on the member leaves whizard alone (host only) and backs up the member objects', async () => {
    assert.deepEqual(await runJob(mk, 'member1', store, 'pre-upgrade'), ['succeeded']);
    const keys = await store.scope('member1', JOB).list();
    assert.ok(keys.includes(`${JOB}-monitoring.coreos.com.v1.prometheuses-${NS}.k8s`));
    assert.ok(!keys.some((k) => k.includes('helm.release')), 'no whizard release backup on a member');
  });

  it('post-upgrade (host) removes the v3 stack, applies the CRDs, creates the InstallPlan and copies the chart', async () => {
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade'), ['succeeded']);
    // Releases of enabled components uninstalled; the disabled one untouched.
    const releases = await hk.listAll(SecretResource, { namespace: NS, labelSelector: 'owner=helm' });
    assert.deepEqual(
      releases.map((s) => s.metadata.labels?.name),
      ['ks-calico'],
    );
    assert.equal(await hk.tryGet(ConfigMapResource, 'ks-process-config', NS), undefined);
    // The v3 objects are gone, in every group.
    assert.equal(await hk.tryGet(PrometheusResource, 'k8s', NS), undefined);
    assert.equal(await hk.tryGet(DaemonSetResource, 'node-exporter', NS), undefined);
    assert.equal(await hk.tryGet(ServiceResource, 'kube-scheduler-svc', 'kube-system'), undefined);
    assert.equal(await hk.tryGet(SecretResource, 'alertmanager-main', NS), undefined);
    assert.deepEqual(await hk.listAll(PrometheusRuleResource, { namespace: NS }), []);
    // CRDs of the chart and its sub-chart (whizard's too: this is the host).
    assert.ok(await hk.tryGet(CustomResourceDefinitionResource, 'gateways.monitoring.whizard.io'));
    assert.ok(await hk.tryGet(CustomResourceDefinitionResource, 'prometheusagents.monitoring.coreos.com'));

    const plan = await hk.get(InstallPlanResource, REF.name);
    const spec = {
      ...plan.spec,
      config: yaml.load(plan.spec.config ?? ''),
      clusterScheduling: {
        ...plan.spec.clusterScheduling,
        overrides: Object.fromEntries(
          Object.entries(plan.spec.clusterScheduling?.overrides ?? {}).map(([k, v]) => [k, yaml.load(v)]),
        ),
      },
    };
    const storage = (size: string) => ({
      dataVolume: { persistentVolumeClaim: { spec: { resources: { requests: { storage: size } } } } },
    });
    assert.deepEqual(spec, {
      extension: REF,
      enabled: true,
      upgradeStrategy: 'Manual',
      config: {
        whizardMonitoringHelper: { enabled: true },
        'whizard-monitoring-helper': { whizardHelper: { enabled: true } },
        whizard: {
          enabled: true,
          service: {
            compactorTemplateSpec: storage('20Gi'),
            ingesterTemplateSpec: storage('20Gi'),
            storeTemplateSpec: storage('20Gi'),
          },
        },
        whizardAgentProxy: { enabled: true },
        'kube-prometheus-stack': {
          prometheus: {
            agentMode: true,
            prometheusSpec: {
              resources: { requests: { cpu: '200m', memory: '400Mi' }, limits: { cpu: '4', memory: '16Gi' } },
              storageSpec: {
                volumeClaimTemplate: { spec: { resources: { requests: { storage: '30Gi' } } } },
              },
            },
          },
          'prometheus-node-exporter': {
            ProcessExporter: { enabled: true },
            CalicoExporter: { enabled: false },
          },
        },
        'whizard-agent-proxy': { config: { gatewayUrl: 'http://192.168.1.1:30990' } },
      },
      clusterScheduling: {
        placement: { clusters: ['host', 'member1'] },
        overrides: {
          host: {
            'whizard-monitoring-helper': { etcdMonitoringHelper: { enabled: true } },
            'kube-prometheus-stack': {
              kubeEtcd: { enabled: true, endpoints: ['192.168.1.1', '192.168.1.2'] },
              prometheus: { prometheusSpec: { secrets: [] } },
            },
          },
          member1: {
            'kube-prometheus-stack': {
              prometheus: {
                prometheusSpec: {
                  storageSpec: {
                    volumeClaimTemplate: { spec: { resources: { requests: { storage: '100Gi' } } } },
                  },
                  secrets: ['kube-etcd-client-certs'],
                },
              },
              kubeEtcd: { enabled: true, endpoints: ['192.168.2.1'] },
            },
            'whizard-monitoring-helper': { etcdMonitoringHelper: { enabled: true } },
          },
        },
      },
    });
    // The chart reached the member (its post-upgrade reads the CRDs from there).
    const copied = await mk.get(
      ConfigMapResource,
      chartConfigMapName(REF.name, REF.version),
      'kubesphere-system',
    );
    assert.equal(copied.binaryData?.['chart.tgz'], chart.toString('base64'));
    assert.ok(await store.scope('host', JOB).exists(`${JOB}-done`));
  });

  it('post-upgrade on the member: no InstallPlan, the whizard CRDs skipped, whizard release kept', async () => {
    assert.deepEqual(await runJob(mk, 'member1', store, 'post-upgrade'), ['succeeded']);
    assert.equal(await mk.tryGet(PrometheusResource, 'k8s', NS), undefined);
    assert.ok(await mk.tryGet(CustomResourceDefinitionResource, 'prometheusagents.monitoring.coreos.com'));
    assert.equal(
      await mk.tryGet(CustomResourceDefinitionResource, 'gateways.monitoring.whizard.io'),
      undefined,
    );
    assert.equal((await mk.listIfServed(InstallPlanResource)).length, 0);
    assert.equal(
      (await mk.listAll(SecretResource, { namespace: NS, labelSelector: 'owner=helm,name=whizard' })).length,
      1,
    );
  });

  it('a second run of both phases is a no-op (done marker); rerun redoes them with the same result', async () => {
    const snapshot = await storeSnapshot(store, 'host');
    const plan = await hk.get(InstallPlanResource, REF.name);
    assert.deepEqual(await runJob(hk, 'host', store, 'pre-upgrade'), ['succeeded']);
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade'), ['succeeded']);
    assert.deepEqual(await storeSnapshot(store, 'host'), snapshot);
    assert.equal(
      (await hk.get(InstallPlanResource, REF.name)).metadata.resourceVersion,
      plan.metadata.resourceVersion,
    );

    const rerun = jobConfig({ rerun: 'true' });
    assert.deepEqual(await runJob(hk, 'host', store, 'pre-upgrade', rerun), ['succeeded']);
    assert.deepEqual(await runJob(hk, 'host', store, 'post-upgrade', rerun), ['succeeded']);
    const after = await storeSnapshot(store, 'host');
    assert.notEqual(after[`${JOB}-done`], snapshot[`${JOB}-done`], 'the marker was written again');
    const { [`${JOB}-done`]: _newMark, ...backupsAfter } = after;
    const { [`${JOB}-done`]: _oldMark, ...backupsBefore } = snapshot;
    assert.deepEqual(backupsAfter, backupsBefore, 'the backups are the first ones');
    assert.equal(
      (await hk.get(InstallPlanResource, REF.name)).metadata.resourceVersion,
      plan.metadata.resourceVersion,
    );
  });

  it('reports a chart copy failure instead of swallowing it', async () => {
    const good = (await hk.get(ClusterResource, 'member1')).spec?.connection?.kubeconfig;
    await hk.patch(ClusterResource, 'member1', undefined, {
      spec: { connection: { kubeconfig: Buffer.from('not a kubeconfig').toString('base64') } },
    });
    try {
      // Configured placement: the members' cc is not read, only the chart copy reaches them.
      const config = jobConfig(
        { rerun: true },
        { ...REF, clusterScheduling: { placement: { clusters: ['host'] } } },
      );
      await assert.rejects(runJob(hk, 'host', store, 'post-upgrade', config), /member1/);
      assert.equal(await store.scope('host', JOB).exists(`${JOB}-done`), false, 'not marked done');
    } finally {
      await hk.patch(ClusterResource, 'member1', undefined, { spec: { connection: { kubeconfig: good } } });
      await closeClusterClients();
    }
  });

  it('rollback re-creates the deleted v3 objects from the backups (Secrets included)', async () => {
    assert.deepEqual(await runJob(hk, 'host', store, 'rollback'), ['succeeded']);
    const prom = (await hk.get(PrometheusResource, 'k8s', NS)) as { spec?: { replicas?: number } };
    assert.equal(prom.spec?.replicas, 1, 'the state before the upgrade');
    assert.ok(await hk.tryGet(DaemonSetResource, 'node-exporter', NS));
    assert.ok(await hk.tryGet(ServiceResource, 'kube-scheduler-svc', 'kube-system'));
    const secret = await hk.get(SecretResource, 'alertmanager-main', NS);
    assert.match(
      Buffer.from(secret.data?.['alertmanager.yaml'] ?? '', 'base64').toString(),
      /smtp_auth_password/,
    );
    assert.equal(await store.scope('host', JOB).exists(`${JOB}-done`), false, 'the marker is cleared');
    // Idempotent.
    assert.deepEqual(await runJob(hk, 'host', store, 'rollback'), ['succeeded']);
  });
});
