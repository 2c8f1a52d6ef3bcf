// The network job on a host and a member API server: backups, the IP pool and network policy
// upgrade, the InstallPlan (placement and values from both clusters' cc), the bounded wait for a
// Cluster object (the original looped forever), re-runs and rollback.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import {
  ConfigMapResource,
  CustomResourceDefinitionResource,
  ValidatingWebhookConfigurationResource,
} from '../../src/api/core.js';
import {
  CalicoIPPoolResource,
  ClusterConfigurationResource,
  ClusterResource,
  KsIPPoolResource,
  NamespaceNetworkPolicyResource,
} from '../../src/api/v3/index.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { ExtensionRef } from '../../src/config/types.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runPhase,
  type Phase,
} from '../../src/jobs/index.js';
import {
  NETWORK_KEYS,
  networkJobFactory,
  parseNetworkOptions,
  policyLabels,
} from '../../src/jobs/network/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { closeClusterClients } from '../../src/kubesphere/clusters.js';
import type { ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { applyObjects, readYamlDocuments } from '../helpers/fixtures.js';
import { connectFixtureMembers, installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import { encryptedTempStore } from '../helpers/storage.js';

const REF: ExtensionRef = { name: 'network', version: '1.1.0' };

/** CRD deletion finishes asynchronously (the API server removes the objects first). */
async function gone(kube: ResourceClient, crd: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (await kube.tryGet(CustomResourceDefinitionResource, crd)) {
    assert.ok(Date.now() < deadline, `CRD ${crd} still there`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('network job', () => {
  let host: EphemeralCluster;
  let member: EphemeralCluster;
  let store: ResourceStore;
  const registry = new JobRegistry();
  registry.register(networkJobFactory);

  const run = (phase: Phase, options: Record<string, unknown> = {}, cluster = 'host', ref = REF) => {
    const config = configWithJobs({
      network: { enabled: true, priority: 100, extensionRef: ref, dynamicOptions: options },
    });
    return runPhase(phase, instantiateJobs(config, registry), (j, p) =>
      createJobContext({
        job: j.name,
        phase: p,
        cluster: { name: cluster },
        kube: (cluster === 'host' ? host : member).connection.client,
        store,
        config: j.config,
        logger: createMemoryLogger(),
      }),
    );
  };
  const scoped = (cluster = 'host') => store.scope(cluster, 'network');
  const snapshot = async (cluster = 'host') => {
    const s = scoped(cluster);
    const result: Record<string, string> = {};
    for (const k of await s.list()) result[k] = Buffer.from(await s.loadRaw(k)).toString('utf8');
    return result;
  };
  const restoreClusters = async () => {
    const hk = host.connection.client;
    const core = readYamlDocuments(path.join(repoRoot, 'test/fixtures/kubesphere-v3/objects/core.yaml'));
    await applyObjects(
      hk,
      core.filter((o) => o.kind === 'Cluster'),
    );
    await connectFixtureMembers(hk, { member1: member.kubeconfig });
  };

  before(async () => {
    [host, member] = await Promise.all([
      startEphemeralCluster('net-host'),
      startEphemeralCluster('net-member'),
    ]);
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
    // The host uses Calico IP pools; the member only network policies (switched on later).
    await hk.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { network: { ippool: { type: 'calico' }, networkpolicy: { enabled: false } } },
    });
    await playCoreUpgrade(hk, [['network', '1.1.0']]);
    store = (await encryptedTempStore('network-job-')).store;
  });
  after(async () => {
    await closeClusterClients();
    await Promise.all([host.remove(), member.remove()]);
  });

  it('checks its options and derives policy labels as the original', () => {
    assert.deepEqual(parseNetworkOptions({ rerun: 'false', clusterWaitSeconds: 2 }), { clusterWaitMs: 2000 });
    assert.throws(() => parseNetworkOptions({ rerun: 1 }), /rerun must be true or false/);
    assert.throws(() => parseNetworkOptions({ clusterWaitSeconds: -1 }), /positive number/);
    assert.throws(() => parseNetworkOptions({ rerunn: true }), /unknown option\(s\) rerunn/);
    assert.deepEqual(policyLabels({ metadata: {}, spec: {} }), { type: '', traffic: '' });
    assert.deepEqual(
      policyLabels({ metadata: {}, spec: { egress: [{ to: [{ ipBlock: {} }] }], ingress: [{ from: [] }] } }),
      { type: 'ingress', traffic: 'outside' },
      'an ingress rule without peers keeps the egress traffic',
    );
    // The v1alpha1 peer fields are `namespace` and `service` (namespacenetworkpolicy_types.go).
    assert.deepEqual(
      policyLabels({ metadata: {}, spec: { ingress: [{ from: [{ namespace: { name: 'dev-project' } }] }] } }),
      { type: 'ingress', traffic: 'inside' },
    );
    assert.deepEqual(
      policyLabels({
        metadata: {},
        spec: {
          egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }],
          ingress: [{ from: [{ service: { name: 'api', namespace: 'dev-project' } }] }],
        },
      }),
      { type: 'ingress', traffic: 'inside' },
    );
    assert.deepEqual(
      policyLabels({
        metadata: {},
        spec: { egress: [{ to: [{ service: { name: 'db', namespace: 'x' } }] }] },
      }),
      { type: 'egress', traffic: 'inside' },
    );
  });

  it('plan lists the IP pool and policy changes and the InstallPlan', async () => {
    const actions =
      (await networkJobFactory.create({}, REF).plan?.(
        createJobContext({
          job: 'network',
          phase: 'pre-upgrade',
          cluster: { name: 'host' },
          kube: host.connection.client,
          store,
          config: { enabled: true, priority: 1, extensionRef: REF, dynamicOptions: {} },
          logger: createMemoryLogger(),
        }),
      )) ?? [];
    const targets = actions.map((a) => a.target ?? a.action);
    assert.ok(targets.includes('CRD ippools.network.kubesphere.io'));
    assert.ok(targets.includes('InstallPlan network'));
  });

  it('pre-upgrade backs up the webhook, CRDs, pools and policies once', async () => {
    await run('pre-upgrade');
    const s = scoped();
    assert.deepEqual(await s.list(), [
      'network-ipamblocks.network.kubesphere.io-crd.apiextensions.k8s.io.v1',
      'network-ipamhandles.network.kubesphere.io-crd.apiextensions.k8s.io.v1',
      'network-ippools.crd.projectcalico.org.v1',
      'network-ippools.network.kubesphere.io-crd.apiextensions.k8s.io.v1',
      'network-ippools.network.kubesphere.io.v1alpha1',
      'network-namespacenetworkpolicies.network.kubesphere.io.v1alpha1',
      'network-networkpolicies.networking.k8s.io.v1',
      'network-validatingwebhookconfiguration.admissionregistration.k8s.io.v1',
      'network-workspacetemplates.tenant.kubesphere.io.v1alpha2',
    ]);
    const names = async (key: string) =>
      (await s.load<{ items: { metadata: { name: string } }[] }>(key)).items
        .map((i) => i.metadata.name)
        .sort();
    assert.deepEqual(await names(NETWORK_KEYS.ksIPPools), ['default-ippool', 'demo-pool']);
    assert.deepEqual(await names(NETWORK_KEYS.calicoIPPools), ['default-ippool', 'demo-pool', 'node-pool']);
    assert.deepEqual(await names(NETWORK_KEYS.namespaceNetworkPolicies), [
      'allow-from-workspace',
      'already-labelled',
      'both-directions',
      'egress-to-cidr',
    ]);
    assert.deepEqual(await names(NETWORK_KEYS.networkPolicies), ['deny-all']);
    assert.deepEqual(await names(NETWORK_KEYS.workspaceTemplates), ['demo-ws', 'dev-ws', 'system-workspace']);
    assert.equal(
      (await s.load<{ metadata: { name: string } }>(NETWORK_KEYS.webhook)).metadata.name,
      'network.kubesphere.io',
    );
    const before = await snapshot();
    await run('pre-upgrade');
    assert.deepEqual(await snapshot(), before);
  });

  it('post-upgrade waits for a Cluster object only so long, and says what to check', async () => {
    const hk = host.connection.client;
    for (const c of ['host', 'member1']) await hk.delete(ClusterResource, c);
    await assert.rejects(run('post-upgrade', { clusterWaitSeconds: 1 }), (err: Error) => {
      assert.match(err.message, /no Cluster object after 1s/);
      assert.match(err.message, /ks-controller-manager creates the host Cluster object/);
      return true;
    });
    assert.equal(await scoped().exists('network-done'), false);
    await restoreClusters();
  });

  it('post-upgrade upgrades pools and policies (again, from the backup) and creates the InstallPlan', async () => {
    const hk = host.connection.client;
    const nodePoolRv = (await hk.get(CalicoIPPoolResource, 'node-pool')).metadata.resourceVersion;
    // The failed run above already deleted the KubeSphere CRDs: annotations now come from the backup.
    assert.equal(
      await hk.tryGet(CustomResourceDefinitionResource, 'ippools.network.kubesphere.io'),
      undefined,
    );
    await hk.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { network: { networkpolicy: { enabled: false } } },
    });
    await member.connection.client.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { network: { networkpolicy: { enabled: true } } },
    });
    assert.deepEqual(await run('post-upgrade').then((r) => r.map((x) => x.outcome)), ['succeeded']);

    assert.equal(await hk.tryGet(ValidatingWebhookConfigurationResource, 'network.kubesphere.io'), undefined);
    for (const crd of ['ippools', 'ipamblocks', 'ipamhandles'])
      await gone(hk, `${crd}.network.kubesphere.io`);
    const def = await hk.get(CalicoIPPoolResource, 'default-ippool');
    assert.equal(def.metadata.ownerReferences, undefined);
    assert.deepEqual(def.metadata.annotations, {
      'projectcalico.org/metadata': '{}',
      'kubesphere.io/description': 'default pool',
      'kubesphere.io/creator': 'admin',
    });
    const demo = await hk.get(CalicoIPPoolResource, 'demo-pool');
    assert.deepEqual(
      demo.metadata.ownerReferences?.map((r) => r.kind),
      ['ConfigMap'],
    );
    assert.deepEqual(demo.metadata.annotations, { 'kubesphere.io/alias-name': 'Demo pool' });
    assert.equal((await hk.get(CalicoIPPoolResource, 'node-pool')).metadata.resourceVersion, nodePoolRv);

    const labels: Record<string, (string | undefined)[]> = Object.fromEntries(
      (await hk.listAll(NamespaceNetworkPolicyResource)).map((p) => [
        p.metadata.name ?? '',
        [
          p.metadata.labels?.['kubesphere.io/policy-type'],
          p.metadata.labels?.['kubesphere.io/policy-traffic'],
        ],
      ]),
    );
    assert.deepEqual(labels, {
      'allow-from-workspace': ['ingress', 'inside'],
      'egress-to-cidr': ['egress', 'outside'],
      'both-directions': ['ingress', 'inside'],
      'already-labelled': ['egress', 'outside'],
    });
    const plan = await hk.get(InstallPlanResource, 'network');
    assert.deepEqual(
      { ...plan.spec, config: yaml.load(plan.spec.config ?? '') },
      {
        extension: { name: 'network', version: '1.1.0' },
        enabled: true,
        upgradeStrategy: 'Manual',
        config: {
          global: {
            ippool: { enable: true, type: 'calico', webhook: true },
            networkpolicy: { enabled: true },
          },
        },
        clusterScheduling: { placement: { clusters: ['host', 'member1'] } },
      },
    );
    assert.ok(await scoped().exists('network-done'));

    const rv = plan.metadata.resourceVersion;
    await run('post-upgrade');
    assert.equal((await hk.get(InstallPlanResource, 'network')).metadata.resourceVersion, rv, 'done: no-op');
  });

  it('rerun applies a changed config; the user config wins over derived values', async () => {
    const hk = host.connection.client;
    await run('post-upgrade', { rerun: 'true' }, 'host', {
      ...REF,
      config: 'global:\n  ippool:\n    webhook: false\n',
    });
    const plan = await hk.get(InstallPlanResource, 'network');
    assert.deepEqual(yaml.load(plan.spec.config ?? ''), {
      global: { ippool: { webhook: false, enable: true, type: 'calico' }, networkpolicy: { enabled: true } },
    });
  });

  it('on a member: not applicable while the cc enables nothing; policies labelled once enabled', async () => {
    const mk = member.connection.client;
    await mk.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { network: { networkpolicy: { enabled: false } } },
    });
    await run('post-upgrade', {}, 'member1');
    assert.ok(
      await mk.tryGet(CustomResourceDefinitionResource, 'ippools.network.kubesphere.io'),
      'untouched',
    );
    assert.equal(
      (await mk.get(NamespaceNetworkPolicyResource, 'egress-to-cidr', 'demo-project')).metadata.labels?.[
        'kubesphere.io/policy-type'
      ],
      undefined,
    );
    await mk.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { network: { networkpolicy: { enabled: true } } },
    });
    await run('post-upgrade', { rerun: true }, 'member1');
    await gone(mk, 'ippools.network.kubesphere.io');
    assert.equal(
      (await mk.get(NamespaceNetworkPolicyResource, 'egress-to-cidr', 'demo-project')).metadata.labels?.[
        'kubesphere.io/policy-type'
      ],
      'egress',
    );
    assert.equal(
      await mk.tryGet(CustomResourceDefinitionResource, 'ippools.network.kubesphere.io'),
      undefined,
    );
    assert.equal(await mk.tryGet(InstallPlanResource, 'network'), undefined, 'InstallPlans only on the host');
  });

  it('rollback restores the webhook, the CRDs and the KubeSphere pools and removes the pending InstallPlan', async () => {
    const hk = host.connection.client;
    await run('rollback');
    assert.equal(await hk.tryGet(InstallPlanResource, 'network'), undefined);
    assert.ok(await hk.tryGet(ValidatingWebhookConfigurationResource, 'network.kubesphere.io'));
    for (const crd of ['ippools', 'ipamblocks', 'ipamhandles']) {
      assert.ok(await hk.tryGet(CustomResourceDefinitionResource, `${crd}.network.kubesphere.io`));
    }
    assert.deepEqual(
      (await hk.listAll(KsIPPoolResource)).map((p) => p.metadata.name),
      ['default-ippool', 'demo-pool'],
    );
    await run('rollback');
  });
});
