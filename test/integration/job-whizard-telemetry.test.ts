// The whizard-telemetry job: the InstallPlan on the host only, the done marker (and rerun), and
// rollback of a pending InstallPlan.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigMapResource } from '../../src/api/core.js';
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
import { whizardTelemetryJobFactory } from '../../src/jobs/whizard-telemetry/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import type { ResourceStore } from '../../src/store/index.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3, playCoreUpgrade } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import { encryptedTempStore } from '../helpers/storage.js';

const REF: ExtensionRef = { name: 'whizard-telemetry', version: '1.2.2' };

describe('whizard-telemetry job', () => {
  let host: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;
  const registry = new JobRegistry();
  registry.register(whizardTelemetryJobFactory);

  const run = (phase: Phase, options: Record<string, unknown> = {}, cluster = 'host') => {
    const config = configWithJobs({
      'whizard-telemetry': { enabled: true, priority: 100, extensionRef: REF, dynamicOptions: options },
    });
    return runPhase(phase, instantiateJobs(config, registry), (j, p) =>
      createJobContext({
        job: j.name,
        phase: p,
        cluster: { name: cluster },
        kube,
        store,
        config: j.config,
        logger: createMemoryLogger(),
      }),
    ).then((r) => r.map((x) => x.outcome));
  };
  const marker = async (cluster = 'host') =>
    Buffer.from(await store.scope(cluster, 'whizard-telemetry').loadRaw('whizard-telemetry-done')).toString(
      'utf8',
    );
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
    host = await startEphemeralCluster('wt-host');
    kube = host.connection.client;
    await installKubeSphereV3(kube);
    await playCoreUpgrade(kube, [['whizard-telemetry', '1.2.2']]);
    store = (await encryptedTempStore('telemetry-job-')).store;
  });
  after(() => host.remove());

  it('on a member: no InstallPlan, only the done marker', async () => {
    await setRole('member');
    try {
      assert.deepEqual(await run('pre-upgrade', {}, 'member1'), ['succeeded']);
      assert.deepEqual(await run('post-upgrade', {}, 'member1'), ['succeeded']);
      assert.equal(await kube.tryGet(InstallPlanResource, 'whizard-telemetry'), undefined);
      assert.match(await marker('member1'), /\+0000 UTC$/);
    } finally {
      await setRole('host');
    }
  });

  it('on the host: the InstallPlan as configured, once; rerun runs again', async () => {
    assert.deepEqual(await run('pre-upgrade'), ['succeeded']);
    assert.deepEqual(await store.scope('host', 'whizard-telemetry').list(), [], 'pre-upgrade writes nothing');
    assert.deepEqual(await run('post-upgrade'), ['succeeded']);
    const plan = await kube.get(InstallPlanResource, 'whizard-telemetry');
    assert.deepEqual(plan.spec, {
      extension: { name: 'whizard-telemetry', version: '1.2.2' },
      enabled: true,
      upgradeStrategy: 'Manual',
    });
    const first = await marker();
    await run('post-upgrade');
    assert.equal(await marker(), first, 'done: not run again');
    await new Promise((r) => setTimeout(r, 5));
    await run('post-upgrade', { rerun: 'true' });
    assert.notEqual(await marker(), first, 'rerun: run again, marked again');
    assert.equal(
      (await kube.get(InstallPlanResource, 'whizard-telemetry')).metadata.resourceVersion,
      plan.metadata.resourceVersion,
    );
    assert.throws(
      () => whizardTelemetryJobFactory.create({ rerun: 'TRUE' }, REF),
      /rerun must be true or false/,
    );
  });

  it('rollback removes the pending InstallPlan', async () => {
    assert.deepEqual(await run('rollback'), ['succeeded']);
    assert.equal(await kube.tryGet(InstallPlanResource, 'whizard-telemetry'), undefined);
  });
});
