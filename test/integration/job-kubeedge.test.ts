// The kubeedge job on a host API server: not applicable without the edge runtime, encrypted
// backups of cloudcore's Secrets (refused without a key), the release uninstall, the InstallPlan
// from the v3 cc, the bounded wait for Installed, the data put back (a missing object re-created),
// re-runs and rollback.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import { ConfigMapResource, DeploymentResource, SecretResource } from '../../src/api/core.js';
import { ClusterConfigurationResource } from '../../src/api/v3/index.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { ExtensionRef } from '../../src/config/types.js';
import { encodeRelease, releaseSecretName } from '../../src/helm/release.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runPhase,
  type Phase,
} from '../../src/jobs/index.js';
import { kubeedgeJobFactory, parseKubeedgeOptions } from '../../src/jobs/kubeedge/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { startStandInController } from '../fixtures/kubesphere-v4/controller.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';

const REF: ExtensionRef = { name: 'kubeedge', version: '1.13.1' };
const NS = 'kubeedge';
const CLOUD_CORE = {
  cloudHub: { advertiseAddress: ['172.18.0.2'] },
  service: {
    cloudhubNodePort: '30000',
    cloudhubQuicNodePort: '30001',
    cloudhubHttpsNodePort: '30002',
    cloudstreamNodePort: '30003',
    tunnelNodePort: '30004',
  },
};

