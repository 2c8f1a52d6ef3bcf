// The KubeSphere v3 fixture installs as a production cluster looks when the upgrade starts, and the
// stand-in v4 controller does its part. Every job test builds on this.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CustomResourceDefinitionResource,
  DeploymentResource,
  NamespaceResource,
  type CustomResourceDefinition,
} from '../../src/api/core.js';
import {
  ClusterResource,
  GlobalRuleGroupResource,
  WorkspaceTemplateResource,
} from '../../src/api/v3/index.js';
import { InstallPlanResource, RepositoryResource } from '../../src/api/v4/index.js';
import { checkKsVersion, detectCoreUpgrade } from '../../src/upgrade/checks.js';
import { clientForCluster, closeClusterClients } from '../../src/kubesphere/clusters.js';
import { getClusterConfiguration, isHostCluster } from '../../src/kubesphere/index.js';
import { getPath } from '../../src/util/object.js';
import { allGenerated, generateIamObjects } from '../fixtures/kubesphere-v3/generate.js';
import { startStandInController } from '../fixtures/kubesphere-v4/controller.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { KubeObject } from '../../src/kube/types.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { fieldLosses } from '../helpers/fixture-fidelity.js';
import { applyObjects, fixtureResource, isBuiltIn, readYamlDocuments } from '../helpers/fixtures.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';

const V3 = path.join(repoRoot, 'test/fixtures/kubesphere-v3');

describe('KubeSphere v3 fixture', () => {
  let cluster: EphemeralCluster;
  before(async () => {
    cluster = await startEphemeralCluster('fixture');
    await installKubeSphereV3(cluster.connection.client);
  });
  after(async () => {
    await closeClusterClients();
    await cluster.remove();
  });

  it('has the v4 CRDs over v3 objects: old versions deprecated, objects stored in the old version', async () => {
    const kube = cluster.connection.client;
    const users = await kube.get(CustomResourceDefinitionResource, 'users.iam.kubesphere.io');
    assert.deepEqual(
      users.spec.versions.map((v) => [v.name, v.deprecated ?? false, v.storage]),
      [
        ['v1alpha2', true, false],
        ['v1beta1', false, true],
      ],
    );
    assert.deepEqual(users.status?.storedVersions, ['v1alpha2', 'v1beta1']);
    const wst = await kube.get(CustomResourceDefinitionResource, 'workspacetemplates.tenant.kubesphere.io');
    assert.deepEqual(wst.status?.storedVersions, ['v1alpha2', 'v1beta1']);
    // v3.4.1 serves Workspace v1alpha1 only; v4.1.3 adds v1beta1 and deprecates v1alpha1.
    const ws = await kube.get(CustomResourceDefinitionResource, 'workspaces.tenant.kubesphere.io');
    assert.deepEqual(
      ws.spec.versions.map((v) => [v.name, v.deprecated ?? false, v.storage]),
      [
        ['v1alpha1', true, false],
        ['v1beta1', false, true],
      ],
    );
    assert.deepEqual(ws.status?.storedVersions, ['v1alpha1', 'v1beta1']);
    assert.equal((await kube.get(WorkspaceTemplateResource, 'demo-ws')).spec?.placement?.clusters?.length, 2);
    assert.deepEqual(
      (await kube.listAll(ClusterResource)).map((c) => c.metadata.name),
      ['host', 'member1'],
    );
    assert.equal(await isHostCluster(kube), true);
    // The member Cluster's kubeconfig reaches a real API server (the dev member1), a bare v3 member.
    const member1 = await kube.get(ClusterResource, 'member1');
    const memberKube = await clientForCluster(kube, member1);
    assert.notEqual(memberKube, kube);
    assert.equal(
      getPath(await getClusterConfiguration(memberKube), ['spec', 'multicluster', 'clusterRole']),
      'member',
    );
    assert.equal(await isHostCluster(memberKube), false);
    assert.deepEqual(await checkKsVersion(kube), { ok: true, reason: 'deployed ks-core is v3.4.1' });
  });

  it('plays the v4 core upgrade; the stand-in controller installs InstallPlans and syncs the museum', async () => {
    const kube = cluster.connection.client;
    const controller = startStandInController(kube, { intervalMs: 100 });
    try {
      await playCoreUpgrade(kube, [['devops', '1.1.2']]);
      const deadline = Date.now() + 20_000;
      while (!(await detectCoreUpgrade(kube)).ok) {
        assert.ok(Date.now() < deadline, (await detectCoreUpgrade(kube)).reason);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(
        (await kube.get(DeploymentResource, 'ks-apiserver', 'kubesphere-system')).status?.readyReplicas,
        1,
      );
      await kube.create(InstallPlanResource, {
        metadata: { name: 'devops' },
        spec: { extension: { name: 'devops', version: '1.1.2' }, enabled: true },
      });
      while ((await kube.get(InstallPlanResource, 'devops')).status?.state !== 'Installed') {
        assert.ok(Date.now() < deadline);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok((await kube.get(RepositoryResource, 'extensions-museum')).status?.lastSyncTime);
      assert.deepEqual(controller.installed, ['devops']);
    } finally {
      await controller.stop();
    }
  });
});

/**
 * Every object of the v3 fixture files, of the gateway job's v1alpha1 Gateway file and a few of the
 * generated scale fixture.
 */
function fixtureObjects(): { file: string; obj: KubeObject }[] {
  const files = [
    ...readdirSync(path.join(V3, 'objects'))
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f) => path.join(V3, 'objects', f)),
    path.join(V3, 'gateways.gateway.kubesphere.io.yaml'),
  ];
  const generated = allGenerated(generateIamObjects({ users: 2, loginRecordEvery: 1 }));
  return [
    ...files.flatMap((file) =>
      readYamlDocuments(file)
        .filter((obj) => obj.kind !== 'CustomResourceDefinition')
        .map((obj) => ({ file: path.basename(file), obj })),
    ),
    ...generated.map((obj) => ({ file: 'generate.ts', obj })),
  ];
}

