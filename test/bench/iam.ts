// The IAM migration (iam job, pre-upgrade) of N generated users with their three bindings each,
// against the API server's own write limit: raw concurrent creates of the same objects, at the
// best concurrency of a sweep on the same server. The migration writes every one of those objects
// once (rewritten in its v4 form), so the limit is what it could reach at best.
// Every measured run starts from a fresh v3 cluster (untimed: fixture, prepare-upgrade).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { iamJobFactory } from '../../src/jobs/iam/index.js';
import {
  JobRegistry,
  createJobContext,
  createMemoryLogger,
  instantiateJobs,
  runJobPhase,
  type Phase,
} from '../../src/jobs/index.js';
import { lookupResource, type KubeObject } from '../../src/kube/types.js';
import type { ResourceClient } from '../../src/kube/client.js';
import { createResourceStore, type ResourceStore } from '../../src/store/index.js';
import { forEachLimit } from '../../src/util/concurrency.js';
import { allGenerated, generateIamObjects } from '../fixtures/kubesphere-v3/generate.js';
import { startEphemeralCluster, type EphemeralCluster } from '../helpers/cluster.js';
import { installKubeSphereV3 } from '../helpers/kubesphere.js';
import { configWithJobs } from '../helpers/jobs.js';
import type { Row } from './harness.js';

async function phase(
  cluster: EphemeralCluster,
  store: ResourceStore,
  name: Phase,
  options: Record<string, unknown>,
): Promise<void> {
  const registry = new JobRegistry();
  registry.register(iamJobFactory);
  const [iam] = instantiateJobs(
    configWithJobs({ iam: { enabled: true, priority: 999, dynamicOptions: options } }),
    registry,
  );
  if (!iam) throw new Error('iam job not instantiated');
  const result = await runJobPhase(
    iam.job,
    createJobContext({
      job: 'iam',
      phase: name,
      cluster: { name: 'host' },
      kube: cluster.connection.client,
      store,
      config: iam.config,
      logger: createMemoryLogger(),
    }),
  );
  if (result.outcome !== 'succeeded')
    throw new Error(`iam ${name}: ${result.outcome} ${result.reason ?? ''}`);
}

/** Creates `objects` with `concurrency` requests in flight; objects per second. */
async function createAll(
  kube: ResourceClient,
  objects: readonly KubeObject[],
  concurrency: number,
): Promise<number> {
  const t0 = process.hrtime.bigint();
  await forEachLimit(objects, concurrency, async (o) => {
    const rt = lookupResource(o.apiVersion ?? '', o.kind ?? '');
    if (!rt) throw new Error(`no resource type for ${o.apiVersion ?? ''} ${o.kind ?? ''}`);
    await kube.create(rt, o);
  });
  return objects.length / (Number(process.hrtime.bigint() - t0) / 1e9);
}

export interface IamBenchOptions {
  users: number;
  /** Objects per concurrency level in the sweep. */
  sweepObjects: number;
  concurrencies: readonly number[];
}

export async function benchIam(o: IamBenchOptions): Promise<Row> {
  const objects = allGenerated(generateIamObjects({ users: o.users }));
  // The sweep: each level creates its own share of similar objects on one fresh v3 cluster.
  const sweep = new Map<number, number>();
  {
    const cluster = await startEphemeralCluster('bench-iam-sweep');
    try {
      await installKubeSphereV3(cluster.connection.client);
      const pool = allGenerated(
        generateIamObjects({
          users: Math.ceil((o.sweepObjects * o.concurrencies.length) / 4) + 1,
          prefix: 'sweep',
        }),
      );
      const levels = o.concurrencies.length;
      for (const [k, c] of o.concurrencies.entries()) {
        // Every k-th object: each level gets the same mix of kinds (the pool is grouped by kind).
        const slice = pool.filter((_, i) => i % levels === k).slice(0, o.sweepObjects);
        sweep.set(c, await createAll(cluster.connection.client, slice, c));
        process.stderr.write(`iam: raw creates at concurrency ${c}: ${(sweep.get(c) ?? 0).toFixed(0)}/s\n`);
      }
    } finally {
      await cluster.remove();
    }
  }
  const best = [...sweep.entries()].reduce((a, b) => (b[1] > a[1] ? b : a))[0];

  // The measured run: the limit is the raw creation of exactly these objects at the best level.
  const cluster = await startEphemeralCluster('bench-iam');
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-iam-'));
  try {
    await installKubeSphereV3(cluster.connection.client);
    process.stderr.write(`iam: creating ${objects.length} objects at concurrency ${best} (the baseline)…\n`);
    const limit = await createAll(cluster.connection.client, objects, best);
    const keyFile = path.join(dir, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    const store = await createResourceStore({
      local: { path: path.join(dir, 'store') },
      encryption: { keyFile },
    });
    await phase(cluster, store, 'prepare-upgrade', {});
    process.stderr.write(`iam: pre-upgrade (default options)…\n`);
    const t0 = process.hrtime.bigint();
    await phase(cluster, store, 'pre-upgrade', {});
    const ours = objects.length / (Number(process.hrtime.bigint() - t0) / 1e9);
    return {
      id: 'iam',
      workload: `IAM migration, ${o.users} users + ${objects.length - o.users} bindings`,
      baseline: {
        label: `raw creates of the same objects, best concurrency ${best} (sweep ${[...sweep.entries()].map(([c, r]) => `${c}: ${r.toFixed(0)}/s`).join(', ')})`,
        value: limit,
        unit: 'objects/s',
      },
      ours: {
        label: 'iam pre-upgrade (default: concurrency 8, snapshot + storedVersions included)',
        value: ours,
        unit: 'objects/s',
      },
      ratio: ours / limit,
      ratioLabel: ' of the limit',
      target: '≥ 0.70 of the limit',
      met: ours / limit >= 0.7,
      rounds: 1,
      extra: { sweep: Object.fromEntries(sweep), best },
    };
  } finally {
    await cluster.remove();
    await rm(dir, { recursive: true, force: true });
  }
}