describe('kubeedge job', () => {
  let host: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;
  let storeDir: string;
  const registry = new JobRegistry();
  registry.register(kubeedgeJobFactory);

  const run = (phase: Phase, options: Record<string, unknown> = {}, withStore = () => store) => {
    const config = configWithJobs({
      kubeedge: { enabled: true, priority: 100, extensionRef: REF, dynamicOptions: options },
    });
    return runPhase(phase, instantiateJobs(config, registry), (j, p) =>
      createJobContext({
        job: j.name,
        phase: p,
        cluster: { name: 'host' },
        kube,
        store: withStore(),
        config: j.config,
        logger: createMemoryLogger(),
      }),
    ).then((r) => r.map((x) => x.outcome));
  };
  const scoped = () => store.scope('host', 'kubeedge');
  const secretData = async (name: string) => (await kube.get(SecretResource, name, NS)).data;

  before(async () => {
    host = await startEphemeralCluster('ke-host');
    kube = host.connection.client;
    await installKubeSphereV3(kube);
    // The v3 cloudcore release: its Deployment and the cloudcore ConfigMap.
    await kube.create(DeploymentResource, {
      metadata: { name: 'cloudcore', namespace: NS },
      spec: {
        selector: { matchLabels: { app: 'cloudcore' } },
        template: {
          metadata: { labels: { app: 'cloudcore' } },
          spec: { containers: [{ name: 'cloudcore', image: 'kubeedge/cloudcore:v1.9.2' }] },
        },
      },
    });
    await kube.create(SecretResource, {
      metadata: {
        name: releaseSecretName('cloudcore', 1),
        namespace: NS,
        labels: { owner: 'helm', name: 'cloudcore', status: 'deployed', version: '1' },
      },
      type: 'helm.sh/release.v1',
      data: {
        release: encodeRelease({
          name: 'cloudcore',
          namespace: NS,
          version: 1,
          info: { status: 'deployed' },
          chart: { metadata: { name: 'cloudcore', version: '1.9.2', appVersion: '1.9.2' } },
          manifest: [
            `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cloudcore\n  namespace: ${NS}\n`,
            `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cloudcore\n  namespace: ${NS}\n`,
          ].join('---\n'),
        }),
      },
    });
    await playCoreUpgrade(kube, [['kubeedge', '1.13.1']]);
    storeDir = await mkdtemp(path.join(tmpdir(), 'kubeedge-job-'));
    const keyFile = path.join(storeDir, 'backup.key');
    await writeFile(keyFile, randomBytes(32));
    store = await createResourceStore({
      local: { path: path.join(storeDir, 'store') },
      encryption: { keyFile },
    });
  });
  after(() => host.remove());

  it('needs encryption and checks its options', () => {
    assert.equal(kubeedgeJobFactory.requiresEncryption, true);
    assert.deepEqual(parseKubeedgeOptions({ rerun: 'false', installTimeoutSeconds: '30' }), {
      installTimeoutMs: 30_000,
    });
    assert.throws(() => parseKubeedgeOptions({ installTimeoutSeconds: 0 }), /positive number/);
    assert.throws(() => parseKubeedgeOptions({ rerun: 2 }), /rerun must be true or false/);
  });

  it('plan lists the encrypted backups, the uninstall and the InstallPlan', async () => {
    const actions =
      (await kubeedgeJobFactory.create({}, REF).plan?.(
        createJobContext({
          job: 'kubeedge',
          phase: 'pre-upgrade',
          cluster: { name: 'host' },
          kube: kube,
          store,
          config: { enabled: true, priority: 1, extensionRef: REF, dynamicOptions: {} },
          logger: createMemoryLogger(),
        }),
      )) ?? [];
    assert.deepEqual(
      actions.map((a) => a.target ?? a.action),
      [
        'kubeedge-configmap-list',
        'kubeedge-secret-list',
        'kubeedge/cloudcore',
        'InstallPlan kubeedge',
        'restore the data of the backed-up ConfigMaps and Secrets',
      ],
    );
  });

  it('is not applicable without the edge runtime in the cc', async () => {
    assert.deepEqual(await run('pre-upgrade'), ['skipped']);
    assert.deepEqual(await run('post-upgrade'), ['skipped']);
    assert.deepEqual(await scoped().list(), []);
  });

  it('refuses to back up cloudcore Secrets without an encryption key', async () => {
    await kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { edgeruntime: { enabled: true, kubeedge: { enabled: true, cloudCore: CLOUD_CORE } } },
    });
    const plain = await createResourceStore({ local: { path: path.join(storeDir, 'plain') } });
    await assert.rejects(
      run('pre-upgrade', {}, () => plain),
      /storage.encryption|encrypt/,
    );
    assert.ok(await kube.tryGet(ConfigMapResource, 'cloudcore', NS), 'nothing uninstalled before the backup');
  });

  it('pre-upgrade backs up (encrypted) and uninstalls the v3 cloudcore release', async () => {
    assert.deepEqual(await run('pre-upgrade'), ['succeeded']);
    assert.deepEqual(await scoped().list(), ['kubeedge-configmap-list', 'kubeedge-secret-list']);
    const secrets = await scoped().stat('kubeedge-secret-list');
    assert.equal(secrets.encrypted, true);
    const list = await scoped().load<{ kind: string; items: { metadata: { name: string } }[] }>(
      'kubeedge-secret-list',
    );
    assert.equal(list.kind, 'SecretList');
    assert.deepEqual(list.items.map((s) => s.metadata.name).sort(), [
      'casecret',
      'cloudcore',
      'cloudcoresecret',
      'tokensecret',
    ]);
    assert.deepEqual(
      (await scoped().load<{ items: { metadata: { name: string } }[] }>('kubeedge-configmap-list')).items
        .map((c) => c.metadata.name)
        .sort(),
      ['cloudcore', 'tunnelport'],
    );
    assert.equal(
      await kube.tryGet(ConfigMapResource, 'cloudcore', NS),
      undefined,
      'uninstalled with the release',
    );
    assert.equal(await kube.tryGet(DeploymentResource, 'cloudcore', NS), undefined);
    assert.deepEqual(await run('pre-upgrade'), ['succeeded'], 'a re-run finds no release: fine');
  });

  it('post-upgrade waits for Installed, bounded, and fails with the state it saw', async () => {
    await assert.rejects(
      run('post-upgrade', { installTimeoutSeconds: 1 }),
      /InstallPlan kubeedge is 'pending' after 1s/,
    );
    assert.equal(await scoped().exists('kubeedge-done'), false);
  });

  it('post-upgrade installs the extension, then puts the v3 data back', async () => {
    const plan = await kube.get(InstallPlanResource, 'kubeedge');
    assert.deepEqual(
      { ...plan.spec, config: yaml.load(plan.spec.config ?? '') },
      {
        extension: { name: 'kubeedge', version: '1.13.1' },
        enabled: true,
        upgradeStrategy: 'Manual',
        config: {
          kubeedge: { enabled: true },
          cloudcore: {
            cloudCore: { modules: { cloudHub: CLOUD_CORE.cloudHub }, service: CLOUD_CORE.service },
          },
        },
        clusterScheduling: { placement: { clusters: [] } },
      },
    );
    // The extension generated a new CA meanwhile: the v3 one must win (edge nodes trust it).
    const original = await secretData('casecret');
    await kube.patch(SecretResource, 'casecret', NS, {
      data: { cadata: Buffer.from('new-ca').toString('base64') },
    });
    const controller = startStandInController(kube, { intervalMs: 100 });
    try {
      assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    } finally {
      await controller.stop();
    }
    assert.deepEqual(await secretData('casecret'), original);
    const cm = await kube.get(ConfigMapResource, 'cloudcore', NS);
    assert.match(
      cm.data?.['cloudcore.yaml'] ?? '',
      /advertiseAddress: \[172.18.0.2\]/,
      're-created from the backup',
    );
    assert.ok(await scoped().exists('kubeedge-done'), 'the marker is written (and its errors reported)');
    const rv = cm.metadata.resourceVersion;
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    assert.equal((await kube.get(ConfigMapResource, 'cloudcore', NS)).metadata.resourceVersion, rv);
  });

  it('rollback keeps an installed extension and re-creates missing backed-up objects', async () => {
    await kube.delete(ConfigMapResource, 'tunnelport', NS);
    assert.deepEqual(await run('rollback'), ['succeeded']);
    assert.equal((await kube.get(InstallPlanResource, 'kubeedge')).status?.state, 'Installed');
    assert.ok(await kube.tryGet(ConfigMapResource, 'tunnelport', NS));
  });
});