/**
 * Creates the object the way a job writes one (POST, then the status through the status
 * sub-resource where the CRD has one: both prune unknown fields) and returns what the server keeps.
 */
async function roundTrip(kube: ResourceClient, obj: KubeObject): Promise<KubeObject> {
  const rt = fixtureResource(obj);
  const name = obj.metadata.name ?? '';
  const created = await kube.create(rt, structuredClone(obj));
  const status = (obj as { status?: unknown }).status;
  if (status !== undefined && !isBuiltIn(rt) && (created as { status?: unknown }).status === undefined) {
    await kube.patch(rt, name, obj.metadata.namespace, { status }, 'merge', 'status');
  }
  return kube.get(rt, name, obj.metadata.namespace);
}

describe('KubeSphere v3 fixture follows the real API', () => {
  let cluster: EphemeralCluster;
  let kube: ResourceClient;
  before(async () => {
    cluster = await startEphemeralCluster('fidelity');
    kube = cluster.connection.client;
    const crds = readdirSync(path.join(V3, 'crds'))
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => readYamlDocuments(path.join(V3, 'crds', f)));
    const gatewayCrd = readYamlDocuments(path.join(V3, 'gateways.gateway.kubesphere.io.yaml')).filter(
      (o) => o.kind === 'CustomResourceDefinition',
    );
    await applyObjects(kube, [...crds, ...gatewayCrd]);
  });
  after(() => cluster.remove());

  it('every fixture CRD is structural: no root that keeps unknown fields', () => {
    const crds = readdirSync(path.join(V3, 'crds'))
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => readYamlDocuments(path.join(V3, 'crds', f))) as CustomResourceDefinition[];
    const loose = crds.flatMap((crd) =>
      crd.spec.versions
        .filter((v) => {
          const root = (v.schema as { openAPIV3Schema?: Record<string, unknown> } | undefined)
            ?.openAPIV3Schema;
          return root?.['x-kubernetes-preserve-unknown-fields'] === true;
        })
        .map((v) => `${crd.metadata.name ?? ''} ${v.name}`),
    );
    // Kiali's CRD keeps unknown fields upstream too (kiali-operator 1.50.1 crds/crds.yaml).
    assert.deepEqual(loose, ['kialis.kiali.io v1alpha1']);
  });

  it('the server keeps every field of every fixture object (all field names are real)', async () => {
    const objects = fixtureObjects();
    const namespaces = objects.filter(({ obj }) => obj.kind === 'Namespace');
    for (const { obj } of namespaces) await kube.apply(NamespaceResource, obj, { force: true });
    const losses: string[] = [];
    for (const { file, obj } of objects) {
      if (obj.kind === 'Namespace') continue;
      const what = `${file}: ${obj.kind ?? ''} ${obj.metadata.name ?? ''}`;
      let got: KubeObject;
      try {
        got = await roundTrip(kube, obj);
      } catch (err) {
        losses.push(`${what}: refused: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      for (const loss of fieldLosses(obj, got, { ignoreStatus: isBuiltIn(fixtureResource(obj)) })) {
        losses.push(`${what}: ${loss.path} ${loss.kind}`);
      }
    }
    assert.ok(objects.length > 250, `only ${objects.length} fixture objects found`);
    assert.deepEqual(losses, []);
  });

  it('a wrong field name is pruned, and the comparison reports it', async () => {
    const policy = fixtureObjects().find((o) => o.obj.metadata.name === 'allow-from-workspace')?.obj;
    assert.ok(policy, 'the fixture NamespaceNetworkPolicy allow-from-workspace');
    const planted = structuredClone(policy) as KubeObject & { spec: Record<string, unknown> };
    planted.metadata = { name: 'planted-wrong-fields', namespace: policy.metadata.namespace };
    // The names the network job used to read, and one that never existed.
    const peer = (planted.spec.ingress as { from: Record<string, unknown>[] }[])[0]?.from[0];
    assert.ok(peer);
    peer.namespaceSelector = { matchLabels: { team: 'demo' } };
    planted.spec.serviceSelector = { name: 'api' };
    const got = await roundTrip(kube, planted);
    assert.deepEqual(fieldLosses(planted, got), [
      { path: 'spec.ingress[0].from[0].namespaceSelector', kind: 'pruned' },
      { path: 'spec.serviceSelector', kind: 'pruned' },
    ]);
    // The real field next to it is kept.
    assert.deepEqual(
      (got as unknown as { spec: { ingress: { from: unknown[] }[] } }).spec.ingress[0]?.from[0],
      { namespace: { name: 'dev-project' } },
    );
  });

  it('a wrongly shaped field is refused: GlobalRuleGroup node names are {cluster, names}', async () => {
    const group = fixtureObjects().find((o) => o.obj.kind === 'GlobalRuleGroup')?.obj;
    assert.ok(group);
    const wrong = structuredClone(group) as KubeObject & {
      spec: { rules: { exprBuilder?: { node?: { names: unknown } } }[] };
    };
    wrong.metadata = { name: 'node-names-as-strings' };
    const node = wrong.spec.rules[0]?.exprBuilder?.node;
    assert.ok(node);
    node.names = ['node1'];
    await assert.rejects(kube.create(GlobalRuleGroupResource, wrong), /names\[0\]: Invalid value: "string"/);
  });
});
