// The iam job at scale: 10 000 generated users, each with a GlobalRoleBinding, a
// WorkspaceRoleBinding and an rbac RoleBinding (test/fixtures/kubesphere-v3/generate.ts), on top of
// the v3 fixture, migrated through prepare / pre / post on an API server of the test's own. Counts
// are asserted; times and memory are reported as test diagnostics (not asserted: speed is
// measured by `npm run bench`). IAM_SCALE_USERS overrides the number of users.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CustomResourceDefinitionResource, NamespaceResource } from '../../src/api/core.js';
import * as v4 from '../../src/api/v4/index.js';
import { iamJobFactory } from '../../src/jobs/iam/index.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runJobPhase,
  type JobProgress,
  type Phase,
} from '../../src/jobs/index.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { lookupResource, type KubeObject, type ResourceType } from '../../src/kube/types.js';
import type { ResourceStore } from '../../src/store/index.js';
import { forEachLimit } from '../../src/util/concurrency.js';
import { allGenerated, generateIamObjects, generatedUserName } from '../fixtures/kubesphere-v3/generate.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3 } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import { encryptedTempStore } from '../helpers/storage.js';

const USERS = Number(process.env.IAM_SCALE_USERS ?? 10_000);
/** Users, GlobalRoleBindings, WorkspaceRoleBindings, RoleBindings of the v3 fixture itself. */
const FIXTURE = { users: 5, globalRoleBindings: 5, workspaceRoleBindings: 4, roleBindings: 3 };

/** Counts the objects of a type, page by page, that `keep` accepts. */
async function count<T extends KubeObject>(
  kube: ResourceClient,
  rt: ResourceType<T>,
  keep: (o: T) => boolean,
  namespace?: string,
): Promise<number> {
  let n = 0;
  for await (const o of kube.list(rt, { pageSize: 1000, ...(namespace ? { namespace } : {}) }))
    if (keep(o)) n++;
  return n;
}

describe(`iam job at scale: ${USERS} users with their bindings`, () => {
  let cluster: EphemeralCluster;
  let kube: ResourceClient;
  let store: ResourceStore;
  const timings: Record<string, number> = {};

  before(async () => {
    cluster = await startEphemeralCluster('iam-scale');
    kube = cluster.connection.client;
    await kube.create(NamespaceResource, { metadata: { name: 'kubesphere-system' } });
    await installKubeSphereV3(kube);
    const objects = allGenerated(generateIamObjects({ users: USERS }));
    const t0 = Date.now();
    // Created with bounded concurrency: applying 40 000 fixture objects one by one takes minutes.
    await forEachLimit(objects, 64, async (o) => {
      const rt = lookupResource(o.apiVersion ?? '', o.kind ?? '');
      assert.ok(rt, `${o.apiVersion ?? ''} ${o.kind ?? ''}`);
      await kube.create(rt, o);
    });
    timings.createFixture = Date.now() - t0;
    store = (await encryptedTempStore('iam-scale-')).store;
  });
  after(() => cluster.remove());

  it('prepare, pre and post migrate every user and binding; counts match', async (t) => {
    const registry = new JobRegistry();
    registry.register(iamJobFactory);
    const [iam] = instantiateJobs(
      configWithJobs({ iam: { enabled: true, priority: 999, dynamicOptions: {} } }),
      registry,
    );
    assert.ok(iam);
    const heartbeats: JobProgress[] = [];
    // The test process also holds the generated fixture; the heap growth during the phases is the
    // job's share (sampled, so an upper bound of what was live at once).
    const heapBefore = process.memoryUsage().heapUsed;
    let peakHeap = heapBefore;
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
    }, 100);
    try {
      for (const phase of ['prepare-upgrade', 'pre-upgrade', 'post-upgrade'] as Phase[]) {
        const t0 = Date.now();
        const result = await runJobPhase(
          iam.job,
          createJobContext({
            job: 'iam',
            phase,
            cluster: { name: 'host' },
            kube,
            store,
            config: iam.config,
            logger: createMemoryLogger(),
            heartbeat: (p) => heartbeats.push(p ?? {}),
          }),
        );
        assert.equal(result.outcome, 'succeeded', phase);
        timings[phase] = Date.now() - t0;
      }
    } finally {
      clearInterval(sampler);
    }

    const users = USERS + FIXTURE.users;
    const converted = (b: v4.RoleBinding): boolean => b.roleRef.apiGroup === 'iam.kubesphere.io';
    assert.equal(
      await count<v4.User>(
        kube,
        v4.UserResource,
        (u) => !!u.metadata.annotations?.['iam.kubesphere.io/globalrole'],
      ),
      users,
    );
    assert.equal(
      await count(kube, v4.GlobalRoleBindingResource, converted),
      USERS + FIXTURE.globalRoleBindings,
    );
    assert.equal(
      await count(kube, v4.WorkspaceRoleBindingResource, converted),
      USERS + FIXTURE.workspaceRoleBindings,
    );
    assert.equal(
      await count(
        kube,
        v4.RoleBindingResource,
        (b) => b.subjects?.[0]?.apiGroup === 'iam.kubesphere.io',
        'demo-project',
      ),
      USERS + FIXTURE.roleBindings,
    );
    const last = generatedUserName(USERS - 1);
    const grb = await kube.get(
      v4.GlobalRoleBindingResource,
      `${last}-platform-${(USERS - 1) % 2 === 0 ? 'regular' : 'self-provisioner'}`,
    );
    assert.deepEqual(grb.metadata.labels?.['iam.kubesphere.io/user-ref'], last);
    assert.deepEqual(
      (await kube.get(CustomResourceDefinitionResource, 'users.iam.kubesphere.io')).status?.storedVersions,
      ['v1beta1'],
    );
    // Progress reached the end of the user migration.
    assert.ok(
      heartbeats.some(
        (h) => h.step === 'migrate users.iam.kubesphere.io' && h.done === users && h.total === users,
      ),
    );

    t.diagnostic(
      `users=${USERS} generated objects=${USERS * 4}: create fixture ${(timings.createFixture ?? 0) / 1000}s, ` +
        `prepare ${(timings['prepare-upgrade'] ?? 0) / 1000}s, pre ${(timings['pre-upgrade'] ?? 0) / 1000}s, ` +
        `post ${(timings['post-upgrade'] ?? 0) / 1000}s, peak RSS ${Math.round(peakRss / 2 ** 20)} MiB, ` +
        `heap growth during the phases ≤ ${Math.round((peakHeap - heapBefore) / 2 ** 20)} MiB`,
    );
  });
});
