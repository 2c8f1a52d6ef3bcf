// The gateway job end to end on a host and a member API server: pre-upgrade backups, the
// InstallPlan and the v1 → v2 Gateway CRD swap in post-upgrade, dynamic-upgrade of the cluster,
// project and workspace gateways (v2 Gateway values, Ingress class re-binding), re-runs, the fixed
// bugs of the original and rollback.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  IngressResource,
  SecretResource,
  ServiceResource,
  type CustomResourceDefinition,
} from '../../src/api/core.js';
import {
  ClusterConfigurationResource,
  GatewayV1Resource,
  PrometheusRuleResource,
} from '../../src/api/v3/index.js';
import { ExtensionVersionResource, GatewayResource, InstallPlanResource } from '../../src/api/v4/index.js';
import { readChartFromConfigMap, writeChartConfigMap } from '../../src/extensions/index.js';
import { encodeRelease, releaseSecretName } from '../../src/helm/release.js';
import {
  gatewayJobFactory,
  parseGatewayOptions,
  type GatewayV1,
  type GatewayV2,
} from '../../src/jobs/gateway/index.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runPhase,
  type Phase,
} from '../../src/jobs/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { waitForCrdEstablished } from '../../src/kube/crd.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import type { KubeObject } from '../../src/kube/types.js';
import type { ResourceStore } from '../../src/store/index.js';
import { V2_GATEWAY_CRD } from '../fixtures/kubesphere-v4/extensions.js';
import { crdYaml, makeChart } from '../helpers/charts.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { applyObjects, readYamlDocuments } from '../helpers/fixtures.js';
import { installKubeSphereV3 } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import { encryptedTempStore } from '../helpers/storage.js';

const CONTROLS = 'kubesphere-controls-system';
const CLUSTER_GW = 'kubesphere-router-kubesphere-system';
const PROJECT_GW = 'kubesphere-router-demo-project';
const WORKSPACE_GW = 'kubesphere-router-workspace-dev-ws';

// The v1alpha1 Gateway CRD and the three v3 gateways (not in the shared fixture: see the file).
const V1_GATEWAYS = path.join(repoRoot, 'test/fixtures/kubesphere-v3/gateways.gateway.kubesphere.io.yaml');

const PROMETHEUS_RULE_CRD = crdYaml('monitoring.coreos.com', 'prometheusrules', 'PrometheusRule');

function v3Release(name: string): Record<string, unknown> {
  const manifest = [
    `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n  namespace: ${CONTROLS}\n`,
    `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\n  namespace: ${CONTROLS}\n`,
  ].join('---\n');
  return {
    name: `${name}-ingress`,
    namespace: CONTROLS,
    version: 1,
    info: { status: 'deployed' },
    chart: { metadata: { name: 'ingress-nginx', version: '4.0.13', appVersion: '1.1.0' } },
    manifest,
  };
}

async function putRelease(kube: ResourceClient, release: Record<string, unknown>): Promise<void> {
  const name = String(release.name);
  await kube.create(SecretResource, {
    metadata: {
      name: releaseSecretName(name, 1),
      namespace: String(release.namespace),
      labels: { owner: 'helm', name, status: 'deployed', version: '1' },
    },
    type: 'helm.sh/release.v1',
    data: { release: encodeRelease(release as never) },
  });
}

/** The v4 core upgrade as far as the gateway job sees it, without core-upgrade.yaml's Gateway CRD. */
async function coreUpgradeWithoutGatewayCrd(kube: ResourceClient): Promise<void> {
  const v4 = path.join(repoRoot, 'test/fixtures/kubesphere-v4/crds');
  for (const file of ['kubesphere.io.yaml', 'core-upgrade.yaml']) {
    await applyObjects(
      kube,
      readYamlDocuments(path.join(v4, file)).filter(
        (o) => o.metadata.name !== 'gateways.gateway.kubesphere.io',
      ),
    );
  }
  await kube.apply(ExtensionVersionResource, {
    metadata: { name: 'gateway-1.0.2', labels: { 'kubesphere.io/extension-ref': 'gateway' } },
    spec: { version: '1.0.2' },
  });
}

