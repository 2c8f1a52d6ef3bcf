// The example job of docs/writing-a-job.md, end to end on a cluster of its own: registration,
// isEnabled from the cc, backup-once, idempotent re-runs, a crash between backup and action, and
// rollback. It doubles as the template for testing a new job.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigMapResource, NamespaceResource } from '../../src/api/core.js';
import { ClusterConfigurationResource } from '../../src/api/v3/index.js';
import { exampleJobFactory } from '../../src/jobs/example/index.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runPhase,
  type InstantiatedJob,
  type Phase,
} from '../../src/jobs/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/env.js';
import { applyYamlFiles } from '../helpers/fixtures.js';
import { configWithJobs } from '../helpers/jobs.js';

const NS = 'example-system';

describe('example job (docs/writing-a-job.md)', () => {
  let cluster: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;
  let jobs: InstantiatedJob[];

  const run = (phase: Phase) =>
    runPhase(phase, jobs, (j, p) =>
      createJobContext({
        job: j.name,
        phase: p,
        cluster: { name: 'host' },
        kube,
        store,
        config: j.config,
        logger: createMemoryLogger(),
      }),
    );
  const names = async (): Promise<[string, string | undefined][]> =>
    (
      await kube.listAll(ConfigMapResource, {
        namespace: NS,
        labelSelector: 'example.kubesphere.io/migrate=true',
      })
    ).map((cm) => [cm.metadata.name ?? '', cm.metadata.labels?.['example.kubesphere.io/version']]);

  before(async () => {
    cluster = await startEphemeralCluster('example');
    kube = cluster.connection.client;
    await applyYamlFiles(kube, [`${repoRoot}/test/fixtures/kubesphere-v3/crds/installer.kubesphere.io.yaml`]);
    for (const name of ['kubesphere-system', NS])
      await kube.create(NamespaceResource, { metadata: { name } });
    await kube.create(ClusterConfigurationResource, {
      metadata: { name: 'ks-installer', namespace: 'kubesphere-system' },
      spec: { example: { enabled: true } },
    });
    for (const name of ['a', 'b']) {
      await kube.create(ConfigMapResource, {
        metadata: { name, namespace: NS, labels: { 'example.kubesphere.io/migrate': 'true' } },
        data: { value: name },
      });
    }
    store = await createResourceStore({
      local: { path: await mkdtemp(path.join(tmpdir(), 'example-store-')) },
    });

    const registry = new JobRegistry();
    registry.register(exampleJobFactory);
    const config = configWithJobs({
      example: { enabled: true, priority: 1, dynamicOptions: { namespace: NS } },
    });
    jobs = instantiateJobs(config, registry);
  });
  after(() => cluster.remove());

  it('pre-upgrade still removes the v3 objects after a crash between backup and action', async () => {
    // A first attempt wrote the backup and died before deleting anything.
    const v3 = await kube.listAll(ConfigMapResource, {
      namespace: NS,
      labelSelector: 'example.kubesphere.io/migrate=true',
    });
    await store.scope('host', 'example').saveOnce('configmaps', v3);

    assert.deepEqual(await run('pre-upgrade').then((r) => r.map((x) => x.outcome)), ['succeeded']);
    assert.deepEqual(await names(), [], 'the retry did the action the backup protects');
    const backup = await store.scope('host', 'example').load<{ metadata: { name: string } }[]>('configmaps');
    assert.deepEqual(
      backup.map((cm) => cm.metadata.name),
      ['a', 'b'],
    );
    await run('pre-upgrade');
    const again = await store.scope('host', 'example').load<unknown[]>('configmaps');
    assert.deepEqual(again, backup, 'a re-run keeps the first backup, not the (empty) current state');
  });

  it('post-upgrade re-creates the objects in their v4 form, idempotently', async () => {
    await run('post-upgrade');
    await run('post-upgrade');
    assert.deepEqual(await names(), [
      ['a', 'v4'],
      ['b', 'v4'],
    ]);
  });

  it('rollback restores the v3 originals', async () => {
    await run('rollback');
    assert.deepEqual(await names(), [
      ['a', undefined],
      ['b', undefined],
    ]);
    assert.equal((await kube.get(ConfigMapResource, 'a', NS)).data?.value, 'a');
  });

  it('is skipped where the cc does not enable it', async () => {
    await kube.patch(ClusterConfigurationResource, 'ks-installer', 'kubesphere-system', {
      spec: { example: { enabled: false } },
    });
    assert.deepEqual(await run('pre-upgrade').then((r) => r.map((x) => x.outcome)), ['skipped']);
    assert.equal((await names()).length, 2, 'nothing was deleted');
  });
});
