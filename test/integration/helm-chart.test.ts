// The Helm chart deploy/helm/ks-upgrade with the real helm and a real API server: `helm lint`, and
// every object `helm template` renders for a host and a member worker passes a server-side dry
// run; the worker's pod passes the `restricted` Pod Security Standard as the API server enforces it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import '../../src/api/core.js';
import { NamespaceResource, PodResource } from '../../src/api/core.js';
import { applyCrd } from '../../src/kube/crd.js';
import { defineResource, lookupResource, type KubeObject } from '../../src/kube/types.js';
import { crdYaml } from '../helpers/charts.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { helmTools, repoRoot } from '../helpers/env.js';

const exec = promisify(execFile);
const CHART = path.join(repoRoot, 'deploy/helm/ks-upgrade');
const NAMESPACE = 'ks-upgrade';

defineResource({
  group: 'monitoring.coreos.com',
  version: 'v1',
  kind: 'ServiceMonitor',
  plural: 'servicemonitors',
  namespaced: true,
});

interface Manifest extends KubeObject {
  kind: string;
  apiVersion: string;
  spec?: Record<string, unknown>;
}

/** Everything a production install sets: Temporal Cloud (mTLS and API key), codec, S3, encryption. */
const FULL = [
  'temporal.address=acme.a1b2c.tmprl.cloud:7233',
  'temporal.namespace=acme.a1b2c',
  'temporal.tls.existingSecret=temporal-client-tls',
  'temporal.tls.serverCA=true',
  'temporal.apiKey.existingSecret=temporal-api-key',
  'codec.existingSecret=ks-upgrade-codec',
  'storage.s3.existingSecret=ks-upgrade-s3',
  'storage.encryption.existingSecret=ks-upgrade-encryption',
  'metrics.serviceMonitor.enabled=true',
];

async function helm(args: string[]): Promise<string> {
  const { stdout } = await exec(helmTools().helm, args, { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 });
  return stdout;
}

async function template(release: string, sets: string[], extra: string[] = []): Promise<Manifest[]> {
  const out = await helm([
    'template',
    release,
    CHART,
    '--namespace',
    NAMESPACE,
    ...sets.flatMap((s) => ['--set', s]),
    ...extra,
  ]);
  return yaml.loadAll(out).filter((d): d is Manifest => d !== null && typeof d === 'object');
}

function container(
  objects: Manifest[],
): Record<string, unknown> & { env: { name: string; value?: string }[] } {
  const deploy = objects.find((o) => o.kind === 'Deployment');
  assert.ok(deploy);
  const pod = (deploy.spec?.template as { spec: { containers: unknown[] } }).spec;
  return pod.containers[0] as Record<string, unknown> & { env: { name: string; value?: string }[] };
}

