// The opensearch job on a host API server: the flags pre-upgrade records (also when the logging
// namespace has no helm release at all — the original's post-upgrade then failed), the release
// uninstall, the InstallPlan (curator/dashboards as v3 had them, the user's config wins), member
// clusters (not applicable), re-runs and rollback.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import { ConfigMapResource, NamespaceResource, SecretResource } from '../../src/api/core.js';
import { InstallPlanResource } from '../../src/api/v4/index.js';
import type { ExtensionRef } from '../../src/config/types.js';
import { encodeRelease, releaseSecretName, type HelmRelease } from '../../src/helm/release.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runPhase,
  type Phase,
} from '../../src/jobs/index.js';
import { opensearchJobFactory } from '../../src/jobs/opensearch/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import { encryptedTempStore } from '../helpers/storage.js';

const NS = 'kubesphere-logging-system';
const REF: ExtensionRef = { name: 'opensearch', version: '2.11.1' };

async function putRelease(kube: ResourceClient, name: string): Promise<void> {
  const cm = `${name}-config`;
  await kube.createIfAbsent(ConfigMapResource, { metadata: { name: cm, namespace: NS }, data: { a: 'b' } });
  const release: HelmRelease = {
    name,
    namespace: NS,
    version: 1,
    info: { status: 'deployed' },
    chart: { metadata: { name: 'opensearch', version: '2.6.0', appVersion: '2.6.0' } },
    manifest: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${cm}\n  namespace: ${NS}\n`,
  };
  await kube.create(SecretResource, {
    metadata: {
      name: releaseSecretName(name, 1),
      namespace: NS,
      labels: { owner: 'helm', name, status: 'deployed', version: '1' },
    },
    type: 'helm.sh/release.v1',
    data: { release: encodeRelease(release) },
  });
}

describe('opensearch job', () => {
  let host: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;
  const registry = new JobRegistry();
  registry.register(opensearchJobFactory);

  const run = (phase: Phase, options: Record<string, unknown> = {}, ref: ExtensionRef = REF) => {
    const config = configWithJobs({
      opensearch: { enabled: true, priority: 100, extensionRef: ref, dynamicOptions: options },
    });
    return runPhase(phase, instantiateJobs(config, registry), (j, p) =>
      createJobContext({
        job: j.name,
        phase: p,
        cluster: { name: 'host' },
        kube,
        store,
        config: j.config,
        logger: createMemoryLogger(),
      }),
    ).then((r) => r.map((x) => x.outcome));
  };
  const scoped = () => store.scope('host', 'opensearch');
  const flag = async (key: string) => Buffer.from(await scoped().loadRaw(key)).toString('utf8');
  const setRole = async (role: string) => {
    await kube.mutate(ConfigMapResource, 'kubesphere-config', 'kubesphere-system', (cm) => {
      cm.data = {
        'kubesphere.yaml': (cm.data?.['kubesphere.yaml'] ?? '').replace(
          /clusterRole: \w+/,
          `clusterRole: ${role}`,
        ),
      };
    });
  };

  before(async () => {
    host = await startEphemeralCluster('os-host');
    kube = host.connection.client;
    await installKubeSphereV3(kube);
    await kube.createIfAbsent(NamespaceResource, { metadata: { name: NS } });
    await playCoreUpgrade(kube, [['opensearch', '2.11.1']]);
    store = (await encryptedTempStore('opensearch-job-')).store;
  });
  after(() => host.remove());

  it('rejects options it does not know and a non-boolean rerun', () => {
    assert.throws(() => opensearchJobFactory.create({ rerun: 'maybe' }, REF), /rerun must be true or false/);
    assert.throws(() => opensearchJobFactory.create({ foo: 1 }, REF), /unknown option\(s\) foo/);
    assert.throws(() => opensearchJobFactory.create({}, undefined), /extensionRef.version is required/);
  });

  it('is not applicable on a member cluster', async () => {
    await setRole('member');
    try {
      assert.deepEqual(await run('pre-upgrade'), ['skipped']);
      assert.deepEqual(await run('post-upgrade'), ['skipped']);
      assert.deepEqual(await scoped().list(), []);
    } finally {
      await setRole('host');
    }
  });

  it('no helm release in the logging namespace: the flag is recorded and post-upgrade skips cleanly', async () => {
    assert.deepEqual(await run('pre-upgrade'), ['succeeded']);
    assert.equal(await flag('opensearch_enabled'), 'false');
    assert.deepEqual(await run('post-upgrade'), ['succeeded'], 'the original failed on the missing key');
    assert.equal(await kube.tryGet(InstallPlanResource, 'opensearch'), undefined);
    assert.equal(await scoped().exists('opensearch-done'), false);
    await scoped().delete('opensearch_enabled'); // back to a cluster that was never looked at
  });

  it('post-upgrade without the pre-upgrade record fails with a hint', async () => {
    await assert.rejects(run('post-upgrade'), /opensearch_enabled not found.*run the opensearch pre-upgrade/);
  });

  it('pre-upgrade records the installed parts once and uninstalls the releases', async () => {
    for (const r of ['opensearch-master', 'opensearch-data', 'opensearch-dashboard'])
      await putRelease(kube, r);
    assert.deepEqual(await run('pre-upgrade'), ['succeeded']);
    assert.deepEqual(await scoped().list(), [
      'opensearch_curator_enabled',
      'opensearch_dashboards_enabled',
      'opensearch_enabled',
    ]);
    assert.equal(await flag('opensearch_enabled'), 'true');
    assert.equal(await flag('opensearch_curator_enabled'), 'false');
    assert.equal(await flag('opensearch_dashboards_enabled'), 'true');
    assert.deepEqual(await kube.listAll(SecretResource, { namespace: NS, labelSelector: 'owner=helm' }), []);
    assert.equal(await kube.tryGet(ConfigMapResource, 'opensearch-master-config', NS), undefined);
    // A re-run finds no release any more: the first record stands.
    assert.deepEqual(await run('pre-upgrade'), ['succeeded']);
    assert.equal(await flag('opensearch_enabled'), 'true');
    assert.equal(await flag('opensearch_dashboards_enabled'), 'true');
  });

  it('post-upgrade creates the InstallPlan on the host with the v3 parts, once', async () => {
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    const plan = await kube.get(InstallPlanResource, 'opensearch');
    assert.deepEqual(
      { ...plan.spec, config: yaml.load(plan.spec.config ?? '') },
      {
        extension: { name: 'opensearch', version: '2.11.1' },
        enabled: true,
        upgradeStrategy: 'Manual',
        config: { 'opensearch-dashboards': { enabled: true }, 'opensearch-curator': { enabled: false } },
        clusterScheduling: { placement: { clusters: ['host'] } },
      },
    );
    assert.ok(await scoped().exists('opensearch-done'));
    const rv = plan.metadata.resourceVersion;
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    assert.equal((await kube.get(InstallPlanResource, 'opensearch')).metadata.resourceVersion, rv);
  });

  it('rerun with a configured curator: the user config wins over the recorded flag', async () => {
    await run('post-upgrade', { rerun: true }, { ...REF, config: 'opensearch-curator:\n  enabled: true\n' });
    const plan = await kube.get(InstallPlanResource, 'opensearch');
    assert.deepEqual(yaml.load(plan.spec.config ?? ''), {
      'opensearch-curator': { enabled: true },
      'opensearch-dashboards': { enabled: true },
    });
  });

  it('rollback removes the InstallPlan while it is not installed', async () => {
    assert.deepEqual(await run('rollback'), ['succeeded']);
    assert.equal(await kube.tryGet(InstallPlanResource, 'opensearch'), undefined);
  });
});