/** `spec.values` of a v2 Gateway, typed loosely for assertions. */
function valuesOf(gw: KubeObject): { controller: Record<string, unknown>; tcp?: unknown } {
  return (gw as GatewayV2).spec?.values as { controller: Record<string, unknown>; tcp?: unknown };
}

/** The v4 gateway controller, reduced to what the job waits for: a deployed release per Gateway. */
function startGatewayController(kube: ResourceClient): { stop: () => Promise<void> } {
  const state = { stopped: false };
  const loop = (async () => {
    while (!state.stopped) {
      try {
        for (const gw of await kube.listAll(GatewayResource)) {
          const name = gw.metadata.name ?? '';
          const ns = gw.metadata.namespace ?? '';
          if (await kube.tryGet(SecretResource, releaseSecretName(name, 1), ns)) continue;
          await putRelease(kube, {
            name,
            namespace: ns,
            version: 1,
            info: { status: 'deployed' },
            chart: { metadata: { name: 'ingress-nginx', version: '4.12.1', appVersion: '1.12.1' } },
            manifest: '',
          });
        }
      } catch {
        // v2 CRD not there yet
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  return {
    stop: async () => {
      state.stopped = true;
      await loop;
    },
  };
}

describe('gateway job', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let store: ResourceStore;
  let chart: Buffer;
  const registry = new JobRegistry();
  registry.register(gatewayJobFactory);

  const kubeOf = (cluster: string) => (cluster === 'host' ? host : member).connection.client;
  const run = (phase: Phase, options: Record<string, unknown> = {}, cluster = 'host') => {
    const config = configWithJobs({
      gateway: {
        enabled: true,
        priority: 90,
        extensionRef: { name: 'gateway', version: '1.0.2' },
        dynamicOptions: options,
      },
    });
    return runPhase(phase, instantiateJobs(config, registry), (j, p) =>
      createJobContext({
        job: j.name,
        phase: p,
        cluster: { name: cluster },
        kube: kubeOf(cluster),
        store,
        config: j.config,
        logger: createMemoryLogger(),
      }),
    );
  };
  const scoped = (cluster = 'host') => store.scope(cluster, 'gateway');
  const snapshot = async (cluster = 'host') => {
    const s = scoped(cluster);
    const keys = await s.list();
    return Object.fromEntries(
      await Promise.all(
        keys.map(async (k) => [k, Buffer.from(await s.loadRaw(k)).toString('utf8')] as const),
      ),
    );
  };
  const ingressClass = async (ns: string, name: string) =>
    (await host.connection.client.get(IngressResource, name, ns)).spec?.ingressClassName;

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('gw-host'),
      startEphemeralCluster('gw-member'),
    ]);
    // member1 is the second API server; it knows itself as a member.
    const members = { member1: member.kubeconfig };
    await Promise.all([
      installKubeSphereV3(host.connection.client, { members }),
      installKubeSphereV3(member.connection.client, { members }),
    ]);
    const hk = host.connection.client;
    const mk = member.connection.client;
    await mk.mutate(ConfigMapResource, 'kubesphere-config', 'kubesphere-system', (cm) => {
      cm.data = {
        'kubesphere.yaml': (cm.data?.['kubesphere.yaml'] ?? '').replace(
          'clusterRole: host',
          'clusterRole: member',
        ),
      };
    });
    await mk.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { multicluster: { clusterRole: 'member' } },
    });
    // v3 gateways on the host only: the member never had the v1 Gateway CRD.
    await applyObjects(hk, readYamlDocuments(V1_GATEWAYS));
    for (const gw of [CLUSTER_GW, PROJECT_GW, WORKSPACE_GW]) await putRelease(hk, v3Release(gw));
    if (!(await hk.tryGet(CustomResourceDefinitionResource, 'prometheusrules.monitoring.coreos.com'))) {
      await applyObjects(hk, [yaml.load(PROMETHEUS_RULE_CRD) as KubeObject]);
    }
    await waitForCrdEstablished(hk, 'prometheusrules.monitoring.coreos.com');
    await hk.apply(PrometheusRuleResource, {
      metadata: { name: 'prometheus-ingress-rules', namespace: 'kubesphere-monitoring-system' },
      spec: { groups: [{ name: 'ingress', rules: [{ alert: 'IngressDown', expr: 'up == 0' }] }] },
    } as KubeObject);

    store = (await encryptedTempStore('gateway-job-')).store;
    chart = await makeChart('gateway', {
      'crds/gateways.yaml': V2_GATEWAY_CRD,
      'templates/extension.yaml': 'kind: ConfigMap\n',
    });
  });
  after(async () => {
    await closeClusterClients();
    await Promise.all([host.remove(), member.remove()]);
  });

  it('parses options strictly: rerun as bool or string, gatewayName a string, no unknown keys', () => {
    assert.equal(parseGatewayOptions({ rerun: 'true' }).rerun, true);
    assert.equal(parseGatewayOptions({ rerun: false }).rerun, false);
    assert.deepEqual(parseGatewayOptions({ gatewayName: PROJECT_GW, waitTimeoutSeconds: '5' }), {
      gatewayName: PROJECT_GW,
      rerun: false,
      waitTimeoutMs: 5000,
    });
    assert.throws(() => parseGatewayOptions({ rerun: 'yes' }), /rerun must be true or false/);
    assert.throws(() => parseGatewayOptions({ gatewayName: 7 }), /gatewayName must be a string/);
    assert.throws(() => parseGatewayOptions({ gatewayname: 'x' }), /unknown option\(s\) gatewayname/);
    assert.throws(() => gatewayJobFactory.create({}, undefined), /extensionRef.version is required/);
  });

  it('plan lists the backups, the CRD swap and one move per gateway', async () => {
    const ref = { name: 'gateway', version: '1.0.2' };
    const actions =
      (await gatewayJobFactory.create({}, ref).plan?.(
        createJobContext({
          job: 'gateway',
          phase: 'pre-upgrade',
          cluster: { name: 'host' },
          kube: host.connection.client,
          store,
          config: { enabled: true, priority: 1, extensionRef: ref, dynamicOptions: {} },
          logger: createMemoryLogger(),
        }),
      )) ?? [];
    const targets = actions.map((a) => `${a.phase} ${a.action} ${a.target ?? ''}`);
    assert.ok(targets.includes('post-upgrade create InstallPlan gateway'));
    assert.ok(
      targets.includes(
        'dynamic-upgrade uninstall helm release kubesphere-controls-system/kubesphere-router-demo-project-ingress',
      ),
    );
    assert.ok(
      targets.includes(
        'dynamic-upgrade create Gateway kubesphere-controls-system/kubesphere-router-cluster (v2alpha1)',
      ),
    );
    assert.equal(
      actions.filter((a) => a.phase === 'post-upgrade' && a.action.startsWith('delete (finalizers')).length,
      3,
    );
  });

  it('pre-upgrade without the core backup of kubesphere.yaml fails and says which job to enable', async () => {
    await assert.rejects(
      run('pre-upgrade', {}, 'member1'),
      /kubesphere-config not found in backup, please enable core upgrade job/,
    );
  });

  it('pre-upgrade backs up ingresses, v1 gateways (with node ports), nginx CRs and CRDs, once', async () => {
    for (const [cluster, client] of [
      ['host', host.connection.client],
      ['member1', member.connection.client],
    ] as const) {
      const cm = await client.get(ConfigMapResource, 'kubesphere-config', 'kubesphere-system');
      await store
        .scope(cluster, 'core')
        .shared()
        .saveRaw('kubesphere-config', cm.data?.['kubesphere.yaml'] ?? '', { sensitive: true });
    }
    assert.deepEqual(await run('pre-upgrade').then((r) => r.map((x) => x.outcome)), ['succeeded']);
    const hk = host.connection.client;
    const backupCm = await hk.get(ConfigMapResource, 'kubesphere-gateway-backup-config', 'kubesphere-system');
    assert.deepEqual(yaml.load(backupCm.data?.['kubesphere.yaml'] ?? ''), {
      watchesPath: '/var/helm-charts/watches.yaml',
      repository: 'kubesphere/nginx-ingress-controller',
      tag: 'v1.3.1',
      namespace: CONTROLS,
    });
    const s = scoped();
    assert.deepEqual(await s.list(), [
      'gateway-gateway-cr-list',
      'gateway-gateways.gateway.kubesphere.io',
      'gateway-ingress-list',
      'gateway-nginx-cr-list',
      'gateway-nginxes.gateway.kubesphere.io',
    ]);
    const gateways = await s.load<{ kind: string; items: GatewayV1[] }>('gateway-gateway-cr-list');
    assert.equal(gateways.kind, 'GatewayList');
    assert.deepEqual(
      gateways.items.map((g) => [g.metadata.name, g.spec?.service?.annotations]),
      [
        [
          PROJECT_GW,
          {
            team: 'demo',
            'gateway.kubesphere.io/http-nodeport': '31180',
            'gateway.kubesphere.io/https-nodeport': '31543',
          },
        ],
        [
          CLUSTER_GW,
          { 'gateway.kubesphere.io/http-nodeport': '30180', 'gateway.kubesphere.io/https-nodeport': '30543' },
        ],
        [WORKSPACE_GW, { 'eip.openelb.kubesphere.io/v1alpha2': 'eip-pool' }],
      ],
    );
    const ingresses = await s.load<{ items: { metadata: { namespace: string; name: string } }[] }>(
      'gateway-ingress-list',
    );
    assert.deepEqual(ingresses.items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`).sort(), [
      'demo-project/legacy-nginx',
      'demo-project/web',
      'dev-project/api',
      `${CONTROLS}/default-http`,
    ]);
    assert.equal(
      (await s.load<{ items: unknown[] }>('gateway-nginx-cr-list')).items.length,
      3,
      'the three Nginx CRs',
    );
    assert.deepEqual(
      (await s.load<CustomResourceDefinition>('gateway-gateways.gateway.kubesphere.io')).spec.versions.map(
        (v) => v.name,
      ),
      ['v1alpha1'],
    );

    const before = await snapshot();
    const rv = backupCm.metadata.resourceVersion;
    await run('pre-upgrade');
    assert.deepEqual(await snapshot(), before, 'a re-run keeps the first backups');
    assert.equal(
      (await hk.get(ConfigMapResource, 'kubesphere-gateway-backup-config', 'kubesphere-system')).metadata
        .resourceVersion,
      rv,
    );

    // The member never had the v1 Gateway CRD: nothing to back up for it, not an error.
    await run('pre-upgrade', {}, 'member1');
    assert.deepEqual(await scoped('member1').list(), [
      'gateway-ingress-list',
      'gateway-nginx-cr-list',
      'gateway-nginxes.gateway.kubesphere.io',
    ]);
  });

  it('post-upgrade on a member waits for the v2 CRD, bounded, and fails with a hint (no process exit)', async () => {
    // The chart this member got has no CRDs: the v2 Gateway kind never appears.
    await writeChartConfigMap(member.connection.client, 'gateway', '1.0.2', await makeChart('gateway', {}));
    const started = Date.now();
    await assert.rejects(run('post-upgrade', { waitTimeoutSeconds: 2 }, 'member1'), (err: Error) => {
      assert.match(err.message, /timed out after 2s waiting for gateway.kubesphere.io\/v2alpha1 Gateways/);
      assert.match(err.message, /upgrade the host first/);
      return true;
    });
    assert.ok(Date.now() - started < 15_000);
    assert.equal(await scoped('member1').exists('gateway-done'), false);
  });

  it('post-upgrade on the host: InstallPlan, v1 → v2 Gateway CRD, chart copied to members', async () => {
    const hk = host.connection.client;
    await coreUpgradeWithoutGatewayCrd(hk);
    await writeChartConfigMap(hk, 'gateway', '1.0.2', chart);
    assert.deepEqual(await run('post-upgrade').then((r) => r.map((x) => x.outcome)), ['succeeded']);

    assert.equal(
      await hk.tryGet(PrometheusRuleResource, 'prometheus-ingress-rules', 'kubesphere-monitoring-system'),
      undefined,
    );
    const rule = await scoped().load<{ metadata: { name: string }; spec: unknown }>(
      'gateway-prometheus-ingress-rules',
    );
    assert.equal(rule.metadata.name, 'prometheus-ingress-rules');
    assert.deepEqual(rule.spec, {
      groups: [{ name: 'ingress', rules: [{ alert: 'IngressDown', expr: 'up == 0' }] }],
    });

    const plan = await hk.get(InstallPlanResource, 'gateway');
    assert.deepEqual(
      { ...plan.spec, config: yaml.load(plan.spec.config ?? '') },
      {
        extension: { name: 'gateway', version: '1.0.2' },
        enabled: true,
        upgradeStrategy: 'Manual',
        config: {
          backend: {
            config: {
              gateway: {
                namespace: CONTROLS,
                valuesOverride: {
                  controller: { image: { repository: 'kubesphere/nginx-ingress-controller' } },
                },
              },
            },
            upgrade: { enabled: true },
          },
        },
        clusterScheduling: { placement: { clusters: ['host', 'member1'] } },
      },
    );

    const crd = await hk.get(CustomResourceDefinitionResource, 'gateways.gateway.kubesphere.io');
    assert.deepEqual(
      crd.spec.versions.map((v) => v.name),
      ['v2alpha1'],
      'the v1 CRD was replaced by the chart one',
    );
    assert.deepEqual(await hk.listAll(GatewayResource), []);
    assert.deepEqual(
      await readChartFromConfigMap(member.connection.client, 'gateway', '1.0.2'),
      chart,
      'the host copied the chart to the member',
    );
    assert.ok(await scoped().exists('gateway-done'));

    // Done: a second run changes nothing.
    const planRv = plan.metadata.resourceVersion;
    await run('post-upgrade');
    assert.equal((await hk.get(InstallPlanResource, 'gateway')).metadata.resourceVersion, planRv);
    assert.equal(
      (await hk.get(CustomResourceDefinitionResource, 'gateways.gateway.kubesphere.io')).metadata.uid,
      crd.metadata.uid,
    );
  });

  it('post-upgrade on the member (no v1 CRD ever): v2 CRD from the synced chart, no InstallPlan', async () => {
    assert.deepEqual(await run('post-upgrade', {}, 'member1').then((r) => r.map((x) => x.outcome)), [
      'succeeded',
    ]);
    const mk = member.connection.client;
    const crd = await mk.get(CustomResourceDefinitionResource, 'gateways.gateway.kubesphere.io');
    assert.deepEqual(
      crd.spec.versions.map((v) => v.name),
      ['v2alpha1'],
    );
    assert.equal(await mk.tryGet(InstallPlanResource, 'gateway'), undefined);
    assert.ok(await scoped('member1').exists('gateway-done'));
  });

  it('dynamic-upgrade moves one gateway at a time and binds only its Ingresses', async () => {
    const hk = host.connection.client;
    await assert.rejects(run('dynamic-upgrade'), /You need to specify the gateway name to upgrade/);
    await assert.rejects(run('dynamic-upgrade', { gatewayName: 'kubesphere-router-nope' }), (err: Error) => {
      assert.match(err.message, /failed to find gateway kubesphere-router-nope/);
      assert.match(err.message, new RegExp(PROJECT_GW));
      return true;
    });
    const controller = startGatewayController(hk);
    try {
      // The cluster gateway first: it must not capture the Ingresses of project/workspace gateways.
      await run('dynamic-upgrade', { gatewayName: CLUSTER_GW });
      const cluster = await hk.get(GatewayResource, 'kubesphere-router-cluster', CONTROLS);
      assert.deepEqual(cluster.metadata.labels, { 'kubesphere.io/gateway-type': 'cluster' });
      assert.deepEqual((cluster as GatewayV2).spec, {
        appVersion: 'kubesphere-nginx-ingress-4.12.1',
        values: {
          fullnameOverride: 'kubesphere-router-cluster',
          controller: {
            image: { repository: 'kubesphere/nginx-ingress-controller', tag: 'v1.4.0' },
            config: { 'worker-processes': '4' },
            electionID: 'kubesphere-router-cluster',
            ingressClassResource: {
              name: 'kubesphere-router-cluster',
              enabled: true,
              default: false,
              controllerValue: 'k8s.io/ingress-nginx',
            },
            ingressClass: 'kubesphere-router-cluster',
            integrateKubeSphere: {
              scope: { enabled: false, namespace: '', namespaceSelector: '' },
              tracing: false,
            },
            publishService: { enabled: false },
            replicaCount: 2,
            resources: {},
            service: { type: 'NodePort', annotations: {}, nodePorts: { http: 30180, https: 30543 } },
          },
          tcp: {},
          udp: {},
        },
      });
      assert.equal(await ingressClass(CONTROLS, 'default-http'), 'kubesphere-router-cluster');
      assert.equal(await ingressClass('demo-project', 'web'), undefined, 'left for the project gateway');
      assert.equal(await ingressClass('dev-project', 'api'), undefined, 'left for the workspace gateway');
      assert.equal(
        await hk.tryGet(ServiceResource, CLUSTER_GW, CONTROLS),
        undefined,
        'v3 release uninstalled',
      );
      assert.deepEqual(
        await hk.listAll(SecretResource, {
          namespace: CONTROLS,
          labelSelector: `name=${CLUSTER_GW}-ingress`,
        }),
        [],
      );

      await run('dynamic-upgrade', { gatewayName: PROJECT_GW });
      const project = await hk.get(GatewayResource, PROJECT_GW, CONTROLS);
      assert.deepEqual(project.metadata.labels, {
        'kubesphere.io/gateway-type': 'project',
        'kubesphere.io/workspace': 'demo-ws',
      });
      assert.deepEqual(project.metadata.annotations, { 'kubesphere.io/creator': 'alice' });
      const values = valuesOf(project);
      assert.deepEqual(values.controller.integrateKubeSphere, {
        scope: { enabled: true, namespace: 'demo-project', namespaceSelector: '' },
        tracing: true,
      });
      assert.deepEqual(values.controller.service, {
        type: 'NodePort',
        annotations: { team: 'demo' },
        nodePorts: { http: 31180, https: 31543 },
      });
      assert.deepEqual(values.controller.resources, {
        requests: { cpu: '100m', memory: '128Mi' },
        limits: { cpu: '1', memory: '1Gi' },
      });
      assert.deepEqual(values.controller.tolerations, [
        { key: 'dedicated', operator: 'Equal', value: 'gateway', effect: 'NoSchedule' },
      ]);
      assert.deepEqual(values.tcp, { '9000': 'demo-project/tcp-echo:9000' });
      assert.equal(await ingressClass('demo-project', 'web'), PROJECT_GW);
      assert.equal(
        await ingressClass('demo-project', 'legacy-nginx'),
        'nginx',
        'a class already set is kept',
      );

      // A re-run (the original failed with AlreadyExists) leaves the Gateway as it is.
      const rv = project.metadata.resourceVersion;
      await run('dynamic-upgrade', { gatewayName: PROJECT_GW });
      assert.equal((await hk.get(GatewayResource, PROJECT_GW, CONTROLS)).metadata.resourceVersion, rv);

      // Workspace gateway: no `workspace-dev-ws` namespace is needed (the original required one).
      await run('dynamic-upgrade', { gatewayName: WORKSPACE_GW });
      const ws = await hk.get(GatewayResource, WORKSPACE_GW, CONTROLS);
      assert.deepEqual(ws.metadata.labels, {
        'kubesphere.io/gateway-type': 'project',
        'kubesphere.io/workspace': 'dev-ws',
      });
      const wsValues = valuesOf(ws).controller;
      assert.deepEqual(wsValues.publishService, { enabled: true });
      assert.deepEqual(wsValues.service, {
        type: 'LoadBalancer',
        annotations: { 'eip.openelb.kubesphere.io/v1alpha2': 'eip-pool' },
      });
      assert.equal(await ingressClass('dev-project', 'api'), WORKSPACE_GW);
    } finally {
      await controller.stop();
    }
  });

  it('dynamic-upgrade fails with a hint when the v4 release never appears (bounded wait)', async () => {
    const hk = host.connection.client;
    await hk.delete(SecretResource, releaseSecretName(PROJECT_GW, 1), CONTROLS);
    await assert.rejects(
      run('dynamic-upgrade', { gatewayName: PROJECT_GW, waitTimeoutSeconds: 1 }),
      (err: Error) => {
        assert.match(
          err.message,
          /timed out after 1s waiting for helm release kubesphere-controls-system\/kubesphere-router-demo-project/,
        );
        assert.match(err.message, /InstallPlan gateway/);
        return true;
      },
    );
  });

  it('post-upgrade with rerun runs again without touching the v2 CRD or the v2 Gateways', async () => {
    const hk = host.connection.client;
    const uid = (await hk.get(CustomResourceDefinitionResource, 'gateways.gateway.kubesphere.io')).metadata
      .uid;
    await run('post-upgrade', { rerun: 'true' });
    assert.equal(
      (await hk.get(CustomResourceDefinitionResource, 'gateways.gateway.kubesphere.io')).metadata.uid,
      uid,
    );
    assert.equal((await hk.listAll(GatewayResource)).length, 3);
    assert.ok(await scoped().exists('gateway-done'));
  });

  it('rollback unbinds the Ingresses, restores the PrometheusRule and removes the pending InstallPlan', async () => {
    const hk = host.connection.client;
    await run('rollback');
    assert.equal(await ingressClass(CONTROLS, 'default-http'), undefined);
    assert.equal(await ingressClass('demo-project', 'web'), undefined);
    assert.equal(await ingressClass('dev-project', 'api'), undefined);
    assert.equal(await ingressClass('demo-project', 'legacy-nginx'), 'nginx');
    assert.ok(
      await hk.tryGet(PrometheusRuleResource, 'prometheus-ingress-rules', 'kubesphere-monitoring-system'),
    );
    assert.equal(await hk.tryGet(InstallPlanResource, 'gateway'), undefined, 'never installed: removed');
    // The v2 CRD replaced the v1 one: v1 Gateways cannot come back next to it (documented).
    assert.deepEqual(await hk.listIfServed(GatewayV1Resource), []);
    await run('rollback');
  });

  it('rollback on a cluster still on the v1 CRD re-creates the v1 Gateways without the bookkeeping annotations', async () => {
    const mk = member.connection.client;
    // The member had no v1 gateways; give its store the host's backups and a v1 CRD-less state.
    await mk.delete(CustomResourceDefinitionResource, 'gateways.gateway.kubesphere.io');
    const deadline = Date.now() + 30_000;
    while (await mk.tryGet(CustomResourceDefinitionResource, 'gateways.gateway.kubesphere.io')) {
      assert.ok(Date.now() < deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const key of ['gateway-gateway-cr-list', 'gateway-gateways.gateway.kubesphere.io']) {
      await scoped('member1').saveOnce(key, await scoped().load(key));
    }
    await run('rollback', {}, 'member1');
    const restored = await mk.listAll(GatewayV1Resource);
    assert.deepEqual(
      restored.map((g) => g.metadata.name),
      [PROJECT_GW, CLUSTER_GW, WORKSPACE_GW],
    );
    const project: GatewayV1 | undefined = restored.find((g) => g.metadata.name === PROJECT_GW);
    assert.deepEqual(project?.spec?.service, { type: 'NodePort', annotations: { team: 'demo' } });
  });
});