describe('Helm chart deploy/helm/ks-upgrade', () => {
  let cluster: EphemeralCluster;
  before(async () => {
    cluster = await startEphemeralCluster('chart');
    const kube = cluster.connection.client;
    // The worker's namespace enforces the `restricted` profile, as a platform team would set it.
    await kube.createIfAbsent(NamespaceResource, {
      metadata: {
        name: NAMESPACE,
        labels: {
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
        },
      },
    });
    const crd = yaml.load(
      crdYaml('monitoring.coreos.com', 'servicemonitors', 'ServiceMonitor'),
    ) as KubeObject;
    await applyCrd(kube, crd as Parameters<typeof applyCrd>[1]);
  });
  after(() => cluster.remove());

  // First, while the cluster has only its system namespaces.
  it('leaves out the Roles of namespaces the cluster lacks when helm sees the cluster', async () => {
    const roleNamespaces = (objs: Manifest[]): string[] =>
      [...new Set(objs.filter((o) => o.kind === 'Role').map((o) => o.metadata.namespace ?? ''))].sort();
    // Without a cluster (helm template, helm lint) every Role is rendered.
    assert.deepEqual(roleNamespaces(await template('ks-upgrade-ns', [])), [
      'default',
      'kube-federation-system',
      'kubesphere-system',
    ]);
    await cluster.connection.client.createIfAbsent(NamespaceResource, {
      metadata: { name: 'kubesphere-system' },
    });
    const online = await template(
      'ks-upgrade-ns',
      [],
      ['--dry-run=server', '--kubeconfig', cluster.kubeconfig],
    );
    assert.deepEqual(roleNamespaces(online), ['default', 'kubesphere-system']);
  });

  for (const role of ['host', 'member'] as const) {
    it(`lints for a ${role} worker`, async () => {
      const out = await helm([
        'lint',
        '--strict',
        CHART,
        '--set',
        `role=${role}`,
        ...FULL.flatMap((s) => ['--set', s]),
      ]);
      assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });

    it(`renders a ${role} worker that passes a server-side dry run`, async () => {
      const objects = await template(`ks-upgrade-${role}`, [`role=${role}`, ...FULL]);
      assert.deepEqual([...new Set(objects.map((o) => o.kind))].sort(), [
        'ClusterRole',
        'ClusterRoleBinding',
        'ConfigMap',
        'Deployment',
        'NetworkPolicy',
        'Role',
        'RoleBinding',
        'Service',
        'ServiceAccount',
        'ServiceMonitor',
      ]);
      // Credentials come from existing Secrets only: the chart renders none.
      assert.ok(!objects.some((o) => o.kind === 'Secret'));
      const c = container(objects);
      const env = new Map(c.env.map((e) => [e.name, e]));
      assert.equal(env.get('KS_UPGRADE_TASK_QUEUE')?.value, `ks-upgrade-${role}`);
      assert.equal(env.get('TEMPORAL_ADDRESS')?.value, 'acme.a1b2c.tmprl.cloud:7233');
      assert.equal(env.get('TEMPORAL_TLS_CA')?.value, '/etc/ks-upgrade/temporal-tls/ca.crt');
      assert.deepEqual(env.get('TEMPORAL_API_KEY'), {
        name: 'TEMPORAL_API_KEY',
        valueFrom: { secretKeyRef: { name: 'temporal-api-key', key: 'api-key' } },
      });
      assert.deepEqual(c.envFrom, [{ secretRef: { name: 'ks-upgrade-s3' } }]);

      const kube = cluster.connection.client;
      for (const ns of new Set(
        objects.flatMap((o) => (o.metadata.namespace ? [o.metadata.namespace] : [])),
      )) {
        await kube.createIfAbsent(NamespaceResource, { metadata: { name: ns } });
      }
      for (const obj of objects) {
        const rt = lookupResource(obj.apiVersion, obj.kind);
        assert.ok(rt, `${obj.kind} is not a known kind`);
        const applied = await kube.apply(rt, obj, { dryRun: true, force: true });
        assert.equal(applied.metadata.name, obj.metadata.name);
      }
    });
  }

  it('refuses bad values, naming the value and what it must be', async () => {
    await assert.rejects(template('bad', ['role=hub']), /\/role': value must be one of 'host', 'member'/);
    await assert.rejects(
      template('bad', ['temporal.address=temporal']),
      /\/temporal\/address': 'temporal' does not match/,
    );
    await assert.rejects(
      template('bad', ['temporal.tls.serverCA=true']),
      /temporal.tls.serverCA needs temporal.tls.existingSecret/,
    );
  });

  it("the worker's pod passes the enforced `restricted` profile (and a pod without its securityContext does not)", async () => {
    const objects = await template('ks-upgrade-psa', FULL);
    const deploy = objects.find((o) => o.kind === 'Deployment');
    assert.ok(deploy);
    const tpl = deploy.spec?.template as { metadata: KubeObject['metadata']; spec: Record<string, unknown> };
    const kube = cluster.connection.client;
    const pod = (name: string, spec: Record<string, unknown>): KubeObject & { spec: unknown } => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NAMESPACE, labels: tpl.metadata.labels ?? {} },
      spec,
    });
    const ok = await kube.apply(PodResource, pod('worker', tpl.spec), { dryRun: true });
    assert.equal(ok.metadata.name, 'worker');
    // The control: the same pod without the chart's securityContext is refused by Pod Security
    // admission, so the check above is not vacuous.
    const {
      securityContext: _pod,
      containers,
      ...rest
    } = tpl.spec as { securityContext: unknown; containers: object[] };
    const bare = { ...rest, containers: containers.map((c) => ({ ...c, securityContext: undefined })) };
    await assert.rejects(kube.apply(PodResource, pod('bare', bare), { dryRun: true }), /restricted/);
  });
});
